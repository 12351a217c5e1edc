"""The API's bulk upload: `POST /api/v1/results/import`, the upload page's import for scripts.

multipart/form-data with the CSV or XLSX file in the field `file`, by an office account bound
to an institution. The checks and the import are the page's own (`web.results.import_upload`):
all or nothing, rows for the account's institution only, at most UPLOAD_MAX_ROWS good rows.

- 200 `{"created": n, "updated": n, "unchanged": n, "total_rows": n, "unknown_columns": [...]}`
- 400 `{"error": {...}, "rejected": {"shown": [{"line", "row", "field", "message"}...], "total": n,
  "by_reason": {reason: rows}}}` when rows are bad: `shown` holds every problem of the first
  REJECTED_SHOWN_MAX bad rows, `by_reason` counts all `total` bad rows by reason (a row with
  two reasons counts under both); `row` names the row by its 编号 or title; nothing was
  imported.
- 400 naming the field `file` when the file itself is missing, of another type, or cannot be
  imported as a whole (encoding, header, too many rows...); 403 for other accounts.
"""

from __future__ import annotations

from typing import Any

from flask import request

from corpora.importer import ImportReport
from web import permissions
from web.api import bp
from web.api.auth import actor, viewer
from web.api.input import fail
from web.api.replies import ok
from web.results import import_upload


def rejected_json(report: ImportReport) -> dict[str, Any]:
    """The bad rows of a rejected import, bounded whatever the file held."""
    return {
        "shown": [{"line": error.line, "row": row.name or None, "field": error.field,
                   "message": error.message}
                  for row in report.rejected for error in row.errors],
        "total": report.rejected_total,
        "by_reason": dict(report.rejected_by_reason.most_common()),
    }


@bp.post("/results/import")
def import_results() -> Any:
    """Import a CSV/XLSX file of the caller's institution's results, as the upload page does."""
    if not permissions.can_post_result(viewer()):
        fail(403, "只有绑定高校或院所的技术转移办公室账号可以批量导入成果")
    outcome = import_upload(actor(), request.files.get("file"), via="api")
    if outcome.rejected is not None:
        message = outcome.problem or "有不合格的行，整个文件未导入"
        return ok({"error": {"status": 400, "message": message},
                   "rejected": rejected_json(outcome.rejected)}, 400)
    if outcome.conflict:
        fail(409, outcome.problem or "与其他同时进行的导入冲突，请重试")
    if outcome.report is None:
        problem = outcome.problem or "无法导入"
        fail(400, problem, {"file": problem})
    report = outcome.report
    return ok({"created": report.created, "updated": report.updated,
               "unchanged": report.unchanged, "total_rows": report.total_rows,
               "unknown_columns": report.unknown_columns})
