"""paper ballots: batches keyed twice, ballots by channel, codes used on paper

Adds `paper_batch` and `paper_entry`; `ballot` gains `channel` ('online' for every existing
row) and `paper_batch_id`, and its `receipt` becomes nullable (paper ballots carry none);
`voting_code` gains `paper_batch_id`; `process` gains `require_voting_code_on_paper`.

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-28 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "paper_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("entered_by", sa.Integer(), nullable=True),
        sa.Column("confirmed_by", sa.Integer(), nullable=True),
        sa.Column("verdicts", sa.JSON(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("voided_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["process.id"],
            name=op.f("fk_paper_batch_process_id_process"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entered_by"],
            ["user_account.id"],
            name=op.f("fk_paper_batch_entered_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by"],
            ["user_account.id"],
            name=op.f("fk_paper_batch_confirmed_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_batch")),
    )
    op.create_index(op.f("ix_paper_batch_process_id"), "paper_batch", ["process_id"], unique=False)
    op.create_table(
        "paper_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("keying", sa.Integer(), nullable=False),
        sa.Column("keyed_by", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("ballots", sa.JSON(), nullable=False),
        sa.Column("keyed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["paper_batch.id"],
            name=op.f("fk_paper_entry_batch_id_paper_batch"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["keyed_by"],
            ["user_account.id"],
            name=op.f("fk_paper_entry_keyed_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_entry")),
        sa.UniqueConstraint("batch_id", "keying", name=op.f("uq_paper_entry_batch_id_keying")),
    )
    with op.batch_alter_table("ballot") as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=8), nullable=False, server_default="online")
        )
        batch_op.add_column(sa.Column("paper_batch_id", sa.Integer(), nullable=True))
        batch_op.alter_column("receipt", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_ballot_paper_batch_id_paper_batch"),
            "paper_batch",
            ["paper_batch_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(
            batch_op.f("ix_ballot_paper_batch_id"), ["paper_batch_id"], unique=False
        )
    with op.batch_alter_table("voting_code") as batch_op:
        batch_op.add_column(sa.Column("paper_batch_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_voting_code_paper_batch_id_paper_batch"),
            "paper_batch",
            ["paper_batch_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            batch_op.f("ix_voting_code_paper_batch_id"), ["paper_batch_id"], unique=False
        )
    with op.batch_alter_table("process") as batch_op:
        batch_op.add_column(
            sa.Column(
                "require_voting_code_on_paper",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("process") as batch_op:
        batch_op.alter_column("require_voting_code_on_paper", server_default=None)


def downgrade() -> None:
    # Paper ballots have no receipt; the NOT NULL receipt column cannot hold them.
    op.execute("DELETE FROM ballot WHERE channel = 'paper'")
    with op.batch_alter_table("process") as batch_op:
        batch_op.drop_column("require_voting_code_on_paper")
    with op.batch_alter_table("voting_code") as batch_op:
        batch_op.drop_index(batch_op.f("ix_voting_code_paper_batch_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_voting_code_paper_batch_id_paper_batch"), type_="foreignkey"
        )
        batch_op.drop_column("paper_batch_id")
    with op.batch_alter_table("ballot") as batch_op:
        batch_op.drop_index(batch_op.f("ix_ballot_paper_batch_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_ballot_paper_batch_id_paper_batch"), type_="foreignkey"
        )
        batch_op.alter_column("receipt", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("paper_batch_id")
        batch_op.drop_column("channel")
    op.drop_table("paper_entry")
    op.drop_index(op.f("ix_paper_batch_process_id"), table_name="paper_batch")
    op.drop_table("paper_batch")
