"""Accounts: password hashing, login with rate limits, API tokens, roles."""
