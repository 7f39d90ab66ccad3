"""Shared helpers for the policy rules (no pulumi runtime needed)."""
