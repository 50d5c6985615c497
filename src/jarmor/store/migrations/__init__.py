"""Alembic migrations for the tables in ``jarmor.store.schema`` (run them with ``jarmor db upgrade``)."""
