"""Auction shortlists (成果拍卖会): officers curate lots, ask for a proposal, export the list.

Only officers (and admins, who pass every role check) reach any view here: each carries
`role_required("officer")`, so firms and offices get 403 before anything is read.
Every change validates all its fields first, then writes the change and its audit entry
(who, when, what) in one transaction: a bad form saves nothing and says why beside the field.
Which open needs a lot answers comes from the matching engine's coverage (a result in a
need's top K); the proposal method itself is pure and lives in `matcher.shortlist`.
Exports go through `web.exports`, which guards every text cell against formula injection.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from corpora.models import AuditEntry, Need, Result, Shortlist, ShortlistLot, User, utcnow
from corpora.schema import FieldErrors
from matcher.shortlist import Proposal, propose
from service.audit import record
from web.auth import role_required
from web.database import get_db
from web.exports import Cell, download, to_csv, to_xlsx
from web.matching import service
from web.shortlist_forms import (
    BALANCE_MAX,
    DEFAULT_BALANCE,
    DEFAULT_N,
    INTEGER,
    PROPOSE_MAX,
    form_text,
    parse_id,
    parse_lot,
    parse_meta,
    parse_proposal,
)
from web.templating import plain_number

bp = Blueprint("shortlists", __name__, url_prefix="/shortlists")

IN_CHUNK = 500  # ids per IN (...) query: far below SQLite's bound-parameter limit

EXPORT_COLUMNS = ("序号", "成果名称", "完成单位", "成果类型", "专利号", "成熟度", "产业领域",
                  "转化方式", "意向价格(万元)", "保留价(万元)", "备注", "能解决的开放需求数",
                  "相关需求")
XLSX_WIDTHS = (6, 36, 24, 10, 18, 8, 14, 18, 12, 12, 30, 10, 50)



# --- loading ---------------------------------------------------------------------------------

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


def _me() -> User:
    return get_db().get(User, current_user.id)


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), IN_CHUNK):
        yield ordered[start:start + IN_CHUNK]


def _open_needs(db: Session, ids: Iterable[int]) -> dict[int, Need]:
    needs: dict[int, Need] = {}
    for chunk in _chunks(ids):
        needs.update((n.id, n) for n in db.scalars(
            select(Need).where(Need.id.in_(chunk), Need.status == "open")))
    return needs


def needs_answered(db: Session, result_ids: Iterable[int]) -> dict[int, list[tuple[Need, int]]]:
    """For each result, the open needs it answers (it is in their top K), best rank first."""
    ids = list(result_ids)
    needs_of = service().coverage().needs_of
    needs = _open_needs(db, (need for rid in ids for need in needs_of.get(rid, {})))
    answered = {}
    for rid in ids:
        ranks = needs_of.get(rid, {})
        answered[rid] = sorted(((needs[nid], rank) for nid, rank in ranks.items() if nid in needs),
                               key=lambda pair: (pair[1], pair[0].id))
    return answered


def _lots(shortlist: Shortlist) -> list[ShortlistLot]:
    return sorted(shortlist.lots, key=lambda lot: (lot.position, lot.id))


# --- changes (the caller commits) ------------------------------------------------------------

def _audit(db: Session, shortlist_id: int, action: str, detail: dict[str, Any]) -> None:
    record(db, _me(), action, "shortlist", shortlist_id, detail)


def _touch(shortlist: Shortlist) -> None:
    shortlist.updated_at = utcnow()


def _renumber(lots: Sequence[ShortlistLot]) -> None:
    for position, lot in enumerate(lots, start=1):
        lot.position = position


def addable_result(db: Session, shortlist: Shortlist | None, raw: str) -> Result:
    """The active result `raw` names, not yet on `shortlist`. 404 if there is no such result."""
    result_id = parse_id(raw, "result_id", "成果编号")
    result = db.get(Result, result_id)
    if result is None:
        abort(404, f"成果 #{result_id} 不存在")
    if result.status != "active":
        raise FieldErrors({"result_id": f"成果《{result.title}》已撤回，不能列入拍卖清单"})
    if shortlist is not None and any(lot.result_id == result.id for lot in shortlist.lots):
        raise FieldErrors({"result_id": f"成果《{result.title}》已在本清单中"})
    return result


def _add_lot(shortlist: Shortlist, result: Result) -> ShortlistLot:
    lot = ShortlistLot(result=result, position=len(shortlist.lots) + 1)
    shortlist.lots.append(lot)
    return lot


def _lot_detail(lot: ShortlistLot) -> dict[str, Any]:
    return {"result_id": lot.result_id, "title": lot.result.title, "position": lot.position}


def _commit_or_duplicate(db: Session, *, flush_only: bool = False) -> None:
    """Commit (or only flush); two officers adding the same result at once meet the unique
    constraint here, at whichever comes first."""
    try:
        db.flush() if flush_only else db.commit()
    except IntegrityError:
        db.rollback()
        raise FieldErrors({"result_id": "该成果已在本清单中（可能刚被他人加入）"}) from None


# --- the audit history, in words -------------------------------------------------------------

SHORTLIST_LABELS = {"title": "清单名称", "event_date": "拍卖会日期", "note": "说明"}
LOT_LABELS = {"reserve_price": "保留价（万元）", "note": "备注"}


def _value(value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if isinstance(value, float):
        return plain_number(value)
    text = str(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _changes(changes: Any, labels: Mapping[str, str]) -> str:
    if not isinstance(changes, dict):
        return ""
    parts = []
    for name, pair in changes.items():
        label = labels.get(name, name)
        old, new = (pair + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        parts.append(f"{label}：{_value(old)} → {_value(new)}")
    return "；".join(parts)


def describe(action: str, detail: Mapping[str, Any]) -> str:
    """One audit entry as a sentence an officer reads in the history."""
    title = detail.get("title", "")
    if action == "create":
        return f"创建清单《{title}》"
    if action == "update":
        return f"修改清单信息：{_changes(detail.get('changes'), SHORTLIST_LABELS)}"
    if action == "add_lot":
        via = "（从成果页加入）" if detail.get("via") == "result" else ""
        where = f"成果 #{detail.get('result_id')}，第 {detail.get('position')} 位"
        return f"加入拍品《{title}》（{where}）{via}"
    if action == "remove_lot":
        return f"移除拍品《{title}》（成果 #{detail.get('result_id')}）"
    if action == "move_lot":
        return f"拍品《{title}》从第 {detail.get('from')} 位移到第 {detail.get('to')} 位"
    if action == "update_lot":
        return f"修改拍品《{title}》：{_changes(detail.get('changes'), LOT_LABELS)}"
    if action == "accept_proposal":
        lots = detail.get("lots", [])
        names = "、".join(f"《{lot.get('title', '')}》" for lot in lots)
        return (f"采纳系统建议（N={detail.get('n')}，均衡系数 {detail.get('balance')}），"
                f"加入 {len(lots)} 件拍品：{names}")
    if action == "delete":
        return f"删除清单《{title}》"
    return action


def history(db: Session, shortlist_id: int) -> list[tuple[AuditEntry, str]]:
    """This shortlist's entries, newest first. SQLite may hand a deleted shortlist's id to
    the next one, so entries up to the last deletion under this id belong to another list."""
    mine = (AuditEntry.entity == "shortlist", AuditEntry.entity_id == shortlist_id)
    deleted = db.scalar(select(func.max(AuditEntry.id)).where(*mine,
                                                              AuditEntry.action == "delete"))
    query = select(AuditEntry).options(selectinload(AuditEntry.user)).where(*mine)
    if deleted is not None:
        query = query.where(AuditEntry.id > deleted)
    entries = db.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(500))
    described = []
    for entry in entries:
        try:
            detail = json.loads(entry.detail or "{}")
        except ValueError:
            detail = {}
        described.append((entry, describe(entry.action, detail if isinstance(detail, dict)
                                          else {})))
    return described


# --- pages -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LotRow:
    lot: ShortlistLot
    needs: list[tuple[Need, int]]


def _lot_rows(db: Session, shortlist: Shortlist) -> list[LotRow]:
    lots = _lots(shortlist)
    answered = needs_answered(db, [lot.result_id for lot in lots])
    return [LotRow(lot, answered.get(lot.result_id, [])) for lot in lots]


def _render_detail(shortlist: Shortlist, *, status: int = 200,
                   errors: Mapping[str, str] | None = None,
                   values: Mapping[str, str] | None = None,
                   lot_errors: Mapping[int, Mapping[str, str]] | None = None) -> Any:
    db = get_db()
    rows = _lot_rows(db, shortlist)
    covered = {need.id for row in rows for need, _ in row.needs}
    industries = Counter(row.lot.result.industry or "未注明" for row in rows)
    return render_template(
        "shortlists/detail.html", shortlist=shortlist, rows=rows, covered=len(covered),
        industries=industries.most_common(), history=history(db, shortlist.id),
        errors=errors or {}, values=values or {}, lot_errors=lot_errors or {},
        top_k=service().coverage().top_k,
    ), status


def _result_to_add(raw: str | None) -> Result | None:
    if raw is None or raw == "":
        return None
    try:
        return addable_result(get_db(), None, raw.strip())
    except FieldErrors as bad:
        abort(400, bad.errors["result_id"])


def _render_index(*, status: int = 200, adding: Result | None = None,
                  errors: Mapping[str, str] | None = None,
                  values: Mapping[str, str] | None = None) -> Any:
    db = get_db()
    lot_count = (select(func.count(ShortlistLot.id))
                 .where(ShortlistLot.shortlist_id == Shortlist.id).scalar_subquery())
    rows = db.execute(
        select(Shortlist, lot_count).options(selectinload(Shortlist.created_by))
        .order_by(Shortlist.updated_at.desc(), Shortlist.id.desc()).limit(500)).all()
    containing: set[int] = set()
    if adding is not None:
        containing = set(db.scalars(select(ShortlistLot.shortlist_id)
                                    .where(ShortlistLot.result_id == adding.id)))
    return render_template("shortlists/index.html", rows=rows, adding=adding,
                           containing=containing, errors=errors or {}, values=values or {},
                           ), status


@bp.route("/", methods=["GET", "POST"])
@role_required("officer")
def index() -> Any:
    """The shortlists; POST creates one. `?add=<result id>` (the result page's button) asks
    which shortlist to add that result to, or creates a new one with it."""
    adding = _result_to_add(request.values.get("add"))
    if request.method == "GET":
        return _render_index(adding=adding)
    db = get_db()
    values = {name: form_text(request.form, name) for name in ("title", "event_date", "note")}
    try:
        clean = parse_meta(request.form)
    except FieldErrors as bad:
        return _render_index(status=400, adding=adding, errors=bad.errors, values=values)
    me = _me()
    shortlist = Shortlist(created_by_id=me.id, **clean)
    db.add(shortlist)
    db.flush()
    _audit(db, shortlist.id, "create", {"title": shortlist.title,
                                        "event_date": shortlist.event_date})
    if adding is not None:
        lot = _add_lot(shortlist, adding)
        db.flush()
        _audit(db, shortlist.id, "add_lot", _lot_detail(lot) | {"via": "result"})
    db.commit()
    flash(f"已创建拍卖清单《{shortlist.title}》" + ("，并加入了该成果" if adding else ""))
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))


@bp.route("/add", methods=["POST"])
@role_required("officer")
def add_to() -> Any:
    """The result page's flow: put one result on the shortlist chosen in the form."""
    db = get_db()
    adding = _result_to_add(form_text(request.form, "result_id") or None)
    if adding is None:
        abort(400, "请指定要加入的成果")
    try:
        shortlist_id = parse_id(form_text(request.form, "shortlist_id"), "shortlist_id", "拍卖清单")
    except FieldErrors as bad:
        return _render_index(status=400, adding=adding, errors=bad.errors)
    shortlist = get_shortlist(shortlist_id)
    try:
        result = addable_result(db, shortlist, str(adding.id))
        lot = _add_lot(shortlist, result)
        _commit_or_duplicate(db, flush_only=True)
        _audit(db, shortlist.id, "add_lot", _lot_detail(lot) | {"via": "result"})
        _touch(shortlist)
        _commit_or_duplicate(db)
    except FieldErrors as bad:
        db.rollback()
        return _render_index(status=400, adding=adding,
                             errors={"shortlist_id": bad.errors["result_id"]})
    flash(f"已将《{result.title}》加入《{shortlist.title}》")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))


@bp.route("/<id:shortlist_id>")
@role_required("officer")
def detail(shortlist_id: int) -> Any:
    return _render_detail(get_shortlist(shortlist_id))


@bp.route("/<id:shortlist_id>/edit", methods=["GET", "POST"])
@role_required("officer")
def edit(shortlist_id: int) -> Any:
    shortlist = get_shortlist(shortlist_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {name: form_text(request.form, name) for name in ("title", "event_date", "note")}
        db = get_db()
        try:
            clean = parse_meta(request.form)
        except FieldErrors as bad:
            errors = bad.errors
        else:
            changes = {name: [getattr(shortlist, name), value] for name, value in clean.items()
                       if getattr(shortlist, name) != value}
            if changes:
                for name, (_, value) in changes.items():
                    setattr(shortlist, name, value)
                _audit(db, shortlist.id, "update", {"changes": changes,
                                                    "title": shortlist.title})
                db.commit()
                flash("清单信息已保存")
            else:
                flash("没有修改")
            return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))
    else:
        values = {"title": shortlist.title, "note": shortlist.note or "",
                  "event_date": shortlist.event_date.isoformat() if shortlist.event_date else ""}
    return render_template("shortlists/form.html", shortlist=shortlist, values=values,
                           errors=errors), 400 if errors else 200


@bp.route("/<id:shortlist_id>/delete", methods=["POST"])
@role_required("officer")
def delete(shortlist_id: int) -> Any:
    shortlist = get_shortlist(shortlist_id)
    if request.form.get("confirm") != "yes":
        return _render_detail(shortlist, status=400,
                              errors={"confirm": "请勾选“确认删除”后再删除清单"})
    db = get_db()
    title = shortlist.title
    _audit(db, shortlist.id, "delete", {"title": title,
                                        "lots": [lot.result_id for lot in _lots(shortlist)]})
    db.delete(shortlist)
    db.commit()
    flash(f"已删除拍卖清单《{title}》")
    return redirect(url_for("shortlists.index"))


@bp.route("/<id:shortlist_id>/lots", methods=["POST"])
@role_required("officer")
def add_lot(shortlist_id: int) -> Any:
    shortlist = get_shortlist(shortlist_id)
    db = get_db()
    raw = form_text(request.form, "result_id")
    try:
        result = addable_result(db, shortlist, raw)
        lot = _add_lot(shortlist, result)
        _commit_or_duplicate(db, flush_only=True)
        _audit(db, shortlist.id, "add_lot", _lot_detail(lot))
        _touch(shortlist)
        _commit_or_duplicate(db)
    except FieldErrors as bad:
        db.rollback()
        return _render_detail(shortlist, status=400, errors=bad.errors,
                              values={"result_id": raw})
    flash(f"已加入拍品《{result.title}》")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))


@bp.route("/<id:shortlist_id>/lots/<id:lot_id>/remove", methods=["POST"])
@role_required("officer")
def remove_lot(shortlist_id: int, lot_id: int) -> Any:
    shortlist = get_shortlist(shortlist_id)
    lot = get_lot(shortlist, lot_id)
    db = get_db()
    _audit(db, shortlist.id, "remove_lot", _lot_detail(lot))
    title = lot.result.title
    remaining = [other for other in _lots(shortlist) if other.id != lot.id]
    shortlist.lots.remove(lot)
    _renumber(remaining)
    _touch(shortlist)
    db.commit()
    flash(f"已移除拍品《{title}》")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))


MOVES = {"up": "上移", "down": "下移", "top": "移到最前", "bottom": "移到最后"}


@bp.route("/<id:shortlist_id>/lots/<id:lot_id>/move", methods=["POST"])
@role_required("officer")
def move_lot(shortlist_id: int, lot_id: int) -> Any:
    """Move a lot one place (`direction` up/down), to either end, or to `position`."""
    shortlist = get_shortlist(shortlist_id)
    lot = get_lot(shortlist, lot_id)
    lots = _lots(shortlist)
    here = lots.index(lot)
    direction = form_text(request.form, "direction")
    if direction:
        if direction not in MOVES:
            abort(400, "移动方向须为 up、down、top 或 bottom")
        target = {"up": here - 1, "down": here + 1, "top": 0, "bottom": len(lots) - 1}[direction]
    else:
        raw = form_text(request.form, "position")
        if not INTEGER.fullmatch(raw) or not 1 <= int(raw) <= len(lots):
            message = f"位置须为 1 到 {len(lots)} 之间的整数"
            return _render_detail(shortlist, status=400,
                                  lot_errors={lot.id: {"position": message}})
        target = int(raw) - 1
    target = max(0, min(len(lots) - 1, target))
    if target == here:
        flash("位置未改变")
        return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))
    db = get_db()
    lots.insert(target, lots.pop(here))
    _renumber(lots)
    _audit(db, shortlist.id, "move_lot", {"result_id": lot.result_id, "title": lot.result.title,
                                          "from": here + 1, "to": target + 1})
    _touch(shortlist)
    db.commit()
    flash(f"拍品《{lot.result.title}》已移到第 {target + 1} 位")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id) + f"#lot-{lot.id}")


@bp.route("/<id:shortlist_id>/lots/<id:lot_id>/edit", methods=["GET", "POST"])
@role_required("officer")
def edit_lot(shortlist_id: int, lot_id: int) -> Any:
    """A lot's reserve price (万元) and note."""
    shortlist = get_shortlist(shortlist_id)
    lot = get_lot(shortlist, lot_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {name: form_text(request.form, name) for name in ("reserve_price", "note")}
        try:
            clean = parse_lot(request.form)
        except FieldErrors as bad:
            errors = bad.errors
        else:
            db = get_db()
            changes = {name: [getattr(lot, name), value] for name, value in clean.items()
                       if getattr(lot, name) != value}
            if changes:
                for name, (_, value) in changes.items():
                    setattr(lot, name, value)
                _audit(db, shortlist.id, "update_lot", {
                    "result_id": lot.result_id, "title": lot.result.title, "changes": changes})
                _touch(shortlist)
                db.commit()
                flash(f"拍品《{lot.result.title}》已保存")
            else:
                flash("没有修改")
            return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id)
                            + f"#lot-{lot.id}")
    else:
        price = lot.reserve_price
        values = {"reserve_price": "" if price is None else plain_number(price),
                  "note": lot.note or ""}
    return render_template("shortlists/lot_form.html", shortlist=shortlist, lot=lot,
                           values=values, errors=errors), 400 if errors else 200


# --- proposal --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProposalRow:
    result: Result
    new_needs: list[Need]
    improved_needs: list[Need]
    gain: float
    score: float


def make_proposal(db: Session, shortlist: Shortlist, n: int, balance: float
                  ) -> tuple[Proposal, list[ProposalRow]]:
    """Active results not on the list, over the coverage of still-open needs."""
    coverage = service().coverage().needs_of
    open_ids = set(db.scalars(select(Need.id).where(Need.status == "open")))
    industry_of = {rid: industry for rid, industry in db.execute(
        select(Result.id, Result.industry).where(Result.status == "active"))}
    on_list = {lot.result_id for lot in shortlist.lots}
    for lot in shortlist.lots:
        industry_of.setdefault(lot.result_id, lot.result.industry)
    needs_of = {}
    for rid, ranks in coverage.items():
        if rid in industry_of:
            kept = {need: rank for need, rank in ranks.items() if need in open_ids}
            if kept:
                needs_of[rid] = kept
    proposal = propose(needs_of, industry_of, n, exclude=on_list, balance=balance)
    results: dict[int, Result] = {}
    for chunk in _chunks(lot.result_id for lot in proposal.lots):
        results.update((r.id, r) for r in db.scalars(
            select(Result).options(selectinload(Result.organisation))
            .where(Result.id.in_(chunk))))
    needs = _open_needs(db, (need for lot in proposal.lots
                             for need in (*lot.new_needs, *lot.improved_needs)))
    rows = [ProposalRow(results[lot.result_id],
                        [needs[i] for i in lot.new_needs if i in needs],
                        [needs[i] for i in lot.improved_needs if i in needs],
                        lot.gain, lot.score)
            for lot in proposal.lots if lot.result_id in results]
    return proposal, rows


@bp.route("/<id:shortlist_id>/propose", methods=["GET"])
@role_required("officer")
def propose_lots(shortlist_id: int) -> Any:
    """`?n=&balance=`: the proposal table; without `n`, only the form."""
    shortlist = get_shortlist(shortlist_id)
    values = {"n": str(DEFAULT_N), "balance": f"{DEFAULT_BALANCE:g}"}
    errors: dict[str, str] = {}
    proposal = None
    rows: list[ProposalRow] = []
    n, balance = DEFAULT_N, DEFAULT_BALANCE
    if "n" in request.args:
        values = {name: form_text(request.args, name) for name in ("n", "balance")}
        try:
            n, balance = parse_proposal(request.args)
        except FieldErrors as bad:
            errors = bad.errors
        else:
            proposal, rows = make_proposal(get_db(), shortlist, n, balance)
    return render_template(
        "shortlists/propose.html", shortlist=shortlist, values=values, errors=errors,
        proposal=proposal, rows=rows, n=n, balance=balance,
        top_k=service().coverage().top_k, propose_max=PROPOSE_MAX, balance_max=BALANCE_MAX,
    ), 400 if errors else 200


@bp.route("/<id:shortlist_id>/propose", methods=["POST"])
@role_required("officer")
def accept_proposal(shortlist_id: int) -> Any:
    """Add the proposed lots (hidden `result_id` fields, in order): all of them, or none."""
    shortlist = get_shortlist(shortlist_id)
    db = get_db()
    try:
        n, balance = parse_proposal(request.form)
    except FieldErrors as bad:
        abort(400, "；".join(bad.errors.values()))
    raw_ids = [value.strip() for value in request.form.getlist("result_id")]
    if not raw_ids:
        abort(400, "没有可采纳的建议拍品")
    if len(raw_ids) > PROPOSE_MAX:
        abort(400, f"一次最多采纳 {PROPOSE_MAX} 件拍品")
    if len(set(raw_ids)) != len(raw_ids):
        abort(400, "建议拍品有重复")
    try:
        results = [addable_result(db, shortlist, raw) for raw in raw_ids]
    except FieldErrors as bad:
        abort(400, bad.errors["result_id"] + "，未加入任何拍品；请重新生成建议")
    added = [_add_lot(shortlist, result) for result in results]
    try:
        _commit_or_duplicate(db, flush_only=True)
        _audit(db, shortlist.id, "accept_proposal", {
            "n": n, "balance": balance, "lots": [_lot_detail(lot) for lot in added]})
        _touch(shortlist)
        _commit_or_duplicate(db)
    except FieldErrors as bad:
        abort(400, bad.errors["result_id"])
    flash(f"已采纳建议，加入 {len(added)} 件拍品")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))


# --- export and print ------------------------------------------------------------------------

def export_rows(shortlist: Shortlist, answered: Mapping[int, list[tuple[Need, int]]]
                ) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for lot in _lots(shortlist):
        result = lot.result
        needs = answered.get(result.id, [])
        rows.append([
            lot.position, result.title, result.organisation.name, result.result_type or "",
            result.patent_number or "", result.maturity or "", result.industry or "",
            "、".join(result.transfer_mode_list), result.asking_price, lot.reserve_price,
            lot.note or "", len(needs), "；".join(need.title for need, _ in needs),
        ])
    return rows


def _export_data(shortlist_id: int) -> tuple[Shortlist, list[list[Cell]]]:
    shortlist = get_shortlist(shortlist_id)
    answered = needs_answered(get_db(), [lot.result_id for lot in shortlist.lots])
    return shortlist, export_rows(shortlist, answered)


@bp.route("/<id:shortlist_id>/export.csv")
@role_required("officer")
def export_csv(shortlist_id: int) -> Any:
    _, rows = _export_data(shortlist_id)
    return download(to_csv(EXPORT_COLUMNS, rows), "text/csv; charset=utf-8",
                    f"shortlist-{shortlist_id}.csv")


@bp.route("/<id:shortlist_id>/export.xlsx")
@role_required("officer")
def export_xlsx(shortlist_id: int) -> Any:
    shortlist, rows = _export_data(shortlist_id)
    return download(to_xlsx(EXPORT_COLUMNS, rows, shortlist.title, "拍卖清单", XLSX_WIDTHS),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     f"shortlist-{shortlist_id}.xlsx")


@bp.route("/<id:shortlist_id>/print")
@role_required("officer")
def print_view(shortlist_id: int) -> Any:
    shortlist = get_shortlist(shortlist_id)
    rows = _lot_rows(get_db(), shortlist)
    covered = {need.id for row in rows for need, _ in row.needs}
    return render_template("shortlists/print.html", shortlist=shortlist, rows=rows,
                           covered=len(covered), printed_at=utcnow())
