"""What-if tallies of a pabulib file (POST /analysis/tally): never stored."""

from pydantic import BaseModel, Field

from app.models.result import Explanation, Fairness


class AnalysedRule(BaseModel):
    selected_ids: list[str] = Field(description="In selection order, as in the file.")
    spent: int
    voters_with_a_funded_choice: float
    funded_choices_per_voter: float
    explanations: dict[str, Explanation] = Field(description="Keyed by project id.")
    fairness: Fairness


class Analysis(BaseModel):
    budget: int
    rules: dict[str, AnalysedRule]
