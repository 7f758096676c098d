"""one head again after rounds, paper ballots, mail and round content

Four features were built side by side on 0007; this revision joins them, so `alembic
upgrade head` works and the next revision has one parent. It changes nothing.

Revision ID: 0012
Revises: 0008, 0009, 0010, 0011
Create Date: 2026-11-28 10:40:00
"""

from collections.abc import Sequence

revision: str = "0012"
down_revision: str | Sequence[str] | None = ("0008", "0009", "0010", "0011")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
