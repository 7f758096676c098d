"""What an operator sees of the real `wijkbudget serve --workers 2` (uvicorn's worker
processes, as production runs it): the JSON request log of every worker, and GET /metrics
summed over the workers and guarded by METRICS_TOKEN."""

import json
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from tests.factories import make_user, make_voting_process
from tests.helpers import wait_until
from tests.servers import ServerProcess

TOKEN = "metrics-token-for-the-test"
WAIT = 30.0
REQUEST_FIELDS = {"time", "level", "logger", "pid", "message", "request_id"}
REQUEST_LINE_FIELDS = REQUEST_FIELDS | {"method", "path", "status", "duration_ms"}


@pytest.fixture
def servers(engine: Engine) -> Iterator[list[ServerProcess]]:
    # `engine`: the tables are emptied after each test.
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


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
            assert all(a.status_code == 200 for a in answers)
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
    # Over a raw connection, read to its end: uvicorn closes it only after it has reported
    # the exception the app re-raised, so every line about this request is written by then.
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.sendall(
            f"GET /api/v1/processes/{process.id} HTTP/1.1\r\nHost: wijkbudget\r\n"
            "X-Request-ID: boom-1\r\n\r\n".encode()
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
