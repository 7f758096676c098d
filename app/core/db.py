"""The engine, the per-request session and schema migrations.

One transaction per request: the session dependency commits when the handler succeeds and
rolls back when it raises, before the response is sent, so a client never sees a success
for data that was not stored. The schema comes only from the Alembic revisions.
"""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

import migrations

SQLITE_BUSY_TIMEOUT_MS = 15_000
_WRITE = "wijkbudget_write"


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5, **kwargs: Any) -> Engine:
    if "poolclass" not in kwargs and ":memory:" not in url:
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 15}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip on every checkout. A connection the server dropped
    # fails its request once and is discarded; recycling keeps long-lived ones fresh.
    return create_engine(url, pool_recycle=1800, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on, WAL, secure delete, and real transactions.

    Python's sqlite3 driver begins a transaction only before a write, so a read and the write
    it decides would run in different snapshots. We emit BEGIN ourselves; a request that may
    write takes the write lock up front (BEGIN IMMEDIATE), so two writers queue on
    busy_timeout instead of failing half-way with "database is locked".
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Deleted and overwritten rows are zeroed, not left in free space: a ballot's old
        # link, or a replaced ballot, must not stay in the file (see app/services/sealing.py).
        cursor.execute("PRAGMA secure_delete=ON")
        if ":memory:" not in str(engine.url):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_session(engine: Engine, *, write: bool = True) -> Session:
    """A session; `write=False` for requests that only read (no write lock on SQLite)."""
    bind = engine.execution_options(**{_WRITE: True}) if write else engine
    return Session(bind=bind, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "heads") -> None:
    """Bring the database schema up to `revision` (idempotent). The default, every head,
    lets features developed side by side add revisions on the same parent."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def ping(engine: Engine) -> bool:
    """Whether the database answers a trivial query."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception:  # any failure to reach the database means "not ready"
        return False
    return True


# Connections kept free beyond the servers' pools: migrations, cron commands, an operator's psql.
CONNECTION_HEADROOM = 5


def connection_budget_warning(
    *, workers: int, per_worker: int, max_connections: int, reserved: int
) -> str | None:
    """Why `workers` processes of `per_worker` connections each (pool size + overflow) may
    exhaust PostgreSQL, or None. Counts this machine only: with several machines the sum
    over all of them must fit (the README's connection arithmetic)."""
    available = max_connections - reserved - CONNECTION_HEADROOM
    wanted = workers * per_worker
    if wanted <= available:
        return None
    return (
        f"{workers} workers x {per_worker} connections (DB_POOL_SIZE + DB_MAX_OVERFLOW) = "
        f"{wanted} may exceed the {available} PostgreSQL connections available "
        f"(max_connections {max_connections} - {reserved} reserved - {CONNECTION_HEADROOM} "
        "for migrations and commands); lower the pool settings or the workers, or raise "
        "max_connections"
    )


def server_connection_limits(engine: Engine) -> tuple[int, int] | None:
    """PostgreSQL's (max_connections, connections reserved for superusers and roles), or
    None on SQLite or when the server cannot be asked."""
    if engine.dialect.name != "postgresql":
        return None
    try:
        with engine.connect() as connection:
            settings: dict[str, str] = dict(
                connection.exec_driver_sql(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('max_connections', 'superuser_reserved_connections', "
                    "'reserved_connections')"
                ).all()
            )
    except Exception:  # a startup hint only: never stop the server over it
        return None
    names = ("superuser_reserved_connections", "reserved_connections")
    reserved = sum(int(settings.get(name, "0")) for name in names)
    return int(settings["max_connections"]), reserved
