"""Titles and names are one line: they end up in CSV and pabulib rows and in mail subjects."""

import pytest
from pydantic import ValidationError

from app.models.process import ProcessCreate
from app.models.proposal import ProposalCreate


@pytest.mark.parametrize("title", ["Speel\rtuin", "Speel\ntuin", "Speel\x1btuin", "a\u0085b"])
def test_a_title_with_a_control_character_is_refused(title: str) -> None:
    with pytest.raises(ValidationError, match="one line"):
        ProcessCreate.model_validate({"title": title, "budget": 1, "ballot": {"type": "knapsack"}})
    with pytest.raises(ValidationError, match="one line"):
        ProposalCreate.model_validate(
            {"title": title, "summary": "s", "description": "d", "estimated_cost": 1}
        )


def test_ordinary_titles_pass() -> None:
    spec = ProcessCreate.model_validate(
        {"title": "  Speeltuin — Oosterpark 'n café  ", "budget": 1, "ballot": {"type": "knapsack"}}
    )
    assert spec.title == "Speeltuin — Oosterpark 'n café"
