"""Eligibility rules on plain objects (vote-rules.md, "Eligibility")."""

from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.errors import NotEligible
from app.models.process import Process
from app.models.user import User
from app.services.eligibility import ineligibility, require_eligible, voting_year

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def process(**fields: Any) -> Process:
    base: dict[str, Any] = {
        "title": "P",
        "budget": 1,
        "ballot": {"type": "knapsack"},
        "tally_rule": "greedy",
    }
    return Process(**{**base, **fields})


def user(postcode: str | None = "9713AB", birth_year: int | None = 1990) -> User:
    return User(
        email="a@b.nl",
        password_hash="x",
        display_name="A",
        postcode=postcode,
        birth_year=birth_year,
    )


@pytest.mark.parametrize(
    ("prefixes", "postcode", "eligible"),
    [
        ([], None, True),
        ([], "1011AB", True),
        (["9713"], "9713AB", True),
        (["9713"], "9713 ab", True),
        (["9712", "9713"], "9713XX", True),
        (["9713"], "9714AB", False),
        (["9713"], "971", False),
        (["9713"], None, False),
        (["9713"], "", False),
    ],
)
def test_postcode_prefixes(prefixes: list[str], postcode: str | None, eligible: bool) -> None:
    assert (
        ineligibility(user(postcode=postcode), process(postcode_prefixes=prefixes), now=NOW) is None
    ) == eligible


def test_age_year_is_the_opening_year_then_the_voting_start_then_now() -> None:
    opens = process(min_age=18, voting_opens_at=datetime(2030, 1, 1, tzinfo=UTC),
                    voting_started_at=datetime(2027, 5, 1, tzinfo=UTC))  # fmt: skip
    started = process(min_age=18, voting_started_at=datetime(2027, 5, 1, tzinfo=UTC))
    assert voting_year(opens, NOW) == 2030
    assert voting_year(started, NOW) == 2027
    assert voting_year(process(min_age=18), NOW) == 2026
    born_2012 = user(birth_year=2012)
    assert ineligibility(born_2012, opens, now=NOW) is None  # turns 18 in 2030
    assert ineligibility(born_2012, started, now=NOW) is not None  # only 15 in 2027


def test_age_limit_edges() -> None:
    rule = process(min_age=16)
    assert ineligibility(user(birth_year=2010), rule, now=NOW) is None  # turns 16 in 2026
    assert ineligibility(user(birth_year=2011), rule, now=NOW) is not None
    assert ineligibility(user(birth_year=None), rule, now=NOW) is not None
    assert ineligibility(user(birth_year=None), process(min_age=None), now=NOW) is None


def test_require_eligible_raises_not_eligible_with_a_reason() -> None:
    with pytest.raises(NotEligible, match="9713"):
        require_eligible(user(postcode="1011AB"), process(postcode_prefixes=["9713"]), now=NOW)
