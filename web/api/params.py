"""What the API accepts: its query parameters and JSON bodies, as pydantic models.

These models are both the check and the description: `web.api.contract` validates every
request with them and `web.api.openapi` publishes their JSON Schema, so the OpenAPI document
cannot say one thing while the code checks another. The bodies of needs and results are
built from the importer's own field table (`service.records.schema_of` / `fields_for`): a
field added to the import appears in the API's validation and its description at once, and
each field's value is checked by the importer's parser (`corpora.schema.parse_value`), so a
value accepted in a spreadsheet is accepted here, with the same message when it is not.

Each type pairs a JSON type with a gate (a `BeforeValidator`) that refuses any other JSON
type with a Chinese message: pydantic's lax mode would otherwise take `true` for the number
1 or "12" for an integer in a body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from corpora.models import ID_MAX, NEED_STATUSES, RESULT_STATUSES, as_id
from corpora.schema import MONEY_MAX, FieldSpec, ValueProblem, encoding_problem, parse_value
from corpora.schema import preview as preview_value
from matcher.types import Side
from service.records import REASON_MAX, fields_for, schema_of
from web.api.input import type_name
from web.matchview import FILTER_PARAMS

PAGE_MAX = 100_000
PER_PAGE_DEFAULT = 20
PER_PAGE_MAX = 100
ARG_MAX = 200  # characters in one filter value
K_DEFAULT = 20  # matches or hits in one answer
K_MAX = 100
QUERY_MAX = 2000  # characters of a search text
SIDES: tuple[Side, ...] = ("need", "result")
# The choice fields that list endpoints filter on, per side (columns of the same name).
LIST_CHOICES: dict[Side, tuple[str, ...]] = {
    "need": ("industry", "cooperation_mode"),
    "result": ("industry", "result_type", "maturity"),
}
STATUSES: dict[Side, tuple[str, ...]] = {"need": NEED_STATUSES, "result": RESULT_STATUSES}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def problem(message: str) -> PydanticCustomError:
    """A refusal whose message is ours, shown as it is (no placeholders are filled in)."""
    return PydanticCustomError("g60", message)


def _drop_default(schema: dict[str, Any]) -> None:
    """An optional field that may not be null has no default to show ("default": null
    would contradict its type)."""
    schema.pop("default", None)


class Strict(BaseModel):
    """Unknown fields are errors (`web.api.contract` names each one "未知字段" or "未知参数")."""

    model_config = ConfigDict(extra="forbid")


# --- query parameters ---------------------------------------------------------------------


def query_int(low: int, high: int) -> Any:
    """An integer in a query string: ASCII digits only ("١٠", "1e3", "+1" and "1_0" are not
    integers here, though Python's int() takes some of them)."""
    message = f"须为 {low}–{high} 的整数"

    def check(value: Any) -> int:
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise problem(message)

    return Annotated[int, Field(ge=low, le=high), BeforeValidator(check)]


_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _query_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise problem("须为 1 或 0")


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]


def one_of(values: tuple[str, ...], message: str) -> Any:
    """Exactly one of `values` (no synonyms): statuses, the search side."""
    def check(value: Any) -> str:
        if isinstance(value, str) and value in values:
            return value
        raise problem(message)

    return Annotated[str, BeforeValidator(check),
                     WithJsonSchema({"type": "string", "enum": list(values)})]


def _clean_text(limit: int) -> Callable[[str], str]:
    """Text that may reach SQL or the engine: within `limit` and clean Unicode (a NUL in a
    PostgreSQL query is an error, not a miss)."""
    def check(value: str) -> str:
        if len(value) > limit:
            raise problem(f"不超过 {limit} 个字符")
        if found := encoding_problem(value):
            raise problem(found)
        return value

    return check


def query_choice(spec: FieldSpec) -> Any:
    """A value of a field with a fixed vocabulary, resolved like the importer resolves it
    (its synonyms too); the canonical values are the ones described."""
    clean = _clean_text(ARG_MAX)

    def resolve(value: str) -> str:
        found = spec.resolve_choice(clean(value))
        if found is None:
            raise problem(f"{preview_value(value)} 不是允许的取值；"
                          f"可选：{'、'.join(spec.shown_choices)}")
        return found

    return Annotated[str, AfterValidator(resolve),
                     WithJsonSchema({"type": "string", "enum": list(spec.shown_choices)})]


def _iso_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise problem("日期须为 YYYY-MM-DD，例如 2025-01-31")


QueryDate = Annotated[date, BeforeValidator(_iso_date)]
FilterText = Annotated[str, Field(max_length=ARG_MAX)]
SearchText = Annotated[str, Field(min_length=1, max_length=QUERY_MAX),
                       AfterValidator(_clean_text(QUERY_MAX))]
Id = Annotated[int, Field(ge=1, le=ID_MAX)]


PageNumber = query_int(1, PAGE_MAX)
PerPage = query_int(1, PER_PAGE_MAX)
MatchCount = query_int(1, K_MAX)
QueryId = query_int(1, ID_MAX)


class PageQuery(Strict):
    page: PageNumber = Field(1, title="页码")
    per_page: PerPage = Field(PER_PAGE_DEFAULT, title="每页条数")


class NoQuery(Strict):
    """An operation that takes no query parameter: any given is refused by name."""


def _list_query(side: Side) -> type[PageQuery]:
    schema = schema_of(side)
    fields: dict[str, Any] = {
        name: (list[query_choice(schema.by_name(name))],
               Field(default_factory=list, title=schema.by_name(name).label,
                     description="可重复，取其一即匹配"))
        for name in LIST_CHOICES[side]
    }
    statuses = STATUSES[side]
    fields["status"] = (list[one_of(statuses, f"须为 {' 或 '.join(statuses)}")],
                        Field(default_factory=list, title="状态", description="可重复"))
    fields["organisation_id"] = (QueryId | None,
                                 Field(None, title="单位编号"))
    fields["mine"] = (QueryBool, Field(False, title="只看本单位的"))
    return create_model(f"{side.title()}ListQuery", __base__=PageQuery, **fields)


FILTER_TITLES = {"industry": "产业领域", "result_type": "成果类型", "maturity": "成熟度",
                 "institution": "单位名称", "cooperation_mode": "合作方式", "city": "所在城市"}


def _filters(target: Side, note: str = "") -> dict[str, Any]:
    """The engine's filters on `target`'s side (web.matchview.FILTER_PARAMS) and the dates."""
    fields: dict[str, Any] = {
        name: (list[FilterText], Field(default_factory=list, title=FILTER_TITLES[name],
                                       description="可重复，取其一即匹配" + note))
        for name in FILTER_PARAMS[target]
    }
    fields["date_from"] = (QueryDate | None, Field(None, title="起始日期"))
    fields["date_to"] = (QueryDate | None, Field(None, title="结束日期"))
    return fields


def _matches_query(target: Side) -> type[Strict]:
    k = (MatchCount, Field(K_DEFAULT, title="返回条数"))
    return create_model(f"{target.title()}FilterQuery", __base__=Strict, k=k, **_filters(target))


def _search_query() -> type[Strict]:
    """Both sides' filters: a filter that only one side has says so (the view refuses it for
    the other side)."""
    common = set(FILTER_PARAMS["need"]) & set(FILTER_PARAMS["result"])
    filters = _filters("result", "；仅 side=result") | _filters("need", "；仅 side=need")
    filters |= {name: field for name, field in _filters("result").items() if name in common}
    return create_model(
        "SearchQuery", __base__=Strict,
        q=(SearchText, Field(title="检索词")),
        side=(one_of(SIDES, "须为 need 或 result"), Field("result", title="检索哪一方")),
        k=(MatchCount, Field(K_DEFAULT, title="返回条数")), **filters)


LIST_QUERY: dict[Side, type[PageQuery]] = {side: _list_query(side) for side in SIDES}
# Matches of a need are results (filtered as results are), and the other way round.
MATCHES_QUERY: dict[Side, type[Strict]] = {side: _matches_query(side) for side in SIDES}
SearchQuery = _search_query()


# --- JSON bodies ----------------------------------------------------------------------------


def _gate(check: Callable[[Any], str | None], required: bool) -> BeforeValidator:
    """Refuse a value of the wrong JSON type with `check`'s message; null is refused for a
    required field and passed on for the others."""
    def gate(value: Any) -> Any:
        if value is None:
            if required:
                raise problem("必填，不能为空")
            return None
        if (message := check(value)) is not None:
            raise problem(message)
        return value

    return BeforeValidator(gate)


def _text_type(value: Any) -> str | None:
    return None if isinstance(value, str) else f"类型错误：应为文本，实际为{type_name(value)}"


def _date_type(value: Any) -> str | None:
    return None if isinstance(value, str) else \
        f"类型错误：应为日期文本 YYYY-MM-DD，实际为{type_name(value)}"


def _money_type(value: Any) -> str | None:
    # Checked here, not by float(): a 400-digit integer does not fit in one.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"类型错误：应为数字（单位：万元），实际为{type_name(value)}"
    if value < 0:
        return "不能为负数"
    if value > MONEY_MAX:
        return f"超过上限 {MONEY_MAX:,.0f}（单位：万元）"
    return None


def _list_type(value: Any) -> str | None:
    if isinstance(value, list):
        return None if all(isinstance(item, str) for item in value) else \
            "类型错误：列表中应全为文本"
    return None if isinstance(value, str) else \
        f"类型错误：应为文本列表，实际为{type_name(value)}"


def _json_type(spec: FieldSpec) -> tuple[Any, Callable[[Any], str | None]]:
    """The JSON type of one importer field and the gate that refuses any other."""
    if spec.kind in ("str", "text"):
        return Annotated[str, Field(max_length=spec.max_len)], _text_type
    if spec.kind == "choice":
        return Annotated[str, WithJsonSchema({"type": "string",
                                              "enum": list(spec.shown_choices)})], _text_type
    if spec.kind == "date":
        return Annotated[str, WithJsonSchema({"type": "string", "format": "date"})], _date_type
    if spec.kind == "float":
        return Annotated[float, Field(ge=0, le=MONEY_MAX)], _money_type
    item: Any = Annotated[str, Field(max_length=spec.max_len)]
    if spec.kind == "choice_list":
        item = Annotated[str, WithJsonSchema({"type": "string",
                                              "enum": list(spec.shown_choices)})]
    # A list, or one text with the importer's separators ("石墨烯;导热膜").
    return Annotated[list[item], Field(max_length=spec.max_items)] | str, _list_type


def _importer_rule(spec: FieldSpec, required: bool) -> AfterValidator:
    """The importer's parser for this field, with its messages; the value is passed on as
    given (`service.records` parses it again when it writes)."""
    def check(value: Any) -> Any:
        try:
            parsed = parse_value(spec, value)
        except ValueProblem as bad:
            raise problem(str(bad)) from None
        if parsed is None and required:
            raise problem("必填，不能为空")
        return value

    return AfterValidator(check)


def body_field(spec: FieldSpec, *, required: bool, nullable: bool) -> tuple[Any, Any]:
    """One importer field as a body field: (annotation, FieldInfo)."""
    json_type, check = _json_type(spec)
    shown = json_type | None if nullable else json_type
    annotation = Annotated[shown, _gate(check, required or not nullable),
                           _importer_rule(spec, required or not nullable)]
    description = spec.note or None
    if required:
        return annotation, Field(title=spec.label, description=description)
    extra = None if nullable else _drop_default
    return annotation, Field(None, title=spec.label, description=description,
                             json_schema_extra=extra)


def _body(side: Side, *, new: bool) -> type[Strict]:
    """POST (`new`): the required fields must be there; PATCH: any subset, plus the status."""
    schema = schema_of(side)
    fields: dict[str, Any] = {}
    for name in fields_for(side):
        spec = schema.by_name(name)
        fields[name] = body_field(spec, required=new and spec.required,
                                  nullable=not spec.required)
    if not new:
        statuses = STATUSES[side]
        fields["status"] = (one_of(statuses, f"状态须为 {' 或 '.join(statuses)}"),
                            Field(None, title="状态", json_schema_extra=_drop_default))
    label = schema.label
    name = f"{side.title()}{'New' if new else 'Change'}"
    doc = f"新{label}的字段" if new else f"要修改的{label}字段（只改给出的字段）"
    return create_model(name, __base__=Strict, __doc__=doc, **fields)


NEW_BODY: dict[Side, type[Strict]] = {side: _body(side, new=True) for side in SIDES}
CHANGE_BODY: dict[Side, type[Strict]] = {side: _body(side, new=False) for side in SIDES}


def _result_ref(value: Any) -> int:
    if value is None:
        raise problem("缺少此项，必填")
    if (parsed := as_id(value)) is None:
        raise problem(f"须为成果编号（1–{ID_MAX} 的整数）")
    return parsed


def _relevant(value: Any) -> bool:
    if value is None:
        raise problem("缺少此项，必填")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:  # as mark_match reads
        return _BOOLEANS[value.strip().lower()]
    raise problem("须为 true（相关）或 false（不相关）")


def _clean_reason(value: str | None) -> str | None:
    return value if value is None else _clean_text(REASON_MAX)(value)


ResultRef = Annotated[Id, BeforeValidator(_result_ref)]
Relevant = Annotated[bool, BeforeValidator(_relevant)]
Reason = Annotated[Annotated[str, Field(max_length=REASON_MAX)] | None,
                   _gate(_text_type, False), AfterValidator(_clean_reason)]


class FeedbackBody(Strict):
    """一条匹配标记：该成果对此需求是否相关。"""

    result_id: ResultRef = Field(title="成果编号")
    relevant: Relevant = Field(title="是否相关", description='也接受 "1"/"0"、"true"/"false"')
    reason: Reason = Field(None, title="理由")


Credential = Annotated[str, _gate(_text_type, True)]


class TokenBody(Strict):
    """用户名和密码换 API 令牌。"""

    username: Credential = Field(title="用户名")
    password: Credential = Field(title="密码")


class ResultsUpload(BaseModel):
    """multipart/form-data：字段 file 为 CSV 或 XLSX 文件（列见 docs/import-format.md）。"""

    file: bytes = Field(title="文件", description="文件名须以 .csv 或 .xlsx 结尾")
