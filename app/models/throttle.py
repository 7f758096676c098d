"""Throttle events: one row per counted attempt (a failed sign-in, a registration, a code
claim), per bucket such as `login-account:<email>` or `login-address:<ip>`. Kept in the
database so that every worker process sees the same counts."""

from datetime import datetime

from sqlalchemy import Column, Index, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.base import UTCDateTime, utcnow


class ThrottleEvent(SQLModel, table=True):
    __tablename__ = "throttle_event"
    __table_args__ = (Index("ix_throttle_event_bucket_at", "bucket", "at"),)

    id: int | None = SQLField(default=None, primary_key=True)
    bucket: str = SQLField(sa_column=Column(String(300), nullable=False))
    at: datetime = SQLField(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
