"""`wijkbudget paper-import`: bulk entry of a scanned or spreadsheet batch, four eyes."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import get_settings
from app.models.ballot import Ballot
from app.models.paper import PaperBatch
from app.models.user import Role
from app.services import voting_codes
from tests.conftest import TEST_SECRET
from tests.factories import make_user, make_voting_process

runner = CliRunner()


@pytest.fixture
def cli_env(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)  # codes hash as the server's do
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _paper_ballots(session: Session, process_id: int | None) -> list[Ballot]:
    session.commit()
    rows = list(
        session.exec(
            select(Ballot).where(Ballot.process_id == process_id, Ballot.channel == "paper")
        )
    )
    session.commit()
    return rows


@pytest.mark.usefixtures("cli_env")
def test_import_then_confirm_by_another_account(session: Session, tmp_path: Path) -> None:
    author = make_user(session)
    clerk = make_user(session, role=Role.moderator, email="clerk@gemeente.nl")
    make_user(session, role=Role.admin, email="second@gemeente.nl")
    process, proposals = make_voting_process(session, author)
    p1, p2, p3, _ = (p.id for p in proposals)
    codes = voting_codes.generate(
        session,
        actor=make_user(session, role=Role.admin),
        process_id=process.id or 0,
        count=1,
        key=voting_codes.code_key(TEST_SECRET),
    ).split()[1:]
    session.commit()
    sheet = tmp_path / "box3.csv"
    sheet.write_text(
        f'proposal_ids,voting_code\n"{p1} {p2}",{codes[0]}\n{p3},\n"{p1} 999999",\n',
        encoding="utf-8",
    )
    args = ["paper-import", str(process.id), str(sheet), "--source", "Stadhuis, box 3"]
    first = runner.invoke(cli, [*args, "--as", "Clerk@Gemeente.nl"])
    assert first.exit_code == 0, first.output
    assert "entered: 3 ballots, 2 valid, 1 invalid, 0 duplicate" in first.output
    session.commit()
    batch = session.exec(select(PaperBatch)).one()
    assert batch.entered_by == clerk.id
    assert _paper_ballots(session, process.id) == []

    same = runner.invoke(cli, [*args, "--as", "clerk@gemeente.nl", "--confirm", str(batch.id)])
    assert same.exit_code != 0
    assert "forbidden" in same.output

    other = tmp_path / "box3-second.csv"
    other.write_text(sheet.read_text().replace(f"{p3},", f"{p2},"), encoding="utf-8")
    mismatch = runner.invoke(
        cli,
        [
            *args[:2],
            str(other),
            *args[3:],
            "--as",
            "second@gemeente.nl",
            "--confirm",
            str(batch.id),
        ],
    )
    assert mismatch.exit_code != 0
    assert "entry_mismatch" in mismatch.output
    assert "ballot 1:" in mismatch.output
    assert _paper_ballots(session, process.id) == []


@pytest.mark.usefixtures("cli_env")
def test_confirming_import_counts_the_batch_once(session: Session, tmp_path: Path) -> None:
    author = make_user(session)
    make_user(session, role=Role.moderator, email="a@gemeente.nl")
    make_user(session, role=Role.moderator, email="b@gemeente.nl")
    process, proposals = make_voting_process(
        session, author, ballot={"type": "cumulative", "points": 10}
    )
    p1, p2, *_ = (p.id for p in proposals)
    sheet = tmp_path / "points.csv"
    sheet.write_text(f'points\n"{p1}:6 {p2}:4"\n"{p1}:11"\n', encoding="utf-8")
    base = ["paper-import", str(process.id), str(sheet), "--source", "Bieb"]
    assert runner.invoke(cli, [*base, "--as", "a@gemeente.nl"]).exit_code == 0
    session.commit()
    batch_id = session.exec(select(PaperBatch.id)).one()
    done = runner.invoke(cli, [*base, "--as", "b@gemeente.nl", "--confirm", str(batch_id)])
    assert done.exit_code == 0, done.output
    assert f"batch {batch_id} confirmed: 2 ballots, 1 valid, 1 invalid" in done.output
    (row,) = _paper_ballots(session, process.id)
    assert row.items == [[p1, 6], [p2, 4]]
    again = runner.invoke(cli, [*base, "--as", "b@gemeente.nl", "--confirm", str(batch_id)])
    assert again.exit_code != 0
    assert "invalid_status" in again.output
    assert len(_paper_ballots(session, process.id)) == 1


@pytest.mark.usefixtures("cli_env")
def test_unreadable_files_and_unknown_accounts_fail_clearly(
    session: Session, tmp_path: Path
) -> None:
    process, _ = make_voting_process(session, make_user(session))
    make_user(session, role=Role.moderator, email="a@gemeente.nl")
    bad = tmp_path / "bad.csv"
    bad.write_text('proposal_ids\n"3 x"\n', encoding="utf-8")
    base = ["paper-import", str(process.id)]
    result = runner.invoke(cli, [*base, str(bad), "--source", "S", "--as", "a@gemeente.nl"])
    assert result.exit_code != 0
    assert "line 2" in result.output
    header = tmp_path / "header.csv"
    header.write_text("choices\n3\n", encoding="utf-8")
    result = runner.invoke(cli, [*base, str(header), "--source", "S", "--as", "a@gemeente.nl"])
    assert "line 1" in result.output
    good = tmp_path / "good.csv"
    good.write_text("proposal_ids\n3\n", encoding="utf-8")
    result = runner.invoke(cli, [*base, str(good), "--source", "S", "--as", "nobody@x.nl"])
    assert result.exit_code != 0
    assert "no account nobody@x.nl" in result.output
    missing = runner.invoke(
        cli, [*base, str(tmp_path / "none.csv"), "--source", "S", "--as", "a@gemeente.nl"]
    )
    assert missing.exit_code != 0
    session.commit()
    assert session.exec(select(PaperBatch)).all() == []
