"""Add results.title_derived: a title the demo derived from the abstract is flagged, not marked.

Titles written by the old demo builder start with "〔据摘要拟题〕"; the mark is taken off and
the flag set, so the pages show a tag beside the title instead of the mark inside it. The
title is part of what is hashed (content_hash, dedup_key), so those are recomputed for the
rows changed; the indexers then re-encode them, as they do for any edited title. Downgrading
puts the mark back on flagged rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from corpora.models import content_hash_of, dedup_key_of, split_joined

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The mark as corpora.demo wrote it before this revision; spelled out here, since the code no
# longer writes it.
OLD_MARK = "〔据摘要拟题〕"

_results = sa.table(
    "results",
    sa.column("id", sa.Integer),
    sa.column("title", sa.String),
    sa.column("abstract", sa.Text),
    sa.column("keywords", sa.Text),
    sa.column("content_hash", sa.String),
    sa.column("dedup_key", sa.String),
    sa.column("title_derived", sa.Boolean),
)


def _retitle(bind: sa.engine.Connection, rows: Sequence[sa.Row], derived: bool) -> None:
    for row in rows:
        title = row.title.removeprefix(OLD_MARK) if derived else OLD_MARK + row.title
        keywords = split_joined(row.keywords)
        bind.execute(
            _results.update()
            .where(_results.c.id == row.id)
            .values(
                title=title,
                title_derived=derived,
                content_hash=content_hash_of("result", title, row.abstract or "", keywords),
                dedup_key=dedup_key_of(title, row.abstract or "", keywords),
            )
        )


def _rows(bind: sa.engine.Connection, condition: sa.ColumnElement[bool]) -> Sequence[sa.Row]:
    columns = (_results.c.id, _results.c.title, _results.c.abstract, _results.c.keywords)
    return bind.execute(sa.select(*columns).where(condition).order_by(_results.c.id)).all()


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("title_derived", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    bind = op.get_bind()
    # LIKE would need escaping rules per database; the mark has no wildcard, but a prefix
    # compare on substr says exactly what is meant.
    marked = sa.func.substr(_results.c.title, 1, len(OLD_MARK)) == OLD_MARK
    _retitle(bind, _rows(bind, marked), derived=True)


def downgrade() -> None:
    bind = op.get_bind()
    _retitle(bind, _rows(bind, _results.c.title_derived.is_(True)), derived=False)
    with op.batch_alter_table("results") as batch:
        batch.drop_column("title_derived")
