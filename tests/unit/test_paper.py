"""The pure parts of paper ballots: comparing two keyings, judging ballots, reading CSV."""

import pytest

from app.ballot_types import BALLOT_KINDS
from app.ballot_types.knapsack import KnapsackSettings
from app.services.paper import CsvError, differences, judge, parse_csv


def ballot(
    ids: list[int] | None = None, points: dict[str, int] | None = None, code: str | None = None
) -> dict[str, object]:
    return {
        "proposal_ids": ids,
        "points": points,
        "code_hash": code,
        "code_hint": f"…{code[-4:]}" if code else None,
    }


def test_keyings_are_compared_ballot_by_ballot_as_sets_with_codes_and_source() -> None:
    first = [ballot([3, 7]), ballot([9], code="h1"), ballot([3])]
    assert differences("S", first, "S", [ballot([7, 3]), ballot([9], code="h1"), ballot([3])]) == []
    found = differences("S", first, "T", [ballot([3, 7]), ballot([9], code="h2")])
    assert [(d.index, d.first, d.second) for d in found] == [
        (None, {"source": "S"}, {"source": "T"}),
        (
            1,
            {"proposal_ids": [9], "voting_code": "…h1"},
            {"proposal_ids": [9], "voting_code": "…h2"},
        ),
        (2, {"proposal_ids": [3], "voting_code": None}, None),
    ]
    # A proposal keyed twice is not the same ballot as it keyed once.
    assert [d.index for d in differences("S", [ballot([3, 3])], "S", [ballot([3])])] == [0]


def test_judging_follows_the_online_rules_then_the_codes() -> None:
    kind = BALLOT_KINDS["knapsack"]
    costs = {1: 600, 2: 500}
    ballots = [
        ballot([1, 2]),  # over the budget
        ballot([1], code="used"),
        ballot([1], code="free"),
        ballot([2], code="free"),  # the same code again in the batch
        ballot([2], code="unknown"),
        ballot([2]),
        ballot([1, 2], code="free2"),  # invalid: does not take its code
    ]
    verdicts = judge(
        kind,
        KnapsackSettings(),
        budget=1_000,
        costs=costs,
        ballots=ballots,
        used={"used": True, "free": False, "free2": False},
        require_code=False,
    )
    assert [(j.verdict["status"], j.verdict["reason"]) for j in verdicts] == [
        ("invalid", "budget_exceeded"),
        ("duplicate", "code_used"),
        ("valid", None),
        ("duplicate", "code_used"),
        ("invalid", "invalid_code"),
        ("valid", None),
        ("invalid", "budget_exceeded"),
    ]
    assert verdicts[2].items == [(1, 1)]
    assert verdicts[2].total_cost == 600
    required = judge(
        kind,
        KnapsackSettings(),
        budget=1_000,
        costs=costs,
        ballots=[ballot([2])],
        used={},
        require_code=True,
    )
    assert required[0].verdict == {"status": "invalid", "reason": "voting_code_required"}


def test_csv_rows_become_ballot_bodies() -> None:
    text = 'proposal_ids,points,voting_code\n"3 7",,ABCD-EFGH\n,"3:5 7:2",\n,,\n'
    assert parse_csv(text) == [
        {"proposal_ids": [3, 7], "voting_code": "ABCD-EFGH"},
        {"points": {"3": 5, "7": 2}},
        {"proposal_ids": []},
    ]
    for bad, line in (
        ("proposal_ids\n3;7\n", "line 2"),
        ("points\n3=5\n", "line 2"),
        ("ids\n3\n", "line 1"),
    ):
        with pytest.raises(CsvError, match=line):
            parse_csv(bad)
