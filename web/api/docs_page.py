"""The API's docs page: the OpenAPI document (`web.api.openapi`) rendered by our own template.

Rendered on the server from the same document that /api/v1/openapi.json serves, so the page
cannot drift from it; no script and no external host (the site's Content-Security-Policy
allows neither inline code nor a CDN), only the site's own stylesheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import render_template, url_for

from web.api import bp
from web.api.openapi import document


@dataclass(frozen=True)
class Row:
    name: str
    where: str  # path, query, body, answer
    kind: str  # the schema in a few words
    required: bool
    text: str


@dataclass(frozen=True)
class Shown:
    method: str
    path: str
    anchor: str
    tag: str
    summary: str
    description: str
    public: bool
    parameters: list[Row]
    body: str | None
    body_media: str
    body_rows: list[Row]
    status: str
    answer: str
    answer_rows: list[Row]
    errors: list[tuple[str, str]]


def kind_of(schema: dict[str, Any]) -> str:
    """A JSON Schema in a few words: "文本 ≤200", "整数 1–100", "列表（文本）", "a / b"."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        kinds = [kind_of(part) for part in schema["anyOf"]]
        return " 或 ".join(dict.fromkeys(kinds))
    if "enum" in schema:
        return " / ".join(str(value) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        text = f"列表（{kind_of(schema.get('items', {}))}）"
        return text + (f" ≤{schema['maxItems']} 项" if "maxItems" in schema else "")
    if kind == "string":
        shown = {"date": "日期 YYYY-MM-DD", "date-time": "时间 ISO 8601",
                 "binary": "文件"}.get(
            schema.get("format", ""), "文本")
        if "maxLength" in schema:
            shown += f" ≤{schema['maxLength']}"
        return shown
    if kind in ("integer", "number"):
        shown = "整数" if kind == "integer" else "数字"
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            shown += f" {_number(low)}–{_number(high)}"
        elif low is not None:
            shown += f" ≥{_number(low)}"
        return shown
    if kind == "object" and "additionalProperties" in schema:
        return f"对象（值：{kind_of(schema['additionalProperties'])}）"
    return {"boolean": "布尔值", "null": "null", "object": "对象"}.get(str(kind), str(kind))


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _rows(schema: dict[str, Any], where: str) -> list[Row]:
    required = set(schema.get("required", ()))
    rows = []
    for name, field in schema.get("properties", {}).items():
        text = "；".join(part for part in (field.get("title"), field.get("description")) if part)
        rows.append(Row(name, where, kind_of(field), name in required, text))
    return rows


def _component(ref: dict[str, Any], schemas: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = ref["$ref"].rsplit("/", 1)[-1]
    return name, schemas[name]


def operations_shown(described: dict[str, Any]) -> list[Shown]:
    schemas = described["components"]["schemas"]
    shown = []
    for path, item in described["paths"].items():
        for method, op in item.items():
            parameters = [Row(p["name"], p["in"], kind_of(p["schema"]), p["required"],
                              p.get("description", "")) for p in op["parameters"]]
            body, body_rows, media = None, [], ""
            if "requestBody" in op:
                media, content = next(iter(op["requestBody"]["content"].items()))
                body, schema = _component(content["schema"], schemas)
                body_rows = _rows(schema, "body")
            status, answer = next(iter(op["responses"].items()))
            answer_name, answer_schema = _component(
                answer["content"]["application/json"]["schema"], schemas)
            errors = [(code, response["description"])
                      for code, response in op["responses"].items() if code != status]
            shown.append(Shown(
                method.upper(), path, op["operationId"], op["tags"][0], op["summary"],
                op["description"], op.get("security") == [], parameters, body, media, body_rows,
                status, answer_name, _rows(answer_schema, "answer"), errors))
    return shown


@bp.get("/docs")
def docs() -> Any:
    described = document()
    return render_template("api/docs.html", operations=operations_shown(described),
                           info=described["info"], spec_url=url_for("api.openapi"),
                           base=url_for("api.openapi").removesuffix("/openapi.json"))
