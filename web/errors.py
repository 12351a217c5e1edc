"""Error pages in Chinese, and JSON errors under /api/."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from matcher.vector_index import IndexUnavailableError

MESSAGES = {
    400: "请求有误",
    401: "请先登录",
    403: "无权执行此操作",
    404: "页面或记录不存在",
    405: "不支持此请求方法",
    413: "上传的文件或提交的内容过大",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误",
    503: "服务暂时不可用，请稍后再试",
}
# A Milvus that is down: what was saved is in the database, and the indexes catch up on
# their own once it is back (the next request's sync).
INDEX_UNAVAILABLE = ("匹配索引服务（Milvus）暂时无法连接，请稍后再试。"
                     "已提交的内容均已保存，服务恢复后检索结果会自动更新。")
RETRY_AFTER_S = 30


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


def _index_unavailable(error: IndexUnavailableError) -> Any:
    current_app.logger.error("index backend unavailable: %s", error)
    headers = [("Retry-After", str(RETRY_AFTER_S))]
    if wants_json():
        body, status = json_error(503, INDEX_UNAVAILABLE)
        return body, status, headers
    return (render_template("error.html", status=503, message=INDEX_UNAVAILABLE), 503,
            headers)


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _handle)
    app.register_error_handler(IndexUnavailableError, _index_unavailable)
