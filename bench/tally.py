"""Tally benchmark: `python -m bench.tally` (or `make bench-tally`).

Times `greedy` and `mes` on five real elections, two ways:
the whole command (`wijkbudget tally FILE --rule R --json`: process start and file reading
included, with peak memory from /usr/bin/time), and the tally function alone on an
election already read. In the same run it times pabulib-checker's Equal Shares (with Add1)
on the elections small enough for it, checks that both find the same winners, and prints
the ratio. Medians over --repeat runs; the checker runs once per file (it is slow).

The two large files (Poland_Lodz_2022.pb, Poland_Katowice_2023.pb) are not in the repository:
download them from pabulib.org into a folder named by WIJKBUDGET_PABULIB_DIR (default:
../shared/data/pabulib beside the checkout). The small ones also come from tests/data/pabulib.
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from app.services import analysis, pabulib
from app.services.results import shares
from app.services.tally import RULES, greedy, mes

ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "WIJKBUDGET_PABULIB_DIR"
DATA = Path(os.environ.get(DATA_ENV) or ROOT.parent / "shared" / "data" / "pabulib")
TEST_DATA = ROOT / "tests" / "data" / "pabulib"
FILES = [
    "Netherlands_Assen_2024",
    "Poland_Swiecie_2023",
    "Poland_Wieliczka_2023_Green_Budget",
    "Poland_Lodz_2022",
    "Poland_Katowice_2023",
]
CHECKER_FILES = {
    "Netherlands_Assen_2024",
    "Poland_Swiecie_2023",
    "Poland_Wieliczka_2023_Green_Budget",
}
COMMAND = [sys.executable, "-m", "app", "tally"]


def whole_command(path: Path, rule: str) -> tuple[float, int, list[str]]:
    """Wall seconds and peak RSS (KiB) of the CLI, and the winners it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *COMMAND, str(path), "--rule", rule, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return elapsed, peak_kib, json.loads(done.stdout)["selected"]


def checker_mes(path: Path) -> tuple[float, list[str]]:
    from pabulib.checker import Checker
    from pabulib_helpers import parse_pb_lines

    checker = Checker()
    lines = [
        line.rstrip("\r") for line in path.read_text(encoding="utf-8").split("\n") if line.strip()
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        parsed = parse_pb_lines(lines)
    checker.meta, checker.projects, checker.votes = parsed[0], parsed[1], parsed[2]
    started = time.perf_counter()
    winners = checker._compute_equalshares_winners(add1=True)
    return time.perf_counter() - started, list(winners)


def election_files() -> dict[str, Path]:
    """Where each benchmarked file is; exits with a message naming the missing ones."""
    found: dict[str, Path] = {}
    for stem in FILES:
        for folder in (DATA, TEST_DATA):
            if (folder / f"{stem}.pb").is_file():
                found[stem] = folder / f"{stem}.pb"
                break
    missing = [f"{stem}.pb" for stem in FILES if stem not in found]
    if missing:
        sys.exit(
            f"bench.tally: missing {', '.join(missing)} (looked in {DATA} and {TEST_DATA}).\n"
            f"Download them from https://pabulib.org into a folder and set {DATA_ENV} to it,\n"
            f"e.g. {DATA_ENV}=$HOME/pabulib make bench-tally"
        )
    return found


EXPLAIN_FILES = ["Poland_Wieliczka_2023_Green_Budget", "Poland_Lodz_2022"]


def explained_publication(paths: dict[str, Path], repeat: int) -> None:
    """What publishing computes, on an election already read: both rules and their shares
    (the baseline, as before explanations), against both rules explained with the fairness
    figures, in the reply's form (`analysis.analyse`, what results.compute adds)."""
    print(f"publication work with explanations, median of {repeat} runs; times in seconds\n")
    header = (
        f"{'election':<36}{'voters':>8}{'projects':>9}{'baseline':>10}{'explained':>10}{'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for stem in EXPLAIN_FILES:
        file = pabulib.read(paths[stem])
        e = file.election()
        baseline, explained = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            for rule in RULES.values():
                shares(e, rule.count(e))
            baseline.append(time.perf_counter() - started)
            started = time.perf_counter()
            analysis.analyse(file)
            explained.append(time.perf_counter() - started)
        base, full = statistics.median(baseline), statistics.median(explained)
        print(
            f"{stem:<36}{e.voter_count:>8,}{len(e.costs):>9}{base:>10.2f}{full:>10.2f}"
            f"{full / base:>6.2f}x",
            flush=True,
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-checker", action="store_true", help="skip the checker baseline")
    parser.add_argument(
        "--explain-only", action="store_true", help="only the publication-with-explanations table"
    )
    args = parser.parse_args()
    paths = election_files()
    explained_publication(paths, args.repeat)
    if args.explain_only:
        return
    print(f"tally benchmark, median of {args.repeat} runs; times in seconds\n")
    header = f"{'election':<36}{'rule':<7}{'voters':>8}{'command':>9}{'peak MiB':>9}{'tally':>8}{'checker':>9}{'ratio':>8}  same winners"
    print(header)
    print("-" * len(header))
    for stem in FILES:
        path = paths[stem]
        election = pabulib.read(path)
        ids = [p.project_id for p in election.projects]
        e = election.election()
        for rule, count in (("greedy", greedy), ("mes", mes)):
            runs = [whole_command(path, rule) for _ in range(args.repeat)]
            command_s = statistics.median(r[0] for r in runs)
            peak_mib = max(r[1] for r in runs) / 1024
            alone = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                outcome = count(e)
                alone.append(time.perf_counter() - started)
            ours = [ids[i] for i in outcome.selected]
            assert ours == runs[0][2], "CLI and function disagree"
            checker_s = ratio = same = ""
            if rule == "mes" and stem in CHECKER_FILES and not args.no_checker:
                seconds, theirs = checker_mes(path)
                checker_s, ratio = f"{seconds:.2f}", f"{seconds / statistics.median(alone):.0f}x"
                same = "yes" if sorted(theirs) == sorted(ours) else "NO"
            print(
                f"{stem:<36}{rule:<7}{e.voter_count:>8,}{command_s:>9.2f}{peak_mib:>9.0f}"
                f"{statistics.median(alone):>8.3f}{checker_s:>9}{ratio:>8}  {same}",
                flush=True,
            )
    print("\ncommand: `wijkbudget tally FILE --rule R --json` as a new process (start and reading")
    print(
        "included); tally: the function alone on an election already read; ratio: checker / tally."
    )


if __name__ == "__main__":
    main()
