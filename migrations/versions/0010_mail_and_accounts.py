"""mail and accounts: outgoing mail (outbox), mailed-link tokens, verified e-mail, language

Adds `outgoing_mail` and `account_token`; `user_account` gains `email_verified` (false for
every existing account) and `language` ('en'); `process` gains `require_verified_email`.

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-28 09:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0010"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outgoing_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_outgoing_mail_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_mail")),
    )
    op.create_index(
        op.f("ix_outgoing_mail_to_address"), "outgoing_mail", ["to_address"], unique=False
    )
    op.create_index(op.f("ix_outgoing_mail_user_id"), "outgoing_mail", ["user_id"], unique=False)
    op.create_index(
        "ix_outgoing_mail_status_next_attempt_at",
        "outgoing_mail",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "account_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_account_token_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_token_token_hash")),
    )
    op.create_index(op.f("ix_account_token_user_id"), "account_token", ["user_id"], unique=False)
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.add_column(
            sa.Column("email_verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("language", sa.String(length=2), nullable=False, server_default="en")
        )
        batch_op.create_check_constraint(
            op.f("ck_user_account_language"), "language IN ('nl', 'en')"
        )
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.alter_column("email_verified", server_default=None)
        batch_op.alter_column("language", server_default=None)
    with op.batch_alter_table("process") as batch_op:
        batch_op.add_column(
            sa.Column(
                "require_verified_email", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("process") as batch_op:
        batch_op.alter_column("require_verified_email", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("process") as batch_op:
        batch_op.drop_column("require_verified_email")
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.drop_constraint(op.f("ck_user_account_language"), type_="check")
        batch_op.drop_column("language")
        batch_op.drop_column("email_verified")
    op.drop_index(op.f("ix_account_token_user_id"), table_name="account_token")
    op.drop_table("account_token")
    op.drop_index("ix_outgoing_mail_status_next_attempt_at", table_name="outgoing_mail")
    op.drop_index(op.f("ix_outgoing_mail_user_id"), table_name="outgoing_mail")
    op.drop_index(op.f("ix_outgoing_mail_to_address"), table_name="outgoing_mail")
    op.drop_table("outgoing_mail")
