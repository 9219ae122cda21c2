"""Alembic environment: runs pam-guard's migrations on the connection store.migrate hands it."""

from alembic import context

from store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - store.migrate always passes a connection
    raise RuntimeError("run migrations through `pam-guard` (store.migrate), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies to alter
)
with context.begin_transaction():
    context.run_migrations()
