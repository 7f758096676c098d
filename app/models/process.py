"""Budget processes (one round, e.g. "Oosterpark 2019", EUR 25,000): table and API shapes."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.ballot_types import BALLOT_KINDS, BallotKind, BallotSettings, BallotSpec, BallotTypeName
from app.core.limits import INT32_MAX
from app.models.base import UTCDateTime, utcnow
from app.models.common import Euros, NoNul, PositiveInt32, Schema, Title
from app.models.user import normalise_postcode


class Phase(StrEnum):
    draft = "draft"
    submission = "submission"
    review = "review"
    voting = "voting"
    closed = "closed"


PHASE_ORDER = list(Phase)


class TallyRule(StrEnum):
    greedy = "greedy"
    mes = "mes"


class Process(SQLModel, table=True):
    __tablename__ = "process"

    id: int | None = SQLField(default=None, primary_key=True)
    title: str = SQLField(sa_column=Column(String(200), nullable=False))
    description: str = SQLField(default="", sa_column=Column(Text, nullable=False))
    area: str = SQLField(default="", sa_column=Column(String(100), nullable=False))
    budget: int = SQLField(nullable=False)
    # The ballot settings as the type's model dumps them, `type` included.
    ballot: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    postcode_prefixes: list[str] = SQLField(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    min_age: int | None = SQLField(default=None, nullable=True)
    require_voting_code: bool = SQLField(default=False, nullable=False)
    # Ballots only from accounts whose e-mail address was verified by a mailed link.
    require_verified_email: bool = SQLField(default=False, nullable=False)
    # A paper ballot without a voting code is then invalid (`voting_code_required`).
    require_voting_code_on_paper: bool = SQLField(default=False, nullable=False)
    tally_rule: str = SQLField(sa_column=Column(String(16), nullable=False))
    # The categories a proposal must choose from; null: any category (or none).
    categories: list[str] | None = SQLField(default=None, sa_column=Column(JSON, nullable=True))
    # Lets a process enter voting in production with no voter verification at all.
    allow_unverified_voters: bool = SQLField(default=False, nullable=False)
    # Days after publication when `wijkbudget seal --due` seals it; null: never by itself.
    seal_after_days: int | None = SQLField(default=None, nullable=True)
    # When the links between voters and ballots were removed (see services/sealing.py).
    sealed_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # After it no proposal is submitted, although the phase is still `submission`.
    submission_closes_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    voting_opens_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    voting_closes_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    phase: str = SQLField(
        default=Phase.draft, sa_column=Column(String(16), nullable=False, index=True)
    )
    # When the process entered `voting`: the age rule's fallback year, and the lock's start.
    voting_started_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # When the process moved to `closed`: the end date of the pabulib export.
    closed_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    # The round (edition) it belongs to, and within it the group that limits in how many
    # processes one voter may vote (see app/services/rounds.py); both set only in `draft`.
    round_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("budget_round.id", ondelete="RESTRICT"), nullable=True, index=True
        ),
    )
    group_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("round_group.id", ondelete="RESTRICT"), nullable=True, index=True
        ),
    )


def _as_utc(value: datetime | None) -> datetime | None:
    # The contract speaks UTC; a timestamp without an offset is read as UTC.
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-05:00 is in year 10000 in UTC, which datetime cannot hold: a
        # ValueError makes it a field error (422), not a failure of the server.
        raise ValueError("the timestamp is out of range once converted to UTC") from None


def _prefixes(values: list[str]) -> list[str]:
    cleaned = [normalise_postcode(v) for v in values]
    for value in cleaned:
        if not value.isalnum() or len(value) > 10:
            raise ValueError("a postcode prefix has 1 to 10 letters or digits")
    return sorted(set(cleaned))


def _one_line(value: str) -> str:
    if any(char in value for char in "\r\n\t"):
        raise ValueError("a category name is one line")
    return value


def _distinct(values: list[str]) -> list[str]:
    seen = {value.casefold() for value in values}
    if len(seen) != len(values):
        raise ValueError("category names are distinct (ignoring case)")
    return values


CategoryName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    NoNul,
    AfterValidator(_one_line),
]
Categories = Annotated[list[CategoryName], Field(max_length=50), AfterValidator(_distinct)]
Count = Annotated[int, Field(ge=1, le=INT32_MAX)]
Description = Annotated[str, StringConstraints(max_length=20_000), NoNul]
Area = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), NoNul]
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
UTCTimestamp = Annotated[datetime, AfterValidator(_as_utc)]
Prefix = Annotated[str, StringConstraints(min_length=1, max_length=16), NoNul]


class EligibilitySpec(Schema):
    postcode_prefixes: Annotated[list[Prefix], Field(max_length=200), AfterValidator(_prefixes)] = (
        Field(default_factory=list, description="Empty: everyone.", examples=[["9713"]])
    )
    min_age: Annotated[int, Field(ge=0, le=150)] | None = Field(
        default=None, description="Age reached in the calendar year voting opens; null: none."
    )
    require_voting_code: bool = False
    require_verified_email: bool = Field(
        default=False, description="Ballots only from accounts with a verified e-mail address."
    )
    require_voting_code_on_paper: bool = Field(
        default=False, description="A paper ballot without a voting code is then invalid."
    )


class ProcessCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Oosterpark 2019",
                    "description": "Residents of Oosterpark divide EUR 25,000.",
                    "area": "Oosterpark",
                    "budget": 25000,
                    "ballot": {"type": "knapsack", "min_projects": 1, "max_projects": None},
                    "eligibility": {"postcode_prefixes": ["9713"], "min_age": 16},
                    "tally_rule": "greedy",
                    "voting_opens_at": None,
                    "voting_closes_at": None,
                }
            ]
        }
    )

    title: Title
    description: Description = ""
    area: Area = ""
    budget: Euros
    ballot: BallotSpec
    eligibility: EligibilitySpec = Field(default_factory=EligibilitySpec)
    tally_rule: TallyRule = TallyRule.greedy
    categories: Categories | None = Field(
        default=None,
        description="The categories proposals choose from, in display order; null: any.",
        examples=[["Greenery", "Play", "Traffic"]],
    )
    submission_closes_at: UTCTimestamp | None = Field(
        default=None, description="No submissions after it; null: until the phase ends."
    )
    voting_opens_at: UTCTimestamp | None = None
    voting_closes_at: UTCTimestamp | None = None
    allow_unverified_voters: bool = Field(
        default=False,
        description="In production, entering voting needs voting codes unless this is true.",
    )
    seal_after_days: Annotated[int, Field(ge=0, le=3650)] | None = Field(
        default=None, description="Seal this many days after publication; null: never."
    )
    round_id: PositiveInt32 | None = Field(
        default=None, description="The round (edition) it belongs to; set only in `draft`."
    )
    group_id: PositiveInt32 | None = Field(
        default=None,
        description="A group of that round limiting in how many of its processes one voter "
        "may vote; null: voted independently (e.g. the city-wide budget).",
    )

    @model_validator(mode="after")
    def _window_in_order(self) -> Self:
        if (
            self.voting_opens_at is not None
            and self.voting_closes_at is not None
            and self.voting_closes_at <= self.voting_opens_at
        ):
            raise ValueError("voting_closes_at must be after voting_opens_at")
        return self


class BallotPatch(Schema):
    """Changes to the ballot settings, merged into the stored ones and then checked as a
    whole by the type's model."""

    type: BallotTypeName | None = None
    min_projects: Count | None = None
    max_projects: Count | None = None
    min_budget_share: Share | None = None
    points: Count | None = None
    max_points_per_project: Count | None = None


class EligibilityPatch(Schema):
    postcode_prefixes: Annotated[list[Prefix], Field(max_length=200)] | None = None
    min_age: Annotated[int, Field(ge=0, le=150)] | None = None
    require_voting_code: bool | None = None
    require_verified_email: bool | None = None
    require_voting_code_on_paper: bool | None = None


class ProcessUpdate(Schema):
    """A partial spec: fields left out keep their value; `ballot` and `eligibility` merge."""

    title: Title | None = None
    description: Description | None = None
    area: Area | None = None
    budget: Euros | None = None
    ballot: BallotPatch | None = None
    eligibility: EligibilityPatch | None = None
    tally_rule: TallyRule | None = None
    categories: Categories | None = Field(default=None, description="null: any category.")
    submission_closes_at: UTCTimestamp | None = None
    voting_opens_at: UTCTimestamp | None = Field(
        default=None, description="In `voting`: changes only while the process has no ballot."
    )
    voting_closes_at: UTCTimestamp | None = Field(
        default=None, description="In `voting`: may only move later."
    )
    allow_unverified_voters: bool | None = None
    seal_after_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    round_id: PositiveInt32 | None = Field(
        default=None, description="null: out of its round (and group). Only in `draft`."
    )
    group_id: PositiveInt32 | None = Field(
        default=None,
        description="A group of the process's round (setting it alone also sets `round_id`); "
        "null: out of its group. Only in `draft`.",
    )


class Transition(Schema):
    to: Phase


class ProcessPublic(BaseModel):
    id: int
    title: str
    description: str
    area: str
    budget: int
    ballot: BallotSpec
    eligibility: EligibilitySpec
    tally_rule: TallyRule
    categories: list[str] | None
    submission_closes_at: datetime | None
    voting_opens_at: datetime | None
    voting_closes_at: datetime | None
    allow_unverified_voters: bool
    seal_after_days: int | None
    phase: Phase
    voting_started_at: datetime | None
    sealed_at: datetime | None = Field(description="When voters and ballots were unlinked.")
    created_at: datetime
    round_id: int | None
    group_id: int | None
    proposal_count: int = Field(description="Proposals in the process, withdrawn ones excluded.")
    ballot_count: int = Field(description="Current ballots (one per voter).")


def spec_of(process: Process) -> dict[str, Any]:
    """The stored process as a `ProcessCreate`-shaped dict (for merging and comparing)."""
    return {
        "title": process.title,
        "description": process.description,
        "area": process.area,
        "budget": process.budget,
        "ballot": dict(process.ballot),
        "eligibility": {
            "postcode_prefixes": list(process.postcode_prefixes),
            "min_age": process.min_age,
            "require_voting_code": process.require_voting_code,
            "require_verified_email": process.require_verified_email,
            "require_voting_code_on_paper": process.require_voting_code_on_paper,
        },
        "tally_rule": process.tally_rule,
        "categories": None if process.categories is None else list(process.categories),
        "submission_closes_at": process.submission_closes_at,
        "voting_opens_at": process.voting_opens_at,
        "voting_closes_at": process.voting_closes_at,
        "allow_unverified_voters": process.allow_unverified_voters,
        "seal_after_days": process.seal_after_days,
        "round_id": process.round_id,
        "group_id": process.group_id,
    }


def process_from(spec: ProcessCreate) -> Process:
    """A new process (phase `draft`) holding the spec."""
    process = Process(
        title=spec.title,
        budget=spec.budget,
        ballot=spec.ballot.model_dump(),
        tally_rule=spec.tally_rule,
    )
    apply_spec(process, spec)
    return process


def apply_spec(process: Process, spec: ProcessCreate) -> None:
    process.title = spec.title
    process.description = spec.description
    process.area = spec.area
    process.budget = spec.budget
    process.ballot = spec.ballot.model_dump()
    process.postcode_prefixes = list(spec.eligibility.postcode_prefixes)
    process.min_age = spec.eligibility.min_age
    process.require_voting_code = spec.eligibility.require_voting_code
    process.require_verified_email = spec.eligibility.require_verified_email
    process.require_voting_code_on_paper = spec.eligibility.require_voting_code_on_paper
    process.tally_rule = spec.tally_rule
    process.categories = None if spec.categories is None else list(spec.categories)
    process.submission_closes_at = spec.submission_closes_at
    process.voting_opens_at = spec.voting_opens_at
    process.voting_closes_at = spec.voting_closes_at
    process.allow_unverified_voters = spec.allow_unverified_voters
    process.seal_after_days = spec.seal_after_days
    process.round_id = spec.round_id
    process.group_id = spec.group_id


_BALLOT_SPEC: TypeAdapter[BallotSettings] = TypeAdapter(BallotSpec)


def ballot_settings(process: Process) -> BallotSettings:
    """The process's ballot settings as its type's model."""
    return _BALLOT_SPEC.validate_python(process.ballot)


def ballot_kind(process: Process) -> BallotKind[Any]:
    return BALLOT_KINDS[process.ballot["type"]]
