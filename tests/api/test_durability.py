"""Durability: a server killed with SIGKILL mid-vote or mid-publication loses nothing it
acknowledged and leaves nothing half done. Runs the real `wijkbudget serve` on the test
database (PostgreSQL in CI, the SQLite file otherwise).

The kill is never timed by a sleep. The test holds a lock the server needs, waits until the
server is observably stuck behind it — on PostgreSQL a backend of the server waiting on that
lock in the middle of its transaction, on SQLite the requests fully sent while the test holds
the only write lock — and kills then, so the outcome is known in advance.
"""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from app.models.audit import AuditEntry
from app.models.ballot import Ballot
from app.models.result import PublishedResult
from app.models.user import Role
from tests.conftest import TEST_SECRET
from tests.factories import make_user, make_voting_process, token_for
from tests.helpers import assert_problem, ballots_with_voters, recompute_digest, wait_until
from tests.servers import ServerProcess, backends_waiting_on_locks, sqlite_write_lock

pytestmark = pytest.mark.slow

WAIT = 30.0  # seconds any awaited state may take on a loaded 2-core machine


@pytest.fixture
def server(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess(database_url, tmp_path, name="wb-durability")
    yield running
    running.stop()


class Sent:
    """Which requests have been written to the server completely (httpcore's trace)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.unanswered: set[object] = set()

    def tracer(self, key: object) -> Any:
        def trace(event: str, _info: dict[str, Any]) -> None:
            if event == "http11.send_request_body.complete":
                with self.lock:
                    self.unanswered.add(key)

        return trace

    def answered(self, key: object) -> None:
        with self.lock:
            self.unanswered.discard(key)

    def count(self) -> int:
        with self.lock:
            return len(self.unanswered)


def test_acknowledged_ballots_survive_sigkill(
    server: ServerProcess, session: Session, engine: Engine
) -> None:
    author = make_user(session)
    process, proposals = make_voting_process(session, author)
    voters = [make_user(session) for _ in range(400)]
    early, held = voters[:200], voters[200:]
    headers = {v.id: {"Authorization": f"Bearer {token_for(v, TEST_SECRET)}"} for v in voters}
    server.start()
    acked: dict[int | None, str] = {}
    unanswered: set[int | None] = set()
    sent = Sent()
    lock = threading.Lock()
    threads = 16

    def cast(n: int) -> None:
        voter = voters[n]
        try:
            response = http.put(
                f"{server.base}/processes/{process.id}/ballot",
                json={"proposal_ids": [proposals[n % len(proposals)].id]},
                headers=headers[voter.id],
                timeout=60,
                extensions={"trace": sent.tracer(voter.id)},
            )
        except httpx.TransportError:
            with lock:  # the server died with this request in flight
                unanswered.add(voter.id)
            return
        sent.answered(voter.id)
        assert response.status_code == 200, response.text
        with lock:
            acked[voter.id] = response.json()["receipt"]

    postgres = engine.dialect.name == "postgresql"
    with (
        httpx.Client(limits=httpx.Limits(max_connections=threads)) as http,
        ThreadPoolExecutor(max_workers=threads) as pool,
        engine.connect() as blocker,
    ):
        if postgres:
            # Lock the later voters' accounts: their casts insert the ballot row and then wait
            # in its foreign-key check, mid-transaction, until the test lets go.
            blocker.execute(
                text("SELECT id FROM user_account WHERE id = ANY(:ids) FOR UPDATE"),
                {"ids": [v.id for v in held]},
            )
        futures = [pool.submit(cast, n) for n in range(len(early))]
        wait_until(lambda: len(acked) == len(early), timeout=WAIT * 2, what="the early casts ack")
        with sqlite_write_lock(engine) if not postgres else nullcontext():
            futures += [pool.submit(cast, n) for n in range(len(early), len(voters))]
            # Every client thread has a held cast fully sent and unanswered ...
            wait_until(lambda: sent.count() == threads, timeout=WAIT, what="16 held casts are sent")
            if postgres:  # ... and the server is inside some of them, stuck on the lock.
                wait_until(
                    lambda: [
                        q
                        for q in backends_waiting_on_locks(engine, server.name)
                        if "INSERT INTO ballot" in q
                    ],
                    timeout=WAIT,
                    what="a ballot insert of the server waits on the test's lock",
                )
            server.kill()
        blocker.rollback()
        for future in futures:
            future.result()
    assert set(acked) == {v.id for v in early}, "the kill came mid-vote, after the early casts"
    assert len(unanswered) == len(held)
    server.start()  # restarts on the same database, migrations included
    stored = {v: b.receipt for v, b in ballots_with_voters(session, [process.id])}
    # Exactly the acknowledged ballots: none lost, and none of the casts killed in flight
    # was committed (none of them could get past the test's lock).
    assert stored == acked
    # And the restarted server still works, for a voter whose cast was killed.
    late = held[-1]
    response = httpx.put(
        f"{server.base}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[0].id]},
        headers=headers[late.id],
        timeout=60,
    )
    assert response.status_code == 200


def test_a_publication_killed_midway_is_all_or_nothing(
    server: ServerProcess, session: Session, engine: Engine
) -> None:
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
    results_url = f"{server.base}/processes/{process.id}/results"
    outcome: dict[str, Any] = {}
    sent = Sent()

    def publish() -> None:
        try:
            with httpx.Client() as http:
                outcome["response"] = http.post(
                    results_url,
                    headers=admin_headers,
                    timeout=60,
                    extensions={"trace": sent.tracer("publish")},
                )
        except httpx.TransportError as exc:
            outcome["error"] = exc

    postgres = engine.dialect.name == "postgresql"
    worker = threading.Thread(target=publish)
    with engine.connect() as blocker:
        if postgres:
            # Lock the admin's account: the publication computes the tally, writes the
            # published_result row, then waits in the audit entry's foreign-key check.
            blocker.execute(
                text("SELECT id FROM user_account WHERE id = :id FOR UPDATE"), {"id": admin.id}
            )
        with sqlite_write_lock(engine) if not postgres else nullcontext():
            worker.start()
            wait_until(lambda: sent.count() == 1, timeout=WAIT, what="the publication is sent")
            if postgres:
                wait_until(
                    lambda: _publication_blocked_after_writing(engine, server.name),
                    timeout=WAIT * 2,
                    what="the publication has written its result and waits on the audit entry",
                )
            server.kill()
        blocker.rollback()
    worker.join(timeout=WAIT)
    assert not worker.is_alive()
    assert "response" not in outcome, "the publication was killed before it answered"
    # Nothing half done: no result row, no audit entry, and the restarted server says so.
    session.commit()
    assert session.get(PublishedResult, process.id) is None
    published = select(AuditEntry).where(AuditEntry.action == "results.published")
    assert session.exec(published).first() is None
    session.commit()
    server.start()
    assert_problem(httpx.get(results_url), 404, "results_not_published")
    # Not published: publishing now works, once ...
    assert httpx.post(results_url, headers=admin_headers, timeout=60).status_code == 201
    assert_problem(
        httpx.post(results_url, headers=admin_headers, timeout=60),
        409,
        "results_already_published",
    )
    before = httpx.get(results_url).json()
    # ... and, once acknowledged, survives a SIGKILL whole.
    server.kill()
    server.start()
    results = httpx.get(results_url)
    assert results.status_code == 200
    body = results.json()
    assert body == before
    assert body["ballot_count"] == 1500
    pb_text = httpx.get(f"{server.base}/processes/{process.id}/results.pb").text
    assert recompute_digest(pb_text, "mes", body["selected_ids"]) == body["digest"]
    session.commit()
    assert len(session.exec(published).all()) == 1
    session.commit()


def _publication_blocked_after_writing(engine: Engine, application_name: str) -> bool:
    """A backend of the server waits on a lock in an audit insert while holding the write
    lock it took on published_result: the publication is between its two writes."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT a.query FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                "WHERE a.datname = current_database() AND a.application_name = :name "
                "AND a.wait_event_type = 'Lock' AND l.granted "
                "AND l.relation = 'published_result'::regclass AND l.mode = 'RowExclusiveLock'"
            ),
            {"name": application_name},
        ).all()
    return any("INSERT INTO audit_entry" in row[0] for row in rows)
