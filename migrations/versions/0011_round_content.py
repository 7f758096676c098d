"""round content: submission deadline

`process` gains `submission_closes_at` (null: submissions until the phase ends).

Revision ID: 0011
Revises: 0007
Create Date: 2026-11-28 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0011"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("process") as batch_op:
        batch_op.add_column(
            sa.Column(
                "submission_closes_at", app.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("process") as batch_op:
        batch_op.drop_column("submission_closes_at")
