"""Nightly reconciliation as plain functions over Polars frames (no Dagster imports).

load (trade_report, internal, candles) -> compare -> report / store -> heal.
"""
