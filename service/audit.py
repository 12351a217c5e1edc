"""The audit log: who changed what, written in the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from corpora.models import AuditEntry, User


def record(session: Session, user: User | Any | None, action: str, entity: str,
           entity_id: int | None, detail: dict[str, Any] | None = None) -> AuditEntry:
    user_id = getattr(user, "id", None)
    entry = AuditEntry(
        user_id=user_id, action=action, entity=entity, entity_id=entity_id,
        detail=json.dumps(detail or {}, ensure_ascii=False, default=str),
    )
    session.add(entry)
    return entry
