"""The proposal: which active results to add so the list answers the most open needs, and
accepting it. The method is `matcher.shortlist.propose`; this is its glue to the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from corpora.models import Need, Result, Shortlist
from corpora.schema import FieldErrors
from corpora.sides import is_matchable
from matcher.shortlist import Proposal, propose
from web.auth import role_required
from web.database import get_db
from web.matching import service
from web.shortlists import bp
from web.shortlists.coverage import chunks, open_needs
from web.shortlists.forms import (
    BALANCE_MAX,
    DEFAULT_BALANCE,
    DEFAULT_N,
    PROPOSE_MAX,
    form_text,
    parse_proposal,
)
from web.shortlists.lots import (
    addable_result,
    append_lot,
    audit,
    commit_or_duplicate,
    get_shortlist,
    lot_detail,
    touch,
)
from web.shortlists.prices import PriceCheck, check_proposed


@dataclass(frozen=True)
class ProposalRow:
    result: Result
    new_needs: list[Need]
    improved_needs: list[Need]
    gain: float
    score: float
    price: PriceCheck


def make_proposal(db: Session, shortlist: Shortlist, n: int, balance: float
                  ) -> tuple[Proposal, list[ProposalRow]]:
    """Active results not on the list, over the coverage of still-open needs: the pairs
    rated `Coverage.min_label` or better only, so the needs it reports covered are ones the
    list answers well."""
    coverage = service().coverage().needs_of
    open_ids = set(db.scalars(select(Need.id).where(is_matchable(Need))))
    industry_of = {rid: industry for rid, industry in db.execute(
        select(Result.id, Result.industry).where(is_matchable(Result)))}
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
    for chunk in chunks(lot.result_id for lot in proposal.lots):
        results.update((r.id, r) for r in db.scalars(
            select(Result).options(selectinload(Result.organisation))
            .where(Result.id.in_(chunk))))
    needs = open_needs(db, (need for lot in proposal.lots
                            for need in (*lot.new_needs, *lot.improved_needs)))
    rows = []
    for lot in proposal.lots:
        if lot.result_id not in results:
            continue
        result = results[lot.result_id]
        new = [needs[i] for i in lot.new_needs if i in needs]
        improved = [needs[i] for i in lot.improved_needs if i in needs]
        rows.append(ProposalRow(result, new, improved, lot.gain, lot.score,
                                check_proposed(result.asking_price, [*new, *improved])))
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
        top_k=service().coverage().top_k, min_label=service().coverage().min_label,
        propose_max=PROPOSE_MAX, balance_max=BALANCE_MAX,
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
    added = [append_lot(shortlist, result) for result in results]
    try:
        commit_or_duplicate(db, flush_only=True)
        audit(db, shortlist.id, "accept_proposal", {
            "n": n, "balance": balance, "lots": [lot_detail(lot) for lot in added]})
        touch(shortlist)
        commit_or_duplicate(db)
    except FieldErrors as bad:
        abort(400, bad.errors["result_id"])
    flash(f"已采纳建议，加入 {len(added)} 件拍品")
    return redirect(url_for("shortlists.detail", shortlist_id=shortlist.id))
