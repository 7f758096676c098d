"""Outgoing mail (the transactional outbox) and the single-use tokens mailed links carry.

A mail row is written in the transaction of the action that causes it, so it exists exactly
when the action committed; the sender (app/services/mail.py) renders and delivers it later.
Rows hold no body and no token: a link's token is made when the mail is rendered, just
before it is sent, and only its SHA-256 hash is stored (`account_token`).
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.base import UTCDateTime, utcnow


class MailKind(StrEnum):
    verify_email = "verify_email"
    password_reset = "password_reset"
    ballot_receipt = "ballot_receipt"


class MailStatus(StrEnum):
    pending = "pending"  # to be sent (again) from `next_attempt_at`
    sent = "sent"  # accepted by the SMTP server (or written to the outbox directory)
    failed = "failed"  # refused for good, or out of attempts; `last_error` says why


class TokenPurpose(StrEnum):
    verify_email = "verify_email"
    password_reset = "password_reset"


class OutgoingMail(SQLModel, table=True):
    __tablename__ = "outgoing_mail"
    __table_args__ = (
        Index("ix_outgoing_mail_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    to_address: str = SQLField(sa_column=Column(String(254), nullable=False, index=True))
    # The account it concerns; null for a password-reset request naming no known address
    # until the sender drops it.
    user_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )
    kind: str = SQLField(sa_column=Column(String(32), nullable=False))
    # Values the template needs that are no secret (a receipt, a process title).
    params: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = SQLField(default=MailStatus.pending, sa_column=Column(String(16), nullable=False))
    attempts: int = SQLField(default=0, nullable=False)
    last_error: str | None = SQLField(default=None, sa_column=Column(String(500), nullable=True))
    next_attempt_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    sent_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class AccountToken(SQLModel, table=True):
    """A mailed link's token: single-use, expiring, valid only for the address it was
    mailed to; a newer token of the same purpose replaces the older ones."""

    __tablename__ = "account_token"

    id: int | None = SQLField(default=None, primary_key=True)
    user_id: int = SQLField(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    purpose: str = SQLField(sa_column=Column(String(32), nullable=False))
    token_hash: str = SQLField(sa_column=Column(String(64), nullable=False, unique=True))
    email: str = SQLField(sa_column=Column(String(254), nullable=False))
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime = SQLField(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class MailPublic(BaseModel):
    """`GET /admin/mail` and the export: metadata only, never a body or a token."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    to: str
    kind: MailKind
    status: MailStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def mail_public(mail: OutgoingMail) -> MailPublic:
    assert mail.id is not None
    return MailPublic(
        id=mail.id,
        to=mail.to_address,
        kind=MailKind(mail.kind),
        status=MailStatus(mail.status),
        attempts=mail.attempts,
        last_error=mail.last_error,
        created_at=mail.created_at,
        sent_at=mail.sent_at,
    )
