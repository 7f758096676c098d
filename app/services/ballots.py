"""Casting, reading and withdrawing ballots; receipts.

Rules enforced here (on top of `ballot_rules`, in the contract's order):
- a cast needs phase `voting` and, when set, `voting_opens_at <= now < voting_closes_at`
  (`voting_closed`), then an eligible voter (`not_eligible`): postcode and age rules, and a
  claimed voting code when the process requires one;
- where a process requires a verified e-mail, one mailbox, one vote: an account whose
  address is the same mailbox as that of an account with a ballot here (case and
  plus-addressing ignored) cannot cast (`mailbox_used`), serialised per (process, mailbox);
  and the address cannot change while the ballot counts (app/services/my_account.py);
- in a process of a round's group, a voter holding ballots in `max_processes_per_voter`
  other processes of the group cannot cast (`group_limit_reached`, naming them), checked
  after eligibility and before the ballot's content; replacing one's ballot in the same
  process is never refused. One voter's casts within a group are serialised (an advisory
  lock on (group, voter) on PostgreSQL, taken after the process row's KEY SHARE lock; on
  SQLite the write lock), so parallel casts in several districts leave at most that many;
- a voter with a verified e-mail address gets a confirmation mail with the receipt (never
  the ballot's content) when `confirm_by_mail`, queued in the cast's own transaction;
- one ballot per voter per process, by the primary key of the voter's link row
  (`ballot_voter`): a cast first takes that row (inserting it, or locking it when it
  exists), then writes a new ballot or replaces the earlier one in place, in the same
  transaction, so concurrent casts by one voter queue and the tally never sees both or
  neither. The ballot row itself names no voter (see app/models/ballot.py); a withdrawal
  deletes the link, then the ballot, taking the rows in the cast's order;
- a cast takes a KEY SHARE lock on the process row while a move to `closed` takes an UPDATE
  lock: casts run side by side, and none can commit after the close has committed;
- every cast issues a new unguessable receipt; every receipt ever issued stays resolvable
  and says only whether it is the current ballot's and, after publication, whether counted;
- no ballot is shown to anyone but its own voter.
"""

import re
import secrets
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Executable, Table, bindparam, delete, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from app.core.db import lock_names
from app.core.errors import (
    BallotSealed,
    DomainError,
    GroupLimitReached,
    MailboxUsed,
    NoBallot,
    UnknownReceipt,
    VotingClosed,
)
from app.core.i18n import _t
from app.models.ballot import (
    Ballot,
    BallotCast,
    BallotPublic,
    BallotVoter,
    Receipt,
    ReceiptStatus,
    VotingCode,
)
from app.models.base import utcnow
from app.models.mail import MailKind
from app.models.process import Process, ballot_kind, ballot_settings
from app.models.user import User, mailbox_of
from app.services import mail, processes, rounds
from app.services.eligibility import require_eligible
from app.services.processes import Voting, get_visible, voting_state


def voting_closed(process: Process, state: Voting) -> DomainError:
    """The `voting_closed` error for a process whose voting is not open, with the `reason`
    (`not_open_yet` or `closed`) and the window, so a UI can say when without parsing."""
    window = {
        "opens_at": process.voting_opens_at.isoformat() if process.voting_opens_at else None,
        "closes_at": process.voting_closes_at.isoformat() if process.voting_closes_at else None,
    }
    if state == Voting.closed:
        return VotingClosed(
            _t("Voting has closed for this process."), extra={"reason": "closed", **window}
        )
    opens = process.voting_opens_at
    when = (
        _t("Voting opens at {opens}.", opens=opens.isoformat())
        if state == Voting.not_open_yet and opens
        else _t("Voting has not opened yet for this process.")
    )
    return VotingClosed(when, extra={"reason": "not_open_yet", **window})


def _require_open(process: Process, now: datetime) -> None:
    state = voting_state(process, now)
    if state != Voting.open:
        raise voting_closed(process, state)


def holds_code(session: Session, *, process_id: int, user_id: int) -> bool:
    found = session.exec(
        select(VotingCode.id).where(
            VotingCode.process_id == process_id, VotingCode.claimed_by == user_id
        )
    ).first()
    return found is not None


def _require_voter_eligible(session: Session, voter: User, process: Process, now: datetime) -> None:
    # The code is looked up only where one is needed: most casts pay for no extra query.
    claimed = True
    if process.require_voting_code:
        assert voter.id is not None
        assert process.id is not None
        claimed = holds_code(session, process_id=process.id, user_id=voter.id)
    require_eligible(voter, process, now=now, action="vote", holds_code=claimed)


def _require_own_mailbox(session: Session, voter: User, process: Process) -> None:
    """One mailbox, one vote where a process requires a verified e-mail: refuse the cast
    when another account whose address is the same mailbox (`mailbox_of`: case and
    plus-addressing ignored) has a ballot here. Held until commit, the (process, mailbox)
    lock makes the check and the cast one step against such an account casting at once."""
    assert process.id is not None
    mailbox = mailbox_of(voter.email)
    lock_names(session, [f"mailbox:{process.id}:{mailbox}"])
    other = session.exec(
        select(BallotVoter.ballot_id)
        .join(User, col(User.id) == col(BallotVoter.voter_id))
        .where(
            BallotVoter.process_id == process.id,
            User.mailbox == mailbox,
            col(User.id) != voter.id,
        )
        .limit(1)
    ).first()
    if other is not None:
        raise MailboxUsed(
            _t(
                "Another account with the mailbox of {email} has a ballot in this process: "
                "one mailbox, one vote.",
                email=voter.email,
            )
        )


def _require_group_place(session: Session, voter: User, process: Process) -> None:
    """Refuse a cast that would give the voter ballots in more processes of the group than
    it allows. Held until commit, the (group, voter) lock makes the count and the cast one
    step against the voter's casts in the group's other processes."""
    assert process.group_id is not None
    assert process.id is not None
    assert voter.id is not None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:group_id, :voter_id)"),
            {"group_id": process.group_id, "voter_id": voter.id},
        )
    limit, voted = rounds.group_standing(session, group_id=process.group_id, voter_id=voter.id)
    blocking = rounds.group_limit_refusal(process.id, voted, limit)
    if blocking is not None:
        listed = ", ".join(map(str, blocking))
        raise GroupLimitReached(
            _t(
                "You have ballots in {count} process(es) of this group ({listed}), the most it "
                "allows ({limit}); withdraw one while its voting is open to vote here.",
                count=len(blocking),
                listed=listed,
                limit=limit,
            ),
            extra={"processes": blocking, "max_processes_per_voter": limit},
        )


def _public(process: Process, ballot: Ballot) -> BallotPublic:
    assert process.id is not None
    reply = ballot_kind(process).reply(ballot.items)
    return BallotPublic(
        process_id=process.id,
        proposal_ids=reply.proposal_ids,
        points=reply.points,
        total_cost=ballot.total_cost,
        cast_at=ballot.cast_at,
        receipt=ballot.receipt,
    )


_BALLOT_TABLE: Table = Ballot.__table__  # type: ignore[attr-defined]
_LINK_TABLE: Table = BallotVoter.__table__  # type: ignore[attr-defined]
_RECEIPT_TABLE: Table = Receipt.__table__  # type: ignore[attr-defined]
_REPLACED = ("items", "total_cost", "receipt", "cast_at")
_RECEIPT_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what token_urlsafe makes


@lru_cache(maxsize=4)
def _take_link_statement(dialect: str) -> Executable:
    """Insert the voter's link row, or lock it when it exists (a no-op update), and return
    its ballot id: null for a first cast. A concurrent cast by the same voter waits here
    until this one commits, then finds the ballot it wrote. Built once on the table (not
    the ORM entity), so a vote pays for neither the ORM nor compiling."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_LINK_TABLE)
    return statement.on_conflict_do_update(
        index_elements=["process_id", "voter_id"],
        set_={"voter_id": statement.excluded.voter_id},
    ).returning(_LINK_TABLE.c.ballot_id)


_NEW_BALLOT = _BALLOT_TABLE.insert().returning(_BALLOT_TABLE.c.id)
_REPLACE_BALLOT = (
    update(_BALLOT_TABLE)
    .where(_BALLOT_TABLE.c.id == bindparam("replaced_id"))
    .values({key: bindparam(key) for key in _REPLACED})
)
_LINK_BALLOT = (
    update(_LINK_TABLE)
    .where(
        _LINK_TABLE.c.process_id == bindparam("link_process_id"),
        _LINK_TABLE.c.voter_id == bindparam("link_voter_id"),
    )
    .values(ballot_id=bindparam("link_ballot_id"))
)


def _store(session: Session, *, process_id: int, voter_id: int, values: dict[str, object]) -> None:
    """Write the voter's ballot: a new one (and link it), or replace the earlier one."""
    ballot_id = session.execute(
        _take_link_statement(session.get_bind().dialect.name),
        {"process_id": process_id, "voter_id": voter_id},
    ).scalar_one()
    if ballot_id is not None:
        session.execute(_REPLACE_BALLOT, {"replaced_id": ballot_id, **values})
        return
    new_id = session.execute(_NEW_BALLOT, {"process_id": process_id, **values}).scalar_one()
    session.execute(
        _LINK_BALLOT,
        {"link_process_id": process_id, "link_voter_id": voter_id, "link_ballot_id": new_id},
    )


def cast(
    session: Session,
    *,
    voter: User,
    process_id: int,
    data: BallotCast,
    now: datetime | None = None,
    confirm_by_mail: bool = False,
) -> BallotPublic:
    now = now or utcnow()
    process = get_visible(session, process_id=process_id, viewer=voter, lock="key_share")
    kind = ballot_kind(process)
    entries = kind.entries(data.proposal_ids, data.points)
    _require_open(process, now)
    _require_voter_eligible(session, voter, process, now)
    if process.require_verified_email:
        _require_own_mailbox(session, voter, process)
    if process.group_id is not None:  # a column already loaded: free for other processes
        _require_group_place(session, voter, process)
    assert process.id is not None
    checked = kind.check(
        ballot_settings(process),
        budget=process.budget,
        costs=processes.ballot_options(session, process),
        entries=entries,
    )
    assert voter.id is not None
    ballot = Ballot(
        process_id=process.id,
        items=[list(item) for item in checked.items],
        total_cost=checked.total_cost,
        receipt=secrets.token_urlsafe(24),
        cast_at=now,
    )
    values = {key: getattr(ballot, key) for key in _REPLACED}
    _store(session, process_id=process.id, voter_id=voter.id, values=values)
    session.execute(
        _RECEIPT_TABLE.insert(),
        {"process_id": process.id, "receipt": ballot.receipt, "issued_at": now},
    )
    if confirm_by_mail and voter.email_verified:
        mail.enqueue(
            session,
            kind=MailKind.ballot_receipt,
            to=voter.email,
            user_id=voter.id,
            params={
                "process_id": process.id,
                "process_title": process.title,
                "receipt": ballot.receipt,
                "cast_at": now.strftime("%Y-%m-%d %H:%M"),
            },
            now=now,
        )
    return _public(process, ballot)


def _own_ballot(session: Session, *, process: Process, voter: User) -> Ballot:
    ballot = session.exec(
        select(Ballot)
        .join(BallotVoter, col(BallotVoter.ballot_id) == col(Ballot.id))
        .where(BallotVoter.process_id == process.id, BallotVoter.voter_id == voter.id)
    ).first()
    if ballot is None:
        raise NoBallot(_t("You have no ballot in this process."))
    return ballot


def show_own(session: Session, *, voter: User, process_id: int) -> BallotPublic:
    process = get_visible(session, process_id=process_id, viewer=voter)
    if process.sealed_at is not None:
        raise BallotSealed(_t("This process is sealed: no ballot is linked to any voter any more."))
    return _public(process, _own_ballot(session, process=process, voter=voter))


def withdraw(
    session: Session, *, voter: User, process_id: int, now: datetime | None = None
) -> None:
    process = get_visible(session, process_id=process_id, viewer=voter, lock="key_share")
    _own_ballot(session, process=process, voter=voter)
    _require_open(process, now or utcnow())
    # The link first, as a cast takes it: a withdrawal and a cast by the same voter queue
    # on that row instead of deadlocking over the two rows; the ballot is the one the link
    # names once locked.
    unlinked = session.execute(
        delete(_LINK_TABLE)
        .where(_LINK_TABLE.c.process_id == process.id, _LINK_TABLE.c.voter_id == voter.id)
        .returning(_LINK_TABLE.c.ballot_id)
    ).scalar_one_or_none()
    if unlinked is not None:
        session.execute(delete(_BALLOT_TABLE).where(_BALLOT_TABLE.c.id == unlinked))


def receipt_status(
    session: Session, *, viewer: User | None, process_id: int, receipt: str
) -> ReceiptStatus:
    get_visible(session, process_id=process_id, viewer=viewer)
    if not _RECEIPT_SHAPE.fullmatch(receipt):
        raise UnknownReceipt(_t("No such receipt was issued for this process."))
    issued = session.exec(
        select(Receipt.id).where(Receipt.receipt == receipt, Receipt.process_id == process_id)
    ).first()
    if issued is None:
        raise UnknownReceipt(_t("No such receipt was issued for this process."))
    current = session.exec(select(Ballot.id).where(Ballot.receipt == receipt)).first() is not None
    # Once results are published nothing about ballots can change, so the current ballots
    # are exactly the tallied ones.
    counted = current if processes.is_published(session, process_id) else None
    return ReceiptStatus(current=current, counted=counted)
