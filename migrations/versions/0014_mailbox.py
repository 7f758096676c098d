"""user_account.mailbox: the address as one mailbox (case and plus-addressing ignored)

Filled for every existing account here, and by the application on every insert and update
of an account. Expand only: the previous release neither reads nor writes it, and a row it
inserts meanwhile gets its mailbox at the account's next update (and is counted under its
own e-mail until then, as before).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mailbox(email: str) -> str:
    # A copy of app.models.user.mailbox_of as it was when written: a migration must not
    # change meaning when the application's function does.
    local, _, domain = email.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if local else email.strip().lower()


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.add_column(sa.Column("mailbox", sa.String(length=254), nullable=True))
        batch_op.create_index("ix_user_account_mailbox", ["mailbox"])
    connection = op.get_bind()
    accounts = sa.table("user_account", sa.column("id"), sa.column("email"), sa.column("mailbox"))
    rows = connection.execute(sa.select(accounts.c.id, accounts.c.email)).all()
    for account_id, email in rows:
        connection.execute(
            accounts.update().where(accounts.c.id == account_id).values(mailbox=_mailbox(email))
        )


def downgrade() -> None:
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.drop_index("ix_user_account_mailbox")
        batch_op.drop_column("mailbox")
