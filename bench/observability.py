"""What logging and metrics cost per request: `python -m bench.observability` (or
`make bench-observability`).

Starts two `wijkbudget serve --workers 2` on one SQLite database, in the same run: one as
production runs it (a JSON line per request, written to a file, and per-request metrics
with METRICS_TOKEN set, PROMETHEUS_MULTIPROC_DIR in a temporary directory) and one without
either (LOG_REQUESTS=false, no METRICS_TOKEN). Both are up throughout; only one is driven
at a time, alternating, each for --seconds with wrk (Debian package `wrk`; without it, a
threaded httpx loop), --repeats times. For each endpoint it prints the median requests per
second of both, their ratio, and the extra server time per request that the difference
implies (2 busy cores: 2 / rps_with - 2 / rps_without).

Endpoints: /healthz (no database, so the instrumentation is the largest share of the work)
and GET /api/v1/processes (one read from the database).

On a shared, loaded machine the throughput of two servers varies more than logging costs,
so the same run also times the instrumentation alone, in this process, in CPU time: the app (both
variants, built by `create_app` as the workers build it, metrics in multiprocess mode,
JSON lines to a file) called directly as ASGI for GET /healthz, without a server or a
socket, alternating, --repeats times; the difference of the medians is what logging and
metrics add to each request.
"""

import argparse
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ENDPOINTS = ("/healthz", "/api/v1/processes")
CORES = 2  # the workers; the machine's cores are shared with wrk


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command() -> list[str]:
    script = Path(sys.executable).with_name("wijkbudget")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app"]


@contextmanager
def server(workdir: Path, name: str, env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    log = (workdir / f"{name}.log").open("wb")
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")},
        "ENVIRONMENT": "test",
        "SECRET_KEY": SECRET,
        "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "MAIL_SENDER_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "INFO",
        **env,
    }
    process = subprocess.Popen(
        [*_command(), "serve", "--port", str(port), "--workers", "2"],
        env=full,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=workdir,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited: {(workdir / f'{name}.log').read_text()}")
            try:
                if httpx.get(f"{root}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start")
            time.sleep(0.2)
        yield root
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)
        log.close()


SECRET = secrets.token_urlsafe(48)


def _wrk(url: str, seconds: float, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found is None or non2xx is not None:
        raise SystemExit(f"wrk: unexpected output\n{out}")
    return float(found.group(1))


def _httpx_loop(url: str, seconds: float, connections: int) -> float:
    done = [0] * connections
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop:
                client.get(url).raise_for_status()
                done[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def _in_process(workdir: Path, repeats: int, calls: int) -> tuple[float, float]:
    """Microseconds per GET /healthz through the app without, and with, the instrumentation."""
    import asyncio
    import contextlib

    from app.core.config import Settings
    from app.core.logsetup import configure
    from app.main import create_app

    def app(**overrides: object) -> object:
        return create_app(
            Settings(
                _env_file=None,
                environment="test",
                secret_key=SECRET,
                database_url=f"sqlite:///{workdir}/bench.db",
                mail_sender_interval_seconds=0,
                log_format="json",
                **overrides,  # type: ignore[arg-type]
            )
        )

    configure("INFO", "json")
    variants = {
        "without": app(log_requests=False),
        "with": app(log_requests=True, metrics_token="in-process"),
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"in-process: {message}")

    async def run(asgi: object) -> float:
        # CPU time of this process (its threads included), not wall time: on a shared
        # machine the other tenants' load would otherwise be most of the difference.
        started = time.process_time()
        for _ in range(calls):
            await asgi(dict(scope), receive, send)  # type: ignore[operator]
        return (time.process_time() - started) / calls * 1e6

    timings: dict[str, list[float]] = {"without": [], "with": []}
    with (workdir / "in-process.log").open("w") as sink, contextlib.redirect_stderr(sink):
        for asgi in variants.values():
            asyncio.run(run(asgi))  # warm up
        for _ in range(repeats):
            for name, asgi in variants.items():
                timings[name].append(asyncio.run(run(asgi)))
    return statistics.median(timings["without"]), statistics.median(timings["with"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--calls", type=int, default=3000, help="in-process calls per timing")
    parser.add_argument("--in-process-repeats", type=int, default=9)
    parser.add_argument("--in-process-only", action="store_true")
    args = parser.parse_args()
    drive = _wrk if shutil.which("wrk") else _httpx_loop
    print(f"driver: {'wrk' if drive is _wrk else 'httpx threads'}, {args.connections} connections")
    print(f"load before: {os.getloadavg()[0]:.2f} (1-minute average)")
    with tempfile.TemporaryDirectory(prefix="wb-bench-obs-") as tmp:
        workdir = Path(tmp)
        # Metrics as the workers keep them (files), before prometheus_client is imported.
        (workdir / "metrics").mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")
        if not args.in_process_only:
            subprocess.run(
                [*_command(), "migrate"],
                env={**os.environ, "DATABASE_URL": f"sqlite:///{workdir}/bench.db"},
                check=True,
                capture_output=True,
            )
            instrumented = {
                "LOG_FORMAT": "json",
                "LOG_REQUESTS": "true",
                "METRICS_TOKEN": secrets.token_urlsafe(24),
            }
            bare = {"LOG_FORMAT": "json", "LOG_REQUESTS": "false"}
            with (
                server(workdir, "with", instrumented) as with_root,
                server(workdir, "without", bare) as without_root,
            ):
                for endpoint in ENDPOINTS:
                    figures: dict[str, list[float]] = {"with": [], "without": []}
                    for root in (with_root, without_root):
                        drive(f"{root}{endpoint}", 1, args.connections)  # warm up
                    for _ in range(args.repeats):
                        for name, root in (("without", without_root), ("with", with_root)):
                            figures[name].append(
                                drive(f"{root}{endpoint}", args.seconds, args.connections)
                            )
                    rps_with = statistics.median(figures["with"])
                    rps_without = statistics.median(figures["without"])
                    extra_us = (CORES / rps_with - CORES / rps_without) * 1e6
                    print(
                        f"GET {endpoint}: without {rps_without:,.0f} req/s, with logging and "
                        f"metrics {rps_with:,.0f} req/s (medians of {args.repeats}; runs "
                        f"{[round(x) for x in figures['without']]} / "
                        f"{[round(x) for x in figures['with']]}); ratio {rps_with / rps_without:.3f}, "
                        f"about {extra_us:,.0f} us more server time per request"
                    )
            lines = sum(1 for _ in (workdir / "with.log").open())
            print(f"the instrumented server wrote {lines:,} log lines")
        without_us, with_us = _in_process(workdir, args.in_process_repeats, args.calls)
        print(
            f"in process, GET /healthz through the app alone, CPU time: without {without_us:,.0f} us, "
            f"with logging and metrics {with_us:,.0f} us per request (medians of "
            f"{args.in_process_repeats} x {args.calls:,} calls): {with_us - without_us:,.0f} us "
            f"more, ratio {with_us / without_us:.2f}"
        )
    print(f"load after: {os.getloadavg()[0]:.2f} (1-minute average)")


if __name__ == "__main__":
    main()
