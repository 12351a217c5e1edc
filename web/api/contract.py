"""The API's operations as data: each route says what it accepts and answers, and its input
is checked with exactly those models.

`operation(...)` registers a view on the blueprint and records an `Operation` (method, path,
query model, body model, answer model, the error statuses it can give). A view reads its
input through `read_query()` and `read_body()`, which look the models up by the request's
endpoint: the model that checks a request is by construction the one `web.api.openapi`
describes. Views call them where the order of checks demands it (a permission refusal, 403,
comes before a complaint about the body, 400).

pydantic's errors become the API's one error format (`ApiError`: status, Chinese message,
field → reason). Unknown names are found here rather than by pydantic, so that a name that
is not valid Unicode (lone surrogates) is still reported under that name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_origin

from flask import request
from flask.blueprints import BlueprintSetupState
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from werkzeug.routing import BaseConverter, Map

from web.api import bp
from web.api.input import fail, json_body, merge, type_name
from web.api.params import NoQuery

View = Callable[..., Any]
# Errors any authenticated operation can give: a bad query or CSRF token, no credentials.
COMMON_ERRORS = (400, 401)


@dataclass(frozen=True)
class Operation:
    endpoint: str  # Flask endpoint, "api.list_needs"
    method: str
    path: str  # OpenAPI style, relative to /api/v1: "/needs/{need_id}"
    tag: str
    summary: str
    description: str
    answer: type[BaseModel]
    status: int
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    errors: tuple[int, ...]
    public: bool
    headers: Mapping[str, str] = field(default_factory=dict)  # answer header → meaning
    body_media: str = "application/json"
    # A status whose body is not the common ErrorOut (the import's rejected rows).
    error_answers: Mapping[int, type[BaseModel]] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        return self.endpoint.removeprefix(f"{bp.name}.")


OPERATIONS: dict[str, Operation] = {}


def sibling_names() -> set[str]:
    """Fixed path segments that sit where another operation has a parameter: "import" of
    /results/import beside /results/{result_id}."""
    names = set()
    for op in OPERATIONS.values():
        head, _, last = op.path.rpartition("/")
        if "{" not in last and any(re.fullmatch(rf"{re.escape(head)}/\{{\w+\}}", other.path)
                                   for other in OPERATIONS.values()):
            names.add(last)
    return names


class PathId(BaseConverter):
    """`<api_id:name>`: one path segment, any text (`web.api.input.path_id` checks it and
    names the parameter in a 400), except a sibling route's name. Without that exception
    PATCH /results/import would reach /results/<result_id> as the id "import" (a 400 about an
    id instead of a 405), and OPTIONS on it would list PATCH and GET in Allow."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(url_map, *args, **kwargs)
        # Built when the app registers the blueprint: every API module has described its
        # operations by then.
        if names := sorted(sibling_names()):
            taken = "|".join(re.escape(name) for name in names)
            self.regex = rf"(?!(?:{taken})(?![^/]))[^/]+"


def _converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("api_id", PathId)


# Recorded before any route of the blueprint: the rules need the converter when they are added.
bp.record_once(_converter)


def operation(method: str, path: str, *, tag: str, summary: str, answer: type[BaseModel],
              description: str = "", status: int = 200, query: type[BaseModel] | None = NoQuery,
              body: type[BaseModel] | None = None, errors: tuple[int, ...] = (),
              public: bool = False, headers: Mapping[str, str] | None = None
              ) -> Callable[[View], View]:
    """Register `view` at `path` (its `{name}` placeholders become `<api_id:name>`) and
    record what it accepts and answers. 400 and, unless `public`, 401 are always listed."""
    def register(view: View) -> View:
        bp.add_url_rule(re.sub(r"\{(\w+)\}", r"<api_id:\1>", path), view.__name__, view,
                        methods=[method])
        describe(view, method, path, tag=tag, summary=summary, answer=answer,
                 description=description, status=status, query=query, body=body,
                 errors=errors, public=public, headers=headers)
        return view
    return register


def describe(view: View, method: str, path: str, *, tag: str, summary: str,
             answer: type[BaseModel], description: str = "", status: int = 200,
             query: type[BaseModel] | None = NoQuery, body: type[BaseModel] | None = None,
             errors: tuple[int, ...] = (), public: bool = False,
             headers: Mapping[str, str] | None = None, body_media: str = "application/json",
             error_answers: Mapping[int, type[BaseModel]] | None = None) -> None:
    """Record what `view` (already registered on the blueprint at `path`) accepts and
    answers: `operation` without the route, for a view that registers its own."""
    listed = {400, *errors} | (set() if public else set(COMMON_ERRORS))
    endpoint = f"{bp.name}.{view.__name__}"
    OPERATIONS[endpoint] = Operation(
        endpoint, method.upper(), path, tag, summary, description, answer, status, query,
        body, tuple(sorted(listed)), public, dict(headers or {}), body_media,
        dict(error_answers or {}))


def _current() -> Operation:
    return OPERATIONS[str(request.endpoint)]


def _is_list(model: type[BaseModel], name: str) -> bool:
    return get_origin(model.model_fields[name].annotation) is list


def read_query() -> Any:
    """This operation's query parameters, checked: a model instance. Blank values count as
    absent; a list parameter may repeat, any other may not."""
    model = _current().query or NoQuery
    data: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in request.args:
        values = request.args.getlist(name)
        if name not in model.model_fields:
            problems[name] = "未知参数"
        elif _is_list(model, name):
            if given := [value.strip() for value in values if value.strip()]:
                data[name] = given
        elif len(values) > 1:
            problems[name] = "只能给一个值"
        elif values[0].strip():
            data[name] = values[0].strip()
    if problems:
        fail(400, "查询参数有误", problems)
    try:
        return model.model_validate(data)
    except ValidationError as bad:
        fail(400, "查询参数有误", field_problems(bad))


def read_body() -> tuple[dict[str, Any], dict[str, str]]:
    """This operation's JSON body and what is wrong with it, field by field (empty when
    nothing is). Returned, not raised: needs and results add the record writer's own
    complaints before answering."""
    model = _current().body
    assert model is not None, f"{request.endpoint} declares no body"
    data = json_body()
    problems = {name: "未知字段" for name in data if name not in model.model_fields}
    try:
        model.model_validate({k: v for k, v in data.items() if k not in problems})
    except ValidationError as bad:
        merge(problems, field_problems(bad))
    return data, problems


def checked_body(message: str) -> dict[str, Any]:
    """The JSON body, or a 400 with `message` and every field to blame."""
    data, problems = read_body()
    if problems:
        fail(400, message, problems)
    return data


def field_problems(error: ValidationError) -> dict[str, str]:
    """Field → the first thing wrong with it, in Chinese."""
    problems: dict[str, str] = {}
    for detail in error.errors(include_url=False):
        name = str(detail["loc"][0]) if detail["loc"] else "_"
        problems.setdefault(name, _message(detail))
    return problems


def _message(detail: ErrorDetails) -> str:
    kind, context = detail["type"], detail.get("ctx") or {}
    if kind == "g60":  # ours (web.api.params.problem): already the message
        return detail["msg"]
    if kind == "missing":
        return "缺少此项，必填"
    if kind == "string_too_short":
        return "不能为空"
    if kind == "string_too_long":
        return f"不超过 {context.get('max_length')} 个字符"
    if kind == "too_long":
        return f"最多 {context.get('max_length')} 项"
    if kind in ("greater_than_equal", "greater_than"):
        return f"不能小于 {context.get('ge', context.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"不能大于 {context.get('le', context.get('lt'))}"
    if kind.startswith(("string_", "str_")):
        return f"类型错误：应为文本，实际为{type_name(detail.get('input'))}"
    if kind.startswith(("int_", "float_")):
        return f"类型错误：应为数字，实际为{type_name(detail.get('input'))}"
    if kind.startswith("bool_"):
        return "须为 true 或 false"
    if kind.startswith("list_"):
        return f"类型错误：应为列表，实际为{type_name(detail.get('input'))}"
    return f"取值有误（{kind}）"
