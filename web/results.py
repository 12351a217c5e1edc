"""Research results: offices list, upload, edit and withdraw them; everyone sees the needs
each answers; officers see how many open needs each result answers well."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from werkzeug.datastructures import FileStorage

from corpora.db import in_chunks
from corpora.importer import (
    REJECTED_SHOWN_MAX,
    ImportProblem,
    ImportReport,
    RowsRejected,
    import_file,
)
from corpora.models import MatchFeedback, Need, Organisation, Result, User
from corpora.schema import RESULT_SCHEMA
from corpora.sides import is_matchable
from matcher.types import Strength
from service.audit import record
from service.matching import Coverage
from service.records import RESULT_FIELDS, create_result, set_result_status, update_result
from web import permissions
from web.auth import role_required
from web.database import get_db
from web.item_pages import ItemPages, edit_page, new_page, signed_in_user, status_page
from web.matching import service
from web.matchview import BadFilter, filters_from, match_rows
from web.templating import plain_number

bp = Blueprint("results", __name__, url_prefix="/results")

MATCHES_K = 20
UPLOAD_SUFFIXES = (".csv", ".xlsx")
# Good rows one upload may hold (the command-line importer has no such cap): with it, a
# 5 MB file of tiny rows is refused after this many instead of written and indexed 1.7
# million times over. Real uploads hold hundreds; a 5 MB file of real results, thousands.
UPLOAD_MAX_ROWS = 20_000


def get_result(result_id: int) -> Result:
    result = get_db().get(Result, result_id)
    if result is None:
        abort(404, "成果不存在")
    return result


def _editable(result_id: int) -> Result:
    result = get_result(result_id)
    if not permissions.can_edit_result(current_user, result):
        abort(403, "只能编辑本单位的成果")
    return result


def _form_values() -> dict[str, str]:
    values = {name: request.form.get(name, "") for name in RESULT_FIELDS}
    # Checkboxes: one form value per chosen mode.
    values["transfer_modes"] = ";".join(request.form.getlist("transfer_modes"))
    return values


def _row_values(result: Result) -> dict[str, str]:
    values = {}
    for name in RESULT_FIELDS:
        value = getattr(result, name)
        if value is None:
            values[name] = ""
        elif isinstance(value, float):
            values[name] = plain_number(value)
        else:
            values[name] = str(value)
    return values


PAGES = ItemPages(
    "result", "results/form.html", _form_values, _row_values, create_result,
    update_result, set_result_status, created="成果已登记，可被匹配", saved="成果已保存",
    status_changed=lambda result: "成果已撤回" if result.status == "withdrawn" else "成果已恢复",
)


@bp.route("/mine")
@role_required("office")
def mine() -> Any:
    query = select(Result).order_by(Result.updated_at.desc())
    if current_user.role != "admin":
        query = query.where(Result.organisation_id == current_user.organisation_id)
    page = request.args.get("page", 1, type=int) or 1
    if not 1 <= page <= 100_000:
        abort(400, "页码须为 1 到 100000 之间的整数")
    rows = list(get_db().scalars(query.offset((page - 1) * 50).limit(51)))
    return render_template("results/mine.html", results=rows[:50], page=page,
                           more=len(rows) > 50)


@bp.route("/new", methods=["GET", "POST"])
@role_required("office")
def new() -> Any:
    if not permissions.can_post_result(current_user):
        abort(403, "只有绑定高校或院所的账号可以登记成果")
    return new_page(PAGES)


@bp.route("/<id:result_id>/edit", methods=["GET", "POST"])
@login_required
def edit(result_id: int) -> Any:
    return edit_page(PAGES, _editable(result_id))


@bp.route("/<id:result_id>/status", methods=["POST"])
@login_required
def status(result_id: int) -> Any:
    return status_page(PAGES, _editable(result_id))


@bp.route("/<id:result_id>")
@login_required
def detail(result_id: int) -> Any:
    result = get_result(result_id)
    db = get_db()
    error = None
    try:
        filters = filters_from(request.args, "need")
    except BadFilter as bad:
        error, filters = bad.message, None
    rows = []
    if error is None:
        rows = match_rows(db, "need",
                          service().match_row(result, "need", k=MATCHES_K, filters=filters))
    interest = []
    if permissions.can_see_interest(current_user, result):
        interest = list(db.scalars(
            select(MatchFeedback).options(selectinload(MatchFeedback.need))
            .where(MatchFeedback.result_id == result.id)
            .order_by(MatchFeedback.relevant.desc(), MatchFeedback.updated_at.desc())))
    similar = match_rows(db, "result", service().match_row(result, "result", k=5))
    return render_template(
        "results/detail.html", result=result, rows=rows, error=error, interest=interest,
        similar=similar, editable=permissions.can_edit_result(current_user, result),
        curator=permissions.can_curate(current_user), args=request.args,
    ), 400 if error else 200


@dataclass
class UploadOutcome:
    """What one upload came to, for the page and for the API alike: imported (`report`), or
    refused (`problem`, and `rejected` when rows were to blame: the first
    REJECTED_SHOWN_MAX bad rows in full, every one counted by reason)."""

    report: ImportReport | None = None
    problem: str | None = None
    rejected: ImportReport | None = None
    file_problem: bool = False  # the `file` field itself: missing, or not .csv / .xlsx
    conflict: bool = False  # lost a race with another import writing the same results


def import_upload(me: User, upload_file: FileStorage | None, *, via: str = "page"
                  ) -> UploadOutcome:
    """Import an office's CSV/XLSX upload as its institution's results, all or nothing,
    through the importer; commits on success. At most UPLOAD_MAX_ROWS good rows: the
    worker's time and memory stay bounded for any file up to the upload cap."""
    name = Path(upload_file.filename or "").name if upload_file else ""
    suffix = Path(name).suffix.lower()
    if not upload_file or not name:
        return UploadOutcome(problem="请选择要上传的 CSV 或 XLSX 文件", file_problem=True)
    if suffix not in UPLOAD_SUFFIXES:
        return UploadOutcome(
            problem=f"不支持的文件类型「{suffix or '无扩展名'}」：只接受 .csv 和 .xlsx",
            file_problem=True)
    db = get_db()
    outcome = UploadOutcome()
    with tempfile.TemporaryDirectory() as folder:
        # Saved under the user's own file name, so every message names their file.
        path = Path(folder) / _safe_upload_name(name, suffix)
        upload_file.save(path)
        try:
            outcome.report = import_file(
                db, path, "result", organisation=me.organisation.name, lock_organisation=True,
                progress=False, max_rows=UPLOAD_MAX_ROWS)
            record(db, me, "upload", "result", None,
                   {"file": name, "created": outcome.report.created,
                    "updated": outcome.report.updated, "via": via})
            db.commit()
        except IntegrityError:
            # Two uploads of the same 编号 at once: the second one's insert meets the first's
            # row at commit. Nothing of this file is kept; trying again updates that row.
            db.rollback()
            outcome.report = None
            outcome.conflict = True
            outcome.problem = (f"《{name}》与同时进行的另一次导入写入了相同编号的成果，"
                               "整个文件未导入。请稍后重新上传。")
        except RowsRejected as rows:
            db.rollback()
            outcome.rejected = rows.report
            outcome.problem = (f"《{name}》有 {rows.report.rejected_total:,} 行不合格，"
                               "整个文件未导入。请按下表修改后重新上传。")
        except ImportProblem as bad:
            db.rollback()
            outcome.problem = str(bad)
    if outcome.report is not None:
        service().changed(db, "result", outcome.report.changed_ids)
    return outcome


@bp.route("/upload", methods=["GET", "POST"])
@role_required("office")
def upload() -> Any:
    """CSV/XLSX bulk listing through the importer: a file with any bad row imports nothing;
    the first REJECTED_SHOWN_MAX bad rows are shown with their line number and reason, the
    rest counted by reason (a page of 600,000 rows would be 46 MB)."""
    if not permissions.can_post_result(current_user):
        abort(403, "只有绑定高校或院所的账号可以上传成果")
    outcome = UploadOutcome()
    if request.method == "POST":
        outcome = import_upload(signed_in_user(), request.files.get("file"))
        if outcome.report is not None:
            name = Path(request.files["file"].filename or "").name
            report = outcome.report
            flash(f"《{name}》已导入：新增 {report.created} 条，更新 {report.updated} 条，"
                  f"未变 {report.unchanged} 条")
    status_code = (409 if outcome.conflict else 400) if outcome.problem else 200
    columns = [spec for spec in RESULT_SCHEMA.fields
               if spec.name not in ("institution", "institution_city", "institution_kind")]
    rejected = outcome.rejected
    return render_template(
        "results/upload.html", report=outcome.report, problem=outcome.problem,
        rejected=rejected.errors if rejected else [],
        hidden_total=rejected.hidden_total if rejected else 0,
        hidden_reasons=rejected.hidden_by_reason() if rejected else [],
        shown_rows=len(rejected.rejected) if rejected else 0,
        shown_max=REJECTED_SHOWN_MAX, max_rows=UPLOAD_MAX_ROWS, columns=columns), status_code


def _safe_upload_name(name: str, suffix: str) -> str:
    stem = "".join(c for c in Path(name).stem if c.isprintable() and c not in "/\\:")[:100]
    return (stem.strip(". ") or "upload") + suffix


@bp.route("/coverage")
@role_required("officer")
def coverage() -> Any:
    """Every active result with how many open needs it answers well (较强 or better), most
    first; then the open needs nothing answers well, by industry."""
    db = get_db()
    cov = service().coverage()
    industry = request.args.get("industry", "")
    institution = request.args.get("institution", "")
    query = (select(Result).join(Organisation).options(selectinload(Result.organisation))
             .where(is_matchable(Result)))
    if industry:
        query = query.where(Result.industry == industry)
    if institution:
        query = query.where(Organisation.name.contains(institution[:200]))
    ids = sorted(cov.needs_of, key=lambda i: -len(cov.needs_of[i]))
    rows = {r.id: r for r in db.scalars(query.where(Result.id.in_(ids[:2000])))} if ids else {}
    ranked = [(rows[i], cov.count(i)) for i in ids if i in rows][:200]
    return render_template("results/coverage.html", ranked=ranked, top_k=cov.top_k,
                           min_label=cov.min_label, args=request.args,
                           unanswered=unanswered_needs(db, cov, industry))


@dataclass(frozen=True)
class UnansweredNeed:
    need: Need
    best: Strength | None  # the best strength any result reached for it


def unanswered_needs(db: Session, cov: Coverage, industry: str = ""
                     ) -> list[tuple[str, list[UnansweredNeed]]]:
    """Open needs no result answers at `cov.min_label` or better, grouped by industry (the
    groups by name, 未注明 last; in each, the needs closest to an answer first)."""
    best = cov.best_of_need
    groups: dict[str, list[UnansweredNeed]] = {}
    for chunk in in_chunks(cov.unanswered()):
        query = (select(Need).options(selectinload(Need.organisation))
                 .where(Need.id.in_(chunk), is_matchable(Need)))
        if industry:
            query = query.where(Need.industry == industry)
        for need in db.scalars(query):
            groups.setdefault(need.industry or "", []).append(
                UnansweredNeed(need, best.get(need.id)))
    for needs in groups.values():
        needs.sort(key=lambda u: (-(u.best.probability if u.best else 0.0), u.need.id))
    return [(name or "未注明", groups[name])
            for name in sorted(groups, key=lambda name: (name == "", name))]
