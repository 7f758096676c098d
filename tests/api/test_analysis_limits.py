"""What-if tallies cannot stall a worker: the file's shape is limited (`election_too_large`),
analyses run in child processes with a CPU limit, and at most ANALYSIS_SLOTS run at once
per worker (`busy`, with Retry-After); a child stopped at its limit is replaced."""

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.core.config import Settings
from app.core.errors import ElectionTooLarge
from app.main import create_app
from app.services import analysis, pabulib
from app.services.analysis import AnalysisPool
from tests.api.test_explained_results import SMALL_PB
from tests.conftest import make_settings
from tests.helpers import API, assert_problem

TALLY = f"{API}/analysis/tally"
PABULIB = Path(__file__).resolve().parents[1] / "data" / "pabulib"


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(database_url: str, engine: Engine) -> MakeClient:
    """A client of a new app (its own pool) with these settings; use it in `with`. (With
    `engine` the tables, throttle counts included, are emptied after the test.)"""

    def start(**overrides: object) -> TestClient:
        return TestClient(create_app(make_settings(database_url, **overrides)))

    return start


def pool_of(client: TestClient) -> AnalysisPool:
    pool: AnalysisPool = client.app.state.analysis_pool  # type: ignore[attr-defined]
    return pool


def costly_file(projects: int = 150, voters: int = 40_000, seed: int = 7) -> bytes:
    """A plausible election that costs Equal Shares several seconds of CPU."""
    rng = random.Random(seed)
    lines = ["META", "key;value", f"num_projects;{projects}", f"num_votes;{voters}"]
    lines += ["budget;1000000", "vote_type;approval", "PROJECTS", "project_id;cost"]
    lines += [f"p{i};{rng.randrange(1_000, 60_000)}" for i in range(projects)]
    lines += ["VOTES", "voter_id;vote"]
    for voter in range(voters):
        lines.append(f"{voter};" + ",".join(f"p{i}" for i in rng.sample(range(projects), 5)))
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("setting", "limit", "actual"),
    [
        # SMALL_PB: 3 projects of 3 distinct costs, 4 ballots choosing 7 projects in all
        ("analysis_max_projects", "projects", 3),
        ("analysis_max_approvals", "approvals", 7),
        ("analysis_max_distinct_costs", "distinct_costs", 3),
    ],
)
def test_an_election_beyond_a_shape_limit_is_refused_naming_it(
    make_client: MakeClient, setting: str, limit: str, actual: int
) -> None:
    with make_client(**{setting: actual}) as client:
        # At the limit: analysed.
        assert client.post(TALLY, content=SMALL_PB).status_code == 200
    with make_client(**{setting: actual - 1}) as client:
        problem = assert_problem(client.post(TALLY, content=SMALL_PB), 422, "election_too_large")
        assert problem["limit"] == limit
        assert problem["maximum"] == actual - 1
        assert problem["actual"] == actual
        assert f"{actual}" in problem["detail"]
        assert f"{actual - 1}" in problem["detail"]
        dutch = assert_problem(
            client.post(TALLY, content=SMALL_PB, headers={"Accept-Language": "nl"}),
            422,
            "election_too_large",
        )
        assert dutch["detail"] != problem["detail"]
        assert dutch["title"] != problem["title"]


def test_the_default_shape_limits_take_every_real_file_and_refuse_the_attack_shapes() -> None:
    defaults = Settings(_env_file=None)
    limits = analysis.Limits(
        max_votes=defaults.analysis_max_votes,
        max_projects=defaults.analysis_max_projects,
        max_approvals=defaults.analysis_max_approvals,
        max_distinct_costs=defaults.analysis_max_distinct_costs,
        cpu_seconds=defaults.analysis_cpu_seconds,
    )
    for path in sorted(PABULIB.glob("*.pb")):
        try:
            file = pabulib.read(path)
        except pabulib.PabulibError:
            continue  # a vote type Wijkbudget does not read
        analysis.check_shape(file, limits)

    def shaped(costs: list[int], ballots: int, length: int) -> pabulib.PabulibElection:
        projects = [pabulib.PabulibProject(str(i), cost) for i, cost in enumerate(costs)]
        rng = random.Random(1)
        votes = [
            tuple((i, 1) for i in sorted(rng.sample(range(len(costs)), length)))
            for _ in range(ballots)
        ]
        return pabulib.PabulibElection(
            {"budget": str(sum(costs))}, projects, [str(v) for v in range(ballots)], votes
        )

    primes = [p for p in range(2, 4_000) if all(p % d for d in range(2, int(p**0.5) + 1))]
    attacks = {
        # 500 projects of distinct prime costs, 20,000 ballots of 20
        "distinct_costs": shaped(primes[:500], 20_000, 20),
        # 1,000 projects of cost 1, 30,000 ballots of 30
        "projects": shaped([1] * 1_000, 30_000, 30),
        # 2,000 projects of random costs
        "projects ": shaped([random.Random(2).randrange(1, 10**6) for _ in range(2_000)], 300, 5),
    }
    for limit, file in attacks.items():
        with pytest.raises(ElectionTooLarge) as refused:
            analysis.check_shape(file, limits)
        assert refused.value.extra["limit"] == limit.strip()


def test_no_free_slot_is_busy_with_retry_after_and_costs_no_attempt(
    make_client: MakeClient,
) -> None:
    with make_client(
        analysis_slots=1, analysis_cpu_seconds=7, analysis_max_per_address=1
    ) as client:
        with pool_of(client).slot():  # another analysis holds the only slot
            for _ in range(2):
                response = client.post(TALLY, content=SMALL_PB)
                assert_problem(response, 503, "busy")
                # A slot frees at the latest when its analysis reaches the CPU limit.
                assert response.headers["Retry-After"] == "7"
        # The refusals counted no attempt: the one analysis this address may ask runs.
        assert client.post(TALLY, content=SMALL_PB).status_code == 200
        assert_problem(client.post(TALLY, content=SMALL_PB), 429, "too_many_attempts")


def test_two_slots_run_two_analyses_and_refuse_a_third(make_client: MakeClient) -> None:
    with make_client(analysis_slots=2) as client:
        pool = pool_of(client)
        with pool.slot():
            # One slot is still free.
            assert client.post(TALLY, content=SMALL_PB).status_code == 200
            with pool.slot():
                assert_problem(client.post(TALLY, content=SMALL_PB), 503, "busy")


def test_an_analysis_over_its_cpu_limit_is_stopped_and_its_process_replaced(
    make_client: MakeClient,
) -> None:
    with make_client(
        analysis_cpu_seconds=1,
        analysis_max_projects=10_000,
        analysis_max_approvals=10**7,
        analysis_max_distinct_costs=10_000,
    ) as client:
        pool = pool_of(client)
        first = client.post(TALLY, content=SMALL_PB)
        assert first.status_code == 200
        [child] = pool.children()
        problem = assert_problem(
            client.post(TALLY, content=costly_file()), 422, "election_too_large"
        )
        assert problem["limit"] == "cpu_seconds"
        assert problem["maximum"] == 1
        assert "1" in problem["detail"]
        # The child was stopped for good: no such process any more.
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
        # A fresh child takes the next analysis, with the same answer as before.
        again = client.post(TALLY, content=SMALL_PB)
        assert again.status_code == 200
        assert again.json() == first.json()
        assert len(pool.children()) == 1
        assert pool.children() != [child]


def test_the_answer_from_the_child_is_the_analysis_in_process(make_client: MakeClient) -> None:
    body = (PABULIB / "Netherlands_Assen_2024.pb").read_bytes()
    expected = analysis.analyse(analysis.parse(body)).model_dump(mode="json")
    with make_client() as client:
        response = client.post(TALLY, content=body)
    assert response.status_code == 200, response.text
    assert response.json() == expected
