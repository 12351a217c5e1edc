"""CSRF protection on every form, and security headers on every response: `no-store` on
every one that is not a static file."""

from __future__ import annotations

from flask import Flask, Response, abort, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import IntegerConverter

from corpora.models import ID_MAX

csrf = CSRFProtect()

# No inline script or style anywhere: templates load /static files only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


# The headers of every answer of the site. Exported so that answers made outside Flask (the
# server's own error pages) carry the same ones. No page may be kept by a browser or a proxy:
# they show API tokens, contacts and private marks, and one signed out is still in the cache.
# The request line and headers together, as nginx's default large_client_header_buffers
# (4 x 8k): per-connection memory stays bounded with a thousand connections open. Enforced by
# the server (web.serve), described by the API's OpenAPI document (431). Kept here, not in
# web.serve, so that importing the app never imports the server module: `python -m web.serve`
# would then run a second copy of it.
MAX_HEADER_BYTES = 32 * 1024

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# Static files are the same for everyone and keep Flask's caching (revalidated by ETag).
CACHEABLE_ENDPOINTS = frozenset({"static"})


def _headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        if name != "Cache-Control":
            response.headers.setdefault(name, value)
        elif request.endpoint not in CACHEABLE_ENDPOINTS:
            # Set, not defaulted: a view's own weaker caching must not let a page be stored.
            response.headers[name] = value
    return response


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id, 1 to ID_MAX. A larger number is simply not a route
    (404), instead of an integer the database cannot hold (a 500 on PostgreSQL)."""

    regex = r"[1-9][0-9]{0,9}"

    def __init__(self, map, *args, **kwargs):  # noqa: A002, ANN001, ANN002, ANN003
        super().__init__(map, min=1, max=ID_MAX)


def _refuse_nul() -> None:
    """No field of ours may hold a NUL, and PostgreSQL refuses one in any text: a 400 here
    instead of a database error later. The API checks its own input and names the field."""
    if request.path.startswith("/api/"):
        return
    for values in (request.args, request.form):
        for key, value in values.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400, "请求中含有非法字符（NUL）")


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    app.url_map.converters["id"] = IdConverter
    app.before_request(_refuse_nul)
    app.after_request(_headers)
