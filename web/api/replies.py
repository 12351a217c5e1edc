"""What every API endpoint answers with: the JSON success, and the commit before it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response
from sqlalchemy.exc import IntegrityError

from web.api.input import fail
from web.database import get_db


def ok(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON success with Chinese left readable. Text from the database is clean Unicode,
    but should a lone surrogate ever be there, backslashreplace writes it as the JSON escape
    `\\udxxx` rather than failing to encode."""
    text = json.dumps(body, ensure_ascii=False)
    return Response(text.encode("utf-8", "backslashreplace"), status=status,
                    headers=dict(headers or {}), mimetype="application/json")


def commit() -> None:
    """Commit, turning a lost race on a unique constraint into a 409, not a 500."""
    db = get_db()
    try:
        db.commit()
    except IntegrityError:
        fail(409, "与其他同时进行的修改冲突，请重试")
