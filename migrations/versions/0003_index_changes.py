"""The index change log: one row per committed change to a need or result.

Every worker process reads it to apply the others' edits to its in-memory indexes (see
corpora/changes.py). AUTOINCREMENT on SQLite so that ids are never reused after pruning.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("side IN ('need', 'result')", name=op.f("ck_index_changes_side")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_index_changes_at"), "index_changes", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_index_changes_at"), table_name="index_changes")
    op.drop_table("index_changes")
