"""The JSON API (/api/v1): the pages' operations for scripts and other systems.

Same rules as the pages, by construction: every permission decision is a call into
`web.permissions`, every write goes through `service.records` (the importer's validation), and a
write is committed only when nothing at all was wrong, so a rejected request leaves the
database as it was. The reference for users is docs/api.md.

Robustness is part of the contract: whatever a client sends (random Unicode, wrong JSON types,
missing or unknown fields, huge numbers, a broken body), the answer is a success or a 4xx with
a message and, where a field is to blame, the field's name; never a 500. That is why the
values are type-checked (`web.api.input`) before `service.records` sees them: the importer's
validator was written for spreadsheet cells and accepts, or crashes on, some values an API
must refuse.

The blueprint is made here and each module adds its routes to it: `auth` (who is asking, and
the token endpoint), `items` (needs and results), `search`, `shortlists`.
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
# pattern); importing them is what registers their routes.
from web.api import auth, imports, items, search, shortlists  # noqa: E402

__all__ = ["auth", "bp", "imports", "items", "search", "shortlists"]
