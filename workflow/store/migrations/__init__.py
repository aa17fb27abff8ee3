"""Alembic migrations of the rubrong schema (run through ``workflow.store.migrate``)."""
