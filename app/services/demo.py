"""Demo data modelled on Groningen's Oosterpark pilot ("Stem van Groningen", EUR 25,000),
and (`load_city`) a Groningen-wide round: a city-wide budget beside three district budgets.

Everything goes through the same services as the API, so the audit log tells the story too.
The processes end in phase `review` with accepted proposals: one transition from voting.
"""

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.models.process import Phase, ProcessCreate
from app.models.proposal import AcceptDecision, CommentCreate, ProposalCreate, RejectDecision
from app.models.round import GroupCreate, RoundCreate
from app.models.user import Role, User, UserCreate
from app.services import accounts, processes, proposals, rounds

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


def _require_empty(session: Session) -> None:
    if session.exec(select(func.count()).select_from(User)).one():
        raise NotEmpty("the database already has accounts; the demo fills an empty one")


def _account(
    session: Session, email: str, name: str, role: Role, postcode: str | None, year: int | None
) -> User:
    data = UserCreate(
        email=email, password=DEMO_PASSWORD, display_name=name, postcode=postcode, birth_year=year
    )
    return accounts.register(session, data=data, role=role)


def load(session: Session) -> dict[str, str]:
    """Fill an empty database; returns the demo accounts (email -> role)."""
    _require_empty(session)

    def account(email: str, name: str, role: Role, postcode: str | None, year: int | None) -> User:
        return _account(session, email, name, role, postcode, year)

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
    _propose(session, process_id, PROPOSALS, residents, moderator)
    processes.transition(session, actor=admin, process_id=process_id, to=Phase.review)
    return {user.email: user.role for user in [admin, moderator, *residents]}


def _propose(
    session: Session,
    process_id: int,
    items: list[DemoProposal],
    residents: list[User],
    moderator: User,
) -> None:
    """Residents submit, support and comment on `items`; the moderator reviews them."""
    for n, item in enumerate(items):
        author = residents[n % len(residents)]
        created = proposals.submit(
            session,
            actor=author,
            process_id=process_id,
            data=ProposalCreate(title=item.title, summary=item.summary, category=item.category,
                                estimated_cost=item.estimated_cost),
        )  # fmt: skip
        for supporter in residents[: (len(items) - n) % len(residents) + 1]:
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


CITY_WIDE = [
    DemoProposal(
        "Cycle route Zernike to centre", "A wide, lit cycle route.", "traffic", 60000, 55000
    ),
    DemoProposal("Trees for every district", "Two hundred street trees.", "greenery", 30000, 28000),
    DemoProposal("Free swimming lessons", "For every child in the city.", "sport", 25000, 22000),
    DemoProposal(
        "Night bus on Saturdays",
        "A pilot year.",
        "traffic",
        40000,
        "A council decision: not a budget proposal.",
    ),
    DemoProposal("City festival", "One weekend in the Noorderplantsoen.", "culture", 20000, 18000),
]
PADDEPOEL = [
    DemoProposal("Skate park", "Ramps by the Paddepoel shopping centre.", "sport", 9000, 8500),
    DemoProposal("Vegetable garden", "Raised beds for the flats.", "greenery", 4000, 3500),
    DemoProposal("Benches by the canal", "Eight benches.", "public space", 3500, 3200),
    DemoProposal("Student welcome day", "Neighbours meet new students.", "community", 2000, 1800),
]
SCHILDERSBUURT = [
    DemoProposal("Play street", "A car-free afternoon a week with play kits.", "play", 5000, 4500),
    DemoProposal("Bird boxes", "Fifty nest boxes and a walk.", "greenery", 1500, 1200),
    DemoProposal("Lighting the alleys", "Solar lamps in back alleys.", "public space", 8000, 7600),
    DemoProposal("Repair cafe", "Tools and a monthly venue.", "sustainability", 3000, 2600),
]  # fmt: skip

CITY_RESIDENTS = [
    ("femke@paddepoel.example", "Femke", "9742 AA", 1990),
    ("gert@paddepoel.example", "Gert", "9742 BB", 1957),
    ("hanna@paddepoel.example", "Hanna", "9742 CC", 2002),
    ("ivo@schildersbuurt.example", "Ivo", "9718 AA", 1988),
    ("jet@schildersbuurt.example", "Jet", "9718 BB", 1970),
    ("kees@schildersbuurt.example", "Kees", "9718 CC", 1995),
]


def load_city(session: Session) -> dict[str, str]:
    """Fill an empty database with a Groningen-wide round; returns the demo accounts.

    One city-wide budget (every Groningen postcode, 97xx) beside three district budgets
    (Oosterpark, Paddepoel, Schildersbuurt) in a group where each resident votes in one
    district of their choice, as in Warsaw and Paris. All processes end in `review`: one
    round transition from voting."""
    _require_empty(session)
    admin = _account(
        session, "admin@groningen.example", "Gemeente Groningen", Role.admin, None, None
    )
    moderator = _account(
        session, "moderator@groningen.example", "Wijkteams", Role.moderator, None, None
    )
    residents = [
        _account(session, email, name, Role.resident, pc, year)
        for email, name, pc, year in [*RESIDENTS, *CITY_RESIDENTS]
    ]
    created = rounds.create(
        session,
        actor=admin,
        data=RoundCreate(
            title="Groningen 2026",
            description="A city-wide budget and one budget per district: vote city-wide, "
            "and in one district of your choice.",
            groups=[GroupCreate(name="Districts", max_processes_per_voter=1)],
        ),
    )
    districts = created.groups[0].id
    specs = [
        ("Groningen city-wide", "Groningen", 150_000, None, CITY_WIDE),
        ("Oosterpark", "Oosterpark", 25_000, districts, PROPOSALS),
        ("Paddepoel", "Paddepoel", 20_000, districts, PADDEPOEL),
        ("Schildersbuurt", "Schildersbuurt", 20_000, districts, SCHILDERSBUURT),
    ]
    made = []
    for title, area, budget, group_id, items in specs:
        spec = ProcessCreate.model_validate(
            {
                "title": title,
                "description": f"Residents of Groningen propose plans and divide EUR {budget:,}.",
                "area": area,
                "budget": budget,
                "ballot": {"type": "knapsack", "min_projects": 1},
                "eligibility": {"postcode_prefixes": ["97"], "min_age": 16},
                "round_id": created.id,
                "group_id": group_id,
            }
        )
        made.append((processes.create(session, actor=admin, data=spec).id, items))
    rounds.transition(session, actor=admin, round_id=created.id, to=Phase.submission)
    for process_id, items in made:
        _propose(session, process_id, items, residents, moderator)
    rounds.transition(session, actor=admin, round_id=created.id, to=Phase.review)
    return {user.email: user.role for user in [admin, moderator, *residents]}
