"""`wijkbudget demo --city`: a Groningen-wide round, ready for one round transition."""

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.cli import cli
from app.models.process import Process
from app.models.round import Round, RoundGroup
from tests.helpers import API
from tests.test_cli import cli_database

__all__ = ["cli_database"]  # the fixture pointing commands at the test database

runner = CliRunner()


def test_demo_city_loads_a_round_with_a_city_wide_budget_and_three_districts(
    cli_database: None, session: Session, client: TestClient
) -> None:
    result = runner.invoke(cli, ["demo", "--city"])
    assert result.exit_code == 0, result.output
    assert "admin@groningen.example" in result.output
    (city,) = session.exec(select(Round)).all()
    (group,) = session.exec(select(RoundGroup)).all()
    assert group.max_processes_per_voter == 1
    processes = session.exec(select(Process).order_by(Process.id)).all()  # type: ignore[arg-type]
    assert {p.phase for p in processes} == {"review"}
    assert {p.round_id for p in processes} == {city.id}
    districts = {p.area for p in processes if p.group_id == group.id}
    assert districts == {"Oosterpark", "Paddepoel", "Schildersbuurt"}
    (town,) = [p for p in processes if p.group_id is None]
    assert town.budget == 150_000
    body = client.get(f"{API}/rounds/{city.id}").json()
    assert body["total_budget"] == 150_000 + 25_000 + 20_000 + 20_000
    assert all(p["proposal_count"] >= 4 for p in body["processes"])
    # One round transition from voting: every process has an accepted proposal.
    token = client.post(
        f"{API}/auth/token",
        data={"username": "admin@groningen.example", "password": "oosterpark-demo"},
    ).json()["access_token"]
    moved = client.post(
        f"{API}/rounds/{city.id}/transition",
        json={"to": "voting"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert moved.status_code == 200, moved.text
    again = runner.invoke(cli, ["demo", "--city"])
    assert again.exit_code == 1
    assert "empty" in again.output
