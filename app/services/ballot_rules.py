"""What makes a ballot valid (vote-rules.md, "Ballot types"): pure functions, no database.

The checks run in the contract's order, and the first that fails is the error returned:
`unknown_proposal`, `duplicate_proposal`, `invalid_points`, `too_few_projects`,
`too_many_projects`, `budget_exceeded`, `below_min_budget_share`, `points_exceeded`.

- every type: only accepted proposals of the process, each at most once, and between
  `min_projects` and `max_projects` of them;
- `knapsack`: total cost <= budget and >= `min_budget_share` x budget;
- `approval`: cost is not limited;
- `cumulative`: points are whole numbers >= 1, their sum <= `points`, each <=
  `max_points_per_project` when set.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from app.core.errors import (
    BelowMinBudgetShare,
    BudgetExceeded,
    DuplicateProposal,
    InvalidPoints,
    PointsExceeded,
    TooFewProjects,
    TooManyProjects,
    UnknownProposal,
)
from app.models.process import BallotType, Process


@dataclass(frozen=True)
class BallotRules:
    type: BallotType
    budget: int
    min_projects: int = 1
    max_projects: int | None = None
    min_budget_share: Fraction = Fraction(0)
    points: int | None = None
    max_points_per_project: int | None = None

    @classmethod
    def of(cls, process: Process) -> "BallotRules":
        return cls(
            type=BallotType(process.ballot_type),
            budget=process.budget,
            min_projects=process.min_projects,
            max_projects=process.max_projects,
            # Through str: 0.3 means 3/10 exactly, not the float nearest to it.
            min_budget_share=Fraction(str(process.min_budget_share)),
            points=process.points,
            max_points_per_project=process.max_points_per_project,
        )


@dataclass(frozen=True)
class CheckedBallot:
    items: list[
        tuple[int, int]
    ]  # (proposal id, weight), ascending by id; weight 1 unless cumulative
    total_cost: int


def check_ballot(
    rules: BallotRules, costs: Mapping[int, int], entries: Sequence[tuple[int, object]]
) -> CheckedBallot:
    """Validate `entries` ((proposal id, points or 1)) against the rules and accepted `costs`."""
    for proposal_id, _ in entries:
        if proposal_id not in costs:
            raise UnknownProposal(f"Proposal {proposal_id} is not on this ballot.")
    seen: set[int] = set()
    for proposal_id, _ in entries:
        if proposal_id in seen:
            raise DuplicateProposal(f"Proposal {proposal_id} is chosen more than once.")
        seen.add(proposal_id)
    weights: list[int] = []
    for proposal_id, weight in entries:
        if rules.type == BallotType.cumulative:
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                raise InvalidPoints(
                    f"Points for proposal {proposal_id} must be a whole number >= 1."
                )
            weights.append(weight)
        else:
            weights.append(1)
    count = len(entries)
    if count < rules.min_projects:
        raise TooFewProjects(f"Choose at least {rules.min_projects} proposal(s); {count} chosen.")
    if rules.max_projects is not None and count > rules.max_projects:
        raise TooManyProjects(f"Choose at most {rules.max_projects} proposal(s); {count} chosen.")
    total_cost = sum(costs[proposal_id] for proposal_id, _ in entries)
    if rules.type == BallotType.knapsack:
        if total_cost > rules.budget:
            raise BudgetExceeded(
                f"The chosen proposals cost {total_cost}, the budget is {rules.budget}."
            )
        if total_cost < rules.min_budget_share * rules.budget:
            need = rules.min_budget_share * rules.budget
            raise BelowMinBudgetShare(
                f"Spend at least {float(need):g} of {rules.budget}; {total_cost} chosen."
            )
    if rules.type == BallotType.cumulative:
        assert rules.points is not None
        if sum(weights) > rules.points:
            raise PointsExceeded(f"At most {rules.points} points in all; {sum(weights)} given.")
        cap = rules.max_points_per_project
        if cap is not None and max(weights, default=0) > cap:
            raise PointsExceeded(f"At most {cap} points per proposal.")
    items = sorted(
        (proposal_id, weight) for (proposal_id, _), weight in zip(entries, weights, strict=True)
    )
    return CheckedBallot(items=items, total_cost=total_cost)
