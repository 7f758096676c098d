"""Sealing, read from the database's own files: afterwards no page of storage holds a voter
next to their choice.

A voter is their account id (a 4-byte integer, little-endian on PostgreSQL, big-endian in
SQLite records) or their e-mail address; their choice is a receipt issued to them, or the
id a ballot of theirs had before sealing (what a link row pairs with the voter). Ids are
made distinctive, so a 4-byte pattern found is that id and not chance. "Next to" is "on the
same page": a heap or b-tree page holds rows of one table (or index) only, so a voter and a
choice on one page is a row (live, dead or half-overwritten) that ties them together.

On PostgreSQL every page of every table, index and TOAST table of the schema is read with
pageinspect (the pages as they are in the server's buffers, which is what goes to disk); on
SQLite the database file page by page and the `-wal` file frame by frame. What sealing
cannot reach (WAL segments and archives, backups, the file system) is not read: see the
README.
"""

import secrets
import sqlite3
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, select

from app.core.config import Settings
from app.core.db import make_engine
from app.models.ballot import Ballot, Receipt
from app.models.mail import MailKind, OutgoingMail
from app.models.user import User
from app.services import sealing
from tests.api.conftest import Actors
from tests.api.test_results import close
from tests.factories import auth, make_voting_process
from tests.helpers import API, wait_until

VOTER_BASE = 0x5EA1_0000  # 1,587,609,600: within INT32, far above any id a test makes
BALLOT_BASE = 0x2B3D_0000


@dataclass
class Voter:
    id: int
    email: str
    headers: dict[str, str]


def _voter(session: Session, settings: Settings, n: int) -> Voter:
    user = User(
        id=VOTER_BASE + n,
        email=f"sealed-voter-{n}-{secrets.token_hex(4)}@example.org",
        password_hash="x",
        display_name="Voter",
        postcode="9713AB",
        birth_year=1990,
        email_verified=True,  # so each cast queues a vote confirmation: address and receipt
    )
    session.add(user)
    session.commit()
    return Voter(id=VOTER_BASE + n, email=user.email, headers=auth(user, settings.signing_key()))


def _int4(value: int) -> list[bytes]:
    return [struct.pack("<i", value), struct.pack(">i", value)]


def _links(session: Session, engine: Engine) -> set[tuple[int, int]]:
    """Every (ballot id, voter id) pair stored now, wherever the schema keeps the link: the
    link table, and the ballot row's own (deprecated) column."""
    session.commit()
    found = {
        (ballot_id, voter_id)
        for ballot_id, voter_id in session.execute(
            text("SELECT id, voter_id FROM ballot WHERE voter_id IS NOT NULL")
        ).all()
    }
    if "ballot_voter" in inspect(engine).get_table_names():
        found |= {
            (ballot_id, voter_id)
            for ballot_id, voter_id in session.execute(
                text("SELECT ballot_id, voter_id FROM ballot_voter WHERE ballot_id IS NOT NULL")
            ).all()
        }
    session.commit()
    return found


def _postgres_pages(engine: Engine) -> Iterator[tuple[str, bytes]]:
    with engine.connect() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        connection.commit()
        relations = connection.execute(
            text(
                "WITH mine AS (SELECT oid, reltoastrelid FROM pg_class "
                "  WHERE relnamespace = 'public'::regnamespace), "
                "toasts AS (SELECT reltoastrelid AS oid FROM mine WHERE reltoastrelid <> 0) "
                "SELECT c.oid::regclass::text, "
                "  pg_relation_size(c.oid) / current_setting('block_size')::int "
                "FROM pg_class c WHERE c.relkind IN ('r', 'i', 't') AND ("
                "  c.oid IN (SELECT oid FROM mine) OR c.oid IN (SELECT oid FROM toasts) "
                "  OR c.oid IN (SELECT indexrelid FROM pg_index "
                "    WHERE indrelid IN (SELECT oid FROM toasts)))"
            )
        ).all()
        assert "ballot" in {name for name, _ in relations}
        for name, blocks in relations:
            for block in range(blocks):
                page = connection.execute(
                    text("SELECT get_raw_page(:name, 'main', :block)"),
                    {"name": name, "block": block},
                ).scalar_one()
                yield f"{name} block {block}", bytes(page)
        connection.rollback()


def _sqlite_pages(database: Path) -> Iterator[tuple[str, bytes]]:
    data = database.read_bytes()
    size = struct.unpack(">H", data[16:18])[0] or 65536
    for at in range(0, len(data), size):
        yield f"{database.name} page {at // size + 1}", data[at : at + size]
    wal = database.with_name(database.name + "-wal")
    log = wal.read_bytes() if wal.exists() else b""
    if log:
        frame = struct.unpack(">I", log[8:12])[0]
        for at in range(32, len(log), 24 + frame):
            number = struct.unpack(">I", log[at : at + 4])[0]
            yield f"{wal.name} frame of page {number}", log[at + 24 : at + 24 + frame]


def _pages(engine: Engine, settings: Settings) -> Iterator[tuple[str, bytes]]:
    if engine.dialect.name == "postgresql":
        return _postgres_pages(engine)
    database = make_url(settings.database_url).database
    assert database
    return _sqlite_pages(Path(database))


@dataclass
class Published:
    """A published process whose voters cast, changed, withdrew and cast again."""

    base: str
    crowd: list[Voter]
    receipts: dict[int, list[str]]  # every receipt issued to each voter
    links: set[tuple[int, int]]  # every (ballot id, voter id) stored before sealing

    def voters_next_to_their_choice(self, engine: Engine, settings: Settings) -> set[int]:
        return set(_voters_next_to_their_choice(engine, settings, self))


def _published(
    client: TestClient, actors: Actors, session: Session, settings: Settings, engine: Engine
) -> Published:
    process, (p1, p2, p3, _p4) = make_voting_process(session, actors.author.user, budget=20_000)
    assert process.id is not None
    base = f"{API}/processes/{process.id}"
    crowd = [_voter(session, settings, n) for n in range(4)]
    receipts: dict[int, list[str]] = {v.id: [] for v in crowd}

    # The last voter's ballot as the release before revision 0013 wrote it: the voter in the
    # ballot row (and, where the link table exists, the link its backfill made).
    legacy, legacy_receipt = crowd[3], secrets.token_urlsafe(24)
    assert p2.id is not None
    assert p2.cost is not None
    session.add(
        Ballot(
            id=BALLOT_BASE,
            process_id=process.id,
            voter_id=legacy.id,
            items=[[p2.id, 1]],
            total_cost=p2.cost,
            receipt=legacy_receipt,
        )
    )
    session.add(Receipt(process_id=process.id, receipt=legacy_receipt))
    session.commit()
    receipts[legacy.id].append(legacy_receipt)
    if "ballot_voter" in inspect(engine).get_table_names():
        # (Revision 0015's trigger links it already; the backfill of 0013 would have.)
        session.execute(
            text(
                "INSERT INTO ballot_voter (process_id, voter_id, ballot_id) VALUES (:p, :v, :b) "
                "ON CONFLICT DO NOTHING"
            ),
            {"p": process.id, "v": legacy.id, "b": BALLOT_BASE},
        )
    if engine.dialect.name == "postgresql":  # SQLite continues after the largest id itself
        session.execute(
            text("SELECT setval(pg_get_serial_sequence('ballot', 'id'), :n)"), {"n": BALLOT_BASE}
        )
    session.commit()

    links: set[tuple[int, int]] = _links(session, engine)

    def cast(voter: Voter, choice: list[int | None]) -> None:
        response = client.put(
            f"{base}/ballot", json={"proposal_ids": choice}, headers=voter.headers
        )
        assert response.status_code == 200, response.text
        receipts[voter.id].append(response.json()["receipt"])
        links.update(_links(session, engine))

    firsts: list[list[int | None]] = [[p1.id], [p2.id], [p1.id, p3.id], [p3.id]]
    for voter, choice in zip(crowd, firsts, strict=True):
        cast(voter, choice)
    cast(crowd[0], [p3.id])  # a change of mind: the ballot is replaced
    withdrawn = client.delete(f"{base}/ballot", headers=crowd[1].headers)
    assert withdrawn.status_code == 204, withdrawn.text
    cast(crowd[1], [p1.id])  # a withdrawal, then a new ballot
    assert {v for _, v in links} == {v.id for v in crowd}
    assert len(links) >= 5
    session.commit()
    mailed = session.exec(
        select(OutgoingMail.id).where(OutgoingMail.kind == MailKind.ballot_receipt)
    ).all()
    assert len(mailed) == 6  # the test would miss them if the outbox held no confirmations
    session.commit()

    close(client, process.id, actors.admin)
    published = client.post(f"{base}/results", headers=actors.admin.headers)
    assert published.status_code == 201, published.text
    session.commit()  # no open snapshot of the test's own may hold the scrub back
    found = Published(base=base, crowd=crowd, receipts=receipts, links=links)
    # Before sealing the search finds every voter next to their choice (so it can see).
    assert found.voters_next_to_their_choice(engine, settings) == {v.id for v in crowd}
    return found


def test_no_page_holds_a_voter_next_to_their_choice_after_sealing(
    client: TestClient,
    actors: Actors,
    session: Session,
    settings: Settings,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    published = _published(client, actors, session, settings, engine)
    sealed = client.post(f"{published.base}/seal", headers=actors.admin.headers)
    assert sealed.status_code == 200, sealed.text
    assert "scrubbing the database files failed" not in caplog.text
    # The seal has committed and scrubbed before answering.
    assert _voters_next_to_their_choice(engine, settings, published) == {}


@contextmanager
def _older(engine: Engine, settings: Settings, kind: str) -> Iterator[Connection]:
    """A transaction begun before the seal: VACUUM keeps every row it may still see."""
    if kind == "a snapshot of this database":  # a report, reading something else
        with engine.connect() as connection:
            connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            connection.execute(text("SELECT count(*) FROM process")).scalar_one()
            yield connection
        return
    # A write under way in another database of the server: it holds back the xmin of every
    # snapshot taken meanwhile, VACUUM's own included.
    other = create_engine(
        make_url(settings.database_url).set(database="postgres"), poolclass=NullPool
    )
    try:
        with other.connect() as connection:
            connection.execute(text("SELECT pg_current_xact_id()")).scalar_one()
            yield connection
    finally:
        other.dispose()


@pytest.mark.parametrize(
    "kind", ["a snapshot of this database", "a transaction in another database"]
)
def test_the_scrub_waits_for_transactions_older_than_the_seal(
    client: TestClient,
    actors: Actors,
    session: Session,
    settings: Settings,
    engine: Engine,
    kind: str,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("MVCC snapshots keep deleted rows on PostgreSQL; SQLite has none")
    published = _published(client, actors, session, settings, engine)
    with _older(engine, settings, kind) as older, ThreadPoolExecutor(max_workers=1) as pool:
        seal_call = pool.submit(client.post, f"{published.base}/seal", headers=actors.admin.headers)

        def seal_committed() -> bool:
            with engine.connect() as fresh:
                count: int = fresh.execute(
                    text("SELECT count(*) FROM process WHERE sealed_at IS NOT NULL")
                ).scalar_one()
                return count == 1

        wait_until(seal_committed, timeout=20, what="the seal committed")
        assert not seal_call.done()  # the scrub waits for the older transaction
        older.rollback()
        sealed = seal_call.result(timeout=30)
    assert sealed.status_code == 200, sealed.text
    assert _voters_next_to_their_choice(engine, settings, published) == {}


def _voters_next_to_their_choice(
    engine: Engine, settings: Settings, published: Published
) -> dict[int, list[str]]:
    """For each voter found on a page with one of their choices, where."""
    marks = {v.id: [*_int4(v.id), v.email.encode()] for v in published.crowd}
    choices = {v.id: [r.encode() for r in published.receipts[v.id]] for v in published.crowd}
    for ballot_id, voter_id in published.links:
        choices[voter_id] += _int4(ballot_id)
    found: dict[int, list[str]] = {}
    for where, page in _pages(engine, settings):
        for voter_id, own in marks.items():
            if any(m in page for m in own) and any(c in page for c in choices[voter_id]):
                found.setdefault(voter_id, []).append(where)
    return found


def test_every_sqlite_connection_zeroes_what_it_deletes(tmp_path: Path) -> None:
    # Some SQLite builds (Debian's) zero deleted content by default, others do not: start
    # every connection with it off, as such a build would, and the app's hook turns it on.
    def plain_build() -> sqlite3.Connection:
        connection = sqlite3.connect(tmp_path / "plain.db", check_same_thread=False)
        connection.execute("PRAGMA secure_delete=OFF")
        return connection

    engine = make_engine(f"sqlite:///{tmp_path / 'plain.db'}", creator=plain_build)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 1
    finally:
        engine.dispose()


def test_a_scrub_that_cannot_run_is_logged_and_the_seal_stands(
    client: TestClient,
    actors: Actors,
    session: Session,
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("holds a table lock against VACUUM FULL; SQLite has no table locks")
    process, (p1, *_) = make_voting_process(session, actors.author.user)
    voter = _voter(session, settings, 0)
    base = f"{API}/processes/{process.id}"
    cast = client.put(f"{base}/ballot", json={"proposal_ids": [p1.id]}, headers=voter.headers)
    assert cast.status_code == 200, cast.text
    close(client, process.id, actors.admin)
    assert client.post(f"{base}/results", headers=actors.admin.headers).status_code == 201
    monkeypatch.setattr(sealing, "_SCRUB_LOCK_TIMEOUT", "100ms")
    with engine.connect() as reader:  # a long read of the receipts
        reader.execute(text("LOCK TABLE receipt IN ACCESS SHARE MODE"))
        sealed = client.post(f"{base}/seal", headers=actors.admin.headers)
        reader.rollback()
    assert sealed.status_code == 200, sealed.text
    assert sealed.json()["sealed_at"] is not None
    # (The lock is what it could not get; on a busy server it may give up waiting first.)
    assert "sealed, but scrubbing the database files failed" in caplog.text
