"""Alembic migrations of the campaign store (run by :func:`campaigns.migrate.upgrade`)."""
