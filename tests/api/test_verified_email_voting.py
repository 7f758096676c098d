"""`eligibility.require_verified_email` counts as voter verification in production."""

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.main import create_app
from app.models.process import Phase
from app.services import processes
from tests.api.conftest import Actors
from tests.conftest import make_settings
from tests.factories import make_process, make_voting_process
from tests.helpers import API, assert_problem


def test_production_lets_a_process_requiring_verified_email_enter_voting(
    actors: Actors, session: Session, settings: Settings
) -> None:
    production = create_app(
        make_settings(
            settings.database_url, environment="production", smtp_url="smtp://127.0.0.1:9"
        )
    )
    try:
        with TestClient(production) as client:
            process, _ = make_voting_process(session, actors.author.user, phase=Phase.review)
            url = f"{API}/processes/{process.id}"
            to_voting = {"to": "voting"}
            body = assert_problem(
                client.post(f"{url}/transition", json=to_voting, headers=actors.admin.headers),
                409,
                "unverified_voters",
            )
            assert "require_verified_email" in body["detail"]
            patched = client.patch(
                url,
                json={"eligibility": {"require_verified_email": True}},
                headers=actors.admin.headers,
            )
            assert patched.status_code == 200, patched.text
            assert patched.json()["eligibility"]["require_verified_email"] is True
            moved = client.post(f"{url}/transition", json=to_voting, headers=actors.admin.headers)
            assert moved.status_code == 200, moved.text
    finally:
        production.state.engine.dispose()


def test_open_processes_without_any_verification_are_named(session: Session) -> None:
    make_process(session, title="Codes", eligibility={"require_voting_code": True})
    make_process(session, title="Mail", eligibility={"require_verified_email": True})
    bare = make_process(session, title="Bare")
    assert processes.open_and_unverified(session) == [f'{bare.id} "Bare"']
