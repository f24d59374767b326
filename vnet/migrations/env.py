"""Alembic environment: runs migrations against the URL vnet.db passes in."""

from alembic import context
from sqlalchemy import pool

from vnet.db import make_engine
from vnet.models import Base

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=engine.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
