"""atomic, pseudonymous throttle buckets with expiry

Bucket names now hold HMACs instead of raw emails and addresses, and every event carries
its expiry so expired rows of any bucket can be pruned. The old rows name emails and IPs in
clear and cannot be converted (the HMAC key is not known here), so they are deleted: at
worst an attacker gets one fresh window. Wrong voting codes are counted in throttle buckets
too, so `code_claim_failure` goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM throttle_event")
    with op.batch_alter_table("throttle_event", schema=None) as batch_op:
        batch_op.drop_index("ix_throttle_event_bucket_at")
        batch_op.add_column(
            sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False)
        )
        batch_op.create_index(
            "ix_throttle_event_bucket_expires_at", ["bucket", "expires_at"], unique=False
        )
        batch_op.create_index("ix_throttle_event_expires_at", ["expires_at"], unique=False)

    with op.batch_alter_table("code_claim_failure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_code_claim_failure_user_id"))
    op.drop_table("code_claim_failure")


def downgrade() -> None:
    op.create_table(
        "code_claim_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["process.id"],
            name=op.f("fk_code_claim_failure_process_id_process"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_code_claim_failure_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_claim_failure")),
    )
    with op.batch_alter_table("code_claim_failure", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_code_claim_failure_user_id"), ["user_id"], unique=False
        )

    op.execute("DELETE FROM throttle_event")
    with op.batch_alter_table("throttle_event", schema=None) as batch_op:
        batch_op.drop_index("ix_throttle_event_expires_at")
        batch_op.drop_index("ix_throttle_event_bucket_expires_at")
        batch_op.drop_column("expires_at")
        batch_op.create_index("ix_throttle_event_bucket_at", ["bucket", "at"], unique=False)
