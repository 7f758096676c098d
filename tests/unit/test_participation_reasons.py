"""`eligibility.reasons`: every reason at once, in the contract's order, on plain objects."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.core.errors import NotEligible, Reason
from app.models.process import Phase, Process
from app.models.user import User
from app.services.eligibility import reasons, require_eligible

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def process(phase: Phase = Phase.submission, **fields: Any) -> Process:
    base: dict[str, Any] = {
        "title": "P",
        "budget": 1,
        "ballot": {"type": "knapsack"},
        "tally_rule": "greedy",
        "postcode_prefixes": ["9713"],
        "min_age": 16,
    }
    made = Process(**{**base, **fields})
    made.phase = phase
    return made


def user(postcode: str | None = "9713AB", birth_year: int | None = 1990, **more: Any) -> User:
    return User(
        email="a@b.nl",
        password_hash="x",
        display_name="A",
        postcode=postcode,
        birth_year=birth_year,
        **more,
    )


NOBODY = user(postcode=None, birth_year=None)


def test_an_eligible_account_has_no_reason_in_its_phase() -> None:
    assert reasons(user(), process(), now=NOW, action="submit", holds_code=False) == []
    voting = process(Phase.voting, require_voting_code=True)
    assert reasons(user(), voting, now=NOW, action="vote", holds_code=True) == []


def test_every_reason_at_once_in_the_contract_order() -> None:
    closed = process(Phase.closed, require_voting_code=True)
    assert reasons(NOBODY, closed, now=NOW, action="vote", holds_code=False) == [
        Reason.postcode,
        Reason.age,
        Reason.voting_code,
        Reason.phase,
    ]
    # Voting codes concern ballots only.
    assert reasons(NOBODY, closed, now=NOW, action="submit", holds_code=False) == [
        Reason.postcode,
        Reason.age,
        Reason.phase,
    ]


@pytest.mark.parametrize(
    ("phase", "window", "open_"),
    [
        (Phase.voting, {}, True),
        (Phase.voting, {"voting_opens_at": NOW + timedelta(hours=1)}, False),
        (Phase.voting, {"voting_closes_at": NOW}, False),
        (Phase.review, {}, False),
    ],
)
def test_phase_follows_the_voting_window(phase: Phase, window: dict[str, Any], open_: bool) -> None:
    found = reasons(user(), process(phase, **window), now=NOW, action="vote", holds_code=True)
    assert found == ([] if open_ else [Reason.phase])
    # The caller that checks the phase itself asks without it.
    assert reasons(user(), process(phase, **window), now=NOW, action="vote", holds_code=True,
                   phase=False) == []  # fmt: skip


def test_not_eligible_carries_every_reason_and_the_first_as_its_sentence() -> None:
    voting = process(Phase.voting, require_voting_code=True)
    with pytest.raises(NotEligible) as caught:
        require_eligible(user(postcode="1011AB"), voting, now=NOW, action="vote", holds_code=False)
    assert caught.value.extra == {"reasons": ["postcode", "voting_code"]}
    assert "9713" in caught.value.detail


def test_a_verified_email_is_a_reason_for_ballots_only() -> None:
    needs = process(Phase.voting, require_verified_email=True)
    unverified, verified = user(email_verified=False), user(email_verified=True)
    found = reasons(unverified, needs, now=NOW, action="vote", holds_code=True)
    assert found == [Reason.verified_email]
    assert reasons(verified, needs, now=NOW, action="vote", holds_code=True) == []
    submission = process(require_verified_email=True)
    assert reasons(unverified, submission, now=NOW, action="submit", holds_code=True) == []
