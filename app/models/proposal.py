"""Proposals and the co-thinking around them (supports, comments): tables and API shapes."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.base import UTCDateTime, utcnow
from app.models.common import Euros, NoNul, Schema, Summary, Title


class ProposalStatus(StrEnum):
    submitted = "submitted"
    accepted = "accepted"
    rejected = "rejected"
    withdrawn = "withdrawn"


class Proposal(SQLModel, table=True):
    __tablename__ = "proposal"
    __table_args__ = (Index("ix_proposal_process_id_status", "process_id", "status"),)

    id: int | None = SQLField(default=None, primary_key=True)
    process_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("process.id", ondelete="CASCADE"), nullable=False)
    )
    # Null once the author's account is erased: the proposal stays, by a "former resident".
    author_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    title: str = SQLField(sa_column=Column(String(200), nullable=False))
    summary: str = SQLField(sa_column=Column(String(1000), nullable=False))
    description: str = SQLField(default="", sa_column=Column(Text, nullable=False))
    category: str | None = SQLField(default=None, sa_column=Column(String(50), nullable=True))
    # The optional location: all three set, or none.
    lat: float | None = SQLField(default=None, sa_column=Column(Float, nullable=True))
    lon: float | None = SQLField(default=None, sa_column=Column(Float, nullable=True))
    address: str | None = SQLField(default=None, sa_column=Column(String(200), nullable=True))
    estimated_cost: int = SQLField(nullable=False)
    cost: int | None = SQLField(default=None, nullable=True)
    status: str = SQLField(
        default=ProposalStatus.submitted, sa_column=Column(String(16), nullable=False)
    )
    review_reason: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ProposalImage(SQLModel, table=True):
    """An uploaded image, re-encoded (app/services/images.py); its bytes are in the media
    store under `storage_key`, never in the database."""

    __tablename__ = "proposal_image"

    id: int | None = SQLField(default=None, primary_key=True)
    proposal_id: int = SQLField(
        sa_column=Column(
            Integer, ForeignKey("proposal.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    storage_key: str = SQLField(sa_column=Column(String(200), nullable=False, unique=True))
    content_type: str = SQLField(sa_column=Column(String(32), nullable=False))
    width: int = SQLField(nullable=False)
    height: int = SQLField(nullable=False)
    size_bytes: int = SQLField(nullable=False)
    uploaded_by: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class Support(SQLModel, table=True):
    __tablename__ = "support"
    __table_args__ = (UniqueConstraint("proposal_id", "user_id"),)

    id: int | None = SQLField(default=None, primary_key=True)
    proposal_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("proposal.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class CommentStatus(StrEnum):
    visible = "visible"
    removed = "removed"  # by its author: the text is deleted
    hidden = "hidden"  # by a moderator, with a reason: the text is kept, never shown


class Comment(SQLModel, table=True):
    __tablename__ = "comment"

    id: int | None = SQLField(default=None, primary_key=True)
    proposal_id: int = SQLField(
        sa_column=Column(
            Integer, ForeignKey("proposal.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    author_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    # Null once its author removed it.
    body: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))
    status: str = SQLField(
        default=CommentStatus.visible,
        sa_column=Column(String(16), nullable=False, server_default=CommentStatus.visible.value),
    )
    hidden_reason: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class CommentReport(SQLModel, table=True):
    """A resident's report of a comment; one per account per comment."""

    __tablename__ = "comment_report"
    __table_args__ = (UniqueConstraint("comment_id", "user_id"),)

    id: int | None = SQLField(default=None, primary_key=True)
    comment_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("comment.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: int = SQLField(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    reason: str = SQLField(sa_column=Column(Text, nullable=False))
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


Category = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NoNul
]
Description = Annotated[str, StringConstraints(max_length=20_000), NoNul]
CommentBody = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5_000), NoNul
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000), NoNul
]


Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), NoNul]


class Location(Schema):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, examples=[53.2194])
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, examples=[6.5665])
    address: Address = Field(default="", examples=["Oosterpark, by the pond"])


class ProposalCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "A play area in the Oosterpark",
                    "summary": "Swings and a climbing frame for the youngest residents.",
                    "description": "Next to the pond there is room for ...",
                    "estimated_cost": 5000,
                    "category": "play",
                }
            ]
        }
    )

    title: Title
    summary: Summary
    description: Description = ""
    estimated_cost: Euros
    category: Category | None = Field(
        default=None, description="One of the process's categories when it fixes them."
    )
    location: Location | None = None


class ProposalUpdate(Schema):
    title: Title | None = None
    summary: Summary | None = None
    description: Description | None = None
    estimated_cost: Euros | None = None
    category: Category | None = Field(default=None, description="null: no category.")
    location: Location | None = Field(default=None, description="null: no location.")


class AcceptDecision(Schema):
    decision: Literal["accept"]
    cost: Euros = Field(description="The municipality's final cost; at most the budget.")


class RejectDecision(Schema):
    decision: Literal["reject"]
    reason: Reason = Field(description="Shown to the author and the public.")


Review = Annotated[AcceptDecision | RejectDecision, Field(discriminator="decision")]


class ProposalSort(StrEnum):
    newest = "newest"
    cost = "cost"
    supports = "supports"


class AuthorPublic(BaseModel):
    id: int | None = Field(description="Null for a former resident.")
    display_name: str


# The path an image is served at (the API's prefix, as in app/routers/deps.py).
IMAGE_PATH = "/api/v1/proposals/{proposal_id}/images/{image_id}"


class ImagePublic(BaseModel):
    id: int
    url: str = Field(description="Where the image is served (a path on this server).")
    width: int
    height: int


class ProposalPublic(BaseModel):
    id: int
    process_id: int
    author: AuthorPublic
    title: str
    summary: str
    description: str
    category: str | None
    estimated_cost: int
    cost: int | None = Field(description="The municipality's final cost, set on accept.")
    status: ProposalStatus
    review_reason: str | None
    support_count: int
    comment_count: int
    supported_by_me: bool | None = Field(
        description="Whether the signed-in caller supports it; null when anonymous."
    )
    location: Location | None
    images: list[ImagePublic] = Field(description="Oldest first; at most 5.")
    created_at: datetime


class CategoryCount(BaseModel):
    name: str
    proposal_count: int = Field(description="Proposals in it, withdrawn ones excluded.")


class SupportState(BaseModel):
    proposal_id: int
    supported: bool = Field(description="Whether the caller supports the proposal now.")
    support_count: int


class CommentCreate(Schema):
    body: CommentBody


class CommentPublic(BaseModel):
    id: int
    proposal_id: int
    author: AuthorPublic
    body: str | None = Field(description="Null unless the status is `visible`.")
    status: CommentStatus
    hidden_reason: str | None = Field(
        description="Why the municipality hid it (status `hidden`); otherwise null."
    )
    created_at: datetime


class HideComment(Schema):
    reason: Reason = Field(description="Shown in place of the comment.")


class ReportComment(Schema):
    reason: Reason


class ReportedComment(CommentPublic):
    report_count: int = Field(description="Accounts that reported it.")
    reasons: list[str] = Field(description="Their reasons, newest first (at most 20).")
