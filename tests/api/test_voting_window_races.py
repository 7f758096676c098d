"""The opening of voting changes only while no ballot exists, also when casts race the change:
the change counts ballots under the process row's FOR UPDATE lock, casts take KEY SHARE on the
same row, so either a cast comes first (the change is refused) or the change does (the cast
meets the new opening)."""

from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session

from app.core.config import Settings
from app.models.ballot import Ballot
from app.models.base import utcnow
from tests.api.conftest import Actors
from tests.factories import auth, make_user, make_voting_process
from tests.helpers import all_at_once, count_rows


@pytest.mark.parametrize("voters", [1, 12])
def test_a_ballot_and_a_new_opening_never_both_land(
    base_url: str,
    http: httpx.Client,
    actors: Actors,
    session: Session,
    settings: Settings,
    voters: int,
) -> None:
    opens = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    process, (p1, *_) = make_voting_process(
        session, actors.author.user, voting_opens_at=opens, voting_closes_at=opens + timedelta(9)
    )
    key = settings.signing_key()
    headers = [auth(make_user(session), key) for _ in range(voters)]
    later = (utcnow() + timedelta(days=1)).replace(microsecond=0)

    def cast(h: dict[str, str]) -> int:
        body = {"proposal_ids": [p1.id]}
        return http.put(
            f"{base_url}/processes/{process.id}/ballot", json=body, headers=h
        ).status_code

    def move() -> int:
        body = {"voting_opens_at": later.isoformat()}
        url = f"{base_url}/processes/{process.id}"
        return http.patch(url, json=body, headers=actors.admin.headers).status_code

    calls = [lambda h=h: cast(h) for h in headers]
    moved, *casts = all_at_once([move, *calls])
    ballots = count_rows(session, Ballot)
    assert ballots == casts.count(200)
    assert set(casts) <= {200, 409}
    if moved == 200:
        assert ballots == 0  # every cast came after the move and met the new opening
    else:
        assert moved == 409
        assert ballots >= 1
    session.refresh(process)
    assert process.voting_opens_at == (later if moved == 200 else opens)
