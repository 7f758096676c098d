"""Attackers at the socket, against the real `wijkbudget serve` (uvicorn, as operators run it)
on the test database: clients that trickle their bodies, and forged proxy headers."""

import socket
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.helpers import API
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 40
ANSWER_WITHIN = 1.0  # seconds
WAIT = 30.0  # seconds any awaited state may take on a loaded 2-core machine
_STALLED = (
    f"POST {API}/auth/register HTTP/1.1\r\nHost: wijkbudget\r\n"
    "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    '{"em'
).encode()


def _stall(port: int, stack: ExitStack) -> socket.socket:
    """A connection that sent its headers and 4 of the 100 bytes of its body."""
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=WAIT))
    sock.sendall(_STALLED)
    return sock


def _read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or WAIT passes)."""
    chunks = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    else:
        raise AssertionError("the server kept the connection open")
    return b"".join(chunks)


def _serve(
    servers: list[ServerProcess], database_url: str, tmp_path: Path, name: str, **options: object
) -> ServerProcess:
    server = ServerProcess(database_url, tmp_path, name=name, **options)  # type: ignore[arg-type]
    servers.append(server)
    server.start()
    return server


def _timed_get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        response = httpx.get(url, timeout=ANSWER_WITHIN)
    except httpx.TimeoutException:
        return 0, time.perf_counter() - started
    return response.status_code, time.perf_counter() - started


def test_slow_bodies_do_not_freeze_the_api(
    servers: list[ServerProcess], database_url: str, tmp_path: Path
) -> None:
    # One worker, so all 40 land on it (its database slots are pool 5 + overflow 5 = 10);
    # a body timeout far off, so the slow clients stay while the API is measured.
    server = _serve(
        servers,
        database_url,
        tmp_path,
        "wb-slow",
        workers=1,
        env={"BODY_TIMEOUT_SECONDS": "120"},
    )
    assert _timed_get(f"{server.base}/processes")[0] == 200  # warm: imports, first connection
    with ExitStack() as stack:
        stalled = [_stall(server.port, stack) for _ in range(SLOW_CLIENTS)]
        timings = {
            "/healthz": _timed_get(f"{server.root}/healthz"),
            "/api/v1/processes": _timed_get(f"{server.base}/processes"),
        }
        print(f"with {SLOW_CLIENTS} slow clients open: {timings}")
        for path, (status, seconds) in timings.items():
            assert status == 200, f"{path} gave no answer within {ANSWER_WITHIN} s"
            assert seconds < ANSWER_WITHIN, (path, seconds)
        # They were really waiting all along: none has been answered or dropped.
        for sock in stalled:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)


def test_a_body_that_stalls_is_answered_408_and_the_connection_closed(
    servers: list[ServerProcess], database_url: str, tmp_path: Path
) -> None:
    server = _serve(servers, database_url, tmp_path, "wb-stall", env={"BODY_TIMEOUT_SECONDS": "1"})
    with ExitStack() as stack:
        started = time.monotonic()
        answer = _read_to_end(_stall(server.port, stack))
        waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"content-type: application/problem+json" in head.lower()
    assert b'"code":"request_timeout"' in body
    assert waited >= 1.0
    # The server is still fine.
    assert httpx.get(f"{server.root}/healthz", timeout=WAIT).status_code == 200


def _register(server: ServerProcess, n: int, forwarded_for: str) -> int:
    response = httpx.post(
        f"{server.base}/auth/register",
        json={
            "email": f"edge{n}@example.org",
            "password": "a long passphrase",
            "display_name": f"Edge {n}",
            "postcode": None,
            "birth_year": None,
        },
        headers={"X-Forwarded-For": forwarded_for},
        timeout=WAIT,
    )
    return response.status_code


def test_forwarded_for_counts_only_from_an_allowed_proxy(
    servers: list[ServerProcess], database_url: str, tmp_path: Path
) -> None:
    one_each = {"REGISTER_MAX_PER_ADDRESS": "1"}
    # By default no proxy is believed: every request is 127.0.0.1's, whatever it says.
    direct = _serve(servers, database_url, tmp_path, "wb-direct", workers=1, env=one_each)
    assert _register(direct, 1, "203.0.113.1") == 201
    assert _register(direct, 2, "203.0.113.2") == 429
    direct.stop()

    proxied = _serve(
        servers,
        database_url,
        tmp_path,
        "wb-proxied",
        workers=1,
        env=one_each,
        args=["--forwarded-allow-ips", "127.0.0.1"],
    )
    # Behind the allowed proxy each client address has its own bucket.
    assert _register(proxied, 3, "203.0.113.1") == 201
    assert _register(proxied, 4, "203.0.113.2") == 201
    assert _register(proxied, 5, "203.0.113.1") == 429
    # What is no address (here 400 characters) is no failure and no fresh bucket either:
    # all such clients share one.
    assert _register(proxied, 6, "x" * 400) == 201
    assert _register(proxied, 7, "y" * 400) == 429
