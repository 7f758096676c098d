"""Demo data modelled on Groningen's Oosterpark pilot ("Stem van Groningen", EUR 25,000).

Everything goes through the same services as the API, so the audit log tells the story too.
The process ends in phase `review` with accepted proposals: one transition from voting.
"""

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.models.process import Phase, ProcessCreate
from app.models.proposal import AcceptDecision, CommentCreate, ProposalCreate, RejectDecision
from app.models.user import Role, User, UserCreate
from app.services import accounts, processes, proposals

DEMO_PASSWORD = "oosterpark-demo"


class NotEmpty(Exception):
    pass


@dataclass(frozen=True)
class DemoProposal:
    title: str
    summary: str
    category: str
    estimated_cost: int
    decision: int | str | None  # final cost, a rejection reason, or None: still submitted


PROPOSALS = [
    DemoProposal(
        "Play area by the pond",
        "Swings, a sandpit and a climbing frame for the youngest.",
        "play",
        9000,
        8500,
    ),
    DemoProposal(
        "Benches along the Oosterhamrikkade",
        "Six benches where older residents walk.",
        "public space",
        4000,
        3600,
    ),
    DemoProposal(
        "Green the Oosterpoort square",
        "Trees and planters instead of bare paving.",
        "greenery",
        7500,
        7200,
    ),
    DemoProposal(
        "Neighbourhood party",
        "A summer street party for all of Oosterpark.",
        "community",
        3000,
        2500,
    ),
    DemoProposal(
        "Energy coaches",
        "Volunteers who help neighbours save energy at home.",
        "sustainability",
        5000,
        4800,
    ),
    DemoProposal(
        "Bicycle racks at the school", "Covered racks for forty bicycles.", "traffic", 3500, 3000
    ),
    DemoProposal(
        "Facade gardens",
        "Tiles out, plants in: materials for thirty facade gardens.",
        "greenery",
        2500,
        2000,
    ),
    DemoProposal(
        "Little free library", "A weatherproof book cabinet on the square.", "community", 800, 600
    ),
    DemoProposal(
        "Outdoor fitness", "Fitness equipment along the running route.", "sport", 11000, 10500
    ),
    DemoProposal(
        "Mural on the underpass", "Local artists paint the grey underpass.", "culture", 6000, 5500
    ),
    DemoProposal(
        "Parking garage",
        "A garage under the park.",
        "traffic",
        24000,
        "Far beyond this budget and not on municipal ground; the council plans parking separately.",
    ),
    DemoProposal(
        "Water tap in the park",
        "Drinking water for runners and dog walkers.",
        "public space",
        2000,
        None,
    ),
]

RESIDENTS = [
    ("anna@oosterpark.example", "Anna", "9713 AB", 1984),
    ("bram@oosterpark.example", "Bram", "9713 CD", 1961),
    ("chantal@oosterpark.example", "Chantal", "9713 EF", 1999),
    ("dirk@oosterpark.example", "Dirk", "9713 GH", 2008),
    ("eva@oosterpark.example", "Eva", "9713 JK", 1975),
]


def load(session: Session) -> dict[str, str]:
    """Fill an empty database; returns the demo accounts (email -> role)."""
    if session.exec(select(func.count()).select_from(User)).one():
        raise NotEmpty("the database already has accounts; the demo fills an empty one")

    def account(email: str, name: str, role: Role, postcode: str | None, year: int | None) -> User:
        data = UserCreate(
            email=email,
            password=DEMO_PASSWORD,
            display_name=name,
            postcode=postcode,
            birth_year=year,
        )
        return accounts.register(session, data=data, role=role)

    admin = account("admin@oosterpark.example", "Gemeente Groningen", Role.admin, None, None)
    moderator = account("moderator@oosterpark.example", "Wijkteam Oost", Role.moderator, None, None)
    residents = [
        account(email, name, Role.resident, pc, year) for email, name, pc, year in RESIDENTS
    ]

    spec = ProcessCreate.model_validate(
        {
            "title": "Oosterpark",
            "description": "Residents of Oosterpark propose plans and divide EUR 25,000.",
            "area": "Oosterpark",
            "budget": 25000,
            "ballot": {"type": "knapsack", "min_projects": 1},
            "eligibility": {"postcode_prefixes": ["9713"], "min_age": 16},
            "tally_rule": "greedy",
        }
    )
    process_id = processes.create(session, actor=admin, data=spec).id
    processes.transition(session, actor=admin, process_id=process_id, to=Phase.submission)
    for n, item in enumerate(PROPOSALS):
        author = residents[n % len(residents)]
        created = proposals.submit(
            session,
            actor=author,
            process_id=process_id,
            data=ProposalCreate(title=item.title, summary=item.summary, category=item.category,
                                estimated_cost=item.estimated_cost),
        )  # fmt: skip
        for supporter in residents[: (len(PROPOSALS) - n) % len(residents) + 1]:
            proposals.support(session, actor=supporter, proposal_id=created.id)
        if n % 3 == 0:
            comment = CommentCreate(body=f"Good idea, {author.display_name}!")
            proposals.add_comment(
                session,
                actor=residents[(n + 1) % len(residents)],
                proposal_id=created.id,
                data=comment,
            )
        if isinstance(item.decision, int):
            decision: AcceptDecision | RejectDecision = AcceptDecision(
                decision="accept", cost=item.decision
            )
        elif isinstance(item.decision, str):
            decision = RejectDecision(decision="reject", reason=item.decision)
        else:
            continue
        proposals.review(session, actor=moderator, proposal_id=created.id, decision=decision)
    processes.transition(session, actor=admin, process_id=process_id, to=Phase.review)
    return {user.email: user.role for user in [admin, moderator, *residents]}
