"""对接 pages: start a request on a match, the request's own page (answer, stages, contacts
once accepted), and the inbox 对接与消息 with the user's requests and notifications.

The need and result pages show the 发起对接 button through `connection_offer`, a template
global the match template asks (search/_match.html includes connections/_start.html): the
pages' own views pass nothing for it. The rules are `service.connections`'.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from corpora.connections import (
    DEAL_FORMS,
    DECLINE_REASONS,
    STAGE_LABELS,
    STATUS_LABELS,
    WANTS,
    ConnectionEvent,
    ConnectionRequest,
    Notification,
)
from corpora.models import Need, Result, as_id
from corpora.schema import FieldErrors
from service import connections as conn
from web.database import get_db
from web.item_pages import signed_in_user

bp = Blueprint("connections", __name__)

INBOX_MAX = 200  # requests listed on one inbox page
NOTIFICATIONS_SHOWN = 50
DIRECTIONS = {"sent": "我发起的", "received": "我收到的"}


def _load(request_id: int) -> ConnectionRequest:
    found = get_db().scalar(
        select(ConnectionRequest).where(ConnectionRequest.id == request_id).options(
            selectinload(ConnectionRequest.events).selectinload(ConnectionEvent.user),
            selectinload(ConnectionRequest.need).selectinload(Need.organisation),
            selectinload(ConnectionRequest.result).selectinload(Result.organisation)))
    if found is None:
        abort(404, "对接请求不存在")
    if not conn.can_read(current_user, found):
        abort(403, "只有对接双方、科委/G60 官员和管理员可以查看此对接请求")
    return found


def _pair(source: Any) -> tuple[Need, Result]:
    """The need and result named by `need_id` and `result_id` (a 400 naming a bad one)."""
    ids = {name: as_id(source.get(name, "")) for name in ("need_id", "result_id")}
    bad = [name for name, value in ids.items() if value is None]
    if bad:
        abort(400, "；".join(f"{name}：须为编号（整数）" for name in bad))
    db = get_db()
    need, result = db.get(Need, ids["need_id"]), db.get(Result, ids["result_id"])
    if need is None or result is None:
        abort(404, "需求不存在" if need is None else "成果不存在")
    return need, result


def _commit() -> None:
    db = get_db()
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        abort(409)


@bp.route("/connections/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    source = request.form if request.method == "POST" else request.args
    need, result = _pair(source)
    side = conn.start_side(current_user, need, result)
    if side is None:
        abort(403, "只有发布该需求的企业或该成果所属单位可以发起对接")
    db = get_db()
    existing = conn.open_request(db, need.id, result.id, side)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"wants": [], "contact": need.contact if side == "firm" else ""}
    if request.method == "POST":
        values = {"message": request.form.get("message", ""),
                  "wants": request.form.getlist("wants"),
                  "contact": request.form.get("contact", "")}
        try:
            made = conn.start(db, signed_in_user(), need, result, values)
            _commit()
        except FieldErrors as bad:
            db.rollback()
            errors = bad.errors
        except conn.DuplicateRequest as dup:
            db.rollback()
            flash("已有进行中的对接请求，未重复发起")
            if dup.existing is None:
                abort(409)
            return redirect(url_for("connections.detail", request_id=dup.existing.id))
        else:
            flash("对接请求已发出，对方答复后会在“对接与消息”中通知您")
            return redirect(url_for("connections.detail", request_id=made.id))
    return render_template("connections/new.html", need=need, result=result, side=side,
                           existing=existing, values=values, errors=errors,
                           WANTS=WANTS), 400 if errors else 200


def _page(found: ConnectionRequest, errors: dict[str, str] | None = None,
          form: str | None = None) -> Any:
    party = conn.party_of(current_user, found)
    page = render_template(
        "connections/detail.html", req=found, party=party, errors=errors or {}, form=form,
        values=request.form if errors else {},
        contacts=conn.can_see_contacts(current_user, found),
        DECLINE_REASONS=DECLINE_REASONS, DEAL_FORMS=DEAL_FORMS, STAGE_LABELS=STAGE_LABELS)
    return page, 400 if errors else 200


@bp.route("/connections/<id:request_id>")
@login_required
def detail(request_id: int) -> Any:
    return _page(_load(request_id))


def _act(request_id: int, form: str, move: Any, done: str) -> Any:
    found = _load(request_id)
    db = get_db()
    try:
        move(db, signed_in_user(), found)
        _commit()
    except PermissionError as denied:
        db.rollback()
        abort(403, str(denied))
    except FieldErrors as bad:
        db.rollback()
        return _page(_load(request_id), bad.errors, form)
    flash(done)
    return redirect(url_for("connections.detail", request_id=found.id))


def _fields(*names: str) -> dict[str, str]:
    return {name: request.form[name] for name in names if name in request.form}


@bp.route("/connections/<id:request_id>/accept", methods=["POST"])
@login_required
def accept(request_id: int) -> Any:
    return _act(request_id, "answer",
                lambda db, user, found: conn.accept(db, user, found, _fields("contact")),
                "已接受对接请求，双方可查看彼此联系方式")


@bp.route("/connections/<id:request_id>/decline", methods=["POST"])
@login_required
def decline(request_id: int) -> Any:
    return _act(request_id, "answer",
                lambda db, user, found: conn.decline(
                    db, user, found, {"reason": request.form.get("reason", ""),
                                      **_fields("note")}),
                "已婉拒，原因已告知对方")


@bp.route("/connections/<id:request_id>/withdraw", methods=["POST"])
@login_required
def withdraw(request_id: int) -> Any:
    return _act(request_id, "withdraw", conn.withdraw, "对接请求已撤回")


@bp.route("/connections/<id:request_id>/stage", methods=["POST"])
@login_required
def stage(request_id: int) -> Any:
    return _act(request_id, "stage",
                lambda db, user, found: conn.set_stage(
                    db, user, found, {"stage": request.form.get("stage", ""),
                                      **_fields("deal_form", "deal_amount", "signed_on",
                                                "note")}),
                "进展已更新")


def inbox_filter(args: Any) -> conn.InboxFilter:
    """The inbox's filters from the query string; an unknown value is a 400 naming it."""
    allowed = {"status": STATUS_LABELS, "stage": STAGE_LABELS, "direction": DIRECTIONS}
    chosen: dict[str, str | None] = {}
    for name, labels in allowed.items():
        value = args.get(name, "").strip()
        if value and value not in labels:
            abort(400, f"{name}：须为 {'、'.join(labels)} 之一")
        chosen[name] = value or None
    return conn.InboxFilter(**chosen)


@bp.route("/inbox")
@login_required
def inbox() -> Any:
    wanted = inbox_filter(request.args)
    db = get_db()
    rows = list(db.scalars(
        conn.requests_query(current_user, wanted)
        .options(selectinload(ConnectionRequest.need).selectinload(Need.organisation),
                 selectinload(ConnectionRequest.result).selectinload(Result.organisation))
        .order_by(ConnectionRequest.updated_at.desc(), ConnectionRequest.id.desc())
        .limit(INBOX_MAX)))
    notes = list(db.scalars(
        select(Notification).where(Notification.user_id == current_user.id)
        .order_by(Notification.read_at.is_not(None), Notification.id.desc())
        .limit(NOTIFICATIONS_SHOWN)))
    return render_template(
        "connections/inbox.html", rows=rows, notes=notes, wanted=wanted,
        counts=conn.counts_by_status(db, current_user, wanted), STATUS_LABELS=STATUS_LABELS,
        STAGE_LABELS=STAGE_LABELS, DIRECTIONS=DIRECTIONS,
        all_requests=current_user.role in conn.READERS,
        unread=conn.unread_count(db, current_user.id))


@bp.route("/inbox/read", methods=["POST"])
@login_required
def read() -> Any:
    """Mark one notification read (`notification_id`), or all of them; then go where it
    points, if it points at a request."""
    raw = request.form.get("notification_id", "")
    wanted = as_id(raw) if raw else None
    if raw and wanted is None:
        abort(400, "notification_id：须为编号（整数）")
    db = get_db()
    try:
        conn.mark_read(db, current_user.id, wanted)
    except LookupError as missing:
        db.rollback()
        abort(404, str(missing))
    target = db.get(Notification, wanted) if wanted else None
    _commit()
    if target is not None and target.request_id is not None:
        return redirect(url_for("connections.detail", request_id=target.request_id))
    return redirect(url_for("connections.inbox"))


# --- what other pages ask -----------------------------------------------------------------


def connection_offer(need: Any, result: Any) -> dict[str, Any] | None:
    """For a match on a need or a result page: whether the signed-in user may start a
    request on this pair, and the open one if there is. None: show nothing."""
    if not (isinstance(need, Need) and isinstance(result, Result)) or \
            not getattr(current_user, "is_authenticated", False):
        return None
    side = conn.start_side(current_user, need, result)
    if side is None:
        return None
    # One query per page, not per match: every open request of this user's side.
    cache = g.setdefault("connection_offers", {})
    if side not in cache:
        cache[side] = {(row.need_id, row.result_id): row for row in get_db().scalars(
            select(ConnectionRequest).where(ConnectionRequest.open_key.is_not(None),
                                            ConnectionRequest.requester_side == side,
                                            conn.visible(current_user))
            .join(Need, ConnectionRequest.need_id == Need.id)
            .join(Result, ConnectionRequest.result_id == Result.id))}
    return {"need": need, "result": result, "existing": cache[side].get((need.id, result.id))}


def unread_notifications() -> int:
    if not getattr(current_user, "is_authenticated", False):
        return 0
    if "unread_notifications" not in g:
        g.unread_notifications = conn.unread_count(get_db(), current_user.id)
    return g.unread_notifications


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(connection_offer=connection_offer,
                                 unread_notifications=unread_notifications)
    app.register_blueprint(bp)
