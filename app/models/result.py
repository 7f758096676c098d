"""Published results: computed once when an admin publishes, stored, immutable."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Column, ForeignKey, Integer, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.base import UTCDateTime, utcnow
from app.models.process import TallyRule


class PublishedResult(SQLModel, table=True):
    __tablename__ = "published_result"

    # One row per process: the primary key makes a second publication impossible.
    process_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("process.id", ondelete="CASCADE"), primary_key=True)
    )
    document: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    # The canonical inputs the digest covers, and the pabulib META, as they were at
    # publication: the exports are rebuilt from these, never from live tables.
    inputs: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    digest: str = SQLField(sa_column=Column(String(64), nullable=False))
    published_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class PublishedInputs(BaseModel):
    """What the digest covers and the exports are rebuilt from, as stored at publication.

    Version 1 (before ballot types had one home) said `cumulative: bool`; `of` reads both."""

    version: Literal[2] = 2
    budget: int
    proposal_ids: list[int] = Field(description="Ascending: the tie-break order.")
    ballots: list[list[list[int]]] = Field(description="Canonical: pairs by id, ballots sorted.")
    weighted: bool = Field(description="Whether weights are points (cumulative ballots).")
    meta: dict[str, str] = Field(description="The pabulib META of the export.")

    @classmethod
    def of(cls, stored: dict[str, Any]) -> "PublishedInputs":
        if "version" not in stored:
            stored = {**stored, "version": 2, "weighted": bool(stored.get("cumulative"))}
            stored.pop("cumulative", None)
        return cls.model_validate(stored)


class Price(BaseModel):
    fraction: str = Field(description='Exact, as "num/den".')
    decimal: float


def _absent(value: object) -> bool:
    return value is None


class Explanation(BaseModel):
    """Why a proposal won or lost under one rule. Fields that do not apply to the rule or
    the outcome are left out, except `would_win_at_cost`: on losing proposals the highest
    whole cost (at least 1) that would have won, null when none would; null on selected ones."""

    outcome: Literal["selected", "did_not_fit", "no_votes", "underfunded"]
    budget_left_when_considered: int | None = Field(
        default=None,
        exclude_if=_absent,
        description="greedy (selected, did_not_fit): the budget left when the walk reached it.",
    )
    round: int | None = Field(
        default=None, exclude_if=_absent, description="mes, selected: 1 = funded first."
    )
    price_per_support: Price | None = Field(
        default=None,
        exclude_if=_absent,
        description="mes, selected: rho; a supporter paid rho x cost x weight, or all they had.",
    )
    supporters_paid_in_full: int | None = Field(default=None, exclude_if=_absent)
    supporters_paid_all_they_had: int | None = Field(default=None, exclude_if=_absent)
    supporters_money_left: float | None = Field(
        default=None,
        exclude_if=_absent,
        description="mes, losing: what its supporters held at the end, euros (to the cent).",
    )
    shortfall: float | None = Field(
        default=None,
        exclude_if=_absent,
        description="mes, losing: cost minus supporters_money_left, euros (to the cent).",
    )
    would_win_at_cost: int | None = Field(
        default=None,
        description="Losing: the highest whole-euro cost at which it would have been "
        "selected, all else equal (mes: in the run at the final Add1 budget).",
    )


class Fairness(BaseModel):
    funded_choices_histogram: dict[str, int] = Field(
        description='Ballots by number of funded choices: {"0": n0, "1": n1, ...}.'
    )
    mean_funded_share: float = Field(
        description="Mean share of a ballot's chosen cost that is funded (ballots with choices)."
    )
    gini_funded_share: float = Field(description="Gini coefficient of that share over ballots.")


class ProjectResult(BaseModel):
    proposal_id: int
    title: str
    cost: int
    votes: int = Field(description="Ballots that chose it, or its total points (cumulative).")
    selected: bool
    rank: int
    # Null only on results published before explanations existed.
    explanation: Explanation | None = Field(default=None, description="Under the official rule.")


class RuleResult(BaseModel):
    selected_ids: list[int] = Field(description="In selection order.")
    spent: int
    voters_with_a_funded_choice: float = Field(description="Share of ballots with a funded choice.")
    funded_choices_per_voter: float = Field(description="Mean number of funded choices per ballot.")
    # Null only on results published before explanations existed.
    explanations: dict[str, Explanation] | None = Field(
        default=None, description="Keyed by proposal id."
    )
    fairness: Fairness | None = None


class BallotsByChannel(BaseModel):
    online: int
    paper: int = Field(description="Valid ballots of confirmed paper batches.")


class PaperRejected(BaseModel):
    invalid: int = Field(description="Paper ballots of confirmed batches that broke a rule.")
    duplicate: int = Field(description="Paper ballots whose voting code was already used.")


class Results(BaseModel):
    process_id: int
    rule: TallyRule = Field(description="The official rule: its outcome is the top level.")
    budget: int
    spent: int
    remaining: int
    ballot_count: int
    published: bool
    published_at: datetime | None
    projects: list[ProjectResult] = Field(description="Ordered by rank.")
    selected_ids: list[int]
    rules: dict[str, RuleResult]
    digest: str = Field(description="SHA-256 (hex) of the canonical inputs and outcome.")
    # Null only on results published before paper ballots existed.
    ballots_by_channel: BallotsByChannel | None = None
    paper_rejected: PaperRejected | None = None
