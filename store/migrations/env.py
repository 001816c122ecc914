"""Alembic environment: runs on the connection mediamesh hands it (see store.database.migrate)."""

from alembic import context

from mediamesh.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
