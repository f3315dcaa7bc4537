"""Alembic migrations of the state database, run by `digest db upgrade` (no env.py needed)."""
