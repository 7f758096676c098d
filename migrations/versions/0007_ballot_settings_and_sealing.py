"""ballot settings in one column; sealing; unverified-voter opt-in

The six ballot columns of `process` become one JSON column `ballot` holding the settings
of the process's ballot type (see app/ballot_types), so a new type needs no migration.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:20:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("min_projects", "max_projects", "min_budget_share", "points", "max_points_per_project")
_ONLY = {
    "min_budget_share": "knapsack",
    "points": "cumulative",
    "max_points_per_project": "cumulative",
}


def _settings(row: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"type": row.ballot_type}
    for name in _OLD:
        if _ONLY.get(name, row.ballot_type) == row.ballot_type:
            settings[name] = getattr(row, name)
    return settings


def upgrade() -> None:
    process = sa.table(
        "process",
        sa.column("id", sa.Integer),
        sa.column("ballot_type", sa.String),
        sa.column("ballot", sa.JSON),
        *(sa.column(name) for name in _OLD),
    )
    with op.batch_alter_table("process") as batch_op:
        batch_op.add_column(sa.Column("ballot", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "allow_unverified_voters", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(sa.Column("seal_after_days", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("sealed_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    connection = op.get_bind()
    for row in connection.execute(sa.select(process)).all():
        connection.execute(
            process.update().where(process.c.id == row.id).values(ballot=_settings(row))
        )
    with op.batch_alter_table("process") as batch_op:
        batch_op.alter_column("ballot", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("allow_unverified_voters", server_default=None)
        batch_op.drop_column("ballot_type")
        for name in _OLD:
            batch_op.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table("process") as batch_op:
        batch_op.add_column(sa.Column("ballot_type", sa.String(16), nullable=True))
        batch_op.add_column(
            sa.Column("min_projects", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("max_projects", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("min_budget_share", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("points", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_points_per_project", sa.Integer(), nullable=True))
    process = sa.table(
        "process",
        sa.column("id", sa.Integer),
        sa.column("ballot", sa.JSON),
        sa.column("ballot_type", sa.String),
        *(sa.column(name) for name in _OLD),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(process.c.id, process.c.ballot)).all():
        settings = dict(row.ballot)
        values = {"ballot_type": settings.pop("type")}
        values.update({k: v for k, v in settings.items() if k in _OLD and v is not None})
        connection.execute(process.update().where(process.c.id == row.id).values(**values))
    with op.batch_alter_table("process") as batch_op:
        batch_op.alter_column("ballot_type", existing_type=sa.String(16), nullable=False)
        batch_op.drop_column("sealed_at")
        batch_op.drop_column("seal_after_days")
        batch_op.drop_column("allow_unverified_voters")
        batch_op.drop_column("ballot")
