"""Platform records: users, match feedback, auction shortlists and their lots, audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("api_token_hash", sa.String(length=64), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "role IN ('firm', 'office', 'officer', 'admin')", name=op.f("ck_users_role")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], ondelete="RESTRICT",
            name=op.f("fk_users_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        sa.UniqueConstraint("api_token_hash", name=op.f("uq_users_api_token_hash")),
    )
    op.create_index(op.f("ix_users_organisation_id"), "users", ["organisation_id"])

    op.create_table(
        "match_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("relevant", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["need_id"], ["needs.id"], ondelete="CASCADE",
                                name=op.f("fk_match_feedback_need_id_needs")),
        sa.ForeignKeyConstraint(["result_id"], ["results.id"], ondelete="CASCADE",
                                name=op.f("fk_match_feedback_result_id_results")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="RESTRICT",
                                name=op.f("fk_match_feedback_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_feedback")),
        sa.UniqueConstraint("need_id", "result_id",
                            name=op.f("uq_match_feedback_need_id_result_id")),
    )
    op.create_index(op.f("ix_match_feedback_need_id"), "match_feedback", ["need_id"])
    op.create_index(op.f("ix_match_feedback_result_id"), "match_feedback", ["result_id"])

    op.create_table(
        "shortlists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="RESTRICT",
                                name=op.f("fk_shortlists_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shortlists")),
    )

    op.create_table(
        "shortlist_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shortlist_id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reserve_price", sa.Float(), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["shortlist_id"], ["shortlists.id"], ondelete="CASCADE",
                                name=op.f("fk_shortlist_lots_shortlist_id_shortlists")),
        sa.ForeignKeyConstraint(["result_id"], ["results.id"], ondelete="RESTRICT",
                                name=op.f("fk_shortlist_lots_result_id_results")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shortlist_lots")),
        sa.UniqueConstraint("shortlist_id", "result_id",
                            name=op.f("uq_shortlist_lots_shortlist_id_result_id")),
    )
    op.create_index(op.f("ix_shortlist_lots_shortlist_id"), "shortlist_lots", ["shortlist_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("entity", sa.String(length=30), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_audit_log_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_shortlist_lots_shortlist_id"), table_name="shortlist_lots")
    op.drop_table("shortlist_lots")
    op.drop_table("shortlists")
    op.drop_index(op.f("ix_match_feedback_result_id"), table_name="match_feedback")
    op.drop_index(op.f("ix_match_feedback_need_id"), table_name="match_feedback")
    op.drop_table("match_feedback")
    op.drop_index(op.f("ix_users_organisation_id"), table_name="users")
    op.drop_table("users")
