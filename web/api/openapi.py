"""The API's OpenAPI 3.1 description, assembled from the operations' registry, and the docs
page that shows it.

Nothing here is written by hand about a field: the paths, methods and error statuses come
from `web.api.contract.OPERATIONS`, every parameter and body from the pydantic models that
check the requests (`web.api.params`), every answer from `web.api.answers`; pydantic's JSON
Schema is draft 2020-12, the dialect of OpenAPI 3.1. The document is served at
/api/v1/openapi.json and rendered at /api/v1/docs (`web.api.docs_page`).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from web.api import bp
from web.api.answers import ErrorOut
from web.api.contract import OPERATIONS, Operation
from web.api.params import Id
from web.api.replies import ok
from web.errors import MESSAGES
from web.security import MAX_HEADER_BYTES

VERSION = "1.0"
REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "请求有误：消息说明原因，fields 指出出错的字段或参数",
    401: "未登录，或令牌无效（响应头 WWW-Authenticate: Bearer）",
    403: "当前账号无权执行此操作",
    404: "记录不存在",
    409: "与同时进行的其他修改冲突，请重试",
    413: "请求体过大",
    429: "请求过于频繁（响应头 Retry-After）",
}
# What the HTTP server (waitress, web.serve) answers itself, before the app sees the request.
SERVER_TEXT = {431: f"请求行或请求头过大（超过 {MAX_HEADER_BYTES // 1024} KB）："
                    "由服务器直接拒绝，纯文本，不是 JSON"}
PATH_TEXT = {"need_id": "需求编号", "result_id": "成果编号", "shortlist_id": "拍卖清单编号"}


def _models() -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {"ErrorOut": ErrorOut}
    for op in OPERATIONS.values():
        for model in (op.body, op.answer, *op.error_answers.values()):
            if model is not None:
                seen.setdefault(model.__name__, model)
    return sorted(seen.values(), key=lambda model: model.__name__)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.get("$defs", {}))
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        field_schema = dict(field_schema)
        title = field_schema.pop("title", "")
        note = field_schema.pop("description", "")
        parameter: dict[str, Any] = {
            "name": name, "in": "query", "required": name in required,
            "schema": field_schema,
            "description": "；".join(part for part in (title, note) if part),
        }
        if field_schema.get("type") == "array":
            parameter |= {"style": "form", "explode": True}
        parameters.append(parameter)
    return parameters


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    # Checked by web.api.input.path_id (corpora.models.as_id): an id, 1..ID_MAX.
    schema = TypeAdapter(Id).json_schema()
    return [{"name": name, "in": "path", "required": True, "schema": schema,
             "description": PATH_TEXT.get(name, "编号")}
            for name in re.findall(r"\{(\w+)\}", op.path)]


def _responses(op: Operation) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": op.answer.__doc__.strip() if op.answer.__doc__ else "成功",
        "content": {"application/json": {"schema": _ref(op.answer)}},
    }
    if op.headers:
        answer["headers"] = {name: {"description": text, "required": True,
                                    "schema": {"type": "string"}}
                             for name, text in op.headers.items()}
    if links := _links(op):
        answer["links"] = links
    responses = {str(op.status): answer}
    for status in op.errors:
        model = op.error_answers.get(status, ErrorOut)
        text = ERROR_TEXT.get(status, MESSAGES.get(status, "错误"))
        error: dict[str, Any] = {
            "description": (model.__doc__ or text).strip() if model is not ErrorOut else text,
            "content": {"application/json": {"schema": _ref(model)}},
        }
        if status == 401:
            error["headers"] = {"WWW-Authenticate": {"required": True,
                                                     "schema": {"type": "string"}}}
        responses[str(status)] = error
    for status, text in SERVER_TEXT.items():
        responses[str(status)] = {"description": text,
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}
    return responses


def _links(op: Operation) -> dict[str, Any]:
    """A new record's answer links to the operations on it (its id is the path's one id):
    how a client, and schemathesis' stateful phase, goes from POST /needs to /needs/{id}."""
    if op.status != 201:
        return {}
    links = {}
    for other in OPERATIONS.values():
        names = re.findall(r"\{(\w+)\}", other.path)
        if len(names) == 1 and other.path.startswith(f"{op.path}/{{{names[0]}}}"):
            links[other.operation_id] = {"operationId": other.operation_id,
                                         "parameters": {names[0]: "$response.body#/id"}}
    return links


def _operation(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": op.operation_id, "tags": [op.tag], "summary": op.summary,
        "description": op.description,
        "parameters": _path_parameters(op) + (
            _query_parameters(op.query, schemas) if op.query is not None else []),
        "responses": _responses(op),
    }
    if op.body is not None:
        described["requestBody"] = {"required": True,
                                    "content": {op.body_media: {"schema": _ref(op.body)}}}
    if op.public:
        described["security"] = []
    return described


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of /api/v1 (built once per process: it is code, not data)."""
    _, definitions = models_json_schema([(model, "validation") for model in _models()],
                                        ref_template=REF)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS.values():
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "G60 科创走廊产学研对接平台 JSON API", "version": VERSION,
            "description": "网页上能做的操作都可以通过本接口完成，权限与网页相同。"
                           "认证：Authorization: Bearer <令牌>（在“我的账户”页或 POST /token "
                           "获取），或网站的登录 Cookie（写请求须带 X-CSRFToken）。"
                           "所有错误的格式见 ErrorOut。",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "API 令牌（g60_…）"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "session",
                           "description": "网站登录的会话 Cookie；写请求还须带 X-CSRFToken 请求头"},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }


@bp.get("/openapi.json")
def openapi() -> Any:
    return ok(document())
