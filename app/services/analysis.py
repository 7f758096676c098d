"""What-if tallies of any pabulib election: both rules, explained, nothing stored.

Rules enforced here:
- anyone may ask, throttled per client address (`too_many_attempts`): Equal Shares on a
  large file costs a worker seconds; every attempt counts, also an unreadable file;
- the body limit (ANALYSIS_MAX_BYTES, 10 MiB) is the middleware's; beyond it, at most
  ANALYSIS_MAX_VOTES votes (`payload_too_large`);
- a file that is not UTF-8 or not pabulib is `invalid_pabulib` with the line it failed on;
- right after parsing, before any rule runs, the election's shape is checked: at most
  ANALYSIS_MAX_PROJECTS projects, ANALYSIS_MAX_APPROVALS approvals (the ballots' lengths
  summed) and ANALYSIS_MAX_DISTINCT_COSTS distinct costs, else `election_too_large` naming
  the limit and the file's figure;
- parsing and both rules run in a child process (`AnalysisPool`), never in the worker: at
  most ANALYSIS_SLOTS at once per worker process (a request finding none free is `busy`, with
  Retry-After, and costs no throttle attempt), each stopped by the kernel after
  ANALYSIS_CPU_SECONDS of CPU (`election_too_large` naming that limit); a stopped child is
  replaced by a fresh one for the next analysis;
- ids are the file's project ids; ties break in file order, as for `wijkbudget tally`;
- nothing is written but the throttle count.
"""

import math
import multiprocessing
import re
import resource
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

from sqlmodel import Session

from app.core.config import Settings
from app.core.errors import Busy, DomainError, ElectionTooLarge, InvalidPabulib, PayloadTooLarge
from app.core.i18n import Message, _t
from app.models.analysis import AnalysedRule, Analysis
from app.models.base import utcnow
from app.services import pabulib, throttle
from app.services.results import explanation, fairness, shares
from app.services.tally import RULES
from app.services.throttle import Guard

_LINE = re.compile(r"line (\d+)")


@dataclass(frozen=True)
class Limits:
    """What one analysis may hold and spend (the ANALYSIS_* settings)."""

    max_votes: int
    max_projects: int
    max_approvals: int
    max_distinct_costs: int
    cpu_seconds: int


def tally_file(
    session: Session,
    *,
    body: bytes,
    address: str,
    guard: Guard,
    pool: "AnalysisPool",
    now: datetime | None = None,
) -> Analysis:
    # The slot first: a `busy` answer costs the client no attempt, and a throttled one
    # gives its slot straight back.
    with pool.slot() as worker:
        throttle.reserve(
            session,
            guard,
            [(guard.bucket("analysis-address", address), guard.limits.analysis_address)],
            now=now or utcnow(),
            what=_t("analyses"),
        )
        return worker.run(body)


def parse_and_analyse(body: bytes, limits: Limits) -> Analysis:
    """The whole analysis of a file, as a child process runs it."""
    election = parse(body)
    check_shape(election, limits)
    return analyse(election)


def check_shape(election: pabulib.PabulibElection, limits: Limits) -> None:
    """Refuse a file whose size alone makes the rules too costly, before they run."""
    if len(election.ballots) > limits.max_votes:
        raise PayloadTooLarge(
            _t(
                "The file has {votes:,} votes; at most {max_votes:,} are analysed.",
                votes=len(election.ballots),
                max_votes=limits.max_votes,
            )
        )
    projects = len(election.projects)
    if projects > limits.max_projects:
        raise _too_large(
            "projects",
            projects,
            limits.max_projects,
            _t(
                "The file has {projects:,} projects; at most {limit:,} are analysed.",
                projects=projects,
                limit=limits.max_projects,
            ),
        )
    approvals = sum(map(len, election.ballots))
    if approvals > limits.max_approvals:
        raise _too_large(
            "approvals",
            approvals,
            limits.max_approvals,
            _t(
                "The file's ballots choose {approvals:,} projects in all; at most {limit:,} "
                "are analysed.",
                approvals=approvals,
                limit=limits.max_approvals,
            ),
        )
    costs = len({project.cost for project in election.projects})
    if costs > limits.max_distinct_costs:
        raise _too_large(
            "distinct_costs",
            costs,
            limits.max_distinct_costs,
            _t(
                "The file's projects have {costs:,} distinct costs; at most {limit:,} are "
                "analysed.",
                costs=costs,
                limit=limits.max_distinct_costs,
            ),
        )


def _too_large(limit: str, actual: int, maximum: int, message: Message) -> DomainError:
    return ElectionTooLarge(message, extra={"limit": limit, "maximum": maximum, "actual": actual})


def parse(body: bytes) -> pabulib.PabulibElection:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise InvalidPabulib(
            _t("line {line}: not UTF-8", line=line), extra={"line": line}
        ) from None
    try:
        election = pabulib.parse(text)
        election.budget  # noqa: B018 - a missing or malformed budget is a parse error too
    except pabulib.PabulibError as exc:
        found = _LINE.search(str(exc))
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], Message) else str(exc)
        raise InvalidPabulib(
            reason, extra={"line": int(found.group(1)) if found else None}
        ) from None
    return election


def analyse(file: pabulib.PabulibElection) -> Analysis:
    election = file.election()
    ids = [p.project_id for p in file.projects]
    rules = {}
    for name, rule in RULES.items():
        outcome, explained = rule.explain(election)
        with_choice, per_voter = shares(election, outcome)
        rules[name] = AnalysedRule(
            selected_ids=[ids[i] for i in outcome.selected],
            spent=outcome.spent,
            voters_with_a_funded_choice=with_choice,
            funded_choices_per_voter=per_voter,
            explanations={pid: explanation(e) for pid, e in zip(ids, explained, strict=True)},
            fairness=fairness(election, outcome),
        )
    return Analysis(budget=election.budget, rules=rules)


# -- the pool of child processes ---------------------------------------------------------


class AnalysisPool:
    """ANALYSIS_SLOTS child processes of one worker process, each started on its first
    analysis and kept for the next; `slot` lends one out or refuses with `busy`.

    Children come from a fork server (or are spawned), never forked from the threaded worker
    itself, and load the tally code once: a child stopped at its CPU limit is replaced in a
    fraction of a second."""

    def __init__(self, limits: Limits, slots: int) -> None:
        self.limits = limits
        self._context = _context()
        self._workers = [_Child(self._context, limits) for _ in range(slots)]
        self._free = list(self._workers)
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator["_Child"]:
        with self._lock:
            if not self._free:
                # A slot frees at the latest when its analysis reaches the CPU limit.
                raise Busy(
                    _t("Every analysis slot is taken; try again shortly."),
                    retry_after=self.limits.cpu_seconds,
                )
            worker = self._free.pop()
        try:
            yield worker
        finally:
            with self._lock:
                self._free.append(worker)

    def children(self) -> list[int]:
        """The process ids of the children running now."""
        return [pid for worker in self._workers if (pid := worker.pid) is not None]

    def shutdown(self) -> None:
        for worker in self._workers:
            worker.stop()


def analysis_pool(settings: Settings) -> AnalysisPool:
    limits = Limits(
        max_votes=settings.analysis_max_votes,
        max_projects=settings.analysis_max_projects,
        max_approvals=settings.analysis_max_approvals,
        max_distinct_costs=settings.analysis_max_distinct_costs,
        cpu_seconds=settings.analysis_cpu_seconds,
    )
    return AnalysisPool(limits, settings.analysis_slots)


def _context() -> BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # The fork server imports the tally once; every child starts with it loaded.
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


class _Child:
    """One child process and the pipe to it; used by one thread at a time (a slot)."""

    def __init__(self, context: BaseContext, limits: Limits) -> None:
        self._context = context
        self._limits = limits
        self._process: BaseProcess | None = None
        self._pipe: Connection | None = None

    @property
    def pid(self) -> int | None:
        alive = self._process is not None and self._process.is_alive()
        return self._process.pid if alive and self._process is not None else None

    def run(self, body: bytes) -> Analysis:
        """The analysis of `body` in the child; its domain errors are raised here."""
        process, pipe = self._started()
        pipe.send(body)
        # The kernel stops the child at its CPU limit. The wall-clock limit only catches a
        # child that stalls without using CPU: it is far above what a loaded machine needs.
        cpu = self._limits.cpu_seconds
        if pipe.poll(10 * cpu + 60):
            try:
                ok, value = pipe.recv()
            except EOFError:
                pass  # it died: see how below
            else:
                if ok:
                    assert isinstance(value, Analysis)
                    return value
                raise value
        self.stop()
        if process.exitcode not in (-signal.SIGXCPU, -signal.SIGKILL, None):
            raise RuntimeError(f"the analysis process ended with exit code {process.exitcode}")
        raise ElectionTooLarge(
            _t(
                "The analysis needs more than {seconds:,} seconds of computing time.",
                seconds=cpu,
            ),
            extra={"limit": "cpu_seconds", "maximum": cpu},
        )

    def _started(self) -> tuple[BaseProcess, Connection]:
        if self._process is None or self._pipe is None or not self._process.is_alive():
            self.stop()
            ours, theirs = self._context.Pipe()
            process = self._context.Process(  # type: ignore[attr-defined]
                target=_serve, args=(theirs, self._limits), daemon=True, name="analysis"
            )
            process.start()
            theirs.close()
            self._process, self._pipe = process, ours
        return self._process, self._pipe

    def stop(self) -> None:
        """End the child (killed if it is still computing) and forget it."""
        process, pipe = self._process, self._pipe
        self._process = self._pipe = None
        if pipe is not None:
            pipe.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join()


def _serve(pipe: Connection, limits: Limits) -> None:
    """The child: analyse each body it is sent, under a CPU limit, until the pipe closes."""
    # Ctrl-C in a terminal reaches the whole process group; the worker stops its children.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        try:
            body = pipe.recv()
        except EOFError:
            return
        # RLIMIT_CPU counts the process's whole life: the limit is set past what it has used
        # so far. At the soft limit the kernel sends SIGXCPU, whose default action ends the
        # process wherever it is, inside a long big-integer operation too.
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime) + limits.cpu_seconds
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        try:
            reply: tuple[bool, object] = (True, parse_and_analyse(body, limits))
        except DomainError as error:
            reply = (False, error)
        except Exception as error:  # a bug: the worker logs it as a 500
            reply = (False, RuntimeError(f"analysis failed: {error!r}"))
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
        pipe.send(reply)
