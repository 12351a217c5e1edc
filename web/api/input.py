"""Reading API requests: the JSON body as an object, and ids in paths. What the body and the
query parameters may hold is `web.api.params`' to say and `web.api.contract`'s to check.

Every problem becomes an `ApiError` (status, message, the fields to blame), raised through
`fail`, which also rolls back whatever the request wrote: a rejected request changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from flask import g, request

from corpora.models import ID_MAX, as_id
from matcher.filters import Filters
from matcher.types import Side
from web.matchview import FILTER_PARAMS, BadFilter, filters_from

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


def path_id(raw: str, name: str) -> int:
    """Ids in paths are parsed here, not by the `int` converter: it would accept any size
    (and the database then fails on a 20-digit id) and answer junk with a bare 404."""
    parsed = as_id(raw)
    if parsed is None or raw != raw.strip():
        fail(400, "编号有误", {name: f"须为 1–{ID_MAX} 的整数"})
    return parsed


def filters_of(args: Any, target: Side) -> Filters:
    """The engine's filters from checked query parameters (a `web.api.params` model): the
    dates' order is the one rule a single field cannot check."""
    values: dict[str, Any] = {name: getattr(args, name) for name in FILTER_PARAMS[target]}
    for name in ("date_from", "date_to"):
        if (day := getattr(args, name)) is not None:
            values[name] = day.isoformat()
    try:
        return filters_from(values, target)
    except BadFilter as bad:
        fail(400, "筛选条件有误", {bad.field: bad.message})


def merge(errors: dict[str, str], more: Mapping[str, str]) -> None:
    """Add problems without replacing the first (most specific) one for a field."""
    for name, message in more.items():
        errors.setdefault(name, message)
