"""Error pages in Chinese, and JSON errors under /api/."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

MESSAGES = {
    400: "请求有误",
    401: "请先登录",
    403: "无权执行此操作",
    404: "页面或记录不存在",
    405: "不支持此请求方法",
    413: "上传的文件或提交的内容过大",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误",
}


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str, fields: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"error": {"status": status, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return jsonify(body), status


def _kept_headers(error: HTTPException) -> list[tuple[str, str]]:
    """The headers an HTTP error is defined with (a 405's `Allow`, a 429's `Retry-After`),
    without Werkzeug's own Content-Type: the body is ours."""
    return [(name, value) for name, value in error.get_headers()
            if name.lower() != "content-type"]


def _handle(error: HTTPException) -> Any:
    status = error.code or 500
    message = MESSAGES.get(status, error.name)
    if isinstance(error, CSRFError):
        message = "表单已过期或缺少安全令牌（CSRF），请刷新页面后重试"
    elif error.description and status in (400, 403, 404) and \
            not error.description.startswith(("The ", "You ", "A ")):
        message = error.description  # our own Chinese message from abort(..., "...")
    if wants_json():
        body, status = json_error(status, message)
        return body, status, _kept_headers(error)
    return (render_template("error.html", status=status, message=message), status,
            _kept_headers(error))


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _handle)
