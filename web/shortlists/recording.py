"""The shortlist page's outcome form: after the auction, each lot is 成交 or 流拍."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from corpora.schema import FieldErrors
from web.auth import role_required
from web.database import get_db
from web.shortlists import bp
from web.shortlists.forms import form_text, parse_outcome
from web.shortlists.lots import get_lot, get_shortlist, me
from web.shortlists.outcomes import outcome_label, set_outcome
from web.shortlists.views import render_detail


@bp.route("/<id:shortlist_id>/lots/<id:lot_id>/outcome", methods=["POST"])
@role_required("officer")
def record_outcome(shortlist_id: int, lot_id: int) -> Any:
    """`outcome` sold (with `sold_price` 万元 and `buyer`), unsold, or clear."""
    shortlist = get_shortlist(shortlist_id)
    lot = get_lot(shortlist, lot_id)
    try:
        clean = parse_outcome(request.form)
    except FieldErrors as bad:
        typed = {name: form_text(request.form, name) for name in ("sold_price", "buyer")}
        return render_detail(shortlist, status=400, lot_errors={lot.id: bad.errors},
                              lot_values={lot.id: typed})
    db = get_db()
    if set_outcome(db, me(), lot, clean):
        db.commit()
        flash(f"拍品《{lot.result.title}》：{outcome_label(lot.outcome)}" if lot.outcome
              else f"已清除拍品《{lot.result.title}》的拍卖结果")
    else:
        flash("没有修改")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id) + f"#lot-{lot.id}")
