"""Rounds (editions): a city-wide budget beside a budget per district, in one round.

Rules enforced here:
- only admins create, delete and move rounds; anyone sees a round, with the processes they
  may see (drafts to admins only); totals are over the processes listed;
- a round is deleted only while every process of it is a draft (they are then detached);
  processes join and leave rounds and groups only in `draft` (app/services/processes.py);
- a round transition moves every process of the round one step to the same phase, all or
  none: every process row is locked (UPDATE, in id order, so two round transitions or a
  round and a process transition cannot deadlock), each is checked as a single transition
  would be, and only then all move, each audited; the first that cannot is named
  (`invalid_transition` or `unverified_voters` with `process_id`);
- the per-group limit on ballots is enforced where ballots are cast (app/services/ballots.py);
  `standing` tells a signed-in account where it has voted and where it still may;
- results of a round gather the published results of its processes (each tallied and
  published on its own), with the turnout per process, per group and in total.
"""

from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, distinct, func
from sqlmodel import Session, col, select

from app.core.errors import DomainError, InvalidPhase, InvalidTransition, NotFound
from app.core.i18n import _t
from app.core.limits import INT32_MAX
from app.models.ballot import BallotVoter, VotingCode
from app.models.base import utcnow
from app.models.common import Page
from app.models.process import Phase, Process
from app.models.result import PublishedResult, Results
from app.models.round import (
    GroupPublic,
    GroupStanding,
    GroupTurnout,
    ProcessOutcome,
    ProcessStanding,
    Round,
    RoundCreate,
    RoundGroup,
    RoundProcess,
    RoundPublic,
    RoundResults,
    RoundStanding,
)
from app.models.user import Role, User
from app.services import audit, eligibility, processes
from app.services.permissions import has_role, require_role

CITY_WIDE = "city-wide"


def district_of(session: Session, process: Process) -> tuple[str, str] | None:
    """The pabulib `district` (the group's name, or `city-wide` outside any group) and
    `subunit` (the process's area) of a process in a round; None outside any round."""
    if process.round_id is None:
        return None
    name = CITY_WIDE
    if process.group_id is not None:
        found = session.get(RoundGroup, process.group_id)
        name = found.name if found is not None else CITY_WIDE
    return name, process.area or process.title


def group_limit_refusal(own_process_id: int, voted: list[int], limit: int) -> list[int] | None:
    """The processes that block a cast in `own_process_id`, or None when it may go ahead.

    `voted`: the processes of the group where the voter holds a ballot now. Replacing a
    ballot in the same process is never refused; otherwise the voter may hold ballots in
    at most `limit` processes of the group."""
    if own_process_id in voted or len(voted) < limit:
        return None
    return sorted(voted)


def voted_in_group(session: Session, *, group_id: int, voter_id: int) -> list[int]:
    """Processes of the group where the voter holds a ballot now."""
    rows = session.exec(
        select(BallotVoter.process_id)
        .join(Process, col(Process.id) == col(BallotVoter.process_id))
        .where(Process.group_id == group_id, BallotVoter.voter_id == voter_id)
    ).all()
    return sorted(rows)


def group_standing(session: Session, *, group_id: int, voter_id: int) -> tuple[int, list[int]]:
    """The group's `max_processes_per_voter` and the processes of the group where the voter
    holds a ballot now: one query, as a cast in a group pays for it."""
    rows = session.exec(
        select(RoundGroup.max_processes_per_voter, BallotVoter.process_id)
        .select_from(RoundGroup)
        .outerjoin(Process, col(Process.group_id) == col(RoundGroup.id))
        .outerjoin(
            BallotVoter,
            and_(
                col(BallotVoter.process_id) == col(Process.id),
                col(BallotVoter.voter_id) == voter_id,
            ),
        )
        .where(RoundGroup.id == group_id)
    ).all()
    return rows[0][0], sorted(pid for _, pid in rows if pid is not None)


def _load(session: Session, round_id: int, *, lock: bool = False) -> Round:
    found = None
    if 1 <= round_id <= INT32_MAX:
        query = select(Round).where(Round.id == round_id)
        if lock:
            query = query.with_for_update()
        found = session.exec(query).first()
    if found is None:
        raise NotFound(_t("No round with id {round_id}.", round_id=round_id))
    return found


def _visible_processes(
    session: Session, round_ids: list[int], viewer: User | None
) -> list[Process]:
    if not round_ids:
        return []
    query = select(Process).where(col(Process.round_id).in_(round_ids))
    if not has_role(viewer, Role.admin):
        query = query.where(Process.phase != Phase.draft)
    return list(session.exec(query.order_by(col(Process.id))).all())


def _publics(session: Session, rounds: list[Round], viewer: User | None) -> list[RoundPublic]:
    ids = [r.id for r in rounds if r.id is not None]
    groups: dict[int, list[GroupPublic]] = defaultdict(list)
    if ids:
        for group in session.exec(
            select(RoundGroup).where(col(RoundGroup.round_id).in_(ids)).order_by(col(RoundGroup.id))
        ).all():
            assert group.id is not None
            groups[group.round_id].append(
                GroupPublic(
                    id=group.id,
                    name=group.name,
                    max_processes_per_voter=group.max_processes_per_voter,
                )
            )
    listed = _visible_processes(session, ids, viewer)
    counts = processes.counts(session, [p.id for p in listed if p.id is not None])
    members: dict[int, list[RoundProcess]] = defaultdict(list)
    for p in listed:
        assert p.id is not None
        assert p.round_id is not None
        proposal_count, ballot_count = counts[p.id]
        members[p.round_id].append(
            RoundProcess(
                id=p.id,
                title=p.title,
                area=p.area,
                phase=Phase(p.phase),
                budget=p.budget,
                group_id=p.group_id,
                proposal_count=proposal_count,
                ballot_count=ballot_count,
            )
        )
    voters: dict[int, int] = {}
    listed_ids = [p.id for p in listed]
    if listed_ids:
        rows = session.exec(
            select(col(Process.round_id), func.count(distinct(col(BallotVoter.voter_id))))
            .select_from(BallotVoter)
            .join(Process, col(Process.id) == col(BallotVoter.process_id))
            .where(col(BallotVoter.process_id).in_(listed_ids))
            .group_by(col(Process.round_id))
        ).all()
        voters = {round_id: n for round_id, n in rows if round_id is not None}
    out = []
    for r in rounds:
        assert r.id is not None
        mine = members.get(r.id, [])
        out.append(
            RoundPublic(
                id=r.id,
                title=r.title,
                description=r.description,
                created_at=r.created_at,
                groups=groups.get(r.id, []),
                processes=mine,
                total_budget=sum(p.budget for p in mine),
                ballot_count=sum(p.ballot_count for p in mine),
                voter_count=voters.get(r.id, 0),
            )
        )
    return out


def create(session: Session, *, actor: User, data: RoundCreate) -> RoundPublic:
    require_role(actor, Role.admin)
    new = Round(title=data.title, description=data.description)
    session.add(new)
    session.flush()
    assert new.id is not None
    session.add_all(
        RoundGroup(round_id=new.id, name=g.name, max_processes_per_voter=g.max_processes_per_voter)
        for g in data.groups
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="round.created",
        target_type="round",
        target_id=new.id,
        after=data.model_dump(),
    )
    return _publics(session, [new], actor)[0]


def show(session: Session, *, viewer: User | None, round_id: int) -> RoundPublic:
    return _publics(session, [_load(session, round_id)], viewer)[0]


def list_all(
    session: Session, *, viewer: User | None, limit: int, offset: int
) -> Page[RoundPublic]:
    total = session.exec(select(func.count()).select_from(Round)).one()
    rounds = session.exec(
        select(Round)
        .order_by(col(Round.created_at).desc(), col(Round.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return Page(
        items=_publics(session, list(rounds), viewer), total=total, limit=limit, offset=offset
    )


def _locked_members(session: Session, round_id: int) -> list[Process]:
    """The round's processes with UPDATE row locks taken in id order: casts (KEY SHARE)
    finish first, none starts after, and concurrent round changes queue, never deadlock."""
    return list(
        session.exec(
            select(Process)
            .where(Process.round_id == round_id)
            .order_by(col(Process.id))
            .with_for_update()
        ).all()
    )


def delete(session: Session, *, actor: User, round_id: int) -> None:
    """Delete a round whose processes are all drafts; they stay, outside any round."""
    found = _load(session, round_id, lock=True)
    require_role(actor, Role.admin)
    members = _locked_members(session, round_id)
    started = [p.id for p in members if p.phase != Phase.draft]
    if started:
        raise InvalidPhase(
            _t("A round can be deleted only while all its processes are drafts."),
            extra={"processes": started},
        )
    for p in members:
        p.round_id = None
        p.group_id = None
        session.add(p)
    session.flush()
    for group in session.exec(select(RoundGroup).where(RoundGroup.round_id == round_id)).all():
        session.delete(group)
    session.flush()
    session.delete(found)
    audit.record(
        session,
        actor=actor,
        action="round.deleted",
        target_type="round",
        target_id=round_id,
        before={"title": found.title, "processes": [p.id for p in members]},
    )


def transition(
    session: Session,
    *,
    actor: User,
    round_id: int,
    to: Phase,
    require_verified_voters: bool = False,
    now: datetime | None = None,
) -> RoundPublic:
    """Move every process of the round one step to `to`, all or none."""
    found = _load(session, round_id)
    require_role(actor, Role.admin)
    members = _locked_members(session, round_id)
    if not members:
        raise InvalidTransition(_t("This round has no processes to move."))
    for p in members:
        try:
            processes.check_move(session, p, to, require_verified_voters=require_verified_voters)
        except DomainError as exc:
            raise type(exc)(
                _t("Process {process_id}: {detail}", process_id=p.id, detail=exc.message),
                extra={"process_id": p.id},
            ) from None
    moment = now or utcnow()
    for p in members:
        processes.move(session, actor=actor, process=p, to=to, now=moment)
    return _publics(session, [found], actor)[0]


def standing(
    session: Session, *, voter: User, round_id: int, now: datetime | None = None
) -> RoundStanding:
    """Where this account has voted in the round and where it still may, now."""
    now = now or utcnow()
    _load(session, round_id)
    listed = _visible_processes(session, [round_id], voter)
    ids = [p.id for p in listed if p.id is not None]
    voted: set[int] = set()
    coded: set[int] = set()
    if ids:
        voted = set(
            session.exec(
                select(BallotVoter.process_id).where(
                    col(BallotVoter.process_id).in_(ids), BallotVoter.voter_id == voter.id
                )
            ).all()
        )
        coded = set(
            session.exec(
                select(VotingCode.process_id).where(
                    col(VotingCode.process_id).in_(ids), VotingCode.claimed_by == voter.id
                )
            ).all()
        )
    groups = session.exec(
        select(RoundGroup).where(RoundGroup.round_id == round_id).order_by(col(RoundGroup.id))
    ).all()
    # Ballots in every process of the group count, drafts and hidden ones included.
    assert voter.id is not None
    used: dict[int, list[int]] = {
        g.id: voted_in_group(session, group_id=g.id, voter_id=voter.id)
        for g in groups
        if g.id is not None
    }
    limits = {g.id: g.max_processes_per_voter for g in groups}
    out = []
    for p in listed:
        assert p.id is not None
        reasons = [
            r.value
            for r in eligibility.reasons(voter, p, now=now, action="vote", holds_code=p.id in coded)
        ]
        if p.group_id is not None and (
            group_limit_refusal(p.id, used[p.group_id], limits[p.group_id]) is not None
        ):
            reasons.append("group_limit")
        out.append(
            ProcessStanding(
                process_id=p.id,
                group_id=p.group_id,
                can_vote=not reasons,
                has_ballot=p.id in voted,
                reasons=reasons,
            )
        )
    return RoundStanding(
        round_id=round_id,
        processes=out,
        groups=[
            GroupStanding(
                group_id=g.id,
                name=g.name,
                used=len(used[g.id]),
                max=g.max_processes_per_voter,
                processes=used[g.id],
            )
            for g in groups
            if g.id is not None
        ],
    )


def results(
    session: Session, *, viewer: User | None, round_id: int, base_path: str
) -> RoundResults:
    """The published results of the round's processes, turnout per process, per group and
    in total; processes not yet published are listed with `published: false`."""
    found = _load(session, round_id)
    listed = _visible_processes(session, [round_id], viewer)
    ids = [p.id for p in listed if p.id is not None]
    published = {
        row.process_id: row
        for row in session.exec(
            select(PublishedResult).where(col(PublishedResult.process_id).in_(ids))
        ).all()
    }
    current = processes.ballot_counts(session, ids)
    names = {
        g.id: g.name
        for g in session.exec(select(RoundGroup).where(RoundGroup.round_id == round_id)).all()
    }
    outcomes = []
    for p in listed:
        assert p.id is not None
        row = published.get(p.id)
        document = Results.model_validate(row.document) if row is not None else None
        where = f"{base_path}/processes/{p.id}"
        outcomes.append(
            ProcessOutcome(
                process_id=p.id,
                title=p.title,
                area=p.area,
                group_id=p.group_id,
                district=names.get(p.group_id, CITY_WIDE) if p.group_id else CITY_WIDE,
                phase=Phase(p.phase),
                published=document is not None,
                ballot_count=document.ballot_count if document else current.get(p.id, 0),
                results=document,
                exports={"csv": f"{where}/results.csv", "pb": f"{where}/results.pb"}
                if document
                else None,
            )
        )
    turnout: dict[int | None, int] = defaultdict(int)
    for o in outcomes:
        turnout[o.group_id] += o.ballot_count
    assert found.id is not None
    return RoundResults(
        round_id=found.id,
        title=found.title,
        processes=outcomes,
        groups=[
            GroupTurnout(
                group_id=gid,
                district=names.get(gid, CITY_WIDE) if gid else CITY_WIDE,
                ballot_count=n,
            )
            for gid, n in sorted(turnout.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0))
        ],
        total_budget=sum(p.budget for p in listed),
        ballot_count=sum(o.ballot_count for o in outcomes),
        published_count=len(published),
    )
