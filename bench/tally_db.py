"""Tallying a published process from PostgreSQL: `python -m bench.tally_db` (or
`make bench-tally-db`).

Seeds a closed knapsack process with 100,000 ballots over ten proposals in a scratch
database, then times, as an admin would trigger them: the preview (`GET …/tally`: load the
ballots, tally both rules) and the publication (`POST …/results`: the same, plus the
digest, the stored document and the export inputs). Medians of --repeat runs for the
preview; publication happens once.
"""

import argparse
import json
import random
import statistics
import time

import psycopg

from app.core.db import make_engine, open_session
from app.models.process import Phase, Process
from app.models.user import Role, User
from app.services import results
from bench.vote_load import ADMIN_URL, DATABASE, database_url, fresh_database, seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print(f"seeding {options.ballots:,} voters and ballots ...", flush=True)
    fresh_database()
    process_id, proposal_ids, user_ids = seed(options.ballots)
    chooser = random.Random(2026)
    with psycopg.connect(ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}") as connection:
        with connection.cursor().copy(
            "COPY ballot (process_id, voter_id, items, total_cost, receipt, cast_at) FROM STDIN"
        ) as copy:
            for n, user_id in enumerate(user_ids):
                chosen = sorted(chooser.sample(proposal_ids, chooser.randint(1, 4)))
                items = json.dumps([[pid, 1] for pid in chosen])
                copy.write_row((process_id, user_id, items, 0, f"r{n}", "2026-10-10T10:00:00Z"))
        connection.execute("UPDATE process SET phase = 'closed', closed_at = now()")
        connection.execute("UPDATE user_account SET role = 'admin' WHERE id = %s", (user_ids[0],))
    engine = make_engine(database_url())
    previews = []
    for _ in range(options.repeat):
        with open_session(engine) as session:
            admin = session.get(User, user_ids[0])
            assert admin is not None
            started = time.perf_counter()
            preview = results.preview(session, actor=admin, process_id=process_id)
            previews.append(time.perf_counter() - started)
    with open_session(engine) as session:
        admin = session.get(User, user_ids[0])
        assert admin is not None
        process = session.get(Process, process_id)
        assert process is not None
        assert process.phase == Phase.closed
        assert admin.role == Role.admin
        started = time.perf_counter()
        published = results.publish(
            session, actor=admin, process_id=process_id, country="Netherlands"
        )
        session.commit()
        publish_s = time.perf_counter() - started
    engine.dispose()
    assert published.selected_ids == preview.selected_ids
    print(f"\n{options.ballots:,} ballots on PostgreSQL, {len(proposal_ids)} proposals")
    print(
        f"preview (load + greedy + mes), median of {options.repeat}: {statistics.median(previews):.2f} s"
    )
    print(f"publication (the same + digest + stored document):  {publish_s:.2f} s")
    print(
        f"official rule {published.rule}: selected {published.selected_ids}, ballots {published.ballot_count:,}"
    )


if __name__ == "__main__":
    main()
