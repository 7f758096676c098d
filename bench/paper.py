"""Entering and confirming a batch of paper ballots: `python -m bench.paper`.

Through the service layer, as the API calls it, on a scratch SQLite file (or
`--database-url`, e.g. a PostgreSQL scratch database: its tables gain the bench's rows).
Each round keys one batch of --ballots ballots (1-3 proposals each, every one with its own
voting code) and confirms it with an identical second keying: two transactions, timed
separately, median of --repeat rounds. Baselines measured in the same run on the same
process: the same number of online casts through `ballots.cast`, (a) one transaction each,
as voters cast them, and (b) all in one transaction.
"""

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlmodel import select

from app.core.db import make_engine, migrate, open_session
from app.models.ballot import BallotCast
from app.models.paper import PaperBatchIn
from app.models.process import Phase
from app.models.proposal import ProposalStatus
from app.models.user import Role, User
from app.services import ballots, paper, voting_codes
from tests.factories import make_process, make_proposal

KEY = voting_codes.code_key("bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")


def median_of(repeat: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    options = parser.parse_args()
    n, repeat = options.ballots, options.repeat
    url = options.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    migrate(url)
    engine = make_engine(url)
    chooser = random.Random(2026)
    with open_session(engine) as session:
        staff = [
            User(
                email=f"{role}{i}@bench.example", password_hash="x", display_name="Staff", role=role
            )
            for i, role in enumerate((Role.admin, Role.moderator))
        ]
        session.add_all(staff)
        session.commit()
        admin, moderator = staff
        process = make_process(session, phase=Phase.voting, budget=30_000)
        proposal_ids = [
            make_proposal(
                session, process, admin, status=ProposalStatus.accepted, cost=c, title=f"P{c}"
            ).id
            for c in (1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 9_000, 10_000)
        ]
        assert process.id is not None
        for proposal in proposal_ids:
            assert proposal is not None
        session.add_all(
            User(
                email=f"v{i}@bench.example",
                password_hash="x",
                display_name="Voter",
                role=Role.resident,
                postcode="9713AB",
                birth_year=1990,
            )
            for i in range(n)
        )
        session.flush()
        csv_text = voting_codes.generate(
            session, actor=admin, process_id=process.id, count=n * repeat, key=KEY
        )
        session.commit()
        codes = csv_text.split()[1:]
        voter_ids = [
            u.id for u in session.exec(select(User).where(User.role == Role.resident)).all()
        ]
    process_id = process.id

    def choice() -> list[int]:
        return sorted(chooser.sample(proposal_ids, chooser.randint(1, 3)))  # type: ignore[arg-type]

    batches = iter(range(repeat))
    enter_times: list[float] = []
    confirm_times: list[float] = []

    def paper_round() -> float:
        r = next(batches)
        body = PaperBatchIn.model_validate(
            {
                "source": f"Stadhuis, box {r}",
                "ballots": [
                    {"proposal_ids": choice(), "voting_code": code}
                    for code in codes[r * n : (r + 1) * n]
                ],
            }
        )
        with open_session(engine) as session:
            actor = session.get(User, moderator.id)
            assert actor is not None
            started = time.perf_counter()
            batch = paper.enter(session, actor=actor, process_id=process_id, data=body, key=KEY)
            session.commit()
            entered = time.perf_counter()
        with open_session(engine) as session:
            actor = session.get(User, admin.id)
            assert actor is not None
            second = time.perf_counter()
            done = paper.confirm(session, actor=actor, batch_id=batch.id, data=body, key=KEY)
            session.commit()
            confirmed = time.perf_counter()
        assert done.counts.valid == n, done.counts
        enter_times.append(entered - started)
        confirm_times.append(confirmed - second)
        return (entered - started) + (confirmed - second)

    def online(one_transaction: bool) -> float:
        bodies = [BallotCast(proposal_ids=choice()) for _ in range(n)]
        started = time.perf_counter()
        if one_transaction:
            with open_session(engine) as session:
                for voter_id, body in zip(voter_ids, bodies, strict=True):
                    voter = session.get(User, voter_id)
                    assert voter is not None
                    ballots.cast(session, voter=voter, process_id=process_id, data=body)
                session.commit()
        else:
            for voter_id, body in zip(voter_ids, bodies, strict=True):
                with open_session(engine) as session:
                    voter = session.get(User, voter_id)
                    assert voter is not None
                    ballots.cast(session, voter=voter, process_id=process_id, data=body)
                    session.commit()
        return time.perf_counter() - started

    paper_s = median_of(repeat, paper_round)
    each_s = median_of(repeat, lambda: online(False))
    one_s = median_of(repeat, lambda: online(True))
    engine.dispose()
    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{n:,} paper ballots on {database}, median of {repeat}:")
    print(f"  enter (first keying, one transaction):   {statistics.median(enter_times):.3f} s")
    print(f"  confirm (second keying, codes locked):    {statistics.median(confirm_times):.3f} s")
    print(f"  enter + confirm:                          {paper_s:.3f} s")
    print(f"baseline, {n:,} online casts (ballots.cast), one transaction each: {each_s:.3f} s")
    print(f"baseline, {n:,} online casts (ballots.cast), one transaction:      {one_s:.3f} s")
    print(
        f"ratio paper/online: {paper_s / each_s:.2f} (each committed), {paper_s / one_s:.2f} (one)"
    )


if __name__ == "__main__":
    main()
