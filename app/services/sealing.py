"""Sealing: after publication, remove every link between voters and their ballots.

Rules enforced here:
- only an admin seals, only a process whose results are published (`invalid_phase`
  before), and only once (`already_sealed`); `wijkbudget seal --due` seals every process
  whose `seal_after_days` have passed since publication;
- sealing keeps one row per counted ballot with its choices, cost and receipt, so the
  published results, the exports, the digest and every receipt's answer stay the same;
- what it removes: the link rows between voters and ballots (`ballot_voter`; ballot rows
  name no voter), the order in which ballots were first cast (rows are written again in an
  order that depends only on their content and random receipts), the moments of casting
  (every ballot and receipt of the process then carries the closing time) and the vote
  confirmations in the outbox (an address next to a receipt);
- deleted rows stay readable in the database's files until overwritten, so once the seal
  has committed, `scrub` makes them unreadable: on PostgreSQL `VACUUM FULL` of the tables
  sealing touched (plain VACUUM frees the space but leaves the old bytes in it), on SQLite
  a checkpoint that empties the `-wal` file (every connection runs with `secure_delete`,
  so deleted rows are zeroed in the database file itself). It runs outside any
  transaction, after the commit; a failure is logged and reported, the seal stands;
- after sealing a voter's `GET ballot` is `ballot_sealed` (410), and account export and
  erasure no longer find those ballots.
"""

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Table, delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from app.core.errors import AlreadySealed, InvalidPhase
from app.core.i18n import _t
from app.models.ballot import Ballot, BallotVoter, Receipt
from app.models.base import utcnow
from app.models.mail import MailKind, OutgoingMail
from app.models.process import Process, ProcessPublic
from app.models.result import PublishedResult
from app.models.user import Role, User
from app.services import audit, processes
from app.services.permissions import require_role

_BALLOT_TABLE: Table = Ballot.__table__  # type: ignore[attr-defined]
_RECEIPT_TABLE: Table = Receipt.__table__  # type: ignore[attr-defined]

log = logging.getLogger("wijkbudget.sealing")

# What `scrub` rewrites on PostgreSQL: the link rows and the vote confirmations (a voter
# next to a ballot), and the ballots and receipts, whose old rows carry the moments of
# casting (and, for rows written before revision 0013, the voter).
SCRUBBED_TABLES = ("ballot_voter", "outgoing_mail", "ballot", "receipt")
# VACUUM FULL needs an exclusive lock: rather give up (and say so) than queue every cast
# behind a long-running reader.
_SCRUB_LOCK_TIMEOUT = "5s"
# How long to wait for transactions older than the seal (whose snapshots keep its rows).
SCRUB_WAIT_SECONDS = 30.0


def seal(
    session: Session, *, actor: User | None, process_id: int, now: datetime | None = None
) -> ProcessPublic:
    """Seal one process; `actor` None is the scheduled command."""
    now = now or utcnow()
    # The UPDATE lock queues behind any request still reading or writing this process.
    process = processes.get_visible(session, process_id=process_id, viewer=actor, lock="update")
    if actor is not None:
        require_role(actor, Role.admin)
    if not processes.is_published(session, process_id):
        raise InvalidPhase(_t("A process can be sealed once its results are published."))
    if process.sealed_at is not None:
        raise AlreadySealed(
            _t("This process was sealed at {sealed_at}.", sealed_at=process.sealed_at.isoformat())
        )
    moment = process.closed_at or now
    rows = [
        (b.items, b.total_cost, b.receipt, b.channel, b.paper_batch_id)
        for b in session.exec(select(Ballot).where(Ballot.process_id == process_id)).all()
    ]
    session.execute(delete(BallotVoter).where(col(BallotVoter.process_id) == process_id))
    session.execute(delete(Ballot).where(col(Ballot.process_id) == process_id))
    if rows:
        session.execute(
            _BALLOT_TABLE.insert(),
            [
                {
                    "process_id": process_id,
                    "items": items,
                    "total_cost": total_cost,
                    "receipt": receipt,
                    "cast_at": moment,
                    "channel": channel,
                    "paper_batch_id": batch_id,
                }
                # Paper ballots have no receipt: they sort by content alone.
                for items, total_cost, receipt, channel, batch_id in sorted(
                    rows, key=lambda r: (r[0], r[2] or "")
                )
            ],
        )
    # Receipt rows too are written again, by their random value, so their ids say nothing
    # about the order of casting either.
    receipts = session.exec(select(Receipt.receipt).where(Receipt.process_id == process_id)).all()
    session.execute(delete(Receipt).where(col(Receipt.process_id) == process_id))
    if receipts:
        session.execute(
            _RECEIPT_TABLE.insert(),
            [
                {"process_id": process_id, "receipt": receipt, "issued_at": moment}
                for receipt in sorted(receipts)
            ],
        )
    _forget_receipt_mails(session, process_id)
    process.sealed_at = now
    session.add(process)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="process.sealed",
        target_type="process",
        target_id=process_id,
        process_id=process_id,
        after={"sealed_at": now.isoformat(), "ballots": len(rows)},
    )
    return processes.to_public(session, process)


def _forget_receipt_mails(session: Session, process_id: int) -> None:
    """Vote confirmations name an account and a receipt: together the very link sealing
    removes. Whatever of them is left for this process goes, sent or not."""
    mails = session.exec(
        select(OutgoingMail.id, OutgoingMail.params).where(
            OutgoingMail.kind == MailKind.ballot_receipt
        )
    ).all()
    ids = [mail_id for mail_id, params in mails if params.get("process_id") == process_id]
    if ids:
        session.execute(delete(OutgoingMail).where(col(OutgoingMail.id).in_(ids)))


def seal_and_scrub(
    session: Session, *, engine: Engine, actor: User, process_id: int
) -> ProcessPublic:
    """`seal`, committed, then `scrub`: scrubbing the files runs outside any transaction,
    so the seal commits first (the request's own commit is then a no-op). A failed scrub is
    logged; the seal stands."""
    sealed = seal(session, actor=actor, process_id=process_id)
    session.commit()
    scrub(engine)
    return sealed


def scrub(engine: Engine) -> str | None:
    """After a seal has committed: make the rows it deleted unreadable in the database's
    own files. None when done, else what failed (also logged). What it cannot reach (WAL
    archives, replicas, backups, the file system's free blocks): see the README."""
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                _vacuum(connection.execution_options(isolation_level="AUTOCOMMIT"))
            else:
                _checkpoint(connection)
    except (_Incomplete, SQLAlchemyError) as exc:
        problem = str(exc).splitlines()[0]
    else:
        return None
    log.error("sealed, but scrubbing the database files failed: %s", problem)
    return problem


class _Incomplete(Exception):
    pass


# What may still see rows the seal deleted, so that VACUUM keeps them: a transaction
# running anywhere on the server since before the seal (it holds back every new
# snapshot's xmin, VACUUM's own included), a snapshot of this database (or of none: WAL
# senders) taken before the seal, a replication slot (hot_standby_feedback) or a prepared
# transaction. Each is named by what holds it; "older" is "precedes the given xid".
_OLDER_THAN = """
SELECT held.what FROM (
    SELECT 'pid ' || pid AS what, backend_xid AS x FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
    UNION ALL
    SELECT 'pid ' || pid, backend_xmin FROM pg_stat_activity
    WHERE pid <> pg_backend_pid() AND (datname = current_database() OR datname IS NULL)
    UNION ALL
    SELECT 'replication slot ' || slot_name, xmin FROM pg_replication_slots
    UNION ALL
    SELECT 'prepared transaction ' || gid, transaction FROM pg_prepared_xacts
    UNION ALL
    SELECT 'a transaction', pg_snapshot_xmin(pg_current_snapshot())::xid
) held
WHERE held.x IS NOT NULL AND age(held.x) > age(%(target)s::xid8::xid)
"""


def _vacuum(connection: Connection) -> None:
    """VACUUM FULL writes each table anew, to a new file (the old one is unlinked), leaving
    out dead rows, but only those no open transaction may still see: so it first waits
    until everything begun before the seal's commit has ended (`_OLDER_THAN`). A new file
    is also how to tell that it ran: a role that does not own a table gets only a warning."""
    target = connection.exec_driver_sql(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"
    ).scalar_one()
    deadline = time.monotonic() + SCRUB_WAIT_SECONDS
    while held := connection.exec_driver_sql(_OLDER_THAN, {"target": target}).scalars().all():
        if time.monotonic() >= deadline:
            raise _Incomplete(
                f"transactions older than the seal are still open ({', '.join(held)}): "
                "the sealed rows stay readable until they end"
            )
        time.sleep(0.1)
    # Its own timeouts, and the pooled connection's own back afterwards.
    previous = connection.exec_driver_sql(
        "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
    ).one()
    connection.exec_driver_sql(f"SET lock_timeout = '{_SCRUB_LOCK_TIMEOUT}'")
    connection.exec_driver_sql("SET statement_timeout = 0")
    try:
        for table in SCRUBBED_TABLES:
            before = _file_of(connection, table)
            try:
                connection.exec_driver_sql(f"VACUUM FULL {table}")
            except SQLAlchemyError as exc:
                raise _Incomplete(f"VACUUM FULL {table}: {exc}") from exc
            if _file_of(connection, table) == before:
                raise _Incomplete(f"VACUUM FULL {table} did not rewrite it: is the role its owner?")
    finally:
        connection.exec_driver_sql(
            "SELECT set_config('lock_timeout', %(lock)s, false), "
            "set_config('statement_timeout', %(statement)s, false)",
            {"lock": previous[0], "statement": previous[1]},
        )


def _file_of(connection: Connection, table: str) -> object:
    return connection.exec_driver_sql(
        "SELECT pg_relation_filenode(%(table)s::regclass)", {"table": table}
    ).scalar_one()


def _checkpoint(connection: Connection) -> None:
    """Copy the `-wal` file into the database and truncate it: it holds whole pages as
    they were before sealing. On the driver's connection, outside any transaction."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        cursor.close()
    if busy:
        raise _Incomplete("PRAGMA wal_checkpoint(TRUNCATE): readers kept the -wal file busy")


def due(session: Session, *, now: datetime | None = None) -> list[int]:
    """The processes whose `seal_after_days` have passed since publication, unsealed."""
    now = now or utcnow()
    rows = session.exec(
        select(Process.id, Process.seal_after_days, PublishedResult.published_at)
        .join(PublishedResult, col(PublishedResult.process_id) == col(Process.id))
        .where(col(Process.sealed_at).is_(None), col(Process.seal_after_days).is_not(None))
        .order_by(col(Process.id))
    ).all()
    return [
        pid
        for pid, days, published_at in rows
        if pid is not None and days is not None and published_at + timedelta(days=days) <= now
    ]
