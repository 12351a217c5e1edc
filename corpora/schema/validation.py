"""Checking one row: its raw values, field by field, into clean values and `RowError`s."""

from __future__ import annotations

from collections.abc import Mapping

from corpora.schema.errors import RowError, ValueProblem
from corpora.schema.fields import SideSchema
from corpora.schema.parsers import parse_value


def validate_values(
    schema: SideSchema, line: int, raw: Mapping[str, object]
) -> tuple[dict[str, object], list[RowError]]:
    """Check one row given as canonical field name → raw value.

    Returns the clean values of the fields present in `raw` (a blank cell gives None) and
    every problem found; a row is usable only when the error list is empty.
    """
    clean: dict[str, object] = {}
    errors: list[RowError] = []
    for spec in schema.fields:
        if spec.name not in raw:
            if spec.required:
                errors.append(RowError(line, spec.name, spec.label, "缺少此项，必填"))
            continue
        try:
            parsed = parse_value(spec, raw[spec.name])
        except ValueProblem as problem:
            errors.append(RowError(line, spec.name, spec.label, str(problem)))
            continue
        if parsed is None and spec.required:
            errors.append(RowError(line, spec.name, spec.label, "必填，不能为空"))
            continue
        clean[spec.name] = parsed
    low, high = clean.get("budget_min"), clean.get("budget_max")
    if isinstance(low, float) and isinstance(high, float) and low > high:
        spec = schema.by_name("budget_max")
        errors.append(RowError(line, spec.name, spec.label, f"预算上限 {high:g} 小于下限 {low:g}"))
    return clean, errors
