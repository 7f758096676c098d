"""Hostile what-if tallies (issue 18): `python -m bench.hostile_tally` (`make bench-hostile`).

Generates, seeded, the three pabulib files built to make Equal Shares slow: (a) 500
projects whose costs are distinct primes, 20,000 distinct approval ballots of 20, a budget
that funds everything; (b) 1,000 projects of cost 1, budget 1,000, 30,000 ballots of 30;
(c) 2,000 projects of random costs, 30,000 ballots of 10. For each it prints the file's
size, the CPU time of `analysis.analyse` (both rules, explained) in a child process, capped
at --cap seconds (">cap" when stopped), and what `POST /analysis/tally` answers: with the
default settings, and with the shape limits lifted so that only the CPU limit stands.

With --before REV (e.g. c412ce2) the same analyses also run on that revision, checked out
in a temporary `git worktree`; the real files Lodz 2022 (MES) and Swiecie 2023 are timed on
both too (medians of --repeat), so that no real file is missed getting slower. Lodz comes
from WIJKBUDGET_PABULIB_DIR (see bench/tally.py).
"""

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("WIJKBUDGET_PABULIB_DIR") or ROOT.parent / "shared" / "data" / "pabulib")
REAL = {
    "Lodz 2022": "Poland_Lodz_2022.pb",
    "Swiecie 2023": "Poland_Swiecie_2023.pb",
}

# -- the shapes ------------------------------------------------------------------------


def _file(costs: list[int], budget: int, ballots: list[list[int]]) -> bytes:
    lines = ["META", "key;value", f"num_projects;{len(costs)}", f"num_votes;{len(ballots)}"]
    lines += [f"budget;{budget}", "vote_type;approval", "PROJECTS", "project_id;cost"]
    lines += [f"{i};{cost}" for i, cost in enumerate(costs, start=1)]
    lines += ["VOTES", "voter_id;vote"]
    lines += [
        f"{voter};" + ",".join(str(i + 1) for i in ballot)
        for voter, ballot in enumerate(ballots, start=1)
    ]
    return ("\n".join(lines) + "\n").encode()


def _ballots(rng: random.Random, projects: int, count: int, length: int) -> list[list[int]]:
    """`count` distinct ballots of `length` projects each."""
    seen: set[tuple[int, ...]] = set()
    ballots = []
    while len(ballots) < count:
        ballot = tuple(sorted(rng.sample(range(projects), length)))
        if ballot not in seen:
            seen.add(ballot)
            ballots.append(list(ballot))
    return ballots


def _primes(count: int, start: int) -> list[int]:
    found: list[int] = []
    candidate = start | 1
    while len(found) < count:
        if all(candidate % p for p in range(3, int(candidate**0.5) + 1, 2)):
            found.append(candidate)
        candidate += 2
    return found


def distinct_primes() -> bytes:
    rng = random.Random(181)
    costs = _primes(500, 10_001)  # five-digit costs, like real ones
    return _file(costs, sum(costs), _ballots(rng, 500, 20_000, 20))


def unit_costs() -> bytes:
    rng = random.Random(182)
    return _file([1] * 1_000, 1_000, _ballots(rng, 1_000, 30_000, 30))


def many_projects() -> bytes:
    rng = random.Random(183)
    costs = [rng.randrange(1_000, 100_000) for _ in range(2_000)]
    return _file(costs, sum(costs) // 2, _ballots(rng, 2_000, 30_000, 10))


SHAPES: dict[str, Callable[[], bytes]] = {
    "a: 500 distinct primes, 20,000 x 20": distinct_primes,
    "b: 1,000 of cost 1, 30,000 x 30": unit_costs,
    "c: 2,000 random costs, 30,000 x 10": many_projects,
}

# -- timing in a child process, on this checkout or another -------------------------------

_CHILD = """
import sys, time
from app.services import analysis
body = open(sys.argv[1], "rb").read()
parsed = analysis.parse(body)
started = time.process_time()
analysis.analyse(parsed)
print(time.process_time() - started)
"""


def analyse_seconds(checkout: Path, path: Path, cap: float) -> float | None:
    """CPU seconds of `analysis.analyse` on the file at `checkout`, None past the cap."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=cap,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout.strip().splitlines()[-1])


def shown(seconds: float | None, cap: float) -> str:
    return f">{cap:.0f}" if seconds is None else f"{seconds:.2f}"


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wijkbudget-before-") as folder:
        path = Path(folder) / "checkout"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                check=True,
                capture_output=True,
            )


# -- over HTTP -------------------------------------------------------------------------


def http_answers(files: dict[str, Path]) -> dict[str, tuple[str, str]]:
    """What POST /analysis/tally answers per file: with the default settings, and with the
    shape limits lifted (only the CPU limit left)."""
    from fastapi.testclient import TestClient

    from app.core.config import Settings
    from app.core.db import migrate
    from app.main import create_app

    answers: dict[str, list[str]] = {name: [] for name in files}
    with tempfile.TemporaryDirectory(prefix="wijkbudget-bench-") as folder:
        url = f"sqlite:///{folder}/bench.db"
        migrate(url)
        lifted = {
            "analysis_max_projects": 10**6,
            "analysis_max_approvals": 10**8,
            "analysis_max_distinct_costs": 10**6,
        }
        for overrides in ({}, lifted):
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                environment="test",
                database_url=url,
                secret_key="bench-" + "x7Qp2LmZ9vRt4WcY8bNd3KjH6sFg1Ae5",
                analysis_max_per_address=1_000,
                mail_sender_interval_seconds=0,
                **overrides,  # type: ignore[arg-type]
            )
            with TestClient(create_app(settings)) as client:
                for name, path in files.items():
                    response = client.post("/api/v1/analysis/tally", content=path.read_bytes())
                    body = response.json()
                    code = body.get("code", "")
                    limit = f" ({body['limit']})" if "limit" in body else ""
                    answers[name].append(f"{response.status_code} {code}{limit}".strip())
                cpu = settings.analysis_cpu_seconds
    return {name: (found[0], found[1] + f" [CPU limit {cpu} s]") for name, found in answers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=120, help="seconds before a run is stopped")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each real file")
    parser.add_argument("--before", metavar="REV", help="also time this revision (e.g. c412ce2)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP answers")
    parser.add_argument("--real-only", action="store_true", help="only the real files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wijkbudget-hostile-") as folder:
        files: dict[str, Path] = {}
        for name, make in {} if args.real_only else SHAPES.items():
            files[name] = Path(folder) / f"{name[0]}.pb"
            files[name].write_bytes(make())
        real = {name: DATA / stem for name, stem in REAL.items() if (DATA / stem).is_file()}
        real.update(
            {
                name: ROOT / "tests" / "data" / "pabulib" / stem
                for name, stem in REAL.items()
                if name not in real and (ROOT / "tests" / "data" / "pabulib" / stem).is_file()
            }
        )
        for name in REAL.keys() - real.keys():
            print(f"({name} not found: set WIJKBUDGET_PABULIB_DIR to a folder holding it)")
        checkouts = {"after": ROOT}
        with contextlib.ExitStack() as stack:
            if args.before:
                checkouts = {"before": stack.enter_context(worktree(args.before)), **checkouts}
            print(f"analysis.analyse (both rules, explained), CPU seconds; cap {args.cap:.0f} s\n")
            header = f"{'file':<38}{'size':>10}" + "".join(f"{k:>10}" for k in checkouts)
            print(header)
            print("-" * len(header))
            for name, path in files.items():
                row = f"{name:<38}{path.stat().st_size / 2**20:>7.2f} MiB"
                for checkout in checkouts.values():
                    row += f"{shown(analyse_seconds(checkout, path, args.cap), args.cap):>10}"
                print(row, flush=True)
            for name, path in real.items():
                row = f"{name + ' (median of ' + str(args.repeat) + ')':<38}"
                row += f"{path.stat().st_size / 2**20:>7.2f} MiB"
                for checkout in checkouts.values():
                    runs = [analyse_seconds(checkout, path, args.cap) for _ in range(args.repeat)]
                    done = [r for r in runs if r is not None]
                    row += f"{statistics.median(done):>10.2f}" if len(done) == len(runs) else ">cap"
                print(row, flush=True)
        if not args.no_http and files:
            print("\nPOST /analysis/tally answers (default settings | shape limits lifted)")
            for name, (default, lifted) in http_answers(files).items():
                print(f"{name:<38}{default:<36}| {lifted}", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
