"""Prometheus metrics, served at `GET /metrics` (only when `METRICS_TOKEN` is set), summed
over every worker of `wijkbudget serve`.

Each worker writes its figures to memory-mapped files in `PROMETHEUS_MULTIPROC_DIR` (which
`serve` makes empty before the workers start and removes after); a scrape, answered by any
one worker, reads all of them (prometheus-client's multiprocess mode). Counters and
histograms of a worker that died still count (their totals do not go down); the gauges of
dead workers are dropped (`livesum`), checked at each scrape. Without that directory (one
process: tests, a bare uvicorn) the figures are the process's own.

Metrics:

    wijkbudget_http_requests_total{method, route, status}
        requests answered, by route template ("/api/v1/processes/{process_id}/ballot",
        never a raw path: no ids, no receipts) and status; unrouted paths are "unmatched"
    wijkbudget_http_request_duration_seconds{method, route}
        histogram of the time to answer (to the end of the response body)
    wijkbudget_db_connections_in_use
        database connections checked out of the workers' pools now
    wijkbudget_db_connection_slots
        connections the live workers may hold (DB_POOL_SIZE + DB_MAX_OVERFLOW each)
    wijkbudget_db_requests_waiting
        requests waiting for one of those connections now
    wijkbudget_mail_outbox_pending, wijkbudget_mail_outbox_failed
        mails waiting to be sent, and kept as failed (read from the database at scrape time)
    wijkbudget_mail_outbox_oldest_pending_age_seconds
        how long the oldest pending mail has waited (0 when none)
    wijkbudget_database_up
        1 when the scrape could read the outbox from the database, else 0
    wijkbudget_ballots_cast_total
        online ballots cast or changed (successful PUT .../ballot), all processes together.
        Deliberately without a process label: a count per process during voting would be a
        live turnout figure per neighbourhood, which the municipality publishes only with
        the results. It never says anything about choices.
    wijkbudget_throttled_total{kind}
        attempts refused by an abuse limit (429), by bucket kind ("login-address", ...)
    wijkbudget_analysis_total{outcome}, wijkbudget_analysis_duration_seconds{outcome}
        what-if tallies (POST /analysis/tally) by outcome, and their time
    wijkbudget_build_info{version}
        always 1; the version this server runs
"""

import contextlib
import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine, event

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED = "unmatched"
# The one route whose successes count as ballots cast.
BALLOT_ROUTE = ("PUT", "/api/v1/processes/{process_id}/ballot")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

log = logging.getLogger("wijkbudget.metrics")
P = ParamSpec("P")
R = TypeVar("R")

REQUESTS = Counter(
    "wijkbudget_http_requests_total",
    "Requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "wijkbudget_http_request_duration_seconds",
    "Time to answer a request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DB_IN_USE = Gauge(
    "wijkbudget_db_connections_in_use",
    "Database connections checked out of the workers' pools.",
    multiprocess_mode="livesum",
)
DB_SLOTS = Gauge(
    "wijkbudget_db_connection_slots",
    "Database connections the live workers may hold (pool size + overflow each).",
    multiprocess_mode="livesum",
)
DB_WAITING = Gauge(
    "wijkbudget_db_requests_waiting",
    "Requests waiting for a database connection.",
    multiprocess_mode="livesum",
)
BALLOTS = Counter(
    "wijkbudget_ballots_cast_total",
    "Online ballots cast or changed, every process together (no per-process count).",
)
THROTTLED = Counter(
    "wijkbudget_throttled_total",
    "Attempts refused by an abuse limit (429), by bucket kind.",
    ["kind"],
)
ANALYSES = Counter("wijkbudget_analysis_total", "What-if tallies, by outcome.", ["outcome"])
ANALYSIS_SECONDS = Histogram(
    "wijkbudget_analysis_duration_seconds",
    "Time of a what-if tally, by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The template of the route that answered ("/api/v1/proposals/{proposal_id}"), or
    "unmatched": a label value per route, however many ids clients send."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if template is None:
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in _METHODS else "other"
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
    if (method, route) == BALLOT_ROUTE and 200 <= status < 300:
        BALLOTS.inc()


def record_throttled(kind: str) -> None:
    THROTTLED.labels(kind).inc()


def record_analysis(outcome: str, seconds: float) -> None:
    """One what-if tally: `outcome` "ok" or the error code that ended it."""
    ANALYSES.labels(outcome).inc()
    ANALYSIS_SECONDS.labels(outcome).observe(seconds)


@contextlib.contextmanager
def analysis_timer() -> Iterator[None]:
    """`with analysis_timer(): ...` records the tally's time, "ok" or the error's code."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except Exception as exc:
        outcome = str(getattr(exc, "code", "error"))
        raise
    finally:
        record_analysis(outcome, time.perf_counter() - started)


def timed_analysis(tally: Callable[P, R]) -> Callable[P, R]:
    """`tally`, recording each call's time and outcome (the router wraps the service)."""

    @functools.wraps(tally)
    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        with analysis_timer():
            return tally(*args, **kwargs)

    return timed


@contextlib.contextmanager
def waiting_for_connection() -> Iterator[None]:
    DB_WAITING.inc()
    try:
        yield
    finally:
        DB_WAITING.dec()


def watch_pool(engine: Engine, slots: int) -> None:
    """Count the engine's checked-out connections and this worker's slots."""
    DB_SLOTS.inc(slots)
    event.listen(engine, "checkout", _checked_out)
    event.listen(engine, "checkin", _checked_in)


def unwatch_pool(engine: Engine, slots: int) -> None:
    DB_SLOTS.dec(slots)
    for name, listener in (("checkout", _checked_out), ("checkin", _checked_in)):
        if event.contains(engine, name, listener):
            event.remove(engine, name, listener)


def _checked_out(*_args: Any) -> None:
    DB_IN_USE.inc()


def _checked_in(*_args: Any) -> None:
    DB_IN_USE.dec()


def worker_stopped() -> None:
    """This worker's gauges leave the sums (its counters stay)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


_PID_IN_FILE = re.compile(r"_(\d+)\.db$")


def _forget_dead_workers(directory: str) -> None:
    """Drop the gauges of workers that died without stopping (killed, crashed)."""
    pids = set()
    for path in Path(directory).glob("gauge_live*.db"):
        found = _PID_IN_FILE.search(path.name)
        if found:
            pids.add(int(found.group(1)))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, someone else's: not ours to judge
            pass


class _ProcessRegistry:
    """The figures of this process alone (no multiprocess directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class OutboxFigures(NamedTuple):
    pending: int
    failed: int
    oldest_pending_age_seconds: float


class _AtScrapeTime:
    """Figures read when scraped: the mail outbox (read by the caller's function, from the
    database; None when it did not answer), and the version."""

    def __init__(self, outbox: Callable[[], OutboxFigures | None], version: str) -> None:
        self.outbox = outbox
        self.version = version

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "wijkbudget_build_info", "The version this server runs.", labels=["version"]
        )
        info.add_metric([self.version], 1)
        yield info
        up = GaugeMetricFamily("wijkbudget_database_up", "The database answered the scrape.")
        try:
            figures = self.outbox()
        except Exception:  # the scrape still answers; the gauge says what is missing
            log.warning("metrics: the database did not answer", exc_info=True)
            figures = None
        up.add_metric([], 0 if figures is None else 1)
        yield up
        if figures is None:
            return
        yield GaugeMetricFamily(
            "wijkbudget_mail_outbox_pending", "Mails waiting to be sent.", value=figures.pending
        )
        yield GaugeMetricFamily(
            "wijkbudget_mail_outbox_failed", "Mails kept as failed for good.", value=figures.failed
        )
        yield GaugeMetricFamily(
            "wijkbudget_mail_outbox_oldest_pending_age_seconds",
            "How long the oldest pending mail has waited.",
            value=max(figures.oldest_pending_age_seconds, 0.0),
        )


def exposition(outbox: Callable[[], OutboxFigures | None], version: str) -> bytes:
    """Every metric in the Prometheus text format: all workers' when in multiprocess mode."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        _forget_dead_workers(directory)
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ProcessRegistry())
    registry.register(_AtScrapeTime(outbox, version))
    return generate_latest(registry)


def prepare_directory(directory: Path) -> None:
    """An empty directory for the workers' files: figures of an earlier run must not count."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
