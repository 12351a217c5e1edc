"""Parsing one raw value (a spreadsheet cell, a JSON value, a form field) into a clean Python
value, by the kind of its field: text, number, date, choice or list. Every problem raises
`ValueProblem` with a Chinese message; `parse_decimal` and `parse_date_text` are the number and
date rules the web forms share with the import."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime

from corpora.schema.errors import ValueProblem
from corpora.schema.fields import MONEY_MAX, FieldSpec
from corpora.schema.text import encoding_problem, preview

_TYPE_NAMES = {dict: "对象", list: "列表", bool: "布尔值", int: "数字", float: "数字"}


class BadDate(ValueProblem):
    """Not written as a date in an accepted format."""


class NoSuchDay(BadDate):
    """Written as a date, but the day does not exist (2025-02-30)."""


class DateOutOfRange(BadDate):
    """A real day, outside the years allowed."""


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list | tuple):
        raise ValueProblem(f"类型错误：应为文本，实际为{_TYPE_NAMES.get(type(value), '其他')}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Spreadsheets store an id typed as 1001 as the float 1001.0.
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise ValueProblem(f"类型错误：应为文本，实际为 {type(value).__name__}")


def _check_encoding(text: str) -> None:
    problem = encoding_problem(text)
    if problem:
        raise ValueProblem(problem)


def _check_length(text: str, limit: int | None) -> None:
    if limit is not None and len(text) > limit:
        raise ValueProblem(f"长度 {len(text)} 个字符，超过上限 {limit}")


def _parse_str(spec: FieldSpec, value: object) -> str | None:
    text = _as_text(value)
    _check_encoding(text)
    # Single-line fields: stray line breaks from spreadsheet cells become spaces.
    text = " ".join(text.split())
    _check_length(text, spec.max_len)
    return text or None


def _parse_text(spec: FieldSpec, value: object) -> str | None:
    text = _as_text(value)
    _check_encoding(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    _check_length(text, spec.max_len)
    return text or None


_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def parse_decimal(text: str) -> float | None:
    """The value of a plain decimal (12, -3.5, .5, full-width digits too), None for anything
    else: exponents, nan and inf, thousands separators, words, surrounding spaces (callers
    strip). A digit string too long for a float gives inf, for callers to refuse as too big."""
    normalised = unicodedata.normalize("NFKC", text)
    if not _DECIMAL.match(normalised):
        return None
    return float(normalised)


def _parse_float(spec: FieldSpec, value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueProblem(f"类型错误：应为数字，实际为{_TYPE_NAMES.get(type(value), '其他')}")
    if isinstance(value, str):
        _check_encoding(value)
        # Spreadsheet cells often carry thousands separators: "1,000".
        text = unicodedata.normalize("NFKC", value).strip().replace(",", "")
        if not text:
            return None
        number = parse_decimal(text)
        if number is None:
            raise ValueProblem(f"{preview(value)} 不是数字")
    else:
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range, e.g. 10**400 from JSON
            raise ValueProblem(f"超过上限 {MONEY_MAX:,.0f}（单位：万元）") from None
    if not math.isfinite(number):
        raise ValueProblem(f"{preview(value)} 不是有限的数字")
    if number < 0:
        raise ValueProblem("不能为负数")
    if number > MONEY_MAX:
        raise ValueProblem(f"{preview(value)} 超过上限 {MONEY_MAX:,.0f}（单位：万元）")
    return number


# The one form a web form's date field takes.
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# What a spreadsheet or JSON file may write a date as.
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
)


def parse_date_text(
    text: str, *, iso_only: bool = False, years: tuple[int, int] | None = None
) -> date | None:
    """The day `text` names (full-width digits accepted), None when it is blank.

    The import takes 2024-05-01, 2024/5/1, 2024.5.1 and 2024年5月1日; `iso_only` takes
    YYYY-MM-DD alone, as a form's date field does. `years` (first, last) bounds the year.
    Raises `BadDate`, or its subclasses `NoSuchDay` and `DateOutOfRange`.
    """
    normalised = unicodedata.normalize("NFKC", text).strip()
    if not normalised:
        return None
    if iso_only:
        patterns: tuple[re.Pattern[str], ...] = (_ISO_DATE,)
    else:
        # "2024-05-01 00:00:00" (a datetime written out as text) is still a date.
        normalised = re.sub(r"[ T]00:00(:00)?$", "", normalised)
        patterns = _DATE_PATTERNS
    message = f"{preview(text)} 不是有效日期（应为 YYYY-MM-DD）"
    for pattern in patterns:
        match = pattern.match(normalised)
        if not match:
            continue
        year, month, day = (int(part) for part in match.groups())
        try:
            named = date(year, month, day)
        except ValueError:
            raise NoSuchDay(message) from None
        if years is not None and not years[0] <= named.year <= years[1]:
            raise DateOutOfRange(f"{preview(text)} 不在 {years[0]} 年至 {years[1]} 年之间")
        return named
    raise BadDate(message)


def _parse_date(spec: FieldSpec, value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueProblem(
            f"类型错误：应为日期（YYYY-MM-DD），实际为{_TYPE_NAMES.get(type(value), '其他')}"
        )
    _check_encoding(value)
    return parse_date_text(value)


def _bad_choice(spec: FieldSpec, value: str) -> ValueProblem:
    allowed = "、".join(spec.shown_choices)
    return ValueProblem(f"{preview(value)} 不是允许的取值；可选：{allowed}")


def _parse_choice(spec: FieldSpec, value: object) -> str | None:
    text = _as_text(value)
    _check_encoding(text)
    if not text.strip():
        return None
    found = spec.resolve_choice(text)
    if found is None:
        raise _bad_choice(spec, text)
    return found


_LIST_SEPARATORS = re.compile(r"[;；,，、\n]")


def _split_list(spec: FieldSpec, value: object) -> list[str]:
    if isinstance(value, list | tuple):
        parts: list[str] = []
        for element in value:
            if not isinstance(element, str):
                raise ValueProblem(
                    f"类型错误：列表中应为文本，实际为{_TYPE_NAMES.get(type(element), '其他')}"
                )
            _check_encoding(element)
            # An element may not carry the storage separator: it would split on the way back.
            parts.extend(_LIST_SEPARATORS.split(element))
    else:
        text = _as_text(value)
        _check_encoding(text)
        parts = _LIST_SEPARATORS.split(text)
    cleaned: list[str] = []
    for part in parts:
        item = " ".join(part.split())
        if item and item not in cleaned:
            cleaned.append(item)
    if spec.max_items is not None and len(cleaned) > spec.max_items:
        raise ValueProblem(f"共 {len(cleaned)} 项，超过上限 {spec.max_items} 项")
    for item in cleaned:
        if spec.max_len is not None and len(item) > spec.max_len:
            raise ValueProblem(f"{preview(item)} 长度 {len(item)}，超过每项上限 {spec.max_len}")
    return cleaned


def _parse_list(spec: FieldSpec, value: object) -> list[str] | None:
    return _split_list(spec, value) or None


def _parse_choice_list(spec: FieldSpec, value: object) -> list[str] | None:
    resolved: list[str] = []
    for item in _split_list(spec, value):
        found = spec.resolve_choice(item)
        if found is None:
            raise _bad_choice(spec, item)
        if found not in resolved:
            resolved.append(found)
    return resolved or None


_PARSERS: dict[str, Callable[[FieldSpec, object], object]] = {
    "str": _parse_str,
    "text": _parse_text,
    "float": _parse_float,
    "date": _parse_date,
    "choice": _parse_choice,
    "list": _parse_list,
    "choice_list": _parse_choice_list,
}


def parse_value(spec: FieldSpec, value: object) -> object:
    """The clean value of one raw value for `spec`'s field (None when blank); raises
    `ValueProblem`."""
    return None if is_blank(value) else _PARSERS[spec.kind](spec, value)
