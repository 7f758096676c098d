"""Paper ballots: batches keyed twice by different staff, counted once.

Rules enforced here:
- staff (moderator or admin) enter, confirm and correct batches while the process is in
  `voting` or `closed` and its results are not published (`invalid_phase`,
  `results_already_published`); only admins void, also only before publication;
- every paper ballot passes the online ballot's checks (the process's ballot type, in the
  contract's order); one that fails is recorded `invalid` with the rule's code, never
  dropped. Account rules (postcode, age) do not apply: a paper form has no account;
- codes: with `require_voting_code_on_paper` a ballot without a code is `invalid`
  (`voting_code_required`); an unknown code is `invalid` (`invalid_code`); a code already
  used (claimed online, whether or not that account voted, or taken by a paper ballot of a
  confirmed batch, or by an earlier ballot of the same batch) makes the ballot `duplicate`
  (`code_used`). Only a valid ballot takes its code: an invalid one is not counted, so its
  household may still vote;
- four eyes: a batch counts only once a second, different staff account has keyed the same
  paper alike: the source and every ballot in order (its proposal ids as a set, or its
  points, and its code normalised). A mismatch keeps both keyings, counts neither, leaves
  the batch `mismatched` and is answered `entry_mismatch` with the differing ballots; it is
  recorded in a transaction of its own, since the request fails. Either keyer corrects
  their own keying (`PUT`), which compares again;
- on confirmation, under a KEY SHARE lock on the process (so never past a publication) and
  FOR UPDATE locks on the codes' rows (the lock an online claim takes), each valid ballot
  becomes a `ballot` row (channel `paper`, no voter, no receipt) and its code is marked
  used by the batch: a confirmation and an online claim of the same code end with exactly
  one of them holding it, and two batches never both count one code;
- voiding a confirmed batch deletes its ballot rows and frees the codes it took, so the
  same forms can be keyed again as a new batch; a voided batch never counts again;
- every entry, confirmation, mismatch, correction and voiding is written to the audit log.
"""

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, update
from sqlmodel import Session, col, select

from app.ballot_types import BallotKind, BallotSettings
from app.core.db import separate_transaction
from app.core.errors import (
    DomainError,
    EntryMismatch,
    FieldError,
    Forbidden,
    InvalidPhase,
    InvalidStatus,
    NotFound,
    ResultsAlreadyPublished,
    ValidationFailed,
)
from app.core.i18n import _t
from app.core.limits import INT32_MAX
from app.models.ballot import Ballot, VotingCode
from app.models.base import utcnow
from app.models.common import Page
from app.models.paper import (
    BatchCounts,
    BatchStatus,
    Difference,
    PaperBallotVerdict,
    PaperBatch,
    PaperBatchIn,
    PaperBatchPublic,
    PaperEntry,
    Verdict,
)
from app.models.process import Phase, Process, ballot_kind, ballot_settings
from app.models.user import Role, User
from app.services import audit, processes
from app.services.permissions import require_role
from app.services.voting_codes import code_hash, normalise

_BALLOT_TABLE: Table = Ballot.__table__  # type: ignore[attr-defined]
KeyedBallot = dict[str, Any]


# --- pure: keying, comparing, judging ---------------------------------------------------


def keyed(
    kind: BallotKind[Any], data: PaperBatchIn, *, key: bytes, process_id: int
) -> list[KeyedBallot]:
    """The ballots as stored: choices as keyed, the code only as its HMAC and a hint.

    A field of another ballot type is a keying error, not a voter's: the whole entry is a
    `validation_error` (422) naming the ballot."""
    out: list[KeyedBallot] = []
    errors: list[FieldError] = []
    for index, ballot in enumerate(data.ballots):
        try:
            kind.entries(ballot.proposal_ids, ballot.points)
        except ValidationFailed as exc:
            for field in exc.fields or []:
                errors.append(FieldError(("ballots", index, *field.loc), field.msg, field.type))
            continue
        code = normalise(ballot.voting_code or "")
        out.append(
            {
                "proposal_ids": ballot.proposal_ids,
                "points": dict(ballot.points) if ballot.points is not None else None,
                "code_hash": code_hash(key, process_id, code) if code else None,
                "code_hint": f"…{code[-4:]}" if code else None,
            }
        )
    if errors:
        raise ValidationFailed(f"ballots.{errors[0].loc[1]}: {errors[0].msg}", fields=errors)
    return out


def _same(a: KeyedBallot, b: KeyedBallot) -> bool:
    ids_a, ids_b = a["proposal_ids"], b["proposal_ids"]
    return (
        (sorted(ids_a) if ids_a is not None else None)
        == (sorted(ids_b) if ids_b is not None else None)
        and a["points"] == b["points"]
        and a["code_hash"] == b["code_hash"]
    )


def shown(ballot: KeyedBallot | None) -> dict[str, Any] | None:
    """A keyed ballot as staff see it: its choices and the last characters of its code."""
    if ballot is None:
        return None
    choice = (
        {"points": ballot["points"]}
        if ballot["points"] is not None
        else {"proposal_ids": ballot["proposal_ids"]}
    )
    return {**choice, "voting_code": ballot["code_hint"]}


def differences(
    first_source: str,
    first: Sequence[KeyedBallot],
    second_source: str,
    second: Sequence[KeyedBallot],
) -> list[Difference]:
    """Where two keyings differ, ballot by ballot in keyed order (and the source first)."""
    found: list[Difference] = []
    if first_source != second_source:
        found.append(
            Difference(index=None, first={"source": first_source}, second={"source": second_source})
        )
    for index in range(max(len(first), len(second))):
        a = first[index] if index < len(first) else None
        b = second[index] if index < len(second) else None
        if a is None or b is None or not _same(a, b):
            found.append(Difference(index=index, first=shown(a), second=shown(b)))
    return found


@dataclass(frozen=True)
class Judged:
    verdict: dict[str, Any]  # {"status", "reason"}
    items: list[tuple[int, int]] | None = None  # a valid ballot's (proposal id, weight)
    total_cost: int = 0


def judge(
    kind: BallotKind[Any],
    settings: BallotSettings,
    *,
    budget: int,
    costs: Mapping[int, int],
    ballots: Sequence[KeyedBallot],
    used: Mapping[str, bool],
    require_code: bool,
) -> list[Judged]:
    """Each ballot's verdict, in order. `used` maps every known code's hash to whether it is
    already used; a code missing from it is unknown. An earlier valid ballot of the same
    batch uses its code for the later ones."""
    taken: set[str] = set()
    out: list[Judged] = []
    for ballot in ballots:
        try:
            entries = kind.entries(ballot["proposal_ids"], ballot["points"])
            checked = kind.check(settings, budget=budget, costs=costs, entries=entries)
        except DomainError as exc:
            out.append(Judged({"status": Verdict.invalid.value, "reason": exc.code}))
            continue
        code = ballot["code_hash"]
        if code is None and require_code:
            out.append(Judged({"status": Verdict.invalid.value, "reason": "voting_code_required"}))
        elif code is not None and code not in used:
            out.append(Judged({"status": Verdict.invalid.value, "reason": "invalid_code"}))
        elif code is not None and (used[code] or code in taken):
            out.append(Judged({"status": Verdict.duplicate.value, "reason": "code_used"}))
        else:
            if code is not None:
                taken.add(code)
            valid = {"status": Verdict.valid.value, "reason": None}
            out.append(Judged(valid, items=checked.items, total_cost=checked.total_cost))
    return out


def counts(verdicts: Sequence[Mapping[str, Any]]) -> BatchCounts:
    statuses = [v["status"] for v in verdicts]
    return BatchCounts(
        ballots=len(statuses),
        valid=statuses.count(Verdict.valid),
        invalid=statuses.count(Verdict.invalid),
        duplicate=statuses.count(Verdict.duplicate),
    )


# --- the database ------------------------------------------------------------------------


def _codes(
    session: Session, process_id: int, ballots: Sequence[KeyedBallot], *, lock: bool
) -> dict[str, tuple[int, bool]]:
    """Known codes among the ballots': hash -> (row id, used). With `lock`, the rows are
    locked FOR UPDATE in id order (two confirmations never deadlock), as a claim locks one."""
    hashes = sorted({b["code_hash"] for b in ballots if b["code_hash"] is not None})
    if not hashes:
        return {}
    query = (
        select(VotingCode.id, VotingCode.code_hash, VotingCode.claimed_at)
        .where(VotingCode.process_id == process_id, col(VotingCode.code_hash).in_(hashes))
        .order_by(col(VotingCode.id))
    )
    if lock:
        query = query.with_for_update()
    return {h: (i, at is not None) for i, h, at in session.exec(query).all() if i is not None}


def _judge(
    session: Session, process: Process, ballots: Sequence[KeyedBallot], *, lock: bool
) -> tuple[list[Judged], dict[str, tuple[int, bool]]]:
    assert process.id is not None
    codes = _codes(session, process.id, ballots, lock=lock)
    judged = judge(
        ballot_kind(process),
        ballot_settings(process),
        budget=process.budget,
        costs=processes.ballot_options(session, process),
        ballots=ballots,
        used={h: is_used for h, (_, is_used) in codes.items()},
        require_code=process.require_voting_code_on_paper,
    )
    return judged, codes


def _require_open_for_paper(session: Session, process: Process) -> None:
    assert process.id is not None
    if process.phase not in (Phase.voting, Phase.closed):
        raise InvalidPhase(_t("Paper ballots are entered while the process is voting or closed."))
    if processes.is_published(session, process.id):
        raise ResultsAlreadyPublished(_t("The results are published: paper ballots are final."))


def _entry(session: Session, batch_id: int, keying: int) -> PaperEntry | None:
    return session.exec(
        select(PaperEntry).where(PaperEntry.batch_id == batch_id, PaperEntry.keying == keying)
    ).first()


def _both(session: Session, batch_id: int) -> tuple[PaperEntry, PaperEntry]:
    first, second = _entry(session, batch_id, 1), _entry(session, batch_id, 2)
    assert first is not None
    assert second is not None
    return first, second


def _load_batch(
    session: Session, *, actor: User, batch_id: int, minimum: Role, lock: bool
) -> tuple[Process, PaperBatch]:
    """The batch and its process: 404, then the role (403); with `lock`, KEY SHARE on the
    process (as a cast: publication waits) and then UPDATE on the batch, in that order."""
    batch = session.get(PaperBatch, batch_id) if 1 <= batch_id <= INT32_MAX else None
    if batch is None:
        raise NotFound(_t("No paper batch with id {batch_id}.", batch_id=batch_id))
    process = processes.get_visible(
        session, process_id=batch.process_id, viewer=actor, lock="key_share" if lock else None
    )
    require_role(actor, minimum)
    if lock:
        batch = session.exec(
            select(PaperBatch)
            .where(PaperBatch.id == batch_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
    return process, batch


def _public(batch: PaperBatch, diffs: list[Difference] | None = None) -> PaperBatchPublic:
    assert batch.id is not None
    return PaperBatchPublic(
        id=batch.id,
        process_id=batch.process_id,
        source=batch.source,
        status=BatchStatus(batch.status),
        entered_by=batch.entered_by,
        confirmed_by=batch.confirmed_by,
        counts=counts(batch.verdicts),
        ballots=[
            PaperBallotVerdict(index=i, status=v["status"], reason=v["reason"])
            for i, v in enumerate(batch.verdicts)
        ],
        differences=diffs,
        created_at=batch.created_at,
        confirmed_at=batch.confirmed_at,
        voided_at=batch.voided_at,
        void_reason=batch.void_reason,
    )


def _differences_of(session: Session, batch: PaperBatch) -> list[Difference] | None:
    if batch.status != BatchStatus.mismatched:
        return None
    assert batch.id is not None
    first, second = _both(session, batch.id)
    return differences(first.source, first.ballots, second.source, second.ballots)


def _audit(
    session: Session, actor: User | None, action: str, batch: PaperBatch, **after: Any
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"paper_batch.{action}",
        target_type="paper_batch",
        target_id=batch.id,
        process_id=batch.process_id,
        after={"source": batch.source, "status": batch.status, **after},
    )


def enter(
    session: Session,
    *,
    actor: User,
    process_id: int,
    data: PaperBatchIn,
    key: bytes,
    now: datetime | None = None,
) -> PaperBatchPublic:
    """The first keying of a new batch; its verdicts are provisional until confirmed."""
    now = now or utcnow()
    process = processes.get_visible(session, process_id=process_id, viewer=actor, lock="key_share")
    require_role(actor, Role.moderator)
    ballots = keyed(ballot_kind(process), data, key=key, process_id=process_id)
    _require_open_for_paper(session, process)
    judged, _ = _judge(session, process, ballots, lock=False)
    batch = PaperBatch(
        process_id=process_id,
        source=data.source,
        status=BatchStatus.entered,
        entered_by=actor.id,
        verdicts=[j.verdict for j in judged],
        created_at=now,
    )
    session.add(batch)
    session.flush()
    assert batch.id is not None
    session.add(
        PaperEntry(
            batch_id=batch.id,
            keying=1,
            keyed_by=actor.id,
            source=data.source,
            ballots=ballots,
            keyed_at=now,
        )
    )
    _audit(session, actor, "entered", batch, keying=1, counts=counts(batch.verdicts).model_dump())
    return _public(batch)


def _finalize(
    session: Session,
    process: Process,
    batch: PaperBatch,
    ballots: Sequence[KeyedBallot],
    now: datetime,
) -> None:
    """Both keyings agree: decide every verdict under the codes' locks and count the valid."""
    assert batch.id is not None
    judged, codes = _judge(session, process, ballots, lock=True)
    rows = [
        {
            "process_id": batch.process_id,
            "items": [list(item) for item in j.items],
            "total_cost": j.total_cost,
            "receipt": None,
            "cast_at": now,
            "channel": "paper",
            "paper_batch_id": batch.id,
        }
        for j in judged
        if j.items is not None
    ]
    if rows:
        session.execute(_BALLOT_TABLE.insert(), rows)
    taken = [
        codes[b["code_hash"]][0]
        for b, j in zip(ballots, judged, strict=True)
        if j.items is not None and b["code_hash"] is not None
    ]
    if taken:
        session.execute(
            update(VotingCode)
            .where(col(VotingCode.id).in_(taken))
            .values(claimed_at=now, paper_batch_id=batch.id)
        )
    batch.status = BatchStatus.confirmed
    batch.verdicts = [j.verdict for j in judged]
    batch.confirmed_at = now
    session.add(batch)


def confirm(
    session: Session,
    *,
    actor: User,
    batch_id: int,
    data: PaperBatchIn,
    key: bytes,
    now: datetime | None = None,
) -> PaperBatchPublic:
    """The second, independent keying by another staff account."""
    now = now or utcnow()
    process, batch = _load_batch(
        session, actor=actor, batch_id=batch_id, minimum=Role.moderator, lock=True
    )
    if batch.entered_by == actor.id:
        raise Forbidden(_t("A batch is confirmed by a second person, not by who entered it."))
    second = keyed(ballot_kind(process), data, key=key, process_id=batch.process_id)
    _require_open_for_paper(session, process)
    if batch.status != BatchStatus.entered:
        raise InvalidStatus(
            _t("This batch is {status}; correct a keying with PUT.", status=batch.status)
            if batch.status == BatchStatus.mismatched
            else _t("This batch is {status}; it cannot be confirmed.", status=batch.status)
        )
    first = _entry(session, batch_id, 1)
    assert first is not None
    diffs = differences(first.source, first.ballots, data.source, second)
    if diffs:
        _record_mismatch(
            session,
            actor=actor,
            batch_id=batch_id,
            first_keyed_at=first.keyed_at,
            source=data.source,
            ballots=second,
            now=now,
        )
        raise EntryMismatch(
            _t(
                "The two keyings differ on {count} point(s); both are kept and neither counts "
                "until one side corrects its keying.",
                count=len(diffs),
            ),
            extra={"differences": [d.model_dump() for d in diffs]},
        )
    session.add(
        PaperEntry(
            batch_id=batch_id,
            keying=2,
            keyed_by=actor.id,
            source=data.source,
            ballots=second,
            keyed_at=now,
        )
    )
    batch.confirmed_by = actor.id
    _finalize(session, process, batch, first.ballots, now)
    _audit(session, actor, "confirmed", batch, keying=2, counts=counts(batch.verdicts).model_dump())
    return _public(batch)


def _record_mismatch(
    session: Session,
    *,
    actor: User,
    batch_id: int,
    first_keyed_at: datetime,
    source: str,
    ballots: list[KeyedBallot],
    now: datetime,
) -> None:
    """Keep the second keying and mark the batch `mismatched`, in a transaction of its own:
    the request itself fails with `entry_mismatch`. The request's transaction has written
    nothing and is ended first (on SQLite it holds the write lock); the state it saw is
    checked again under the batch's lock."""
    actor_id = actor.id
    with separate_transaction(session, request="fails") as own:
        batch = own.exec(
            select(PaperBatch).where(PaperBatch.id == batch_id).with_for_update()
        ).one()
        first = _entry(own, batch_id, 1)
        if (
            batch.status != BatchStatus.entered
            or first is None
            or first.keyed_at != first_keyed_at
            or processes.is_published(own, batch.process_id)
        ):
            raise InvalidStatus(_t("The batch changed meanwhile; read it and key again."))
        own.add(
            PaperEntry(
                batch_id=batch_id,
                keying=2,
                keyed_by=actor_id,
                source=source,
                ballots=ballots,
                keyed_at=now,
            )
        )
        batch.status = BatchStatus.mismatched
        batch.confirmed_by = actor_id
        own.add(batch)
        diffs = differences(first.source, first.ballots, source, ballots)
        own_actor = own.get(User, actor_id)
        _audit(own, own_actor, "mismatched", batch, keying=2, differences=len(diffs))


def correct(
    session: Session,
    *,
    actor: User,
    batch_id: int,
    data: PaperBatchIn,
    key: bytes,
    now: datetime | None = None,
) -> PaperBatchPublic:
    """A keyer replaces their own keying: the enterer the first (while `entered` or
    `mismatched`), the second keyer theirs (while `mismatched`). A mismatched batch is
    compared again: alike, it is confirmed; else it stays `mismatched`, listing the
    differences (a 200: the correction itself is stored)."""
    now = now or utcnow()
    process, batch = _load_batch(
        session, actor=actor, batch_id=batch_id, minimum=Role.moderator, lock=True
    )
    if actor.id == batch.entered_by:
        keying = 1
    elif batch.status == BatchStatus.mismatched and actor.id == batch.confirmed_by:
        keying = 2
    else:
        raise Forbidden(
            _t("Only the batch's enterer, or the second keyer of a mismatched batch, corrects it.")
        )
    ballots = keyed(ballot_kind(process), data, key=key, process_id=batch.process_id)
    _require_open_for_paper(session, process)
    if batch.status not in (BatchStatus.entered, BatchStatus.mismatched):
        raise InvalidStatus(
            _t("This batch is {status}; it cannot be corrected.", status=batch.status)
        )
    entry = _entry(session, batch_id, keying)
    assert entry is not None
    entry.source, entry.ballots, entry.keyed_at = data.source, ballots, now
    session.add(entry)
    if keying == 1:
        batch.source = data.source
    _audit(session, actor, "corrected", batch, keying=keying)
    if batch.status == BatchStatus.entered:
        judged, _ = _judge(session, process, ballots, lock=False)
        batch.verdicts = [j.verdict for j in judged]
        session.add(batch)
        return _public(batch)
    first, second = _both(session, batch_id)
    diffs = differences(first.source, first.ballots, second.source, second.ballots)
    if diffs:
        judged, _ = _judge(session, process, first.ballots, lock=False)
        batch.verdicts = [j.verdict for j in judged]
        session.add(batch)
        return _public(batch, diffs)
    _finalize(session, process, batch, first.ballots, now)
    _audit(
        session,
        actor,
        "confirmed",
        batch,
        keying=keying,
        counts=counts(batch.verdicts).model_dump(),
    )
    return _public(batch)


def void(
    session: Session, *, actor: User, batch_id: int, reason: str, now: datetime | None = None
) -> PaperBatchPublic:
    """Take a batch out before publication: its ballots are deleted, its codes freed."""
    now = now or utcnow()
    _, batch = _load_batch(session, actor=actor, batch_id=batch_id, minimum=Role.admin, lock=True)
    if processes.is_published(session, batch.process_id):
        raise ResultsAlreadyPublished(_t("The results are published: paper ballots are final."))
    if batch.status == BatchStatus.voided:
        raise InvalidStatus(_t("This batch is already voided."))
    was = batch.status
    removed = session.execute(delete(Ballot).where(col(Ballot.paper_batch_id) == batch_id))
    freed = session.execute(
        update(VotingCode)
        .where(col(VotingCode.paper_batch_id) == batch_id)
        .values(claimed_at=None, paper_batch_id=None)
    )
    batch.status = BatchStatus.voided
    batch.voided_at = now
    batch.void_reason = reason
    session.add(batch)
    _audit(
        session,
        actor,
        "voided",
        batch,
        was=was,
        reason=reason,
        ballots_removed=removed.rowcount,  # type: ignore[attr-defined]
        codes_freed=freed.rowcount,  # type: ignore[attr-defined]
    )
    return _public(batch)


def show(session: Session, *, actor: User, batch_id: int) -> PaperBatchPublic:
    _, batch = _load_batch(
        session, actor=actor, batch_id=batch_id, minimum=Role.moderator, lock=False
    )
    return _public(batch, _differences_of(session, batch))


def list_batches(
    session: Session, *, actor: User, process_id: int, limit: int, offset: int
) -> Page[PaperBatchPublic]:
    processes.get_visible(session, process_id=process_id, viewer=actor)
    require_role(actor, Role.moderator)
    query = select(PaperBatch).where(PaperBatch.process_id == process_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(PaperBatch.id)).limit(limit).offset(offset)).all()
    return Page(
        items=[_public(b, _differences_of(session, b)) for b in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def unconfirmed(session: Session, process_id: int) -> list[int]:
    """The batches of the process that are keyed but not yet confirmed (or voided): their
    ballots would be lost if the results were published now."""
    rows = session.exec(
        select(PaperBatch.id)
        .where(
            PaperBatch.process_id == process_id,
            col(PaperBatch.status).in_([BatchStatus.entered, BatchStatus.mismatched]),
        )
        .order_by(col(PaperBatch.id))
    ).all()
    return [batch_id for batch_id in rows if batch_id is not None]


def rejected(session: Session, process_id: int) -> tuple[int, int]:
    """(invalid, duplicate) paper ballots of the process's confirmed batches."""
    rows = session.exec(
        select(PaperBatch.verdicts).where(
            PaperBatch.process_id == process_id, PaperBatch.status == BatchStatus.confirmed
        )
    ).all()
    tally = counts([v for verdicts in rows for v in verdicts])
    return tally.invalid, tally.duplicate


# --- bulk entry ----------------------------------------------------------------------------


class CsvError(ValueError):
    """A CSV file that cannot be read as paper ballots; the message names the line."""


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Rows of a scanned or spreadsheet batch as ballot bodies, one per row: column
    `proposal_ids` ("3 7 9") or `points` ("3:5 7:5"), and optionally `voting_code`. A row
    with a `points` cell is a points ballot; otherwise its `proposal_ids` (maybe none)."""
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or [])
    if not columns & {"proposal_ids", "points"}:
        raise CsvError("line 1: the header needs a proposal_ids or a points column")
    unknown = columns - {"proposal_ids", "points", "voting_code"}
    if unknown:
        raise CsvError(f"line 1: unknown column(s) {', '.join(sorted(unknown))}")
    ballots: list[dict[str, Any]] = []
    for row in reader:
        line = reader.line_num
        try:
            points_cell = (row.get("points") or "").strip()
            ballot: dict[str, Any]
            if points_cell:
                pairs = (pair.split(":") for pair in points_cell.split())
                ballot = {"points": {pid.strip(): int(value) for pid, value in pairs}}
            else:
                ballot = {"proposal_ids": [int(p) for p in (row.get("proposal_ids") or "").split()]}
        except ValueError:
            raise CsvError(
                f'line {line}: write proposal_ids as "3 7 9" and points as "3:5 7:5"'
            ) from None
        code = (row.get("voting_code") or "").strip()
        if code:
            ballot["voting_code"] = code
        ballots.append(ballot)
    return ballots
