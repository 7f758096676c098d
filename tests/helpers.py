"""Assertions shared by the API tests."""

import contextlib
import hashlib
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from pabulib.checker import Checker
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from app.models.ballot import Ballot, BallotVoter
from app.services import pabulib

API = "/api/v1"

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WaitTimeout(AssertionError):
    """A condition a test waited for never came about."""


def wait_until(
    predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.02
) -> T:
    """Poll `predicate` until it returns something truthy and return that, or fail after
    `timeout` seconds saying `what` was awaited. Every wait in a test has a deadline; the
    polling interval only spaces out the checks, it orders nothing."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"gave up after {timeout:g} s waiting until {what}")
        time.sleep(interval)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"]
    assert body["detail"]
    return body


def count_rows(session: Session, table: type[SQLModel]) -> int:
    """Rows in `table` as committed now. Ends the session's transaction before and after,
    so no stale SQLite snapshot outlives the call."""
    session.commit()
    count = session.exec(select(func.count()).select_from(table)).one()
    session.commit()
    return count


def ballots_with_voters(
    session: Session, process_ids: Sequence[int | None]
) -> list[tuple[int | None, Ballot]]:
    """Every ballot of the processes as committed now, with the voter its link names (None
    for a ballot no link names: paper, sealed, or kept after its voter's erasure). Ends the
    session's transaction before and after, as `count_rows` does."""
    session.commit()
    rows = session.exec(
        select(BallotVoter.voter_id, Ballot)
        .outerjoin(BallotVoter, col(BallotVoter.ballot_id) == col(Ballot.id))
        .where(col(Ballot.process_id).in_(process_ids))
        .order_by(col(Ballot.id))
    ).all()
    session.commit()
    return [(voter_id, ballot) for voter_id, ballot in rows]


def recompute_digest(pb_text: str, rule: str, selected_ids: list[int]) -> str:
    """The README's recipe, written out independently of the app's code, from results.pb."""
    election = pabulib.parse(pb_text)
    ids = [int(p.project_id) for p in election.projects]
    proposals = sorted([pid, p.cost] for pid, p in zip(ids, election.projects, strict=True))
    ballots = sorted(sorted([ids[i], w] for i, w in ballot) for ballot in election.ballots)
    canonical = {
        "budget": election.budget,
        "rule": rule,
        "proposals": proposals,
        "ballots": ballots,
        "selected_ids": sorted(selected_ids),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def checker_errors(text: str) -> dict[str, Any]:
    """The errors pabulib-checker reports for a pabulib file (it prints; that is muted)."""
    with contextlib.redirect_stdout(io.StringIO()):
        results = Checker().process_files([text])
    (key,) = [k for k in results if k not in ("metadata", "summary")]
    found = results[key]["results"]
    return {} if isinstance(found, str) else dict(found.get("errors", {}))


def all_at_once(calls: Sequence[Callable[[], T]], *, timeout: float = 60) -> list[T]:
    """Run every call in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls), timeout=timeout)

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
