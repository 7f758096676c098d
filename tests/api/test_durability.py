"""Durability: a server killed with SIGKILL mid-vote or mid-publication loses nothing it
acknowledged and leaves nothing half done. Runs the real `wijkbudget serve` on the test
database (PostgreSQL in CI, the SQLite file otherwise)."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.models.ballot import Ballot
from app.models.result import PublishedResult
from app.models.user import Role
from tests.conftest import TEST_SECRET
from tests.factories import make_user, make_voting_process, token_for
from tests.helpers import recompute_digest


class Server:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.process: subprocess.Popen[bytes] | None = None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}
        env.update(
            DATABASE_URL=self.database_url,
            SECRET_KEY=TEST_SECRET,
            ENVIRONMENT="test",
            LOG_LEVEL="WARNING",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(self.port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            assert self.process.poll() is None, "server exited"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
def server(database_url: str, engine: Engine) -> Iterator[Server]:
    running = Server(database_url)
    yield running
    running.stop()


def test_acknowledged_ballots_survive_sigkill(server: Server, session: Session) -> None:
    author = make_user(session)
    process, proposals = make_voting_process(session, author)
    voters = [make_user(session) for _ in range(400)]
    headers = {v.id: {"Authorization": f"Bearer {token_for(v, TEST_SECRET)}"} for v in voters}
    server.start()
    acked: dict[int | None, str] = {}
    in_flight: set[int | None] = set()
    lock = threading.Lock()

    def cast(n: int) -> None:
        voter = voters[n]
        body = {"proposal_ids": [proposals[n % len(proposals)].id]}
        with lock:
            in_flight.add(voter.id)
        try:
            response = httpx.put(
                f"{server.base}/processes/{process.id}/ballot",
                json=body,
                headers=headers[voter.id],
                timeout=30,
            )
        except httpx.TransportError:
            return  # the server died with this request in flight: it may or may not be stored
        with lock:
            in_flight.discard(voter.id)
            if response.status_code == 200:
                acked[voter.id] = response.json()["receipt"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(cast, n) for n in range(len(voters))]
        while len(acked) < 60:
            time.sleep(0.01)
        server.kill()
        for future in futures:
            future.result()
    assert 60 <= len(acked) < len(voters), "the kill came mid-vote"
    server.start()  # restarts on the same database, migrations included
    session.commit()
    stored = {
        b.voter_id: b.receipt
        for b in session.exec(select(Ballot).where(Ballot.process_id == process.id))
    }
    session.commit()
    for voter_id, receipt in acked.items():
        assert stored.get(voter_id) == receipt, f"acknowledged ballot of voter {voter_id} lost"
    unexpected = set(stored) - set(acked) - in_flight
    assert not unexpected, f"ballots nobody cast: {unexpected}"
    # And the restarted server still works.
    late = voters[-1]
    response = httpx.put(
        f"{server.base}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[0].id]},
        headers=headers[late.id],
    )
    assert response.status_code == 200


def test_a_publication_killed_midway_is_all_or_nothing(server: Server, session: Session) -> None:
    admin = make_user(session, role=Role.admin)
    process, proposals = make_voting_process(
        session, admin, tally_rule="mes", costs=tuple(range(500, 2500, 100))
    )
    voters = [make_user(session) for _ in range(1500)]
    assert process.id is not None
    for n, voter in enumerate(voters):
        chosen = sorted({proposals[(n * k) % len(proposals)].id or 0 for k in (1, 3, 7)})
        session.add(
            Ballot(
                process_id=process.id,
                voter_id=voter.id,
                items=[[pid, 1] for pid in chosen],
                total_cost=0,
                receipt=f"r{n}",
            )
        )
    process.phase = "closed"
    session.add(process)
    session.commit()
    server.start()
    admin_headers = {"Authorization": f"Bearer {token_for(admin, TEST_SECRET)}"}
    outcome: dict[str, Any] = {}

    def publish() -> None:
        try:
            outcome["response"] = httpx.post(
                f"{server.base}/processes/{process.id}/results", headers=admin_headers, timeout=60
            )
        except httpx.TransportError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=publish)
    worker.start()
    time.sleep(0.15)
    server.kill()
    worker.join()
    server.start()
    session.commit()
    row = session.exec(
        select(PublishedResult).where(PublishedResult.process_id == process.id)
    ).first()
    session.commit()
    results = httpx.get(f"{server.base}/processes/{process.id}/results")
    if row is None:
        assert results.json()["code"] == "results_not_published"
        # Not published: publishing now works, once.
        assert (
            httpx.post(
                f"{server.base}/processes/{process.id}/results", headers=admin_headers, timeout=60
            ).status_code
            == 201
        )
        results = httpx.get(f"{server.base}/processes/{process.id}/results")
    body = results.json()
    assert results.status_code == 200
    assert body["ballot_count"] == 1500
    pb_text = httpx.get(f"{server.base}/processes/{process.id}/results.pb").text
    assert recompute_digest(pb_text, "mes", body["selected_ids"]) == body["digest"]
