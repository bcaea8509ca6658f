"""Benchmarks, each reported as a ratio to a ceiling measured in the same run."""
