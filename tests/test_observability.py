"""What an operator sees of the real `wijkbudget serve --workers 2` (uvicorn's worker
processes, as production runs it): the JSON request log of every worker, and GET /metrics
summed over the workers and guarded by METRICS_TOKEN."""

import json
import re
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, text
from sqlmodel import Session, select

from app.models.base import utcnow
from app.models.mail import MailStatus, OutgoingMail
from tests.conftest import TEST_SECRET
from tests.factories import auth, make_user, make_voting_process
from tests.helpers import wait_until
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

TOKEN = "metrics-token-for-the-test"
WAIT = 30.0
REQUEST_FIELDS = {"time", "level", "logger", "pid", "message", "request_id"}
REQUEST_LINE_FIELDS = REQUEST_FIELDS | {"method", "path", "status", "duration_ms"}


def _serve(
    servers: list[ServerProcess], database_url: str, tmp_path: Path, **env: str
) -> ServerProcess:
    server = ServerProcess(
        database_url,
        tmp_path,
        name="wb-observed",
        workers=2,
        env={
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            "MAIL_BALLOT_RECEIPTS": "false",
            **env,
        },
    )
    servers.append(server)
    server.start()
    return server


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def _log(server: ServerProcess) -> list[dict[str, Any]]:
    """The JSON lines of the server's output (the command's own plain lines left out)."""
    entries = []
    for line in server.log_path.read_text().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))  # every such line must be one whole object
    return entries


def _request_lines(server: ServerProcess, prefix: str) -> list[dict[str, Any]]:
    return [
        e
        for e in _log(server)
        if e["logger"] == "wijkbudget.request" and e.get("request_id", "").startswith(prefix)
    ]


def _get(url: str, request_id: str, **headers: str) -> httpx.Response:
    # A connection per request, so the kernel may hand each to either worker.
    return httpx.get(url, headers={"X-Request-ID": request_id, **headers}, timeout=WAIT)


def _until_both_workers_answered(server: ServerProcess, url: str, prefix: str) -> list[str]:
    """GET `url` in parallel batches until both workers have logged some; the ids sent.

    (Each worker's log is what was missing: with --workers 2 there was none at all.)"""
    sent: list[str] = []
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(8) as pool:
        while time.monotonic() < deadline:
            batch = [f"{prefix}{len(sent) + n}" for n in range(16)]
            sent.extend(batch)
            answers = list(pool.map(lambda rid: _get(url, rid), batch))
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            wait_until(
                lambda: len(_request_lines(server, prefix)) >= len(sent),
                timeout=WAIT,
                what="every request logged",
            )
            if len({e["pid"] for e in _request_lines(server, prefix)}) == 2:
                break
    return sent


def test_every_worker_logs_each_request_once_as_json(
    servers: list[ServerProcess], database_url: str, tmp_path: Path, session: Session
) -> None:
    server = _serve(servers, database_url, tmp_path)
    assert server.process is not None
    sent = _until_both_workers_answered(server, f"{server.base}/processes", "obs-")
    pids_seen = {e["pid"] for e in _request_lines(server, "obs-")}
    lines = _request_lines(server, "obs-")
    # Each request exactly once, with every documented field.
    assert Counter(e["request_id"] for e in lines) == Counter(sent)
    for entry in lines:
        assert set(entry) >= REQUEST_LINE_FIELDS, entry
        assert (entry["level"], entry["method"], entry["path"], entry["status"]) == (
            "INFO",
            "GET",
            "/api/v1/processes",
            200,
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
        assert isinstance(entry["duration_ms"], float)
    workers = _children(server.process.pid)
    assert len(pids_seen) == 2, f"only worker(s) {pids_seen} answered"
    assert pids_seen <= workers

    # A receipt is masked, and so is nothing else of the path; a 404 is logged like a 200.
    receipt = "R-do-not-log-me"
    assert _get(f"{server.base}/processes/7/receipts/{receipt}", "rcpt-1").status_code == 404
    wait_until(lambda: _request_lines(server, "rcpt-"), timeout=WAIT, what="receipt logged")
    [line] = _request_lines(server, "rcpt-")
    assert (line["path"], line["status"]) == ("/api/v1/processes/7/receipts/***", 404)
    assert receipt not in server.log_path.read_text()


def test_an_unexpected_error_is_one_line_with_its_request_id_and_one_traceback(
    servers: list[ServerProcess], database_url: str, tmp_path: Path, session: Session
) -> None:
    author = make_user(session)
    process, _ = make_voting_process(session, author)
    server = _serve(servers, database_url, tmp_path)
    # A row the code cannot have written (an unknown phase) fails the response: a 500.
    with session.begin():
        session.execute(
            text("UPDATE process SET phase = 'bogus' WHERE id = :id"), {"id": process.id}
        )
    # Over a raw connection, read to its end: the server answers and keeps the connection
    # (asked to close it, it does so once the request is done and its lines written).
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.sendall(
            f"GET /api/v1/processes/{process.id} HTTP/1.1\r\nHost: wijkbudget\r\n"
            "X-Request-ID: boom-1\r\nConnection: close\r\n\r\n".encode()
        )
        answer = _read_to_end(sock)
    assert answer.startswith(b"HTTP/1.1 500 "), answer
    assert b'"code":"internal_error"' in answer

    def logged() -> list[dict[str, Any]]:
        return [e for e in _log(server) if e.get("request_id") == "boom-1"]

    entries = logged()
    errors = [e for e in entries if e["level"] == "ERROR"]
    requests = [e for e in entries if e["logger"] == "wijkbudget.request"]
    assert len(requests) == 1
    assert requests[0]["status"] == 500
    assert len(errors) == 1, errors
    assert errors[0]["traceback"].startswith("Traceback")
    assert f"/api/v1/processes/{process.id}" in errors[0]["message"]
    # Exactly one traceback in the whole output, request id or not.
    assert server.log_path.read_text().count("Traceback (most recent call last)") == 1


def _read_to_end(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    raise AssertionError("the server kept the connection open")


def _metrics(server: ServerProcess, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.root}/metrics", headers=headers, timeout=WAIT)


def _samples(body: str) -> dict[str, float]:
    """`name{labels}` -> value, of every sample line."""
    values = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_are_summed_over_the_workers(
    servers: list[ServerProcess], database_url: str, tmp_path: Path, session: Session
) -> None:
    author = make_user(session)
    process, proposals = make_voting_process(session, author)
    voters = [make_user(session) for _ in range(6)]
    hour_ago = utcnow() - timedelta(hours=1)
    session.add(
        OutgoingMail(
            to_address="late@example.org",
            kind="verify_email",
            status=MailStatus.pending,
            next_attempt_at=hour_ago,
            created_at=hour_ago,
        )
    )
    session.commit()
    server = _serve(
        servers,
        database_url,
        tmp_path,
        METRICS_TOKEN=TOKEN,
        REGISTER_MAX_PER_ADDRESS="1",
    )
    assert server.process is not None
    sent = _until_both_workers_answered(server, f"{server.base}/processes/{process.id}", "m-")
    with ThreadPoolExecutor(6) as pool:
        casts = list(
            pool.map(
                lambda voter: httpx.put(
                    f"{server.base}/processes/{process.id}/ballot",
                    json={"proposal_ids": [proposals[0].id]},
                    headers=auth(voter, TEST_SECRET),
                    timeout=WAIT,
                ),
                voters,
            )
        )
    assert all(c.status_code in (200, 201) for c in casts), [c.text for c in casts]
    registrations = [
        httpx.post(
            f"{server.base}/auth/register",
            json={
                "email": f"new{n}@example.org",
                "password": "long enough pw",
                "display_name": "N",
            },
            timeout=WAIT,
        ).status_code
        for n in range(2)
    ]
    assert registrations == [201, 429]
    # Both workers served: the figures below are sums, not one worker's.
    assert len({e["pid"] for e in _request_lines(server, "m-")}) == 2
    requests = len(sent)
    pending = session.exec(
        select(func.count()).where(OutgoingMail.status == MailStatus.pending)
    ).one()
    assert pending >= 2  # the late one and the new account's verification

    scraped = _metrics(server)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    values = _samples(scraped.text)
    route = "/api/v1/processes/{process_id}"
    assert (
        values[f'wijkbudget_http_requests_total{{method="GET",route="{route}",status="200"}}']
        == requests
    )
    assert (
        values[f'wijkbudget_http_request_duration_seconds_count{{method="GET",route="{route}"}}']
        == requests
    )
    assert values["wijkbudget_ballots_cast_total"] == len(voters)
    assert values['wijkbudget_throttled_total{kind="register-address"}'] == 1
    assert values["wijkbudget_mail_outbox_pending"] == pending
    assert values["wijkbudget_mail_outbox_oldest_pending_age_seconds"] >= 3600
    assert values["wijkbudget_database_up"] == 1
    # Both workers' slots; nothing holds a connection or waits between requests.
    assert values["wijkbudget_db_connection_slots"] == 2 * (5 + 5)
    assert values["wijkbudget_db_connections_in_use"] <= 1  # (this scrape's own)
    assert values["wijkbudget_db_requests_waiting"] == 0
    # No raw paths, so no ids and no receipts, among the labels.
    assert f"/processes/{process.id}" not in scraped.text


def test_metrics_need_the_token(
    servers: list[ServerProcess], database_url: str, tmp_path: Path
) -> None:
    server = _serve(servers, database_url, tmp_path, METRICS_TOKEN=TOKEN)
    for token in (None, "wrong", TOKEN + "x"):
        refused = _metrics(server, token)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "not_authenticated"
        assert "wijkbudget_" not in refused.text
    basic = httpx.get(
        f"{server.root}/metrics", headers={"Authorization": f"Basic {TOKEN}"}, timeout=WAIT
    )
    assert basic.status_code == 401
    # Not part of the API's public description.
    assert "/metrics" not in httpx.get(f"{server.root}/openapi.json", timeout=WAIT).json()["paths"]


def test_without_a_token_setting_there_is_no_metrics_endpoint(
    servers: list[ServerProcess], database_url: str, tmp_path: Path
) -> None:
    server = _serve(servers, database_url, tmp_path)
    for token in (None, TOKEN, ""):
        missing = _metrics(server, token)
        assert missing.status_code == 404
        assert missing.json()["code"] == "not_found"
