"""`wijkbudget tally --explain`: the explanations and fairness figures, as the API gives them."""

import json

from typer.testing import CliRunner

from app.cli import cli
from app.services import analysis, pabulib
from tests.pabulib_data import pabulib_file


def test_tally_explain_json_is_the_analysis_of_the_file() -> None:
    path = pabulib_file("Netherlands_Assen_2024")
    result = CliRunner().invoke(cli, ["tally", str(path), "--rule", "mes", "--explain", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    expected = analysis.analyse(pabulib.read(path)).rules["mes"].model_dump(mode="json")
    assert printed["selected"] == expected["selected_ids"]
    assert printed["explanations"] == expected["explanations"]
    assert printed["fairness"] == expected["fairness"]
    assert printed["voters_with_a_funded_choice"] == expected["voters_with_a_funded_choice"]
    official = pabulib.read(path).official_selection()
    assert official is not None
    assert sorted(
        pid for pid, e in printed["explanations"].items() if e["outcome"] == "selected"
    ) == sorted(official)


def test_tally_explain_table_says_why() -> None:
    path = pabulib_file("Netherlands_Amsterdam_515")
    result = CliRunner().invoke(cli, ["tally", str(path), "--explain"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["rank", "project", "cost", "votes", "selected", "why"]
    assert any("Selected: when its turn came" in line for line in lines)
    assert any("Not selected:" in line for line in lines)
    assert lines[-2].startswith("voters with a funded choice ")
    assert lines[-1].startswith("ballots by funded choices: 0: ")
