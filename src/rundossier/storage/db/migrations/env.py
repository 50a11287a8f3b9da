"""Alembic environment: runs migrations on the connection rundossier hands it."""

from __future__ import annotations

from alembic import context

from rundossier.storage.db.models import SQLModel  # registers the tables

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `rundossier db upgrade`, which supplies the connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table="rd_alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; run `rundossier db upgrade`")
run_migrations_online()
