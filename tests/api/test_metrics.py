"""GET /metrics in one process (the multi-worker sums: tests/test_observability.py): the
token, route templates as labels, and the hooks other parts call (analysis, throttle)."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.main import create_app
from tests.api.test_explained_results import SMALL_PB
from tests.conftest import make_settings
from tests.helpers import API, assert_problem

TOKEN = "in-process-metrics-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def metered(database_url: str, engine: Engine) -> Iterator[TestClient]:
    # `engine`: the tables are emptied after each test.
    app = create_app(make_settings(database_url, metrics_token=TOKEN, analysis_max_per_address=2))
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.state.engine.dispose()


def _value(client: TestClient, sample: str) -> float:
    """A sample's value now (0 when absent): figures are per process, so tests compare."""
    body = client.get("/metrics", headers=BEARER)
    assert body.status_code == 200
    for line in body.text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


def test_metrics_answer_only_the_token(metered: TestClient, client: TestClient) -> None:
    assert metered.get("/metrics", headers=BEARER).headers["cache-control"] == "no-store"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        assert_problem(metered.get("/metrics", headers=headers), 401, "not_authenticated")
    # Without METRICS_TOKEN (the default app) the path does not exist.
    assert_problem(client.get("/metrics", headers=BEARER), 404, "not_found")
    assert "/metrics" not in metered.get("/openapi.json").json()["paths"]


def test_requests_are_counted_by_route_template(metered: TestClient) -> None:
    template = 'wijkbudget_http_requests_total{method="GET",route="/api/v1/processes/{process_id}",status="404"}'
    unmatched = 'wijkbudget_http_requests_total{method="GET",route="unmatched",status="404"}'
    before, before_unmatched = _value(metered, template), _value(metered, unmatched)
    for process_id in (123456, 654321):
        assert metered.get(f"{API}/processes/{process_id}").status_code == 404
    metered.get("/no/such/path/R-secret")
    scraped = metered.get("/metrics", headers=BEARER).text
    assert _value(metered, template) == before + 2
    assert _value(metered, unmatched) == before_unmatched + 1
    for raw in ("123456", "654321", "R-secret"):
        assert raw not in scraped


def test_analysis_and_throttling_are_counted(metered: TestClient) -> None:
    ok = 'wijkbudget_analysis_total{outcome="ok"}'
    invalid = 'wijkbudget_analysis_total{outcome="invalid_pabulib"}'
    throttled = 'wijkbudget_throttled_total{kind="analysis-address"}'
    seconds = 'wijkbudget_analysis_duration_seconds_count{outcome="ok"}'
    before = {name: _value(metered, name) for name in (ok, invalid, throttled, seconds)}
    tally = f"{API}/analysis/tally"
    assert metered.post(tally, content=SMALL_PB).status_code == 200
    assert metered.post(tally, content="not pabulib").status_code == 422
    assert metered.post(tally, content=SMALL_PB).status_code == 429  # 2 per address
    assert _value(metered, ok) == before[ok] + 1
    assert _value(metered, seconds) == before[seconds] + 1
    assert _value(metered, invalid) == before[invalid] + 1
    assert _value(metered, throttled) == before[throttled] + 1


def test_an_empty_token_setting_is_no_token(database_url: str) -> None:
    assert make_settings(database_url, metrics_token="").metrics_token is None
    assert make_settings(database_url, metrics_token="  ").metrics_token is None
