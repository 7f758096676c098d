"""Sealing: after publication, remove every link between voters and their ballots.

Rules enforced here:
- only an admin seals, only a process whose results are published (`invalid_phase`
  before), and only once (`already_sealed`); `wijkbudget seal --due` seals every process
  whose `seal_after_days` have passed since publication;
- sealing keeps one row per counted ballot with its choices, cost and receipt, so the
  published results, the exports, the digest and every receipt's answer stay the same;
- what it removes: the voter of each ballot, the order in which ballots were first cast
  (rows are written again in an order that depends only on their content and random
  receipts) and the moments of casting (every ballot and receipt of the process then
  carries the closing time);
- after sealing a voter's `GET ballot` is `ballot_sealed` (410), and account export and
  erasure no longer find those ballots.
"""

from datetime import datetime, timedelta

from sqlalchemy import Table, delete
from sqlmodel import Session, col, select

from app.core.errors import AlreadySealed, InvalidPhase
from app.core.i18n import _t
from app.models.ballot import Ballot, Receipt
from app.models.base import utcnow
from app.models.mail import MailKind, OutgoingMail
from app.models.process import Process, ProcessPublic
from app.models.result import PublishedResult
from app.models.user import Role, User
from app.services import audit, processes
from app.services.permissions import require_role

_BALLOT_TABLE: Table = Ballot.__table__  # type: ignore[attr-defined]
_RECEIPT_TABLE: Table = Receipt.__table__  # type: ignore[attr-defined]


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
    session.execute(delete(Ballot).where(col(Ballot.process_id) == process_id))
    if rows:
        session.execute(
            _BALLOT_TABLE.insert(),
            [
                {
                    "process_id": process_id,
                    "voter_id": None,
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
