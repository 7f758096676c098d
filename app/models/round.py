"""Rounds (editions) of a city's participatory budget: one city-wide budget beside a budget
per district, as Warsaw, Paris and Madrid run them. A process belongs to at most one round,
and within it to at most one group; a group limits in how many of its processes one voter
may hold a ballot (`max_processes_per_voter`)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, ForeignKey, Integer, String, Text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.core.limits import INT32_MAX
from app.models.base import UTCDateTime, utcnow
from app.models.common import Name, NoNul, Schema, Title
from app.models.process import Phase
from app.models.result import Results


class Round(SQLModel, table=True):
    __tablename__ = "budget_round"

    id: int | None = SQLField(default=None, primary_key=True)
    title: str = SQLField(sa_column=Column(String(200), nullable=False))
    description: str = SQLField(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class RoundGroup(SQLModel, table=True):
    __tablename__ = "round_group"

    id: int | None = SQLField(default=None, primary_key=True)
    round_id: int = SQLField(
        sa_column=Column(
            Integer, ForeignKey("budget_round.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = SQLField(sa_column=Column(String(100), nullable=False))
    max_processes_per_voter: int = SQLField(nullable=False)


Description = Annotated[str, Field(max_length=20_000), NoNul]
Limit = Annotated[int, Field(ge=1, le=INT32_MAX)]


class GroupCreate(Schema):
    name: Name
    max_processes_per_voter: Limit = Field(
        description="In how many processes of the group one voter may hold a ballot "
        "(1: choose your district).",
        examples=[1],
    )


class RoundCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Groningen 2026",
                    "description": "A city-wide budget and one budget per district.",
                    "groups": [{"name": "Districts", "max_processes_per_voter": 1}],
                }
            ]
        }
    )

    title: Title
    description: Description = ""
    groups: Annotated[list[GroupCreate], Field(max_length=50)] = Field(default_factory=list)


class GroupPublic(BaseModel):
    id: int
    name: str
    max_processes_per_voter: int


class RoundProcess(BaseModel):
    id: int
    title: str
    area: str
    phase: Phase
    budget: int
    group_id: int | None = Field(description="Null: voted independently (e.g. city-wide).")
    proposal_count: int
    ballot_count: int


class RoundPublic(BaseModel):
    id: int
    title: str
    description: str
    created_at: datetime
    groups: list[GroupPublic]
    processes: list[RoundProcess] = Field(description="Drafts are listed to admins only.")
    total_budget: int = Field(description="Sum of the budgets of the processes listed.")
    ballot_count: int = Field(
        description="Ballots in the processes listed: a voter with ballots in 3 processes counts 3."
    )
    voter_count: int = Field(
        description="Distinct voters with a ballot in a process listed (ballots unlinked by "
        "sealing or erasure are not attributed to a voter and are not counted here)."
    )


class ProcessStanding(BaseModel):
    process_id: int
    group_id: int | None
    can_vote: bool = Field(description="A ballot could be cast (or replaced) now.")
    has_ballot: bool
    reasons: list[str] = Field(
        description="Why not: `phase`, `postcode`, `age`, `voting_code`, `group_limit`."
    )


class GroupStanding(BaseModel):
    group_id: int
    name: str
    used: int = Field(description="Processes of the group where this account has a ballot.")
    max: int
    processes: list[int] = Field(description="Those processes' ids.")


class RoundStanding(BaseModel):
    round_id: int
    processes: list[ProcessStanding]
    groups: list[GroupStanding]


class RoundTransition(Schema):
    to: Phase


class ProcessOutcome(BaseModel):
    process_id: int
    title: str
    area: str
    group_id: int | None
    district: str = Field(description="The group's name, or `city-wide`.")
    phase: Phase
    published: bool
    ballot_count: int = Field(
        description="Turnout: the published count once published, else the current count."
    )
    results: Results | None = Field(description="As `GET /processes/{id}/results`; null before.")
    exports: dict[str, str] | None = Field(
        description="Paths of the `csv` and `pb` exports once published."
    )


class GroupTurnout(BaseModel):
    group_id: int | None = Field(description="Null: the processes outside any group.")
    district: str
    ballot_count: int


class RoundResults(BaseModel):
    round_id: int
    title: str
    processes: list[ProcessOutcome]
    groups: list[GroupTurnout]
    total_budget: int
    ballot_count: int = Field(description="Turnout in total, as ballots.")
    published_count: int
