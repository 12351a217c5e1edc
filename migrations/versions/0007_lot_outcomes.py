"""Add the outcome of each auction lot: sold (price, buyer) or unsold (流拍), who recorded it
and when. Lots without a recorded outcome (the auction not yet held) keep NULLs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shortlist_lots") as batch:
        batch.add_column(sa.Column("outcome", sa.String(10), nullable=True))
        batch.add_column(sa.Column("sold_price", sa.Float(), nullable=True))
        batch.add_column(sa.Column("buyer", sa.String(200), nullable=True))
        batch.add_column(sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column(
            "outcome_by_id", sa.Integer(),
            sa.ForeignKey("users.id", name=op.f("fk_shortlist_lots_outcome_by_id_users"),
                          ondelete="SET NULL"),
            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shortlist_lots") as batch:
        batch.drop_column("outcome_by_id")
        batch.drop_column("outcome_at")
        batch.drop_column("buyer")
        batch.drop_column("sold_price")
        batch.drop_column("outcome")
