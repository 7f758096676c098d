"""the voter of a ballot moves out of the ballot row, into `ballot_voter`

Adds `ballot_voter` (process_id, voter_id, ballot_id): one row per voter per process, the
only link between an account and its ballot, so that sealing removes the link by deleting
these rows (and scrubbing them from disk) while ballot rows name no voter. It is filled
from `ballot.voter_id`.

Expand/contract: `ballot.voter_id` and its unique constraint stay, so the release before
still runs on this schema, but the new code no longer writes the column (new ballots carry
null there, and the release before does not see them as anyone's). Rows written before
this revision keep their value until sealing rewrites them or the account is erased. To
do: drop `ballot.voter_id` and `uq_ballot_process_id_voter_id` one release later.

The downgrade writes each link back into `ballot.voter_id`, then drops the table.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ballot_voter",
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("voter_id", sa.Integer(), nullable=False),
        sa.Column("ballot_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["process.id"],
            name=op.f("fk_ballot_voter_process_id_process"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["voter_id"],
            ["user_account.id"],
            name=op.f("fk_ballot_voter_voter_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ballot_id"],
            ["ballot.id"],
            name=op.f("fk_ballot_voter_ballot_id_ballot"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("process_id", "voter_id", name=op.f("pk_ballot_voter")),
        sa.UniqueConstraint("ballot_id", name=op.f("uq_ballot_voter_ballot_id")),
    )
    op.create_index(op.f("ix_ballot_voter_voter_id"), "ballot_voter", ["voter_id"], unique=False)
    op.execute(
        "INSERT INTO ballot_voter (process_id, voter_id, ballot_id) "
        "SELECT process_id, voter_id, id FROM ballot WHERE voter_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE ballot SET voter_id = (SELECT l.voter_id FROM ballot_voter l "
        "WHERE l.ballot_id = ballot.id) "
        "WHERE id IN (SELECT ballot_id FROM ballot_voter WHERE ballot_id IS NOT NULL)"
    )
    op.drop_index(op.f("ix_ballot_voter_voter_id"), table_name="ballot_voter")
    op.drop_table("ballot_voter")
