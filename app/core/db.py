"""The engine, the per-request session and schema migrations.

One transaction per request: the session dependency commits when the handler succeeds and
rolls back when it raises, before the response is sent, so a client never sees a success
for data that was not stored. The schema comes only from the Alembic revisions.
"""

import hashlib
import logging
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

import migrations

log = logging.getLogger("wijkbudget.db")

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
    # A database error's text would otherwise carry the statement's parameters (a password
    # hash, a ballot's choices, a receipt) into the log.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        busy = SQLITE_BUSY_TIMEOUT_SECONDS if lock_timeout is None else lock_timeout
        kwargs.pop("connect_args", None)
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
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
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


def lock_names(session: Session, names: Iterable[str]) -> None:
    """Transaction-scoped locks on names, held until the session's transaction ends:
    PostgreSQL advisory locks on a 64-bit hash of each name, taken in a fixed order so two
    transactions locking the same names cannot deadlock. On SQLite nothing is needed: a
    writing transaction already holds the database's only write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = {
        int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        for name in names
    }
    for key in sorted(keys):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


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


def migrate(url: str, revision: str = "heads") -> list[str]:
    """Bring the database schema up to `revision` (idempotent) and say what was applied:
    one line per revision ("0010 mail and accounts: ..."), in the order applied; empty when
    the schema was up to date. The default, every head, lets features developed side by side
    add revisions on the same parent."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(url)
    applied: list[str] = []

    def on_version_apply(*, step: Any, **_kwargs: Any) -> None:
        if step.is_upgrade:
            for script in step.up_revisions:
                applied.append(f"{script.revision} {script.doc}")

    config.attributes["on_version_apply"] = [on_version_apply]
    command.upgrade(config, revision)
    return applied


def schema_heads() -> list[str]:
    """The newest revisions the code knows: where `migrate` leaves the database."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return sorted(script.get_heads())


class DatabaseUnreachable(Exception):
    """The database did not answer within the wait; the message is one line for an operator."""


def wait_for_database(url: str, seconds: float) -> None:
    """Return once the database answers; until then retry, each failure logged, for up to
    `seconds` (DB_WAIT_SECONDS), then raise `DatabaseUnreachable`.

    A database started beside the servers (compose, a reboot) often answers a few seconds
    after them; waiting here turns that race into a logged pause instead of a crash."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return
    shown = parsed.render_as_string(hide_password=True)
    # An address that drops packets must not hold one attempt for minutes.
    timeout = max(1, min(10, math.ceil(seconds)))
    engine = make_engine(url, poolclass=NullPool, connect_args={"connect_timeout": timeout})
    deadline = time.monotonic() + seconds
    delay = 0.5
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.exec_driver_sql("SELECT 1")
                return
            except OperationalError as exc:
                reason = str(exc.orig or exc).strip().splitlines()[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DatabaseUnreachable(
                        f"the database at {shown} did not answer within {seconds:g} s "
                        f"(DB_WAIT_SECONDS): {reason}"
                    ) from None
                pause = min(delay, left)
                log.warning(
                    "the database at %s does not answer (%s); trying again in %.1f s, "
                    "for %.1f s more",
                    shown,
                    reason,
                    pause,
                    left,
                )
                time.sleep(pause)
                delay = min(delay * 2, 5.0)
    finally:
        engine.dispose()


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


class ConnectionLimits(NamedTuple):
    max_connections: int
    reserved: int  # for superusers and reserved roles
    role: str
    # The role's CONNECTION LIMIT (pg_roles.rolconnlimit); -1: none, or a superuser's.
    role_limit: int = -1


def connection_budget_warning(
    *,
    workers: int,
    per_worker: int,
    max_connections: int,
    reserved: int,
    role_limit: int = -1,
    role: str = "the role",
) -> str | None:
    """Why `workers` processes of `per_worker` connections each (pool size + overflow) may
    exhaust PostgreSQL, or None: the server's connections, or the role's own CONNECTION
    LIMIT when it has one and it is the smaller. Counts this machine only: with several
    machines the sum over all of them must fit (the README's connection arithmetic). The
    headroom is taken from both: migrations and commands usually connect as the same role."""
    available = max_connections - reserved - CONNECTION_HEADROOM
    wanted = workers * per_worker
    head = (
        f"{workers} workers x {per_worker} connections (DB_POOL_SIZE + DB_MAX_OVERFLOW, and "
        f"the mail sender's) = {wanted}"
    )
    if role_limit >= 0 and role_limit - CONNECTION_HEADROOM < available:
        role_available = max(role_limit - CONNECTION_HEADROOM, 0)
        if wanted <= role_available:
            return None
        return (
            f"{head} may exceed the {role_available} connections {role} may open (its "
            f"CONNECTION LIMIT {role_limit} - {CONNECTION_HEADROOM} for migrations and "
            "commands); lower the pool settings or the workers, or raise the role's limit "
            "(ALTER ROLE ... CONNECTION LIMIT)"
        )
    if wanted <= available:
        return None
    return (
        f"{head} may exceed the {available} PostgreSQL connections available "
        f"(max_connections {max_connections} - {reserved} reserved - {CONNECTION_HEADROOM} "
        "for migrations and commands); lower the pool settings or the workers, or raise "
        "max_connections"
    )


def server_connection_limits(engine: Engine) -> ConnectionLimits | None:
    """PostgreSQL's max_connections, the connections reserved for superusers and roles,
    and the connecting role with its own limit; None on SQLite or when the server cannot
    be asked."""
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
            role, role_limit, superuser = connection.exec_driver_sql(
                "SELECT rolname, rolconnlimit, rolsuper FROM pg_roles WHERE rolname = current_user"
            ).one()
    except Exception:  # a startup hint only: never stop the server over it
        return None
    names = ("superuser_reserved_connections", "reserved_connections")
    reserved = sum(int(settings.get(name, "0")) for name in names)
    return ConnectionLimits(
        max_connections=int(settings["max_connections"]),
        reserved=reserved,
        role=str(role),
        # A superuser's connection limit is not enforced.
        role_limit=-1 if superuser else int(role_limit),
    )
