"""E-mail notifications: users' address and mode, the outbox, which notifications each
e-mail covers, the strong matches already announced and
the runs of those alerts.

Existing users get no address (nothing is sent until they give one) and the immediate mode.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("email_mode", sa.String(10), nullable=False,
                                   server_default="immediate"))

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("digest_day", sa.Date(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("message_id", sa.String(250), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('immediate', 'digest')", name=op.f("ck_outbox_kind")),
        sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'unknown')",
                           name=op.f("ck_outbox_status")),
        _fk("outbox", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
        sa.UniqueConstraint("user_id", "digest_day", name=op.f("uq_outbox_user_id_digest_day")),
    )
    op.create_index(op.f("ix_outbox_user_id"), "outbox", ["user_id"])
    op.create_index(op.f("ix_outbox_status"), "outbox", ["status"])

    op.create_table(
        "outbox_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        _fk("outbox_items", "notification_id", "notifications", "CASCADE"),
        _fk("outbox_items", "outbox_id", "outbox", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_items")),
        sa.UniqueConstraint("notification_id", name=op.f("uq_outbox_items_notification_id")),
    )
    op.create_index(op.f("ix_outbox_items_outbox_id"), "outbox_items", ["outbox_id"])

    op.create_table(
        "match_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("match_alerts", "need_id", "needs", "CASCADE"),
        _fk("match_alerts", "result_id", "results", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_alerts")),
        sa.UniqueConstraint("need_id", "result_id", name=op.f("uq_match_alerts_need_id_result_id")),
    )
    op.create_index(op.f("ix_match_alerts_result_id"), "match_alerts", ["result_id"])

    op.create_table(
        "match_alert_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pairs", sa.Integer(), nullable=False),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("seeded", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_alert_runs")),
    )


def downgrade() -> None:
    op.drop_table("match_alert_runs")
    op.drop_table("match_alerts")
    op.drop_table("outbox_items")
    op.drop_table("outbox")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_mode")
        batch.drop_column("email")
