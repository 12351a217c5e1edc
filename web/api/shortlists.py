"""The API's read-only view of the auction shortlists, for officers and admins."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from corpora.models import Result, Shortlist, ShortlistLot
from web import permissions
from web.api import answers
from web.api.auth import viewer
from web.api.contract import operation, read_query
from web.api.input import fail, path_id
from web.api.json import page_json, shortlist_json
from web.api.params import PageQuery
from web.api.replies import ok
from web.database import get_db


def _shortlists_query() -> Any:
    return select(Shortlist).options(
        selectinload(Shortlist.lots).selectinload(ShortlistLot.result)
        .selectinload(Result.organisation))


def _curator() -> None:
    if not permissions.can_curate(viewer()):
        fail(403, "只有科委/G60 官员和管理员可以查看拍卖清单")


CURATORS = "科委/G60 官员和管理员。"


@operation("GET", "/shortlists", tag="拍卖清单", summary="拍卖清单列表",
           answer=answers.ShortlistPage, query=PageQuery, errors=(403,), description=CURATORS)
def list_shortlists() -> Any:
    _curator()
    args = read_query()
    page, per_page = args.page, args.per_page
    db = get_db()
    total = db.scalar(select(func.count()).select_from(Shortlist)) or 0
    rows = db.scalars(_shortlists_query()
                      .order_by(Shortlist.updated_at.desc(), Shortlist.id.desc())
                      .offset((page - 1) * per_page).limit(per_page))
    return ok(page_json([shortlist_json(s) for s in rows], total, page, per_page))


@operation("GET", "/shortlists/{shortlist_id}", tag="拍卖清单", summary="读取一份拍卖清单",
           answer=answers.ShortlistOut, errors=(403, 404), description=CURATORS)
def get_shortlist(shortlist_id: str) -> Any:
    _curator()
    read_query()
    wanted = path_id(shortlist_id, "shortlist_id")
    shortlist = get_db().scalar(_shortlists_query().where(Shortlist.id == wanted))
    if shortlist is None:
        fail(404, "拍卖清单不存在")
    return ok(shortlist_json(shortlist))
