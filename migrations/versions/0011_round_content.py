"""round content: submission deadline, comment moderation, categories, locations, images

`process` gains `submission_closes_at` (null: submissions until the phase ends); `comment`
gains `status` ('visible' for every existing comment) and `hidden_reason`, and its `body`
becomes nullable (removed by its author); `comment_report` holds residents' reports, one per
account per comment. `process` gains `categories` (null: any); `proposal` gains `lat`, `lon`
and `address`; `proposal_image` lists each proposal's images (their bytes are in MEDIA_DIR).

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
        batch_op.add_column(sa.Column("categories", sa.JSON(), nullable=True))
    with op.batch_alter_table("proposal") as batch_op:
        batch_op.add_column(sa.Column("lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("lon", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("address", sa.String(length=200), nullable=True))
    op.create_table(
        "proposal_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposal.id"],
            name=op.f("fk_proposal_image_proposal_id_proposal"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"],
            ["user_account.id"],
            name=op.f("fk_proposal_image_uploaded_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal_image")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_proposal_image_storage_key")),
    )
    op.create_index(
        op.f("ix_proposal_image_proposal_id"), "proposal_image", ["proposal_id"], unique=False
    )
    with op.batch_alter_table("comment") as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="visible")
        )
        batch_op.add_column(sa.Column("hidden_reason", sa.Text(), nullable=True))
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)
    op.create_table(
        "comment_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comment.id"],
            name=op.f("fk_comment_report_comment_id_comment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_comment_report_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment_report")),
        sa.UniqueConstraint(
            "comment_id", "user_id", name=op.f("uq_comment_report_comment_id_user_id")
        ),
    )
    op.create_index(op.f("ix_comment_report_user_id"), "comment_report", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_proposal_image_proposal_id"), table_name="proposal_image")
    op.drop_table("proposal_image")
    with op.batch_alter_table("proposal") as batch_op:
        batch_op.drop_column("address")
        batch_op.drop_column("lon")
        batch_op.drop_column("lat")
    op.drop_index(op.f("ix_comment_report_user_id"), table_name="comment_report")
    op.drop_table("comment_report")
    # A removed comment has no text left; the old schema needs one.
    op.execute("UPDATE comment SET body = '' WHERE body IS NULL")
    with op.batch_alter_table("comment") as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("hidden_reason")
        batch_op.drop_column("status")
    with op.batch_alter_table("process") as batch_op:
        batch_op.drop_column("categories")
        batch_op.drop_column("submission_closes_at")
