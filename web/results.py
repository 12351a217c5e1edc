"""Research results: offices list, upload, edit and withdraw them; everyone sees the needs
each answers; officers see how many open needs each result answers well."""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, flash, render_template, request, url_for
from flask_login import current_user, login_required
from openpyxl import Workbook
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from werkzeug.datastructures import FileStorage

from corpora.connections import ConnectionRequest
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
from web.confirm import confirm_page, confirmed
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
# Links to the results just imported, after an upload; the rest are counted.
IMPORTED_SHOWN = 20


# The 单位 filter's suggestions (a <datalist>: no script, and the value stays an exact name).
INSTITUTIONS_SUGGESTED = 2000


@bp.app_context_processor
def _institution_names() -> dict[str, Any]:
    def institution_names(side: str = "result") -> list[str]:
        """What the 单位 filter offers, by name: the universities and institutes with results,
        or (side "need") the firms with needs."""
        if side == "need":
            kinds, model = ("firm",), Need
        else:
            kinds, model = ("university", "institute"), Result
        query = (select(Organisation.name)
                 .where(Organisation.kind.in_(kinds),
                        select(model.id).where(model.organisation_id == Organisation.id)
                        .exists())
                 .order_by(Organisation.name).limit(INSTITUTIONS_SUGGESTED))
        return list(get_db().scalars(query))

    return {"institution_names": institution_names}


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


MINE_PAGE = 50
MINE_QUERY_MAX = 100


@bp.route("/mine")
@role_required("office")
def mine() -> Any:
    """The institution's results, newest first; `q` keeps those whose title or keywords
    hold it (a plain substring, not the engine: withdrawn results are listed too, and an
    office looking for its own record knows the words in it). Each row shows how many needs
    marked it 相关 and how many 对接 requests it has."""
    db = get_db()
    query = select(Result)
    if current_user.role != "admin":
        query = query.where(Result.organisation_id == current_user.organisation_id)
    q = request.args.get("q", "").strip()[:MINE_QUERY_MAX]
    if q:
        query = query.where(or_(Result.title.contains(q, autoescape=True),
                                Result.keywords.contains(q, autoescape=True)))
    page = request.args.get("page", 1, type=int) or 1
    if not 1 <= page <= 100_000:
        abort(400, "页码须为 1 到 100000 之间的整数")
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(db.scalars(query.order_by(Result.updated_at.desc(), Result.id.desc())
                           .offset((page - 1) * MINE_PAGE).limit(MINE_PAGE + 1)))
    shown = rows[:MINE_PAGE]
    ids = [result.id for result in shown]
    return render_template("results/mine.html", results=shown, page=page,
                           more=len(rows) > MINE_PAGE, total=total, q=q,
                           interest=_interest_counts(db, ids),
                           requests=_request_counts(db, ids))


def _interest_counts(db: Session, ids: list[int]) -> dict[int, int]:
    """Result id → how many needs' owners marked it 相关."""
    if not ids:
        return {}
    counts = db.execute(select(MatchFeedback.result_id, func.count())
                        .where(MatchFeedback.result_id.in_(ids), MatchFeedback.relevant)
                        .group_by(MatchFeedback.result_id))
    return {result_id: count for result_id, count in counts}


def _request_counts(db: Session, ids: list[int]) -> dict[int, int]:
    """Result id → how many 对接 requests (any status) name it."""
    if not ids:
        return {}
    counts = db.execute(select(ConnectionRequest.result_id, func.count())
                        .where(ConnectionRequest.result_id.in_(ids))
                        .group_by(ConnectionRequest.result_id))
    return {result_id: count for result_id, count in counts}


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
    result = _editable(result_id)
    if (request.form.get("status") == "withdrawn" and result.status != "withdrawn"
            and not confirmed()):
        return confirm_page(
            "撤回成果", f"撤回成果《{result.title}》？撤回后它不再出现在匹配和检索中，"
            "可以随时恢复。", {"status": "withdrawn"},
            url_for("results.detail", result_id=result.id), button="确认撤回")
    return status_page(PAGES, result)


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
    columns = upload_columns()
    rejected = outcome.rejected
    touched, imported = _imported(outcome.report)
    return render_template(
        "results/upload.html", report=outcome.report, problem=outcome.problem,
        rejected=rejected.rejected if rejected else [],
        hidden_total=rejected.hidden_total if rejected else 0,
        hidden_reasons=rejected.hidden_by_reason() if rejected else [],
        shown_rows=len(rejected.rejected) if rejected else 0,
        shown_max=REJECTED_SHOWN_MAX, max_rows=UPLOAD_MAX_ROWS, columns=columns,
        imported=imported, imported_more=max(0, len(touched) - len(imported))), status_code


def _imported(report: ImportReport | None) -> tuple[list[int], list[Result]]:
    """Every result an upload created or updated (as ids, by id), and the first
    IMPORTED_SHOWN of them as rows, for the links after an upload."""
    if report is None:
        return [], []
    touched = sorted(report.changed_ids)
    rows = {result.id: result for result in get_db().scalars(
        select(Result).where(Result.id.in_(touched[:IMPORTED_SHOWN])))}
    return touched, [rows[i] for i in touched[:IMPORTED_SHOWN] if i in rows]


TEMPLATE_NAME = "成果导入模板"


def upload_columns() -> list[Any]:
    """The columns an office fills in: the institution is always its own."""
    return [spec for spec in RESULT_SCHEMA.fields
            if spec.name not in ("institution", "institution_city", "institution_kind")]


@bp.route("/upload/template.<any(csv, xlsx):fmt>")
@role_required("office")
def upload_template(fmt: str) -> Any:
    """An empty upload file: the header row of the columns the importer reads, made now
    from the schema (so it cannot fall behind it). CSV in UTF-8 with a BOM, which Excel
    needs to read it as UTF-8."""
    header = [spec.label for spec in upload_columns()]
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerow(header)
        body = codecs.BOM_UTF8 + buffer.getvalue().encode("utf-8")
        mimetype = "text/csv; charset=utf-8"
    else:
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "成果"
        sheet.append(header)
        out = io.BytesIO()
        workbook.save(out)
        body = out.getvalue()
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=results-template.{fmt}; "
        f"filename*=UTF-8''{quote(TEMPLATE_NAME)}.{fmt}")
    return response


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
