"""The pabulib reader and writer, and pabulib-checker as an independent oracle of our tally."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services import pabulib
from app.services.tally import Election, Outcome, greedy, mes
from tests.helpers import checker_errors
from tests.pabulib_data import pabulib_file, pabulib_files

GOOD = """META\r
key;value\r
description;"Quoted; with a semicolon"\r
budget;100\r
vote_type;approval\r
PROJECTS\r
project_id;cost;name\r
a1;60;"Benches; six of them"\r
b2;50;Trees\r
VOTES\r
voter_id;vote\r
v1;a1,b2\r
v2;b2\r
"""


def test_reads_crlf_quotes_and_string_ids() -> None:
    election = pabulib.parse(GOOD)
    assert election.meta["description"] == "Quoted; with a semicolon"
    assert [p.project_id for p in election.projects] == ["a1", "b2"]
    assert election.projects[0].fields["name"] == "Benches; six of them"
    assert election.ballots == [((0, 1), (1, 1)), ((1, 1),)]
    assert election.voter_ids == ["v1", "v2"]
    assert greedy(election.election()).selected == [1]


def test_reads_cumulative_points() -> None:
    text = (
        GOOD.replace("vote_type;approval", "vote_type;cumulative")
        .replace("voter_id;vote\r", "voter_id;vote;points\r")
        .replace("v1;a1,b2\r", "v1;a1,b2;3,2\r")
        .replace("v2;b2\r", "v2;b2;5\r")
    )
    election = pabulib.parse(text)
    assert election.ballots == [((0, 3), (1, 2)), ((1, 5),)]
    assert election.election().votes() == [3, 7]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("META\r\n", ""), "before the META"),
        (lambda t: t[: t.index("VOTES")], "VOTES section is missing"),
        (lambda t: t.replace("budget;100", "budget;lots"), "not a number"),
        (lambda t: t.replace("budget;100\r\n", ""), "no budget"),
        (lambda t: t.replace("a1;60;", "a1;sixty;"), "cost"),
        (lambda t: t.replace("a1;60;", "a1;60.5;"), "not a whole amount"),
        (lambda t: t.replace("b2;50;Trees", "a1;50;Trees"), "repeated"),
        (lambda t: t.replace("v2;b2", "v2;zz"), "unknown project 'zz'"),
        (lambda t: t.replace("v2;b2", "v2;b2,b2"), "voted for twice"),
        (lambda t: t.replace("v2;b2", "v2;b2;extra"), "fields"),
        (lambda t: t.replace("vote_type;approval", "vote_type;ordinal"), "not supported"),
        (lambda t: t.replace("vote_type;approval", "vote_type;choose-1"), "choose-1 vote names 2"),
        (lambda t: t.replace("vote_type;approval", "vote_type;cumulative"), "points column"),
        (lambda t: t.replace("project_id;cost;name", "project_id;price;name"), "no cost column"),
        (lambda t: t.replace('"Benches; six of them"', '"Benches'), "unexpected end of data"),
    ],
)
def test_malformed_files_raise_a_clear_error(change: Any, message: str) -> None:
    with pytest.raises(pabulib.PabulibError, match=message):
        pabulib.parse(change(GOOD))


def test_unreadable_files(tmp_path: Path) -> None:
    binary = tmp_path / "x.pb"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(pabulib.PabulibError, match="UTF-8"):
        pabulib.read(binary)
    with pytest.raises(pabulib.PabulibError, match="No such file"):
        pabulib.read(tmp_path / "missing.pb")


def test_every_real_file_reads_or_explains_itself() -> None:
    for path in pabulib_files():
        if "vote_type;ordinal" in path.read_text(encoding="utf-8"):
            with pytest.raises(pabulib.PabulibError, match="'ordinal' is not supported"):
                pabulib.read(path)
            continue
        election = pabulib.read(path)
        assert election.projects
        assert len(election.ballots) == len(election.voter_ids) > 0


def test_progress_is_reported_while_reading_large_files(tmp_path: Path) -> None:
    # The large real files stay outside the repository; 35,000 generated ballots will do.
    votes = "".join(f"v{n};{'a1' if n % 2 else 'a1,b2'}\n" for n in range(1, 35_001))
    large = tmp_path / "large.pb"
    large.write_text(GOOD.replace("v1;a1,b2\r\nv2;b2\r\n", votes), encoding="utf-8")
    seen: list[int] = []
    election = pabulib.read(large, progress=seen.append)
    assert len(election.voter_ids) == 35_000
    assert seen == [10_000, 20_000, 30_000]


# -- pabulib-checker as the oracle --------------------------------------------------------


def export(election: Election, outcome: Outcome, rule: str) -> str:
    ids = [str(i + 1) for i in range(len(election.costs))]
    votes = election.votes()
    chosen = set(outcome.selected)
    projects = [
        pabulib.ExportProject(ids[i], election.costs[i], votes[i], f"P{i + 1}", i in chosen)
        for i in outcome.ranking
    ]
    ballots = [
        (str(n), [(ids[i], w) for i, w in ballot])
        for n, ballot in enumerate((b for b, count in election.ballots for _ in range(count)), 1)
    ]
    longest = max((len(b) for b, _ in election.ballots), default=1)
    meta = {
        "description": "Generated",
        "country": "Netherlands",
        "unit": "Groningen",
        "instance": "2026",
        "num_projects": str(len(ids)),
        "num_votes": str(len(ballots)),
        "budget": str(election.budget),
        "vote_type": "approval",
        "rule": rule,
        "date_begin": "01.10.2026",
        "date_end": "20.10.2026",
        "min_length": "1",
        "max_length": str(longest),
    }
    if rule == "greedy":
        # Our greedy never funds a project without votes; plain pabulib greedy does.
        meta.update(rule="greedy-threshold", min_project_score_threshold="1")
    if sum(election.costs) <= election.budget:
        meta["fully_funded"] = "1"
    return pabulib.write(meta, projects, ballots, cumulative=False)


def test_checker_confirms_greedy_on_every_approval_file() -> None:
    for path in pabulib_files():
        try:
            election = pabulib.read(path)
        except pabulib.PabulibError:
            continue
        if election.vote_type != "approval":
            continue
        e = election.election()
        errors = checker_errors(export(e, greedy(e), "greedy"))
        assert not [k for k in errors if "rule" in k], (path.name, errors)


def small_overspending_approval_files() -> list[str]:
    """Where the checker's Equal Shares can judge in reasonable time: approval, a few thousand
    voters at most, and voted projects costing more than the budget (else its Add1 loops)."""
    stems = []
    for path in pabulib_files():
        try:
            election = pabulib.read(path)
        except pabulib.PabulibError:
            continue
        e = election.election()
        voted = sum(c for c, v in zip(e.costs, e.votes(), strict=True) if v)
        if election.vote_type == "approval" and e.voter_count <= 3500 and voted > e.budget:
            stems.append(path.stem)
    return stems


def test_small_overspending_files_exist() -> None:
    assert {"Netherlands_Assen_2024", "Poland_Swiecie_2023"} <= set(
        small_overspending_approval_files()
    )


@pytest.mark.slow
@pytest.mark.parametrize("stem", small_overspending_approval_files())
def test_checker_confirms_mes_on_small_real_files(stem: str) -> None:
    e = pabulib.read(pabulib_file(stem)).election()
    errors = checker_errors(export(e, mes(e), "equalshares/add1"))
    assert not [k for k in errors if "rule" in k], errors


@st.composite
def overspending_elections(draw: st.DrawFn) -> Election:
    """Approval elections the checker can judge: distinct costs (it cannot break ties by id),
    none above the budget (a file error for it), and voted projects costing more than the
    budget (its Add1 never stops otherwise)."""
    count = draw(st.integers(2, 6))
    costs = draw(st.lists(st.integers(5, 90), min_size=count, max_size=count, unique=True))
    budget = draw(st.integers(max(costs), sum(costs) - 1))
    ballot = st.lists(st.integers(0, count - 1), min_size=1, max_size=count, unique=True)
    ballots = draw(st.lists(ballot, min_size=1, max_size=20))
    election = Election.build(budget, costs, ([(i, 1) for i in b] for b in ballots))
    voted = [i for i, v in enumerate(election.votes()) if v > 0]
    if sum(costs[i] for i in voted) <= budget:
        election = Election.build(
            budget, costs, [*([(i, 1) for i in b] for b in ballots), [(i, 1) for i in range(count)]]
        )
    return election


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overspending_elections())
def test_checker_agrees_with_our_winners_on_generated_elections(election: Election) -> None:
    votes = election.votes()
    approvals = sorted(zip(election.costs, votes, strict=True))
    if len(set(approvals)) < len(approvals):
        return  # equal cost and approvals: the checker refuses such ties
    assert checker_errors(export(election, mes(election), "equalshares/add1")) == {}
    assert checker_errors(export(election, greedy(election), "greedy")) == {}
