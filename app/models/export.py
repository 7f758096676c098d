"""`GET /users/me/export`: everything held about an account (GDPR access), as named shapes."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.models.mail import MailPublic
from app.models.user import UserPublic


class ExportedProposal(BaseModel):
    # A proposal's stored columns (without its author id): columns added to proposals later
    # must reach the resident too, so unknown members pass through.
    model_config = ConfigDict(extra="allow")

    id: int
    process_id: int
    title: str
    summary: str
    description: str
    category: str | None
    estimated_cost: int
    cost: int | None
    status: str
    review_reason: str | None
    created_at: datetime


class ExportedComment(BaseModel):
    id: int
    proposal_id: int
    body: str
    created_at: datetime


class ExportedBallot(BaseModel):
    process_id: int
    choices: list[list[int]] = Field(description="`[proposal_id, weight]` pairs.")
    total_cost: int
    cast_at: datetime
    receipt: str


class ExportedVotingCode(BaseModel):
    process_id: int
    claimed_at: datetime | None


class AccountExport(BaseModel):
    account: UserPublic
    proposals: list[ExportedProposal]
    comments: list[ExportedComment]
    supported_proposal_ids: list[int]
    ballots: list[ExportedBallot]
    voting_codes: list[ExportedVotingCode]
    mails: list[MailPublic] = Field(
        default_factory=list, description="Mails to the account: metadata, no body, no token."
    )
