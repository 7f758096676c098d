"""Vote load benchmark: `python -m bench.vote_load` (or `make bench-vote`).

Starts the app with 2 uvicorn workers on PostgreSQL, in its own database (wijkbudget_bench), seeds a process in voting and many
voters (straight into the database, tokens minted with the app's own function), then
drives concurrent `PUT /ballot` requests with wrk (a Lua script rotates tokens and
records each response), and afterwards checks that the stored ballots are exactly the
acknowledged ones. In the same run, against the same server, it measures the baseline: an
endpoint that does one INSERT, added to the real app by bench/app.py (never part of the app). Every phase is
repeated and the median reported. Needs wrk (Debian package `wrk`) and a local PostgreSQL.

Round mode (in the same run, against the same server): a round with `--districts` district
processes (default 10) in one group with `max_processes_per_voter` 1, voters spread over
the districts (voter n votes in district n mod 10), so every cast also pays for the group
limit (the (group, voter) lock and the count of the voter's ballots in the group).
"""

import argparse
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx
import psycopg
from sqlalchemy import insert
from sqlmodel import Session, col, select

from app.core import security
from app.core.db import make_engine, migrate, open_session
from app.models.base import utcnow
from app.models.process import Phase, ProcessCreate, process_from
from app.models.proposal import Proposal, ProposalStatus
from app.models.round import Round, RoundGroup
from app.models.user import Role, User
from bench.app import create_probe_table

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# BENCH_DATABASE: another name, so two runs on one PostgreSQL server cannot drop each other's.
DATABASE = os.environ.get("BENCH_DATABASE", "wijkbudget_bench")
SECRET = secrets.token_urlsafe(48)
# Voters with a verified e-mail address, so that every cast also queues its confirmation mail
# (the costlier case); BENCH_VOTERS_VERIFIED=0 seeds unverified voters.
VERIFIED = os.environ.get("BENCH_VOTERS_VERIFIED", "1") != "0"
PROPOSAL_COSTS = [9000, 7500, 6000, 5000, 4000, 3000, 2500, 2000, 1500, 1000]

POST_LUA = 'wrk.method = "POST"\n'

LUA = r"""
local tokens, bodies, counter, out = {}, {}, 0, nil
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  for line in io.lines(args[2]) do bodies[#bodies + 1] = line end
  nthreads = tonumber(args[3])
  out = io.open(args[4] .. tid .. ".txt", "w")
  path = args[5]
  -- Round mode: one path and one body per voter (the voter's own district).
  if args[6] then
    paths = {}
    for line in io.lines(args[6]) do paths[#paths + 1] = line end
  end
end
function request()
  counter = counter + 1
  local v = ((counter - 1) * nthreads + tid) % #tokens
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[v + 1]
  headers["Content-Type"] = "application/json"
  headers["X-Request-ID"] = "v" .. v .. "-" .. counter
  out:write("v" .. v .. "-" .. counter, " sent -\n")
  if paths then
    return wrk.format("PUT", paths[v + 1], headers, bodies[v + 1])
  end
  return wrk.format("PUT", path, headers, bodies[(v % #bodies) + 1])
end
function response(status, headers, body)
  local receipt = string.match(body, '"receipt":"([^"]+)"') or "-"
  out:write((headers["x-request-id"] or "?"), " ", status, " ", receipt, "\n")
  out:flush()
end
"""


def database_url() -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"


def fresh_database() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    migrate(database_url())


def _process_in_voting(
    session: Session, title: str, *, round_id: int | None = None, group_id: int | None = None
) -> tuple[int, list[int]]:
    """A knapsack process in voting with ten accepted proposals: its id and theirs."""
    spec = ProcessCreate.model_validate(
        {"title": title, "budget": 25000, "ballot": {"type": "knapsack"}}
    )
    process = process_from(spec)
    process.phase = Phase.voting
    process.voting_started_at = utcnow()
    process.round_id, process.group_id = round_id, group_id
    session.add(process)
    session.flush()
    assert process.id is not None
    proposals = [
        Proposal(
            process_id=process.id,
            title=f"P{i}",
            summary="s",
            estimated_cost=c,
            cost=c,
            status=ProposalStatus.accepted,
        )
        for i, c in enumerate(PROPOSAL_COSTS)
    ]
    session.add_all(proposals)
    session.flush()
    return process.id, [p.id for p in proposals if p.id is not None]


def seed(
    voters: int, districts: int
) -> tuple[int, list[int], list[int], list[tuple[int, list[int]]]]:
    """A process in voting; a round of `districts` processes in voting in one group with
    `max_processes_per_voter` 1; and `voters` residents."""
    engine = make_engine(database_url())
    with open_session(engine) as session:
        process_id, proposal_ids = _process_in_voting(session, "Load test")
        city = Round(title="Load test round", description="")
        session.add(city)
        session.flush()
        assert city.id is not None
        group = RoundGroup(round_id=city.id, name="Districts", max_processes_per_voter=1)
        session.add(group)
        session.flush()
        round_processes = [
            _process_in_voting(session, f"District {d}", round_id=city.id, group_id=group.id)
            for d in range(districts)
        ]
        create_probe_table(session)
        session.commit()
        # One multi-row INSERT from the model's own defaults, so new columns need no edit here.
        template = User(
            email="",
            password_hash=security.hash_password("load test only"),
            display_name="",
            role=Role.resident,
            postcode="9713AB",
            birth_year=1980,
            email_verified=VERIFIED,
        ).model_dump(exclude={"id"})
        rows = [
            {**template, "email": f"voter{n}@load.test", "display_name": f"Voter {n}"}
            for n in range(voters)
        ]
        session.execute(insert(User), rows)
        session.commit()
        user_ids = [u for u in session.exec(select(User.id).order_by(col(User.id))) if u]
    engine.dispose()
    return process_id, proposal_ids, user_ids, round_processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(port: int, workers: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        SECRET_KEY=SECRET,
        ENVIRONMENT="production",
        LOG_LEVEL="WARNING",
        # Production refuses to start without a mail transport. The vote confirmations that
        # casts queue (see VERIFIED) are not sent during the run: no sender in the server,
        # so the figures are those of casting, queueing included.
        SMTP_URL=os.environ.get("BENCH_SMTP_URL", "smtp://127.0.0.1:2525"),
        MAIL_SENDER_INTERVAL_SECONDS="0",
    )
    # The schema is migrated by fresh_database(); the options are those of `wijkbudget serve`.
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.app:create_bench_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-server-header",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            # A half-started server would keep its port and workers: stop it first.
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-15:]
            raise SystemExit("the server did not start:\n" + "\n".join(tail))
        time.sleep(0.2)


def wrk(
    url: str, seconds: int, connections: int, script: Path | None, args: list[str]
) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    done = subprocess.run(
        [*command, url, *(["--", *args] if args else [])],
        capture_output=True,
        text=True,
        check=True,
    )
    text = done.stdout

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        assert match, text
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    assert rate, text
    assert total, text
    return {
        "rate": float(rate.group(1)),
        "requests": float(total.group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(bad.group(1) if bad else 0)
        + (sum(int(g) for g in sockets.groups()) if sockets else 0),
    }


def check(
    acks_dirs: list[Path], user_ids: list[int], process_ids: list[int]
) -> tuple[int, int, int, list[str]]:
    """Stored ballots must be exactly the acknowledged ones: per voter, the receipt of the
    last acknowledged cast (repeats run one after another; within one, each voter casts once).
    A cast still in flight when wrk stopped has no answer: its voter may or may not have a
    ballot, and is counted apart. `process_ids`: where this mode's voters cast (in round
    mode each voter always in the same district, so one ballot per voter there too)."""
    expected: dict[int, str] = {}
    in_flight: set[int] = set()
    acked = 0
    for directory in acks_dirs:
        sent: dict[str, int] = {}
        answered: set[str] = set()
        for file in directory.glob("acks*.txt"):
            for line in file.read_text().splitlines():
                request_id, status, receipt = line.split(" ")
                voter = user_ids[int(request_id[1:].split("-")[0])]
                if status == "sent":
                    sent[request_id] = voter
                    continue
                answered.add(request_id)
                if status == "200":
                    acked += 1
                    expected[voter] = receipt
                    in_flight.discard(voter)
        in_flight |= {voter for rid, voter in sent.items() if rid not in answered}
    with psycopg.connect(ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}") as connection:
        rows = connection.execute(
            "SELECT l.voter_id, b.receipt FROM ballot b "
            "LEFT JOIN ballot_voter l ON l.ballot_id = b.id WHERE b.process_id = ANY(%s)",
            (process_ids,),
        ).fetchall()
    stored: dict[int, str] = dict(rows)
    problems = []
    if len(rows) != len(stored):
        problems.append(f"{len(rows) - len(stored)} voters hold more than one ballot")
    for voter, receipt in expected.items():
        if stored.get(voter) != receipt and voter not in in_flight:
            problems.append(f"voter {voter}: acknowledged {receipt}, stored {stored.get(voter)}")
    for voter in stored.keys() - expected.keys() - in_flight:
        problems.append(f"voter {voter}: stored a ballot nobody acknowledged")
    return acked, len(stored), len(in_flight), problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", type=int, default=40_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--districts", type=int, default=10, help="Districts of the round.")
    options = parser.parse_args()
    print(f"seeding {options.voters:,} voters ...", flush=True)
    fresh_database()
    process_id, proposal_ids, user_ids, districts = seed(options.voters, options.districts)
    work = Path(tempfile.mkdtemp(prefix="vote-load-"))
    tokens = work / "tokens.txt"
    tokens.write_text(
        "\n".join(
            security.create_access_token(user_id=u, version=0, key=SECRET, expires_minutes=120)[0]
            for u in user_ids
        )
        + "\n"
    )
    bodies = work / "bodies.txt"
    choices = [
        [proposal_ids[0], proposal_ids[4]],
        [proposal_ids[1], proposal_ids[2], proposal_ids[9]],
        [proposal_ids[3]],
        [proposal_ids[5], proposal_ids[6], proposal_ids[7], proposal_ids[8]],
    ]
    bodies.write_text("\n".join(f'{{"proposal_ids": {c}}}' for c in choices) + "\n")
    # Round mode: voter n votes in district n mod districts, choosing as in the single mode.
    round_paths = work / "round_paths.txt"
    round_bodies = work / "round_bodies.txt"
    paths, per_voter = [], []
    for n in range(len(user_ids)):
        district, ids = districts[n % len(districts)]
        pick = [proposal_ids.index(pid) for pid in choices[n % len(choices)]]
        paths.append(f"/api/v1/processes/{district}/ballot")
        per_voter.append(f'{{"proposal_ids": {[ids[i] for i in pick]}}}')
    round_paths.write_text("\n".join(paths) + "\n")
    round_bodies.write_text("\n".join(per_voter) + "\n")
    script = work / "cast.lua"
    script.write_text(LUA)
    post = work / "post.lua"
    post.write_text(POST_LUA)
    port = free_port()
    server_log = (work / "server.log").open("w+b")
    server = start_server(port, options.workers, server_log)
    base = f"http://127.0.0.1:{port}"
    try:
        baseline, casts, rounds, ack_dirs, round_dirs = [], [], [], [], []
        for n in range(options.repeat):
            baseline.append(
                wrk(f"{base}/bench/insert", options.seconds, options.connections, post, [])
            )
            directory = work / f"run{n}"
            directory.mkdir()
            ack_dirs.append(directory)
            args = [
                str(tokens),
                str(bodies),
                "2",
                str(directory / "acks"),
                f"/api/v1/processes/{process_id}/ballot",
            ]
            casts.append(
                wrk(
                    f"{base}/api/v1/processes/{process_id}/ballot",
                    options.seconds,
                    options.connections,
                    script,
                    args,
                )
            )
            directory = work / f"round{n}"
            directory.mkdir()
            round_dirs.append(directory)
            args = [
                str(tokens),
                str(round_bodies),
                "2",
                str(directory / "acks"),
                "-",
                str(round_paths),
            ]
            rounds.append(
                wrk(f"{base}/api/v1/", options.seconds, options.connections, script, args)
            )
            print(
                f"run {n + 1}: ballots/s {casts[-1]['rate']:.0f}, in a round of "
                f"{options.districts} districts (k=1) {rounds[-1]['rate']:.0f}, "
                f"one-INSERT baseline {baseline[-1]['rate']:.0f}/s",
                flush=True,
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    acked, stored, in_flight, problems = check(ack_dirs, user_ids, [process_id])
    r_acked, r_stored, r_in_flight, r_problems = check(
        round_dirs, user_ids, [pid for pid, _ in districts]
    )

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print()
    print(
        f"server: the app with uvicorn --workers {options.workers} on PostgreSQL; load: wrk -t2 -c{options.connections}, {options.seconds}s x {options.repeat} (medians)"
    )
    print(f"{'':28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    print(
        f"{'PUT ballot':28}{med(casts, 'rate'):>10.0f}{med(casts, 'p50'):>10.2f}{med(casts, 'p99'):>10.2f}{sum(r['errors'] for r in casts):>8.0f}"
    )
    print(
        f"{'PUT ballot, round k=1':28}{med(rounds, 'rate'):>10.0f}{med(rounds, 'p50'):>10.2f}{med(rounds, 'p99'):>10.2f}{sum(r['errors'] for r in rounds):>8.0f}"
    )
    print(
        f"{'baseline: one INSERT':28}{med(baseline, 'rate'):>10.0f}{med(baseline, 'p50'):>10.2f}{med(baseline, 'p99'):>10.2f}{sum(r['errors'] for r in baseline):>8.0f}"
    )
    print(f"ratio ballots/s : baseline = {med(casts, 'rate') / med(baseline, 'rate'):.2f}")
    print(
        f"ratio round ballots/s : single-process ballots/s = "
        f"{med(rounds, 'rate') / med(casts, 'rate'):.2f}"
    )
    print(
        f"acknowledged casts {acked:,}; voters with a stored ballot {stored:,}; "
        f"in flight when wrk stopped {in_flight}; mismatches {len(problems)}"
    )
    print(
        f"round: acknowledged casts {r_acked:,}; voters with a stored ballot {r_stored:,}; "
        f"in flight when wrk stopped {r_in_flight}; mismatches {len(r_problems)}"
    )
    for problem in [*problems, *r_problems][:10]:
        print("  ", problem)
    if problems or r_problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
