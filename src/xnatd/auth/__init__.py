"""Credentials: password hashing and token secrets (no database access here)."""
