"""rounds (editions) with district groups

A round holds processes (a city-wide one and one per district); a group of a round limits
in how many of its processes one voter may vote.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "round_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("max_processes_per_voter", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["budget_round.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_round_group_round_id"), "round_group", ["round_id"], unique=False)
    with op.batch_alter_table("process") as batch_op:
        batch_op.add_column(sa.Column("round_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_process_round_id"), ["round_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_process_group_id"), ["group_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_process_round_id_budget_round",
            "budget_round",
            ["round_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_foreign_key(
            "fk_process_group_id_round_group",
            "round_group",
            ["group_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    with op.batch_alter_table("process") as batch_op:
        batch_op.drop_constraint("fk_process_group_id_round_group", type_="foreignkey")
        batch_op.drop_constraint("fk_process_round_id_budget_round", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_process_group_id"))
        batch_op.drop_index(batch_op.f("ix_process_round_id"))
        batch_op.drop_column("group_id")
        batch_op.drop_column("round_id")
    op.drop_index(op.f("ix_round_group_round_id"), table_name="round_group")
    op.drop_table("round_group")
    op.drop_table("budget_round")
