"""Ballot validity as pure functions (vote-rules.md, "Ballot types"), with the error order."""

from dataclasses import dataclass
from typing import Any

import pytest

from app.ballot_types import BALLOT_KINDS, BallotSettings, CheckedBallot
from app.core.errors import DomainError
from app.models.process import ProcessCreate

COSTS = {1: 10_000, 2: 8_000, 3: 5_000, 4: 2_000}


@dataclass(frozen=True)
class Rules:
    type: str
    budget: int
    settings: BallotSettings


def rules(type: str, budget: int, **settings: Any) -> Rules:
    # Through the process spec, so the settings are what an admin could really configure.
    spec = ProcessCreate.model_validate(
        {"title": "t", "budget": budget, "ballot": {"type": type, **settings}}
    )
    return Rules(type, budget, spec.ballot)


def check_ballot(
    r: Rules, costs: dict[int, int], entries: list[tuple[int, object]]
) -> CheckedBallot:
    return BALLOT_KINDS[r.type].check(r.settings, budget=r.budget, costs=costs, entries=entries)


KNAPSACK = rules("knapsack", 20_000)
APPROVAL = rules("approval", 20_000, max_projects=2)
CUMULATIVE = rules("cumulative", 20_000, points=10, max_points_per_project=6)


def ids(*proposal_ids: int) -> list[tuple[int, object]]:
    return [(p, 1) for p in proposal_ids]


def code_of(rules: Rules, entries: list[tuple[int, object]]) -> str:
    with pytest.raises(DomainError) as caught:
        check_ballot(rules, COSTS, entries)
    return caught.value.code


def test_a_valid_knapsack_ballot_is_sorted_and_costed() -> None:
    checked = check_ballot(KNAPSACK, COSTS, ids(3, 1, 4))
    assert checked.items == [(1, 1), (3, 1), (4, 1)]
    assert checked.total_cost == 17_000


def test_knapsack_budget_is_inclusive() -> None:
    assert check_ballot(KNAPSACK, COSTS, ids(1, 2, 4)).total_cost == 20_000
    assert code_of(KNAPSACK, ids(1, 2, 3)) == "budget_exceeded"


def test_min_budget_share_is_exact() -> None:
    r = rules("knapsack", 20_000, min_budget_share=0.35)
    assert check_ballot(r, COSTS, ids(3, 4)).total_cost == 7_000  # exactly 35%
    assert code_of(r, ids(3)) == "below_min_budget_share"


def test_project_counts() -> None:
    r = rules("knapsack", 50_000, min_projects=2, max_projects=3)
    assert code_of(r, ids(1)) == "too_few_projects"
    assert code_of(r, []) == "too_few_projects"
    assert code_of(r, ids(1, 2, 3, 4)) == "too_many_projects"
    assert check_ballot(r, COSTS, ids(1, 2, 3)).total_cost == 23_000


def test_approval_limits_count_not_cost() -> None:
    assert check_ballot(APPROVAL, COSTS, ids(1, 2)).total_cost == 18_000
    rich = rules("approval", 1_000, max_projects=4)
    assert check_ballot(rich, COSTS, ids(1, 2, 3, 4)).total_cost == 25_000
    assert code_of(APPROVAL, ids(1, 2, 3)) == "too_many_projects"


def test_cumulative_points() -> None:
    checked = check_ballot(CUMULATIVE, COSTS, [(2, 4), (1, 6)])
    assert checked.items == [(1, 6), (2, 4)]
    assert checked.total_cost == 18_000
    assert code_of(CUMULATIVE, [(1, 6), (2, 5)]) == "points_exceeded"
    assert code_of(CUMULATIVE, [(1, 7)]) == "points_exceeded"
    for bad in (0, -1, 2.5, 2.0, True, "3", None):
        assert code_of(CUMULATIVE, [(1, bad)]) == "invalid_points", bad


def test_unknown_and_duplicate_proposals() -> None:
    assert code_of(KNAPSACK, ids(1, 99)) == "unknown_proposal"
    assert code_of(KNAPSACK, ids(1, 1)) == "duplicate_proposal"
    assert code_of(KNAPSACK, ids(0)) == "unknown_proposal"


@pytest.mark.parametrize(
    ("rules", "entries", "expected"),
    [
        # unknown beats duplicate, which beats everything after it
        (KNAPSACK, [(1, 1), (1, 1), (99, 1)], "unknown_proposal"),
        (CUMULATIVE, [(1, 0), (1, 0)], "duplicate_proposal"),
        # invalid points beats too few projects
        (
            rules("cumulative", 1, points=5, min_projects=2),
            [(1, -1)],
            "invalid_points",
        ),
        # too few beats budget
        (
            rules("knapsack", 1_000, min_projects=3),
            ids(1, 2),
            "too_few_projects",
        ),
        # too many beats budget
        (
            rules("knapsack", 1_000, max_projects=1),
            ids(1, 2),
            "too_many_projects",
        ),
        # budget beats the minimum share
        (
            rules("knapsack", 1_000, min_budget_share=1.0),
            ids(1),
            "budget_exceeded",
        ),
        # too many projects beats points
        (
            rules("cumulative", 1, points=2, max_projects=1),
            [(1, 5), (2, 5)],
            "too_many_projects",
        ),
    ],
)
def test_the_first_broken_rule_in_contract_order_is_reported(
    rules: Rules, entries: list[tuple[int, object]], expected: str
) -> None:
    assert code_of(rules, entries) == expected
