"""Tokens, roles and scope, PII encryption and masking."""
