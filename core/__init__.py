"""What every service shares: settings, message contracts, money helpers, database helpers."""
