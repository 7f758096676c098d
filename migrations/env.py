"""Alembic environment: the URL comes from the caller's config or from the settings."""

from alembic import context
from sqlalchemy import pool

from app.core.config import get_settings
from app.core.db import make_engine
from app.models import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
is_sqlite = url.startswith("sqlite")


def run_migrations_offline() -> None:
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=is_sqlite,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=is_sqlite,
            # `wijkbudget migrate` names each revision it applies (app.core.db.migrate).
            on_version_apply=config.attributes.get("on_version_apply", ()),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
