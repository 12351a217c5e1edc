"""Writing checked rows to the database: `import_table` checks every row of a table, then
upserts them (all, or with `keep_valid` the good ones) through the caller's session and says
what it did in an `ImportReport`.

A row is matched to the record it created before (by organisation + 编号 when it has one, else
by organisation + normalised title + content hash) and only updated when something changed.
The writer never commits: the caller's transaction makes the whole import one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from corpora.db import in_chunks
from corpora.importer.readers import SourceRow, SourceTable
from corpora.importer.rejects import rejected_original
from corpora.importer.report import (
    ImportFileError,
    ImportReport,
    RejectedRow,
    RowsRejected,
    reasons_of,
    row_name,
)
from corpora.importer.rows import PreparedRow, checked_default_organisation, prepare_row
from corpora.models import Need, Organisation, Result, join_list
from corpora.schema import RowError, SideSchema, schema_for
from corpora.sides import model_for
from matcher.types import Side

# Files with at least this many rows get a progress bar (on a terminal).
PROGRESS_MIN_ROWS = 1000

_ORGANISATION_FIELDS = {
    "need": ("firm", "firm_city", "firm_tier"),
    "result": ("institution", "institution_city", "institution_kind"),
}


def _model_value(name: str, value: Any) -> Any:
    if name in ("keywords", "inventors", "transfer_modes"):
        return join_list(value) if value else None
    return value


def _model_fields(side: Side, values: Mapping[str, Any]) -> dict[str, Any]:
    organisation_fields = _ORGANISATION_FIELDS[side]
    return {
        name: _model_value(name, value)
        for name, value in values.items()
        if name not in organisation_fields
    }


# Rows per flush, and keys per IN (...) lookup: few round trips, any database's parameter limit.
_BATCH = 500

RecordKey = tuple[int, str, str]  # (organisation id, "编号" | "内容", external id | dedup key)




class _Writer:
    """Upserts prepared rows. Existing organisations and records are looked up in batches up
    front, and records created here are remembered, so the loop itself issues no SELECTs."""

    def __init__(self, session: Session, schema: SideSchema, sample: bool, report: ImportReport):
        self.session = session
        self.schema = schema
        self.model = model_for(schema.side)
        self.sample = sample
        self.report = report
        self.organisations: dict[str, Organisation] = {}
        self.records: dict[RecordKey, Need | Result] = {}

    def preload(self, rows: Sequence[PreparedRow]) -> None:
        names = sorted({row.organisation for row in rows})
        for chunk in in_chunks(names):
            for organisation in self.session.scalars(
                select(Organisation).where(Organisation.name.in_(chunk))
            ):
                self.organisations[organisation.name] = organisation
        wanted: dict[tuple[int, str], list[str]] = {}
        for row in rows:
            organisation = self.organisations.get(row.organisation)
            if organisation is not None:
                kind, value = self._key_parts(row)
                wanted.setdefault((organisation.id, kind), []).append(value)
        model = self.model
        for (organisation_id, kind), values in wanted.items():
            column = model.external_id if kind == "编号" else model.dedup_key
            for chunk in in_chunks(values):
                statement = (
                    select(model)
                    .where(model.organisation_id == organisation_id, column.in_(chunk))
                    .order_by(model.id)
                )
                for record in self.session.scalars(statement):
                    self._remember(record, organisation_id)

    @staticmethod
    def _key_parts(row: PreparedRow) -> tuple[str, str]:
        external_id = row.values.get("external_id")
        return ("编号", external_id) if external_id else ("内容", row.dedup_key)

    def _remember(self, record: Need | Result, organisation_id: int, dedup_key: str = "") -> None:
        if record.external_id:
            self.records.setdefault((organisation_id, "编号", record.external_id), record)
        # The first of equal records, should an older import have left two.
        self.records.setdefault((organisation_id, "内容", dedup_key or record.dedup_key), record)

    def organisation(self, name: str, values: Mapping[str, Any]) -> Organisation:
        city_field, detail_field = _ORGANISATION_FIELDS[self.schema.side][1:]
        city = values.get(city_field)
        organisation = self.organisations.get(name)
        if organisation is None:
            kind = self.schema.default_organisation_kind
            tier = None
            if detail_field == "institution_kind":
                kind = values.get(detail_field) or kind
            else:
                tier = values.get(detail_field)
            organisation = Organisation(
                name=name, kind=kind, city=city, tier=tier, is_sample=self.sample
            )
            self.session.add(organisation)
            self.session.flush()  # its id keys the records remembered below
            self.report.organisations_created.append(name)
            self.organisations[name] = organisation
            return organisation
        # Only details a row states are taken over; blank cells leave them as they are.
        if city and organisation.city != city:
            organisation.city = city
        if detail_field == "firm_tier" and values.get(detail_field):
            organisation.tier = values[detail_field]
        return organisation

    def write(self, row: PreparedRow) -> tuple[str, Need | Result]:
        organisation = self.organisation(row.organisation, row.values)
        fields = _model_fields(self.schema.side, row.values)
        if fields.get("status") is None:
            # New records take the model's default (open / active); a blank status never
            # reopens or withdraws an existing one.
            fields.pop("status", None)
        kind, value = self._key_parts(row)
        record = self.records.get((organisation.id, kind, value))
        if record is None:
            # content_hash and dedup_key are set by the models' insert/update hooks.
            record = self.model(**fields, organisation=organisation)
            self.session.add(record)
            self._remember(record, organisation.id, row.dedup_key)
            return "created", record
        changed = {name: value for name, value in fields.items() if getattr(record, name) != value}
        if not changed:
            return "unchanged", record
        for name, value in changed.items():
            setattr(record, name, value)
        self._remember(record, organisation.id, row.dedup_key)
        return "updated", record


# Distinct bad rows remembered while counting (see import_table): a bounded dict.
_MEMO_MAX = 10_000


def _memo_key(source_row: SourceRow) -> Any:
    """What a row's check depends on besides the file-wide settings: its raw values and the
    reader's problems; None when a value cannot be a key (a JSON list) or the row has
    reader problems (they carry the row's line number, so no two are equal anyway)."""
    if source_row.problems or source_row.raw_text is not None:
        return None
    key = tuple(source_row.fields.items())
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _progress(
    iterable: Iterable[Any], total: int | None, description: str, progress: bool | None
):
    # None: a bar for large files only (a streamed file, whose length is unknown, counts as
    # large); True: always. Either way tqdm (disable=None) stays quiet when stderr is not a
    # terminal, so logs and tests get no bar.
    disable: bool | None = None
    if progress is False or (progress is None and total is not None
                             and total < PROGRESS_MIN_ROWS):
        disable = True
    return tqdm(iterable, total=total, desc=description, unit="行", disable=disable)


def import_table(
    session: Session,
    side: Side,
    table: SourceTable,
    *,
    source: str,
    keep_valid: bool = False,
    organisation: str | None = None,
    lock_organisation: bool = False,
    sample: bool = False,
    progress: bool | None = None,
    max_rows: int | None = None,
) -> ImportReport:
    """Check every row of `table`, then write them (all, or with `keep_valid` the good ones).

    The rows are read once, as they come (a streamed table is never held in memory): a bad row
    is counted by reason and kept in full only while the report wants it (the first
    REJECTED_SHOWN_MAX, or every one with `keep_valid`, for the rejects file), and once a row
    is bad without `keep_valid` the good ones are only checked, no longer kept. `max_rows`
    bounds the good rows one call writes (an upload); a file with more is refused as a whole
    as soon as it has more.
    """
    if lock_organisation and not organisation:
        raise ValueError("lock_organisation needs the organisation to lock to")
    if organisation is not None:
        organisation = checked_default_organisation(organisation)
    schema = schema_for(side)
    report = ImportReport(side=side, source=source, keeps_all_rejected=keep_valid)
    prepared: list[PreparedRow] = []
    good = 0
    first_line_of_key: dict[tuple[str, ...], int] = {}
    rows = table.rows
    total = len(rows) if isinstance(rows, Sized) else None
    # Once a file is rejected and its first rows are kept, further bad rows are only counted;
    # equal rows (600,000 times "标题," in one upload) are then checked once.
    known_bad: dict[Any, tuple[str, ...]] = {}
    last_bad: tuple[dict[str, Any], tuple[str, ...]] | None = None  # the reader reuses values
    counting = False
    for source_row in _progress(rows, total, "校验", progress):
        report.total_rows += 1
        memo_key = None
        if counting:
            if last_bad is not None and source_row.fields is last_bad[0]:
                report.reject(None, last_bad[1])
                continue
            memo_key = _memo_key(source_row)
            if memo_key is not None and memo_key in known_bad:
                last_bad = (source_row.fields, known_bad[memo_key])
                report.reject(None, last_bad[1])
                continue
        row, errors = prepare_row(schema, source_row, organisation, lock_organisation)
        if row is None and memo_key is not None and len(known_bad) < _MEMO_MAX:
            known_bad[memo_key] = reasons_of(errors)
        if row is not None and row.key in first_line_of_key:
            field_name = "external_id" if row.key[1] == "编号" else "title"
            spec = schema.by_name(field_name)
            what = "编号" if field_name == "external_id" else "标题和内容"
            message = f"{what}与第 {first_line_of_key[row.key]} 行重复"
            errors = [RowError(row.line, field_name, spec.label, message)]
            row = None
        if row is None:
            kept = None
            if report.wants_rejected():
                kept = RejectedRow(source_row.line, rejected_original(source_row), errors,
                                   row_name(source_row.fields))
            report.reject(kept, errors)
            counting = not keep_valid and not report.wants_rejected()
            continue
        good += 1
        if max_rows is not None and good > max_rows:
            raise ImportFileError(
                f"《{source}》中合格的数据行超过单次导入的上限 {max_rows:,} 行"
                f"（已读到第 {row.line:,} 行）。请分成几个文件导入。")
        first_line_of_key[row.key] = row.line
        if keep_valid or not report.rejected_total:
            prepared.append(row)
    report.unknown_columns = list(table.unknown_columns)
    if report.rejected_total and not keep_valid:
        raise RowsRejected(report)

    writer = _Writer(session, schema, sample, report)
    writer.preload(prepared)
    outcomes: list[tuple[str, Need | Result]] = []
    for number, row in enumerate(_progress(prepared, len(prepared), "写入", progress), 1):
        outcomes.append(writer.write(row))
        if number % _BATCH == 0:
            session.flush()  # batched INSERTs; bounded memory for pending rows
    session.flush()  # ids for the report
    for outcome, record in outcomes:
        getattr(report, f"{outcome}_ids").append(record.id)
    report.written = True
    return report
