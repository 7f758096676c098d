"""Paper ballots: batches keyed twice (double data entry), tables and API shapes.

A `paper_batch` is one stack of paper forms from one place ("Stadhuis, box 3"). Each
independent keying of it is a `paper_entry` (keying 1 by the enterer, keying 2 by a second
staff account). Only when both keyings agree is the batch `confirmed` and its valid ballots
written to the `ballot` table (channel `paper`), where the tally reads them like any other.

A keyed ballot is stored as `{"proposal_ids": [...] | null, "points": {...} | null,
"code_hash": str | null, "code_hint": str | null}`: the voting code itself is never stored,
only its HMAC (as for voting codes) and its last four characters, so staff can see which
code differs without the table revealing codes.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.ballot import BallotCast, CodeText
from app.models.base import UTCDateTime, utcnow
from app.models.common import NoNul, Schema, Title


class BatchStatus(StrEnum):
    entered = "entered"  # keyed once, waiting for the second keying
    mismatched = "mismatched"  # keyed twice, the keyings differ: nothing counts
    confirmed = "confirmed"  # keyed twice alike: its valid ballots are ballots
    voided = "voided"  # taken out by an admin: nothing counts


class Verdict(StrEnum):
    valid = "valid"
    invalid = "invalid"
    duplicate = "duplicate"


class PaperBatch(SQLModel, table=True):
    __tablename__ = "paper_batch"

    id: int | None = SQLField(default=None, primary_key=True)
    process_id: int = SQLField(
        sa_column=Column(
            Integer, ForeignKey("process.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    source: str = SQLField(sa_column=Column(String(200), nullable=False))
    status: str = SQLField(
        default=BatchStatus.entered, sa_column=Column(String(16), nullable=False)
    )
    entered_by: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    # Whoever keyed it the second time (confirmed or mismatched).
    confirmed_by: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    # Per ballot, in keyed order: {"status": valid|invalid|duplicate, "reason": code|null}.
    # Provisional while `entered` or `mismatched` (codes are checked without being taken);
    # final once `confirmed`, decided under the code rows' locks.
    verdicts: list[dict[str, Any]] = SQLField(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    confirmed_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    voided_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    void_reason: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))


class PaperEntry(SQLModel, table=True):
    """One keying of a batch: 1 by the enterer, 2 by the second staff account."""

    __tablename__ = "paper_entry"
    __table_args__ = (UniqueConstraint("batch_id", "keying"),)

    id: int | None = SQLField(default=None, primary_key=True)
    batch_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("paper_batch.id", ondelete="CASCADE"), nullable=False)
    )
    keying: int = SQLField(nullable=False)
    keyed_by: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    source: str = SQLField(sa_column=Column(String(200), nullable=False))
    ballots: list[dict[str, Any]] = SQLField(sa_column=Column(JSON, nullable=False))
    keyed_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


MAX_BATCH_BALLOTS = 5_000


class PaperBallotIn(BallotCast):
    """One paper form as keyed: its choices as an online ballot, and the voting code printed
    on it, if any."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"proposal_ids": [3, 7], "voting_code": "ABCD-EFGH-JKMN-PQRS"},
                {"points": {"3": 5, "7": 5}},
            ]
        }
    )

    voting_code: CodeText | None = None


class PaperBatchIn(Schema):
    """One keying of a batch: where the forms come from, and every form in order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "Stadhuis, box 3",
                    "ballots": [
                        {"proposal_ids": [3, 7], "voting_code": "ABCD-EFGH-JKMN-PQRS"},
                        {"proposal_ids": [9]},
                    ],
                }
            ]
        }
    )

    source: Title = Field(examples=["Stadhuis, box 3"])
    ballots: list[PaperBallotIn] = Field(min_length=1, max_length=MAX_BATCH_BALLOTS)


class VoidRequest(Schema):
    reason: Annotated[str, Field(min_length=1, max_length=2_000), NoNul]


class BatchCounts(BaseModel):
    ballots: int
    valid: int
    invalid: int
    duplicate: int


class PaperBallotVerdict(BaseModel):
    index: int = Field(description="Position in the batch as keyed, from 0.")
    status: Verdict
    reason: str | None = Field(
        description="For `invalid`: the rule broken (a ballot error code, `invalid_code` or "
        "`voting_code_required`); for `duplicate`: `code_used`."
    )


class Difference(BaseModel):
    index: int | None = Field(description="The ballot's position; null when `source` differs.")
    first: dict[str, Any] | None = Field(description="As keyed first; null when absent.")
    second: dict[str, Any] | None = Field(description="As keyed second; null when absent.")


class PaperBatchPublic(BaseModel):
    id: int
    process_id: int
    source: str
    status: BatchStatus
    entered_by: int | None
    confirmed_by: int | None = Field(description="The second keyer, once there is one.")
    counts: BatchCounts
    ballots: list[PaperBallotVerdict]
    differences: list[Difference] | None = Field(
        default=None, description="While `mismatched`: the ballots the two keyings differ on."
    )
    created_at: datetime
    confirmed_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None
