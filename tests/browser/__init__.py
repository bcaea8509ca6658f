"""Support for tests that drive a real headless Chromium (Debian's package) with Playwright."""
