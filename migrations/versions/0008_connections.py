"""Add 对接 (connection requests between a need's firm and a result's office), their events
(who changed what, when) and the in-site notifications. New tables only.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "connection_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("requester_side", sa.String(10), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.Column("wants", sa.String(200), nullable=True),
        sa.Column("requester_contact", sa.String(200), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responder_contact", sa.String(200), nullable=True),
        sa.Column("decline_reason", sa.String(20), nullable=True),
        sa.Column("decline_note", sa.String(500), nullable=True),
        sa.Column("stage", sa.String(10), nullable=True),
        sa.Column("deal_form", sa.String(20), nullable=True),
        sa.Column("deal_amount", sa.Float(), nullable=True),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column("open_key", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("requester_side IN ('firm', 'office')",
                           name=op.f("ck_connection_requests_requester_side")),
        sa.CheckConstraint("stage IN ('talking', 'signed', 'failed')",
                           name=op.f("ck_connection_requests_stage")),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'declined', 'withdrawn')",
                           name=op.f("ck_connection_requests_status")),
        _fk("connection_requests", "answered_by_id", "users", "SET NULL"),
        _fk("connection_requests", "need_id", "needs", "CASCADE"),
        _fk("connection_requests", "requester_id", "users", "RESTRICT"),
        _fk("connection_requests", "result_id", "results", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_requests")),
        sa.UniqueConstraint("open_key", name=op.f("uq_connection_requests_open_key")),
    )
    for column in ("need_id", "requester_id", "result_id", "status"):
        op.create_index(op.f(f"ix_connection_requests_{column}"), "connection_requests",
                        [column])

    op.create_table(
        "connection_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        _fk("connection_events", "request_id", "connection_requests", "CASCADE"),
        _fk("connection_events", "user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_events")),
    )
    op.create_index(op.f("ix_connection_events_request_id"), "connection_events",
                    ["request_id"])

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("need_id", sa.Integer(), nullable=True),
        sa.Column("result_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        _fk("notifications", "need_id", "needs", "CASCADE"),
        _fk("notifications", "request_id", "connection_requests", "CASCADE"),
        _fk("notifications", "result_id", "results", "CASCADE"),
        _fk("notifications", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(op.f("ix_notifications_request_id"), "notifications", ["request_id"])
    op.create_index("ix_notifications_user_id_read_at", "notifications",
                    ["user_id", "read_at"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("connection_events")
    op.drop_table("connection_requests")
