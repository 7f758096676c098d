"""Test data made directly through the models, and tokens minted with the app's own function.

Hashing a password with Argon2 costs tens of milliseconds, so every factory user shares one
precomputed hash of `PASSWORD`.
"""

from functools import lru_cache
from itertools import count
from typing import Any

from sqlmodel import Session

from app.core import security
from app.models.base import utcnow
from app.models.process import Phase, Process, ProcessCreate, process_from
from app.models.proposal import Proposal, ProposalStatus
from app.models.round import Round, RoundGroup
from app.models.user import Role, User

PASSWORD = "correct horse battery"
_serial = count(1)


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return security.hash_password(PASSWORD)


def make_user(
    session: Session,
    *,
    role: Role = Role.resident,
    email: str | None = None,
    display_name: str = "Resident",
    postcode: str | None = "9713AB",
    birth_year: int | None = 1990,
) -> User:
    user = User(
        email=email or f"user{next(_serial)}@example.org",
        password_hash=_password_hash(),
        display_name=display_name,
        role=role,
        postcode=postcode,
        birth_year=birth_year,
    )
    session.add(user)
    session.commit()
    return user


def token_for(user: User, key: str, *, expires_minutes: int = 60, now: float | None = None) -> str:
    assert user.id is not None
    token, _ = security.create_access_token(
        user_id=user.id,
        version=user.token_version,
        key=key,
        expires_minutes=expires_minutes,
        now=now,
    )
    return token


def auth(user: User, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user, key)}"}


def make_process(
    session: Session,
    *,
    phase: Phase = Phase.submission,
    budget: int = 25_000,
    ballot: dict[str, Any] | None = None,
    eligibility: dict[str, Any] | None = None,
    **fields: Any,
) -> Process:
    """A process in `phase`; moving it into voting or beyond stamps `voting_started_at`."""
    spec = ProcessCreate.model_validate(
        {
            "title": fields.pop("title", "Oosterpark 2019"),
            "area": "Oosterpark",
            "budget": budget,
            "ballot": ballot or {"type": "knapsack"},
            "eligibility": eligibility or {},
            **fields,
        }
    )
    process = process_from(spec)
    process.phase = phase
    if phase in (Phase.voting, Phase.closed):
        process.voting_started_at = utcnow()
    session.add(process)
    session.commit()
    return process


def make_proposal(
    session: Session,
    process: Process,
    author: User,
    *,
    status: ProposalStatus = ProposalStatus.submitted,
    cost: int | None = None,
    title: str = "Benches along the canal",
    summary: str = "A plan for the neighbourhood.",
    estimated_cost: int = 3_000,
    category: str | None = "greenery",
) -> Proposal:
    if status == ProposalStatus.accepted and cost is None:
        cost = estimated_cost
    assert process.id is not None
    proposal = Proposal(
        process_id=process.id,
        author_id=author.id,
        title=title,
        summary=summary,
        estimated_cost=estimated_cost,
        category=category,
        status=status,
        cost=cost,
    )
    session.add(proposal)
    session.commit()
    return proposal


def make_voting_process(
    session: Session,
    author: User,
    *,
    costs: tuple[int, ...] = (10_000, 8_000, 5_000, 2_000),
    phase: Phase = Phase.voting,
    **process_fields: Any,
) -> tuple[Process, list[Proposal]]:
    """A process in voting with one accepted proposal per cost (ids ascending)."""
    process = make_process(session, phase=phase, **process_fields)
    proposals = [
        make_proposal(
            session, process, author, status=ProposalStatus.accepted, cost=cost, title=f"P{n}"
        )
        for n, cost in enumerate(costs, start=1)
    ]
    return process, proposals


def make_round(
    session: Session, *, limits: tuple[int, ...] = (1,), title: str = "Groningen 2026"
) -> tuple[Round, list[RoundGroup]]:
    """A round with one group per limit (`max_processes_per_voter`), named District group N."""
    new = Round(title=title, description="")
    session.add(new)
    session.commit()
    assert new.id is not None
    groups = [
        RoundGroup(round_id=new.id, name=f"District group {n}", max_processes_per_voter=limit)
        for n, limit in enumerate(limits, start=1)
    ]
    session.add_all(groups)
    session.commit()
    return new, groups
