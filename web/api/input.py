"""Reading API requests: JSON bodies, query parameters and ids, each checked before use.

Every problem becomes an `ApiError` (status, message, the fields to blame), raised through
`fail`, which also rolls back whatever the request wrote: a rejected request changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from flask import g, request

from corpora.models import ID_MAX, as_id
from corpora.schema import MONEY_MAX, encoding_problem, preview
from matcher.filters import Filters
from matcher.types import Side
from service.records import (
    fields_for,
    schema_of,
)
from web.matchview import BadFilter, filters_from

PAGE_MAX = 100_000
PER_PAGE_DEFAULT = 20
PER_PAGE_MAX = 100
ARG_MAX = 200  # characters in one filter value
K_DEFAULT = 20  # matches or hits in one answer
K_MAX = 100
DATE_ARGS = ("date_from", "date_to")  # accepted beside a side's FILTER_PARAMS
NAME_SHOWN_MAX = 100  # characters of a client's own field name echoed back in an error
JSON_TYPE_NAMES = {dict: "对象", list: "列表", bool: "布尔值", int: "数字", float: "数字",
                   str: "文本", type(None): "null"}


class ApiError(Exception):
    """An answer other than success: status, message and the fields to blame."""

    def __init__(self, status: int, message: str, fields: Mapping[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = {_shown_name(name): text for name, text in (fields or {}).items()}


def _shown_name(name: str) -> str:
    """A field name as an error may echo it: a client's unknown field may be 5 MB of lone
    surrogates, which must neither bloat the answer nor break its UTF-8 encoding."""
    short = name[:NAME_SHOWN_MAX] + ("…" if len(name) > NAME_SHOWN_MAX else "")
    return short.encode("utf-8", "backslashreplace").decode("utf-8")


def fail(status: int, message: str, fields: Mapping[str, str] | None = None) -> NoReturn:
    """Undo everything this request wrote so far, then answer with the error."""
    if "db" in g:
        g.db.rollback()
    raise ApiError(status, message, fields)


class _BadConstant(ValueError):
    pass


def _reject_constant(name: str) -> NoReturn:
    raise _BadConstant(f"{name} 不是有效的 JSON 数值")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            fail(400, "请求体中有重复的字段", {key: "字段重复出现"})
        seen[key] = value
    return seen


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying exactly what is wrong with it.
    Reading it past MAX_CONTENT_LENGTH raises a 413 (a JSON error under /api/)."""
    if not request.is_json:
        fail(400, "请求体须为 JSON：请设置 Content-Type: application/json")
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        fail(400, "请求体须为 UTF-8 编码的 JSON")
    if not text.strip():
        fail(400, "请求体为空：须为一个 JSON 对象")
    try:
        data = json.loads(text, parse_constant=_reject_constant,
                          object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as error:
        fail(400, f"请求体不是有效的 JSON（第 {error.lineno} 行第 {error.colno} 列：{error.msg}）")
    except _BadConstant as error:
        fail(400, f"请求体不是有效的 JSON：{error}")
    except (ValueError, RecursionError):
        # Python refuses integers of more than 4,300 digits; nesting can exceed the stack.
        fail(400, "请求体不是有效的 JSON：数字过大或嵌套过深")
    if not isinstance(data, dict):
        fail(400, f"请求体须为 JSON 对象（{{…}}），实际为{type_name(data)}")
    return data


def type_name(value: Any) -> str:
    return JSON_TYPE_NAMES.get(type(value), "其他")


def check_args(allowed: Iterable[str]) -> None:
    """Unknown query parameters are errors: a misspelt filter must not silently be ignored."""
    allowed = set(allowed)
    unknown = {name: "未知参数" for name in request.args if name not in allowed}
    if unknown:
        fail(400, "查询参数有误", unknown)


def one_arg(name: str) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        fail(400, "查询参数有误", {name: "只能给一个值"})
    value = values[0].strip() if values else ""
    return value or None


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = one_arg(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or not low <= int(raw) <= high:
        fail(400, "查询参数有误", {name: f"须为 {low}–{high} 的整数"})
    return int(raw)


def bool_arg(name: str) -> bool:
    raw = one_arg(name)
    if raw is None:
        return False
    value = {"1": True, "true": True, "yes": True, "0": False, "false": False,
             "no": False}.get(raw.lower())
    if value is None:
        fail(400, "查询参数有误", {name: "须为 1 或 0"})
    return value


def text_args(name: str) -> list[str]:
    """Every non-blank value of a repeatable parameter, checked before it reaches SQL (a NUL
    byte in a PostgreSQL query is an error, not a miss)."""
    values = []
    for raw in request.args.getlist(name):
        value = raw.strip()
        if not value:
            continue
        problem = encoding_problem(value)
        if problem:
            fail(400, "查询参数有误", {name: problem})
        if len(value) > ARG_MAX:
            fail(400, "查询参数有误", {name: f"不超过 {ARG_MAX} 个字符"})
        values.append(value)
    return values


def choice_args(name: str, side: Side) -> list[str]:
    """Values of a field with a fixed vocabulary, resolved like the importer resolves them."""
    spec = schema_of(side).by_name(name)
    resolved = []
    for value in text_args(name):
        found = spec.resolve_choice(value)
        if found is None:
            fail(400, "查询参数有误",
                 {name: f"{preview(value)} 不是允许的取值；可选：{'、'.join(spec.shown_choices)}"})
        resolved.append(found)
    return resolved


def status_args(allowed: tuple[str, ...]) -> list[str]:
    values = text_args("status")
    bad = [v for v in values if v not in allowed]
    if bad:
        fail(400, "查询参数有误", {"status": f"须为 {' 或 '.join(allowed)}"})
    return values


def path_id(raw: str, name: str) -> int:
    """Ids in paths are parsed here, not by the `int` converter: it would accept any size
    (and the database then fails on a 20-digit id) and answer junk with a bare 404."""
    parsed = as_id(raw)
    if parsed is None or raw != raw.strip():
        fail(400, "编号有误", {name: f"须为 1–{ID_MAX} 的整数"})
    return parsed


def filters_for(target: Side) -> Filters:
    try:
        return filters_from(request.args, target)
    except BadFilter as bad:
        fail(400, "筛选条件有误", {bad.field: bad.message})


def page_args() -> tuple[int, int]:
    return (int_arg("page", 1, 1, PAGE_MAX),
            int_arg("per_page", PER_PAGE_DEFAULT, 1, PER_PAGE_MAX))


def type_problems(side: Side, body: Mapping[str, Any]) -> dict[str, str]:
    """Field → message for values of the wrong JSON type. The importer's validator reads
    spreadsheet cells, so it takes the number 123 as the title "123" and crashes converting
    a 400-digit integer to a float; an API states its types and refuses anything else."""
    problems: dict[str, str] = {}
    schema = schema_of(side)
    for name, value in body.items():
        if name not in fields_for(side) or value is None:
            continue
        kind = schema.by_name(name).kind
        if kind in ("str", "text", "choice"):
            if not isinstance(value, str):
                problems[name] = f"类型错误：应为文本，实际为{type_name(value)}"
        elif kind == "date":
            if not isinstance(value, str):
                problems[name] = f"类型错误：应为日期文本 YYYY-MM-DD，实际为{type_name(value)}"
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems[name] = f"类型错误：应为数字（单位：万元），实际为{type_name(value)}"
            elif isinstance(value, int) and value < 0:
                problems[name] = "不能为负数"
            elif isinstance(value, int) and value > MONEY_MAX:
                problems[name] = f"超过上限 {MONEY_MAX:,.0f}（单位：万元）"
        elif kind in ("list", "choice_list"):
            if isinstance(value, list):
                if not all(isinstance(element, str) for element in value):
                    problems[name] = "类型错误：列表中应全为文本"
            elif not isinstance(value, str):
                problems[name] = f"类型错误：应为文本列表，实际为{type_name(value)}"
    return problems


def merge(errors: dict[str, str], more: Mapping[str, str]) -> None:
    """Add problems without replacing the first (most specific) one for a field."""
    for name, message in more.items():
        errors.setdefault(name, message)
