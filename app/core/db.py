"""The engine, the per-request session and schema migrations.

One transaction per request: the session dependency commits when the handler succeeds and
rolls back when it raises, before the response is sent, so a client never sees a success
for data that was not stored. The schema comes only from the Alembic revisions.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

import migrations

SQLITE_BUSY_TIMEOUT_SECONDS = 15.0
_WRITE = "wijkbudget_write"
# SQLite: the connection's count of changed rows when its transaction began (see `has_written`).
_CHANGES_AT_BEGIN = "wijkbudget_changes_at_begin"


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    lock_timeout: float | None = None,
    statement_timeout: float | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine with our connection set-up. `lock_timeout` (seconds): how long a statement
    may wait for a lock (PostgreSQL's lock_timeout, SQLite's busy timeout) before it fails;
    `statement_timeout`: how long a PostgreSQL statement may run. None: the server's
    defaults (no limit), for commands such as migrations that may legitimately wait."""
    if "poolclass" not in kwargs and ":memory:" not in url:
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
    if url.startswith("sqlite"):
        busy = SQLITE_BUSY_TIMEOUT_SECONDS if lock_timeout is None else lock_timeout
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy}, **kwargs
        )
        _configure_sqlite(engine, busy_timeout_ms=int(busy * 1000))
        return engine
    options = [
        f"-c {name}={int(seconds * 1000)}"
        for name, seconds in (
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
        )
        if seconds is not None
    ]
    if options:
        # Sent with the connection's start-up packet: no extra round trip per transaction.
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "options": " ".join(options)}
    # No pre-ping: it costs a round trip on every checkout. A connection the server dropped
    # fails its request once and is discarded; recycling keeps long-lived ones fresh.
    engine = create_engine(url, pool_recycle=1800, **kwargs)
    _configure_postgresql(engine)
    return engine


_WROTE = "wijkbudget_wrote"
_WRITE_TAGS = ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY")


def _configure_postgresql(engine: Engine) -> None:
    """Notes whether the transaction has changed rows (see `has_written`), from the server's
    own command tag of each statement ("UPDATE 3", "INSERT 0 1"): no extra round trip."""

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.info[_WROTE] = False

    @event.listens_for(engine, "after_cursor_execute")
    def _after_execute(connection: Any, cursor: Any, *_args: Any) -> None:
        tag = getattr(cursor, "statusmessage", None) or ""
        if tag.startswith(_WRITE_TAGS) and not tag.endswith(" 0"):
            connection.info[_WROTE] = True


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    """Foreign keys on, WAL, and real transactions.

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
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if ":memory:" not in str(engine.url):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        connection.info[_CHANGES_AT_BEGIN] = connection.connection.dbapi_connection.total_changes


def open_session(engine: Engine, *, write: bool = True) -> Session:
    """A session; `write=False` for requests that only read (no write lock on SQLite)."""
    bind = engine.execution_options(**{_WRITE: True}) if write else engine
    return Session(bind=bind, expire_on_commit=False)


def has_written(session: Session) -> bool:
    """Whether the session's transaction has written anything, by the database's own account:
    pending ORM changes, flushed ones and raw statements alike. On PostgreSQL each
    statement's command tag says whether it changed rows (a row lock is no write); SQLite
    counts changed rows per connection (compared with the count when the transaction
    began)."""
    if session.new or session.dirty or session.deleted:
        return True
    if not session.in_transaction():
        return False
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return bool(connection.info.get(_WROTE, False))
    changes = connection.connection.dbapi_connection.total_changes  # type: ignore[union-attr]
    return bool(changes != connection.info.get(_CHANGES_AT_BEGIN, changes))


@contextmanager
def separate_transaction(
    session: Session, *, request: Literal["ends", "fails"]
) -> Iterator[Session]:
    """A short transaction of its own beside the request's, committed when the block ends:
    for records that must stay whatever the request does (a throttle count, a mismatched
    keying).

    The request's transaction is ended first: on SQLite it holds the only write lock, and on
    PostgreSQL it would hold a second pooled connection while this one runs. `"ends"`: the
    request goes on afterwards, so it must not have written anything yet (a programming
    error, refused before anything is committed); what it read stays usable
    (expire_on_commit is off). `"fails"`: the request is failing anyway, and whatever it
    did is rolled back."""
    if request == "ends":
        if has_written(session):
            session.rollback()
            raise RuntimeError("a separate transaction after the request's own has written")
        session.commit()
    else:
        session.rollback()
    bind = session.get_bind()
    assert isinstance(bind, Engine)
    with open_session(bind) as own:
        yield own
        own.commit()


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
        f"{workers} workers x {per_worker} connections (DB_POOL_SIZE + DB_MAX_OVERFLOW, and "
        f"the mail sender's) = {wanted} may exceed the {available} PostgreSQL connections "
        "available "
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
