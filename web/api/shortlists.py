"""The API's view of the auction shortlists, for officers and admins: reading them, and
recording each lot's auction outcome as the shortlist page does (the same checks,
`web.shortlists.forms.parse_outcome`, and the same write and audit entry,
`web.shortlists.outcomes.set_outcome`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from corpora.models import Result, Shortlist, ShortlistLot, User
from corpora.schema import MONEY_MAX, FieldErrors
from web import permissions
from web.api import answers
from web.api.answers import Answer
from web.api.auth import actor, viewer
from web.api.contract import checked_body, operation, read_query
from web.api.input import fail, path_id, type_name
from web.api.json import page_json, shortlist_json, when
from web.api.params import PageQuery, Strict, problem
from web.api.replies import commit, ok
from web.database import get_db
from web.shortlists.forms import BUYER_MAX, CLEAR, OUTCOMES, parse_outcome
from web.shortlists.outcomes import set_outcome
from web.templating import plain_number


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


def _outcome_value(value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or value not in OUTCOMES):
        raise problem("须为 \"sold\"（成交）、\"unsold\"（流拍）或 null（清除）")
    return value


def _price_value(value: Any) -> Any:
    # Its own check, not float(): true is not 1, and a 400-digit integer does not fit a float.
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise problem(f"类型错误：应为数字（单位：万元），实际为{type_name(value)}")
    if value is not None and value > MONEY_MAX:
        raise problem(f"成交价不超过 {MONEY_MAX:.0f} 万元")
    return value


def _text_value(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise problem(f"类型错误：应为文本，实际为{type_name(value)}")
    return value


class OutcomeBody(Strict):
    """一件拍品的拍卖结果：成交（须给成交价和买受人）、流拍，或 null 清除已记录的结果。"""

    outcome: Annotated[Literal["sold", "unsold"] | None, BeforeValidator(_outcome_value)] = \
        Field(title="拍卖结果", description="sold 成交、unsold 流拍、null 清除")
    sold_price: Annotated[float | None, BeforeValidator(_price_value)] = Field(
        None, title="成交价", description="万元，大于 0；成交时必填，流拍或清除时不计")
    buyer: Annotated[str | None, BeforeValidator(_text_value)] = Field(
        None, title="买受人", description=f"不超过 {BUYER_MAX} 字；成交时必填，流拍或清除时不计")


class OutcomeOut(Answer):
    """记录后的拍卖结果。"""

    shortlist_id: int
    result_id: int
    outcome: Literal["sold", "unsold"] | None
    sold_price: float | None = Field(description="万元")
    buyer: str | None
    outcome_at: datetime | None
    outcome_by: str | None = Field(description="记录人的用户名")


@operation("PUT", "/shortlists/{shortlist_id}/lots/{result_id}/outcome", tag="拍卖清单",
           summary="记录一件拍品的拍卖结果", answer=OutcomeOut, body=OutcomeBody,
           errors=(403, 404, 409, 413),
           description=CURATORS + "拍品以其成果编号指明。与清单页相同：成交须给大于 0 的"
           "成交价（万元）和买受人；流拍或清除时成交价和买受人不保存。每次修改记入清单的修改记录；"
           "与已记录的相同则什么也不写。任何一项有误，都不保存。")
def put_lot_outcome(shortlist_id: str, result_id: str) -> Any:
    _curator()
    wanted = path_id(shortlist_id, "shortlist_id")
    result = path_id(result_id, "result_id")
    body = checked_body("拍卖结果有误，未保存")
    db = get_db()
    lot = db.scalar(select(ShortlistLot).where(ShortlistLot.shortlist_id == wanted,
                                               ShortlistLot.result_id == result))
    if lot is None:
        if db.get(Shortlist, wanted) is None:
            fail(404, "拍卖清单不存在")
        fail(404, f"成果 #{result} 不在本清单中")
    price = body.get("sold_price")
    form = {"outcome": body.get("outcome") or CLEAR,
            "sold_price": "" if price is None else plain_number(float(price)),
            "buyer": body.get("buyer") or ""}
    try:
        clean = parse_outcome(form)
    except FieldErrors as bad:
        fail(400, "拍卖结果有误，未保存", bad.errors)
    set_outcome(db, actor(), lot, clean)
    commit()
    recorder = db.get(User, lot.outcome_by_id) if lot.outcome_by_id is not None else None
    return ok({"shortlist_id": lot.shortlist_id, "result_id": lot.result_id,
               "outcome": lot.outcome, "sold_price": lot.sold_price, "buyer": lot.buyer,
               "outcome_at": when(lot.outcome_at),
               "outcome_by": recorder.username if recorder else None})
