"""Alembic environment: the URL comes from the caller's config or from the settings."""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url

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


# One migration at a time per PostgreSQL database: replicas started together (each runs
# `wijkbudget migrate` or `serve`) wait here for the first, then find nothing left to do.
MIGRATION_LOCK_KEY = 0x57424D494752  # "WBMIGR"


@contextmanager
def _sqlite_file_lock() -> Iterator[None]:
    """SQLite: processes migrating one database file take turns on a lock file beside it
    (SQLite's own locking would let the second fail half-way, on a table that exists)."""
    database = make_url(url).database
    if not is_sqlite or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_migrations_online() -> None:
    engine = make_engine(url, poolclass=pool.NullPool)
    with _sqlite_file_lock(), engine.connect() as connection:
        if is_sqlite:
            # A batch operation rebuilds a table (copy, drop, rename): with foreign keys on,
            # dropping it would cascade to every row that refers to it. Set on the driver's
            # connection, before any transaction (SQLite ignores it inside one); this
            # connection is not pooled, so the setting goes with it.
            raw = connection.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA foreign_keys=OFF")
        locked = connection.dialect.name == "postgresql"
        if locked:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()  # the lock is the session's: it outlives this transaction
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=is_sqlite,
                # `wijkbudget migrate` names each revision it applies (app.core.db.migrate).
                on_version_apply=config.attributes.get("on_version_apply", ()),
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if locked:
                connection.rollback()
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
