"""Credentials: passwords, access tokens, TOTP, API keys, encryption at rest, rate limits."""
