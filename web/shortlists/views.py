"""The shortlist pages: the list, one shortlist, and its edits (meta, lots, their order)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from corpora.models import Result, Shortlist, ShortlistLot
from corpora.schema import FieldErrors
from web.auth import role_required
from web.confirm import confirm_page, confirmed
from web.database import get_db
from web.matching import service
from web.shortlists import bp
from web.shortlists.coverage import LotRow, lot_rows
from web.shortlists.forms import INTEGER, form_text, parse_id, parse_lot, parse_meta
from web.shortlists.history import history
from web.shortlists.lots import (
    addable_result,
    append_lot,
    audit,
    commit_or_duplicate,
    get_lot,
    get_shortlist,
    lot_detail,
    me,
    ordered_lots,
    renumber,
    touch,
)
from web.shortlists.outcomes import tally
from web.shortlists.prices import check_lot
from web.templating import plain_number


def render_detail(shortlist: Shortlist, *, status: int = 200,
                   errors: Mapping[str, str] | None = None,
                   values: Mapping[str, str] | None = None,
                   lot_errors: Mapping[int, Mapping[str, str]] | None = None,
                   lot_values: Mapping[int, Mapping[str, str]] | None = None) -> Any:
    db = get_db()
    rows = lot_rows(db, shortlist)
    checks = {row.lot.id: check_lot(row.lot.reserve_price, row.lot.result.asking_price,
                                    [answer.need for answer in row.needs]) for row in rows}
    covered = {answer.need.id for row in rows for answer in row.needs}
    industries = Counter(row.lot.result.industry or "未注明" for row in rows)
    return render_template(
        "shortlists/detail.html", shortlist=shortlist, rows=rows, covered=len(covered),
        industries=industries.most_common(), history=history(db, shortlist.id),
        errors=errors or {}, values=values or {}, lot_errors=lot_errors or {},
        lot_values=_outcome_values(rows, lot_values or {}), checks=checks,
        tally=tally(row.lot for row in rows),
        top_k=service().coverage().top_k, min_label=service().coverage().min_label,
    ), status


def _outcome_values(rows: list[LotRow], typed: Mapping[int, Mapping[str, str]]
                    ) -> dict[int, Mapping[str, str]]:
    """Each lot's outcome form: what was typed into it (a refused form), else what it says."""
    values: dict[int, Mapping[str, str]] = {}
    for row in rows:
        lot = row.lot
        price = "" if lot.sold_price is None else plain_number(lot.sold_price)
        values[lot.id] = typed.get(lot.id, {"sold_price": price, "buyer": lot.buyer or ""})
    return values


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
    creator = me()
    shortlist = Shortlist(created_by_id=creator.id, **clean)
    db.add(shortlist)
    db.flush()
    audit(db, shortlist.id, "create", {"title": shortlist.title,
                                       "event_date": shortlist.event_date})
    if adding is not None:
        lot = append_lot(shortlist, adding)
        db.flush()
        audit(db, shortlist.id, "add_lot", lot_detail(lot) | {"via": "result"})
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
        lot = append_lot(shortlist, result)
        commit_or_duplicate(db, flush_only=True)
        audit(db, shortlist.id, "add_lot", lot_detail(lot) | {"via": "result"})
        touch(shortlist)
        commit_or_duplicate(db)
    except FieldErrors as bad:
        db.rollback()
        return _render_index(status=400, adding=adding,
                             errors={"shortlist_id": bad.errors["result_id"]})
    flash(f"已将《{result.title}》加入《{shortlist.title}》")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))


@bp.route("/<id:shortlist_id>")
@role_required("officer")
def detail(shortlist_id: int) -> Any:
    return render_detail(get_shortlist(shortlist_id))


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
                audit(db, shortlist.id, "update", {"changes": changes,
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
        return render_detail(shortlist, status=400,
                              errors={"confirm": "请勾选“确认删除”后再删除清单"})
    db = get_db()
    title = shortlist.title
    audit(db, shortlist.id, "delete", {"title": title,
                                       "lots": [lot.result_id for lot in ordered_lots(shortlist)]})
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
        lot = append_lot(shortlist, result)
        commit_or_duplicate(db, flush_only=True)
        audit(db, shortlist.id, "add_lot", lot_detail(lot))
        touch(shortlist)
        commit_or_duplicate(db)
    except FieldErrors as bad:
        db.rollback()
        return render_detail(shortlist, status=400, errors=bad.errors,
                              values={"result_id": raw})
    flash(f"已加入拍品《{result.title}》")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))


@bp.route("/<id:shortlist_id>/lots/<id:lot_id>/remove", methods=["POST"])
@role_required("officer")
def remove_lot(shortlist_id: int, lot_id: int) -> Any:
    shortlist = get_shortlist(shortlist_id)
    lot = get_lot(shortlist, lot_id)
    if not confirmed():
        return confirm_page(
            "移除拍品", f"从《{shortlist.title}》移除拍品《{lot.result.title}》？"
            "其保留价、备注和拍卖结果一并删除；之后可以重新加入，但需重新填写。", {},
            url_for("shortlists.detail", shortlist_id=shortlist.id), button="确认移除")
    db = get_db()
    audit(db, shortlist.id, "remove_lot", lot_detail(lot))
    title = lot.result.title
    remaining = [other for other in ordered_lots(shortlist) if other.id != lot.id]
    shortlist.lots.remove(lot)
    renumber(remaining)
    touch(shortlist)
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
    lots = ordered_lots(shortlist)
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
            return render_detail(shortlist, status=400,
                                  lot_errors={lot.id: {"position": message}})
        target = int(raw) - 1
    target = max(0, min(len(lots) - 1, target))
    if target == here:
        flash("位置未改变")
        return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))
    db = get_db()
    lots.insert(target, lots.pop(here))
    renumber(lots)
    audit(db, shortlist.id, "move_lot", {"result_id": lot.result_id, "title": lot.result.title,
                                         "from": here + 1, "to": target + 1})
    touch(shortlist)
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
                audit(db, shortlist.id, "update_lot", {
                    "result_id": lot.result_id, "title": lot.result.title, "changes": changes})
                touch(shortlist)
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
