"""The audit log: every action by a moderator or admin, append-only."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, ForeignKey, Integer, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.base import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = SQLField(default=None, primary_key=True)
    at: datetime = SQLField(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # Null when the action came from the command line (e.g. `wijkbudget create-admin`).
    actor_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    action: str = SQLField(sa_column=Column(String(64), nullable=False))
    process_id: int | None = SQLField(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("process.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    target_type: str = SQLField(sa_column=Column(String(32), nullable=False))
    target_id: int | None = SQLField(default=None, nullable=True)
    before: dict[str, Any] | None = SQLField(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = SQLField(default=None, sa_column=Column(JSON, nullable=True))


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    process_id: int | None
    target_type: str
    target_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
