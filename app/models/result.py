"""Published results: computed once when an admin publishes, stored, immutable."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.base import UTCDateTime, utcnow


class PublishedResult(SQLModel, table=True):
    __tablename__ = "published_result"

    # One row per process: the primary key makes a second publication impossible.
    process_id: int = SQLField(
        sa_column=Column(Integer, ForeignKey("process.id", ondelete="CASCADE"), primary_key=True)
    )
    document: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    digest: str = SQLField(sa_column=Column(String(64), nullable=False))
    published_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
