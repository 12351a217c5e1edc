"""Loading a shortlist and its lots, and the changes the views make to them.

The helpers that change something leave the commit to the caller, so that a view writes a
change and its audit entry in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import abort
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from corpora.models import Result, Shortlist, ShortlistLot, User, utcnow
from corpora.schema import FieldErrors
from corpora.sides import MATCHABLE_STATUS
from service.audit import record
from web.database import get_db
from web.shortlists.forms import parse_id


def get_shortlist(shortlist_id: int) -> Shortlist:
    shortlist = get_db().get(Shortlist, shortlist_id, options=[
        selectinload(Shortlist.lots).selectinload(ShortlistLot.result)
        .selectinload(Result.organisation)])
    if shortlist is None:
        abort(404, "拍卖清单不存在")
    return shortlist


def get_lot(shortlist: Shortlist, lot_id: int) -> ShortlistLot:
    lot = get_db().get(ShortlistLot, lot_id)
    if lot is None or lot.shortlist_id != shortlist.id:
        abort(404, "该拍品不在本清单中")
    return lot


def me() -> User:
    """The signed-in officer as a database row, for the audit log and `created_by`."""
    return get_db().get(User, current_user.id)


def ordered_lots(shortlist: Shortlist) -> list[ShortlistLot]:
    return sorted(shortlist.lots, key=lambda lot: (lot.position, lot.id))


# --- changes (the caller commits) ------------------------------------------------------------

def audit(db: Session, shortlist_id: int, action: str, detail: dict[str, Any]) -> None:
    record(db, me(), action, "shortlist", shortlist_id, detail)


def touch(shortlist: Shortlist) -> None:
    shortlist.updated_at = utcnow()


def renumber(lots: Sequence[ShortlistLot]) -> None:
    for position, lot in enumerate(lots, start=1):
        lot.position = position


def addable_result(db: Session, shortlist: Shortlist | None, raw: str) -> Result:
    """The active result `raw` names, not yet on `shortlist`. 404 if there is no such result."""
    result_id = parse_id(raw, "result_id", "成果编号")
    result = db.get(Result, result_id)
    if result is None:
        abort(404, f"成果 #{result_id} 不存在")
    if result.status != MATCHABLE_STATUS["result"]:
        raise FieldErrors({"result_id": f"成果《{result.title}》已撤回，不能列入拍卖清单"})
    if shortlist is not None and any(lot.result_id == result.id for lot in shortlist.lots):
        raise FieldErrors({"result_id": f"成果《{result.title}》已在本清单中"})
    return result


def append_lot(shortlist: Shortlist, result: Result) -> ShortlistLot:
    lot = ShortlistLot(result=result, position=len(shortlist.lots) + 1)
    shortlist.lots.append(lot)
    return lot


def lot_detail(lot: ShortlistLot) -> dict[str, Any]:
    return {"result_id": lot.result_id, "title": lot.result.title, "position": lot.position}


def commit_or_duplicate(db: Session, *, flush_only: bool = False) -> None:
    """Commit (or only flush); two officers adding the same result at once meet the unique
    constraint here, at whichever comes first."""
    try:
        db.flush() if flush_only else db.commit()
    except IntegrityError:
        db.rollback()
        raise FieldErrors({"result_id": "该成果已在本清单中（可能刚被他人加入）"}) from None
