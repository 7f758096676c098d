"""Throttle events: one row per counted attempt (a failed sign-in, a registration, a code
claim) in a bucket named by kind and by HMACs of its subjects (see app/services/throttle.py).
Kept in the database so that every worker process sees the same counts; each row carries
its expiry so that expired rows of any bucket can be pruned."""

from datetime import datetime

from sqlalchemy import Column, Index, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.base import UTCDateTime, utcnow


class ThrottleEvent(SQLModel, table=True):
    __tablename__ = "throttle_event"
    __table_args__ = (
        Index("ix_throttle_event_bucket_expires_at", "bucket", "expires_at"),
        Index("ix_throttle_event_expires_at", "expires_at"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    bucket: str = SQLField(sa_column=Column(String(300), nullable=False))
    at: datetime = SQLField(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = SQLField(sa_column=Column(UTCDateTime(), nullable=False))
