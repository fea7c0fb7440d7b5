"""Alembic environment of the campaign store: runs on the connection that ``campaigns.migrate`` passes.

No ``alembic.ini`` is read and logging is left alone; the version table is ``campaigns_alembic_version``
so that the store may share a database with MLflow's (whose table is ``alembic_version``).
"""

from __future__ import annotations

from alembic import context

from churnclv.campaigns.models import Base

VERSION_TABLE = "campaigns_alembic_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
