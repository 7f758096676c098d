"""Ballots, receipts and voting codes: tables and API shapes.

A ballot row holds its choices as `items`, a JSON list of `[proposal_id, weight]` pairs in
ascending id order (weight 1 on knapsack and approval ballots, the points on cumulative
ones). It names no voter: which account cast it is kept apart, in `ballot_voter`, one row
per voter per process, so that sealing removes the link by deleting those small rows (and
scrubbing them from disk) while the ballot rows never held a voter id in the first place.
"""

from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)
from sqlalchemy import JSON, Column, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.core.i18n import N_
from app.core.limits import INT32_MAX
from app.models.base import UTCDateTime, utcnow
from app.models.common import NoNul, Schema


class Ballot(SQLModel, table=True):
    __tablename__ = "ballot"
    __table_args__ = (UniqueConstraint("process_id", "voter_id"),)

    id: int | None = SQLField(default=None, primary_key=True)
    process_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("process.id", ondelete="CASCADE"), nullable=False)
    )
    # Deprecated, no longer written (always null in new rows): the voter is in
    # `ballot_voter`. It stays one release, with its unique constraint, so the release
    # before still runs on this schema (expand/contract); revision 0013 copied it into
    # `ballot_voter`; erasure still clears it in rows written before. To do: drop the
    # column and its constraint in the next release's revision.
    voter_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    items: list[list[int]] = SQLField(sa_column=Column(JSON, nullable=False))
    total_cost: int = SQLField(nullable=False)
    # Null on paper ballots: receipts are for online voters (no one holds a paper one).
    receipt: str | None = SQLField(
        default=None, sa_column=Column(String(64), nullable=True, unique=True)
    )
    cast_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    # `online`, or `paper` for a ballot of a confirmed paper batch (see app/models/paper.py).
    channel: str = SQLField(
        default="online",
        sa_column=Column(String(8), nullable=False, default="online", server_default="online"),
    )
    paper_batch_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("paper_batch.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )


class BallotVoter(SQLModel, table=True):
    """Which account cast which ballot: the only link between a voter and a choice.

    One row per voter per process (the primary key): concurrent casts by one voter queue on
    this row, so one ballot remains. `ballot_id` is null only inside the cast that creates
    the row (the row is taken first, then the ballot written); deleting the ballot deletes
    the link. Erasing an account once voting has closed, and sealing, delete the link and
    keep the ballot. Deleting an account deletes its links, never a ballot."""

    __tablename__ = "ballot_voter"

    process_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("process.id", ondelete="CASCADE"), primary_key=True)
    )
    voter_id: int = SQLField(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )
    ballot_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("ballot.id", ondelete="CASCADE"),
            nullable=True,
            unique=True,
        ),
    )


class Receipt(SQLModel, table=True):
    """Every receipt ever issued, so a replaced or withdrawn ballot's receipt still resolves.

    It names no voter and no choice: it says only which process it belongs to."""

    __tablename__ = "receipt"

    id: int | None = SQLField(default=None, primary_key=True)
    process_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("process.id", ondelete="CASCADE"), nullable=False)
    )
    receipt: str = SQLField(sa_column=Column(String(64), nullable=False, unique=True))
    issued_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class VotingCode(SQLModel, table=True):
    """A single-use code from a household letter, stored only as an HMAC-SHA-256."""

    __tablename__ = "voting_code"
    __table_args__ = (
        UniqueConstraint("process_id", "code_hash"),
        UniqueConstraint("process_id", "claimed_by"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    process_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("process.id", ondelete="CASCADE"), nullable=False)
    )
    code_hash: str = SQLField(sa_column=Column(String(64), nullable=False))
    claimed_by: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    claimed_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # Set when a paper ballot of a confirmed batch used the code (then `claimed_by` is null
    # and `claimed_at` set, so an online claim finds it used).
    paper_batch_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("paper_batch.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )


BallotId = Annotated[StrictInt, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
PointValue = (
    Annotated[StrictInt, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
)
ProposalKey = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")]
MAX_BALLOT_ENTRIES = 500


class BallotCast(Schema):
    """Knapsack and approval ballots send `proposal_ids`; cumulative ballots send `points`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"proposal_ids": [3, 7]}, {"points": {"3": 5, "7": 5}}]}
    )

    proposal_ids: list[BallotId] | None = Field(default=None, max_length=MAX_BALLOT_ENTRIES)
    points: dict[ProposalKey, PointValue] | None = Field(
        default=None, max_length=MAX_BALLOT_ENTRIES
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.proposal_ids is None) == (self.points is None):
            raise ValueError(N_("send either proposal_ids or points"))
        return self


class BallotPublic(BaseModel):
    process_id: int
    proposal_ids: list[int] = Field(description="Ascending.")
    points: dict[str, int] | None = Field(description="Cumulative ballots only.")
    total_cost: int
    cast_at: datetime
    receipt: str = Field(
        description="Keep it: it tells whether this ballot is current and counted."
    )


class ReceiptStatus(BaseModel):
    current: bool = Field(description="Whether this receipt belongs to the voter's current ballot.")
    counted: bool | None = Field(description="Null until results are published.")


class CodeBatch(Schema):
    count: Annotated[int, Field(ge=1, le=100_000)]


CodeText = Annotated[str, StringConstraints(max_length=64), NoNul]


class CodeClaim(Schema):
    code: CodeText


class CodeClaimed(BaseModel):
    process_id: int
    claimed: bool
