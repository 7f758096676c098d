"""Budget processes: creation, visibility, edits and the phase machine.

Rules enforced here:
- only admins create, edit and move processes; drafts are visible to admins only (404 for
  everyone else, as if they did not exist);
- phases go `draft -> submission -> review -> voting -> closed`, one step at a time;
  entering `voting` needs at least one accepted proposal;
- once voting has started, `budget`, `ballot`, `eligibility` and `tally_rule` are frozen
  (`process_locked`); sending a frozen field with its current value is not a change and is
  allowed;
- the voting window changes after voting started only while the phase is `voting`:
  `voting_closes_at` may move later (or be removed: no end), never earlier, also after the
  clock passed it (an extension reopens voting); `voting_opens_at` may change only while the
  process has no ballot, online or on paper, counted under the process row lock that every
  cast and paper entry also takes (KEY SHARE against this FOR UPDATE), so none slips in;
- `submission_closes_at` (optional) ends submissions before the phase ends
  (`submissions_open`);
- the budget cannot drop below the cost of an accepted proposal;
- a process joins or leaves a round (and a group of that round) only in `draft`, so no
  ballot exists when a group's limit starts to apply to it (`process_locked` after); the
  round and group must exist and the group must belong to the round (`validation_error`);
- every change is written to the audit log with the values before and after.
"""

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.errors import (
    FieldError,
    InvalidTransition,
    NotFound,
    ProcessLocked,
    UnverifiedVoters,
    ValidationFailed,
    invalid_input,
)
from app.core.i18n import _t
from app.core.limits import INT32_MAX
from app.models.ballot import Ballot
from app.models.base import utcnow
from app.models.common import Page
from app.models.paper import BatchStatus, PaperBatch
from app.models.process import (
    PHASE_ORDER,
    Phase,
    Process,
    ProcessCreate,
    ProcessPublic,
    ProcessUpdate,
    apply_spec,
    process_from,
    spec_of,
)
from app.models.proposal import Proposal, ProposalStatus
from app.models.result import PublishedResult
from app.models.round import Round, RoundGroup
from app.models.user import Role, User
from app.services import audit
from app.services.permissions import has_role, require_role

FROZEN_IN_VOTING = ("budget", "ballot", "eligibility", "tally_rule")


Lock = Literal["update", "key_share"] | None


def _load(session: Session, process_id: int, *, lock: Lock) -> Process | None:
    if not 1 <= process_id <= INT32_MAX:
        return None
    query = select(Process).where(Process.id == process_id)
    if lock == "update":
        query = query.with_for_update()
    elif lock == "key_share":
        query = query.with_for_update(read=True, key_share=True)
    return session.exec(query).first()


def get_visible(
    session: Session, *, process_id: int, viewer: User | None, lock: Lock = None
) -> Process:
    """The process, or 404 when it does not exist or is a draft the viewer may not see.

    `lock="update"` serialises changes to the process (edits, phase moves); ballots take
    `lock="key_share"`, which lets casts run side by side but never past a close."""
    process = _load(session, process_id, lock=lock)
    if process is None or (process.phase == Phase.draft and not has_role(viewer, Role.admin)):
        raise NotFound(_t("No process with id {process_id}.", process_id=process_id))
    return process


def has_voting_started(process: Process) -> bool:
    return PHASE_ORDER.index(Phase(process.phase)) >= PHASE_ORDER.index(Phase.voting)


class Voting(StrEnum):
    """Where a process stands in its voting, at a moment."""

    not_started = "not_started"  # a phase before `voting`
    not_open_yet = "not_open_yet"  # in `voting`, before `voting_opens_at`
    open = "open"
    closed = "closed"  # phase `closed`, or past `voting_closes_at`


def voting_state(process: Process, now: datetime) -> Voting:
    """The one definition of "voting is open" (a ballot could be cast now): phase `voting`
    and inside the window when one is set."""
    if process.phase == Phase.closed:
        return Voting.closed
    if process.phase != Phase.voting:
        return Voting.not_started
    if process.voting_closes_at is not None and now >= process.voting_closes_at:
        return Voting.closed
    if process.voting_opens_at is not None and now < process.voting_opens_at:
        return Voting.not_open_yet
    return Voting.open


def is_voting_open(process: Process, now: datetime) -> bool:
    return voting_state(process, now) == Voting.open


def submissions_open(process: Process, now: datetime) -> bool:
    """Phase `submission` and, when set, before `submission_closes_at`."""
    if process.phase != Phase.submission:
        return False
    return process.submission_closes_at is None or now < process.submission_closes_at


def is_extension(old: datetime | None, new: datetime | None) -> bool:
    """Whether closing at `new` instead of `old` keeps every moment voting was open (None:
    no end)."""
    if new is None:
        return True
    return old is not None and new >= old


def accepted_proposals(session: Session, process_id: int) -> list[tuple[int, str, int]]:
    """The ballot's options: (id, title, final cost) of each accepted proposal, by id."""
    rows = session.exec(
        select(Proposal.id, Proposal.title, Proposal.cost)
        .where(Proposal.process_id == process_id, Proposal.status == ProposalStatus.accepted)
        .order_by(col(Proposal.id))
    ).all()
    return [(pid, title, cost) for pid, title, cost in rows if pid is not None and cost is not None]


def accepted_costs(session: Session, process_id: int) -> dict[int, int]:
    return {pid: cost for pid, _, cost in accepted_proposals(session, process_id)}


# The ballot options of processes in voting, per worker: (process id, voting start) ->
# costs. Bounded, since a worker lives through many rounds; shared by the worker's threads,
# so every look-up and change happens under the lock (a key evicted between another
# thread's look-up and its move to the end would otherwise fail that cast).
_OPTIONS_CACHE_SIZE = 64
_options_in_voting: OrderedDict[tuple[int, datetime], dict[int, int]] = OrderedDict()
_options_lock = threading.Lock()


def ballot_options(session: Session, process: Process) -> dict[int, int]:
    """`accepted_costs`, read once per worker once voting has started.

    Safe because of a rule of this module's phase machine and of proposals: from the moment
    a process enters `voting`, no proposal can be accepted, rejected, withdrawn or re-costed
    (reviews and withdrawals need an earlier phase, under the process row lock), and a
    process never leaves `voting` backwards. The key holds the moment voting started, so a
    database rebuilt with the same ids never meets a stale entry."""
    assert process.id is not None
    if process.voting_started_at is None or not has_voting_started(process):
        return accepted_costs(session, process.id)
    key = (process.id, process.voting_started_at)
    with _options_lock:
        cached = _options_in_voting.get(key)
        if cached is not None:
            _options_in_voting.move_to_end(key)
            return cached
    # Read outside the lock (it is a query); two threads may both read, and both store the
    # same costs.
    costs = accepted_costs(session, process.id)
    with _options_lock:
        _options_in_voting[key] = costs
        _options_in_voting.move_to_end(key)
        while len(_options_in_voting) > _OPTIONS_CACHE_SIZE:
            _options_in_voting.popitem(last=False)
    return costs


def ballot_counts(session: Session, process_ids: Sequence[int]) -> dict[int, int]:
    """Current ballots per process (public: turnout is public information)."""
    if not process_ids:
        return {}
    rows = session.exec(
        select(Ballot.process_id, func.count())
        .where(col(Ballot.process_id).in_(process_ids))
        .group_by(col(Ballot.process_id))
    ).all()
    return dict(rows)


def is_published(session: Session, process_id: int) -> bool:
    found = session.exec(
        select(PublishedResult.process_id).where(PublishedResult.process_id == process_id)
    )
    return found.first() is not None


def counts(session: Session, process_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(proposal_count, ballot_count) per process."""
    proposals = dict(
        session.exec(
            select(Proposal.process_id, func.count())
            .where(col(Proposal.process_id).in_(process_ids))
            .where(Proposal.status != ProposalStatus.withdrawn)
            .group_by(col(Proposal.process_id))
        ).all()
    )
    ballots = ballot_counts(session, process_ids)
    return {pid: (proposals.get(pid, 0), ballots.get(pid, 0)) for pid in process_ids}


def _public(process: Process, counts: tuple[int, int]) -> ProcessPublic:
    assert process.id is not None
    return ProcessPublic.model_validate(
        {
            **spec_of(process),
            "id": process.id,
            "phase": process.phase,
            "voting_started_at": process.voting_started_at,
            "sealed_at": process.sealed_at,
            "created_at": process.created_at,
            "proposal_count": counts[0],
            "ballot_count": counts[1],
        }
    )


def to_public(session: Session, process: Process) -> ProcessPublic:
    assert process.id is not None
    return _public(process, counts(session, [process.id])[process.id])


def _check_placement(session: Session, round_id: int | None, group_id: int | None) -> None:
    """The round exists and the group is one of its groups. The round row is share-locked
    so that a round being deleted right now cannot lose a process placed in it."""
    if round_id is None and group_id is None:
        return
    if round_id is None:
        raise ValidationFailed(
            f"No group with id {group_id}.",
            fields=[FieldError(("group_id",), "no such group", "group_not_found")],
        )
    found = session.exec(
        select(Round.id).where(Round.id == round_id).with_for_update(read=True, key_share=True)
    ).first()
    if found is None:
        raise ValidationFailed(
            f"No round with id {round_id}.",
            fields=[FieldError(("round_id",), "no such round", "round_not_found")],
        )
    if group_id is None:
        return
    group_round = session.exec(select(RoundGroup.round_id).where(RoundGroup.id == group_id)).first()
    if group_round != round_id:
        raise ValidationFailed(
            f"Round {round_id} has no group with id {group_id}.",
            fields=[FieldError(("group_id",), "not a group of this round", "group_not_in_round")],
        )


def _infer_placement(session: Session, stored: dict[str, Any], patch: dict[str, Any]) -> None:
    """Setting `group_id` alone puts the process in that group's round; moving it to
    another round (or out) without naming a group takes it out of its old group."""
    if patch.get("group_id") is not None and "round_id" not in patch:
        group_id = patch["group_id"]
        owner = session.exec(select(RoundGroup.round_id).where(RoundGroup.id == group_id)).first()
        patch["round_id"] = owner if owner is not None else stored["round_id"]
    if "round_id" in patch and "group_id" not in patch and patch["round_id"] != stored["round_id"]:
        patch["group_id"] = None


def create(session: Session, *, actor: User, data: ProcessCreate) -> ProcessPublic:
    require_role(actor, Role.admin)
    if data.group_id is not None and data.round_id is None:
        data = data.model_copy(
            update={
                "round_id": session.exec(
                    select(RoundGroup.round_id).where(RoundGroup.id == data.group_id)
                ).first()
            }
        )
    _check_placement(session, data.round_id, data.group_id)
    process = process_from(data)
    session.add(process)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="process.created",
        target_type="process",
        target_id=process.id,
        process_id=process.id,
        after=spec_of(process),
    )
    return to_public(session, process)


def show(session: Session, *, viewer: User | None, process_id: int) -> ProcessPublic:
    return to_public(session, get_visible(session, process_id=process_id, viewer=viewer))


def list_visible(
    session: Session, *, viewer: User | None, phase: Phase | None, limit: int, offset: int
) -> Page[ProcessPublic]:
    query = select(Process)
    if not has_role(viewer, Role.admin):
        query = query.where(Process.phase != Phase.draft)
    if phase is not None:
        query = query.where(Process.phase == phase)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    processes = session.exec(
        query.order_by(col(Process.created_at).desc(), col(Process.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    found = counts(session, [p.id for p in processes if p.id is not None])
    return Page(
        items=[_public(p, found[p.id]) for p in processes if p.id is not None],
        total=total,
        limit=limit,
        offset=offset,
    )


def _merge(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(stored)
    for key, value in patch.items():
        if key in ("ballot", "eligibility") and value is not None:
            merged[key] = {**stored[key], **value}
        else:
            merged[key] = value
    return merged


def has_ballots(session: Session, process_id: int) -> bool:
    """Whether any ballot exists: an online one, or a paper batch not voided (its ballots
    were cast on paper, whether or not the batch is confirmed yet)."""
    online = session.exec(select(Ballot.id).where(Ballot.process_id == process_id).limit(1))
    if online.first() is not None:
        return True
    paper = session.exec(
        select(PaperBatch.id)
        .where(PaperBatch.process_id == process_id, PaperBatch.status != BatchStatus.voided)
        .limit(1)
    )
    return paper.first() is not None


def _check_window_change(
    session: Session, process: Process, old: dict[str, Any], new: dict[str, Any]
) -> None:
    """The voting window after voting started (see the module's rules). The caller holds
    the process row FOR UPDATE."""
    closes_moved = new["voting_closes_at"] != old["voting_closes_at"]
    opens_moved = new["voting_opens_at"] != old["voting_opens_at"]
    if not (closes_moved or opens_moved):
        return
    if process.phase != Phase.voting:
        raise ProcessLocked(_t("Voting has ended: the voting window can no longer change."))
    if closes_moved and not is_extension(old["voting_closes_at"], new["voting_closes_at"]):
        raise ProcessLocked(_t("While voting, voting_closes_at may move later, not earlier."))
    assert process.id is not None
    if opens_moved and has_ballots(session, process.id):
        raise ProcessLocked(_t("Ballots have been cast: voting_opens_at can no longer change."))


def update(session: Session, *, actor: User, process_id: int, data: ProcessUpdate) -> ProcessPublic:
    process = get_visible(session, process_id=process_id, viewer=actor, lock="update")
    require_role(actor, Role.admin)
    stored = spec_of(process)
    patch = data.model_dump(exclude_unset=True)
    for key in ("ballot", "eligibility"):
        if patch.get(key) is None:
            patch.pop(key, None)  # `"ballot": null` means "no change", like leaving it out
    _infer_placement(session, stored, patch)
    try:
        spec = ProcessCreate.model_validate(_merge(stored, patch))
    except ValidationError as exc:
        raise invalid_input(exc.errors()) from exc
    new = spec.model_dump()
    placement = (new["round_id"], new["group_id"])
    if placement != (stored["round_id"], stored["group_id"]):
        if process.phase != Phase.draft:
            raise ProcessLocked(
                _t("A process joins or leaves a round or group only while it is a draft.")
            )
        _check_placement(session, *placement)
    if has_voting_started(process):
        old = ProcessCreate.model_validate(stored).model_dump()
        frozen = [key for key in FROZEN_IN_VOTING if new[key] != old[key]]
        if frozen:
            raise ProcessLocked(
                _t("Voting has started: {fields} can no longer change.", fields=", ".join(frozen))
            )
        _check_window_change(session, process, old, new)
    if new["budget"] < stored["budget"]:
        dearest = max(accepted_costs(session, process_id).values(), default=None)
        if dearest is not None and new["budget"] < dearest:
            raise ValidationFailed(
                f"The budget cannot be below the cost of an accepted proposal ({dearest}).",
                fields=[
                    FieldError(("budget",), f"must be at least {dearest}", "greater_than_equal")
                ],
            )
    apply_spec(process, spec)
    session.add(process)
    session.flush()
    before, after = audit.changed(stored, spec_of(process))
    if after:
        audit.record(
            session,
            actor=actor,
            action="process.updated",
            target_type="process",
            target_id=process.id,
            process_id=process.id,
            before=before,
            after=after,
        )
    return to_public(session, process)


def verifies_voters(process: Process) -> bool:
    """Whether something ties a ballot to a resident: a voting code (the letter per
    household) or a verified e-mail address. A verified address is the weaker tie (one
    person with ten verified addresses still casts ten ballots), but no longer a free one."""
    return process.require_voting_code or process.require_verified_email


def unverified(process: Process) -> bool:
    """Whether nothing ties a ballot to a real resident (see `verifies_voters`) and the
    admin did not opt in to that."""
    return not verifies_voters(process) and not process.allow_unverified_voters


def open_and_unverified(session: Session) -> list[str]:
    """`id "title"` of each process not yet closed whose voters are not verified."""
    rows = session.exec(select(Process).where(Process.phase != Phase.closed)).all()
    return [f'{p.id} "{p.title}"' for p in rows if not verifies_voters(p)]


def transition(
    session: Session,
    *,
    actor: User,
    process_id: int,
    to: Phase,
    require_verified_voters: bool = False,
    now: datetime | None = None,
) -> ProcessPublic:
    """Move one phase on. With `require_verified_voters` (production), entering `voting`
    is refused for a process whose voters would not be verified (`unverified_voters`)."""
    # The row lock orders a move to `closed` after any ballot being cast right now.
    process = get_visible(session, process_id=process_id, viewer=actor, lock="update")
    require_role(actor, Role.admin)
    check_move(session, process, to, require_verified_voters=require_verified_voters)
    move(session, actor=actor, process=process, to=to, now=now)
    return to_public(session, process)


def check_move(
    session: Session, process: Process, to: Phase, *, require_verified_voters: bool
) -> None:
    """Refuse a move of a process (held under its UPDATE row lock) that is not one step on,
    into `voting` without an accepted proposal, or unverified in production."""
    assert process.id is not None
    current = Phase(process.phase)
    position = PHASE_ORDER.index(current)
    if position + 1 >= len(PHASE_ORDER) or PHASE_ORDER[position + 1] != to:
        allowed = PHASE_ORDER[position + 1].value if position + 1 < len(PHASE_ORDER) else "none"
        raise InvalidTransition(
            _t(
                "From {current} the next phase is {allowed}, not {to}.",
                current=current.value,
                allowed=allowed,
                to=to.value,
            )
        )
    if to == Phase.voting:
        if not accepted_costs(session, process.id):
            raise InvalidTransition(_t("Voting needs at least one accepted proposal."))
        if require_verified_voters and unverified(process):
            raise UnverifiedVoters(
                _t(
                    "Voting would let one person vote with several accounts: require voting codes "
                    "(eligibility.require_voting_code) or verified e-mail addresses "
                    "(eligibility.require_verified_email), or set allow_unverified_voters to true."
                )
            )


def move(
    session: Session, *, actor: User, process: Process, to: Phase, now: datetime | None = None
) -> None:
    """Apply a move `check_move` allowed, and audit it."""
    current = process.phase
    if to == Phase.voting:
        process.voting_started_at = now or utcnow()
    if to == Phase.closed:
        process.closed_at = now or utcnow()
    process.phase = to
    session.add(process)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="process.transitioned",
        target_type="process",
        target_id=process.id,
        process_id=process.id,
        before={"phase": current},
        after={"phase": to.value},
    )
