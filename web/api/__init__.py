"""The JSON API (/api/v1): the pages' operations for scripts and other systems.

Same rules as the pages, by construction: every permission decision is a call into
`web.permissions`, every write goes through `service.records` (the importer's validation), and a
write is committed only when nothing at all was wrong, so a rejected request leaves the
database as it was. The reference for users is docs/api.md.

Robustness is part of the contract: whatever a client sends (random Unicode, wrong JSON types,
missing or unknown fields, huge numbers, a broken body), the answer is a success or a 4xx with
a message and, where a field is to blame, the field's name; never a 500. That is why the
values are type-checked (`web.api.contract`, with `web.api.params`' models) before
`service.records` sees them: the importer's validator was written for spreadsheet cells and
accepts, or crashes on, some values an API must refuse.

The blueprint is made here and each module adds its routes to it: `auth` (who is asking, and
the token endpoint), `items` (needs and results), `search`, `shortlists`; each through
`web.api.contract.operation`, which records what the route accepts and answers (the models of
`web.api.params` and `web.api.answers`) for `openapi` (/api/v1/openapi.json) and
`docs_page` (/api/v1/docs); `imports` registers its own route, described in `described`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from web.api.input import ApiError
from web.errors import json_error
from web.security import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# CSRF is checked in `web.api.auth`, and only for cookie-authenticated writes.
csrf.exempt(bp)


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Any:
    if "db" in g:
        g.db.rollback()
    body, status = json_error(error.status, error.message, error.fields or None)
    if status == 401:
        body.headers["WWW-Authenticate"] = 'Bearer realm="g60-api"'
    return body, status


@bp.after_request
def _no_store(response: Response) -> Response:
    """Answers carry contacts and private marks: no shared cache may keep them."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# The route modules need `bp` above, so they are imported after it (the blueprint-package
# pattern); importing them is what registers their routes. `openapi` assembles its document
# from the registered operations on first use, so the order here does not matter.
from web.api import (  # noqa: E402
    auth,
    connections,
    dashboard,
    described,
    docs_page,
    imports,
    items,
    openapi,
    search,
    shortlists,
)

__all__ = ["auth", "bp", "connections", "dashboard", "described", "docs_page", "imports",
           "items", "openapi", "search", "shortlists"]
