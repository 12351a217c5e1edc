"""Checking rows before anything is written: each row read from a file becomes a row ready to
write (clean values, its organisation, the key that finds it again on re-import) or a list of
`RowError`s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corpora.importer.readers import SourceRow
from corpora.importer.report import ImportFileError
from corpora.models import dedup_key_of
from corpora.schema import NAME_MAX, RowError, SideSchema, encoding_problem, validate_values


@dataclass
class PreparedRow:
    line: int
    values: dict[str, Any]  # clean values of the fields the row has
    organisation: str
    key: tuple[str, ...]
    dedup_key: str


def prepare_row(
    schema: SideSchema,
    source: SourceRow,
    default_organisation: str | None,
    lock_organisation: bool,
) -> tuple[PreparedRow | None, list[RowError]]:
    if source.raw_text is not None:
        return None, source.problems  # not even a record: its fields cannot be checked
    values, errors = validate_values(schema, source.line, source.fields)
    errors = source.problems + errors
    org_spec = schema.by_name(schema.organisation_field)
    organisation = values.get(org_spec.name) or default_organisation
    if organisation is None:
        message = "必填：行中没有单位名称，导入时也未指定单位"
        errors.append(RowError(source.line, org_spec.name, org_spec.label, message))
    elif lock_organisation and organisation != default_organisation:
        errors.append(
            RowError(
                source.line, org_spec.name, org_spec.label,
                f"只能导入本单位（{default_organisation}）的数据，此行属于「{organisation}」",
            )
        )
    if errors or organisation is None:
        return None, errors
    dedup_key = dedup_key_of(
        values["title"], values[schema.text_field], values.get("keywords") or ()
    )
    if values.get("external_id"):
        key = (organisation, "编号", values["external_id"])
    else:
        key = (organisation, "内容", dedup_key)
    return PreparedRow(source.line, values, organisation, key, dedup_key), []


def checked_default_organisation(name: str) -> str:
    """The organisation given for the whole file (the CLI's --organisation, an office's own
    institution) passes the same checks a row's organisation cell does."""
    problem = encoding_problem(name)
    if problem:
        raise ImportFileError(f"指定的单位名称{problem}")
    name = " ".join(name.split())
    if not name:
        raise ImportFileError("指定的单位名称为空")
    if len(name) > NAME_MAX:
        raise ImportFileError(f"指定的单位名称超过 {NAME_MAX} 个字符")
    return name
