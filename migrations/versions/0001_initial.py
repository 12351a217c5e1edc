"""Initial schema: organisations, needs, results.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("city", sa.String(length=20), nullable=True),
        sa.Column("tier", sa.String(length=50), nullable=True),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "kind IN ('firm', 'university', 'institute')", name=op.f("ck_organisations_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    op.create_table(
        "needs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("industry", sa.String(length=50), nullable=True),
        sa.Column("cooperation_mode", sa.String(length=20), nullable=True),
        sa.Column("budget_min", sa.Float(), nullable=True),
        sa.Column("budget_max", sa.Float(), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("contact", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_needs_status")),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_needs_organisation_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_needs")),
        sa.UniqueConstraint(
            "organisation_id", "external_id", name=op.f("uq_needs_organisation_id_external_id")
        ),
    )
    op.create_index(op.f("ix_needs_industry"), "needs", ["industry"])
    op.create_index(op.f("ix_needs_organisation_id"), "needs", ["organisation_id"])
    op.create_index("ix_needs_organisation_id_dedup_key", "needs", ["organisation_id", "dedup_key"])
    op.create_index(op.f("ix_needs_status"), "needs", ["status"])

    op.create_table(
        "results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("abstract", sa.Text(), nullable=False),
        sa.Column("result_type", sa.String(length=20), nullable=True),
        sa.Column("patent_number", sa.String(length=50), nullable=True),
        sa.Column("maturity", sa.String(length=10), nullable=True),
        sa.Column("industry", sa.String(length=50), nullable=True),
        sa.Column("keywords", sa.Text(), nullable=True),
        sa.Column("inventors", sa.Text(), nullable=True),
        sa.Column("transfer_modes", sa.String(length=200), nullable=True),
        sa.Column("asking_price", sa.Float(), nullable=True),
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("status IN ('active', 'withdrawn')", name=op.f("ck_results_status")),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_results_organisation_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
        sa.UniqueConstraint(
            "organisation_id", "external_id", name=op.f("uq_results_organisation_id_external_id")
        ),
    )
    op.create_index(op.f("ix_results_industry"), "results", ["industry"])
    op.create_index(op.f("ix_results_organisation_id"), "results", ["organisation_id"])
    op.create_index(
        "ix_results_organisation_id_dedup_key", "results", ["organisation_id", "dedup_key"]
    )
    op.create_index(op.f("ix_results_result_type"), "results", ["result_type"])
    op.create_index(op.f("ix_results_status"), "results", ["status"])


def downgrade() -> None:
    op.drop_table("results")
    op.drop_table("needs")
    op.drop_table("organisations")
