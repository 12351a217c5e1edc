"""Writes that pages and the JSON API share: validate, save, audit. The caller commits and
then tells the matching service what changed.

Validation is the importer's own (`corpora.schema.validate_values`), so a field accepted in
a spreadsheet is accepted in a form and in the API, with the same messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corpora.models import (
    NEED_STATUSES,
    RESULT_STATUSES,
    MatchFeedback,
    Need,
    Organisation,
    Result,
    User,
    as_id,
    join_list,
)
from corpora.schema import (
    NEED_SCHEMA,
    RESULT_SCHEMA,
    FieldErrors,
    SideSchema,
    encoding_problem,
    validate_values,
)
from corpora.sides import MATCHABLE_STATUS
from matcher.types import Side
from service.audit import record

# Fields a user edits; organisation and status have their own rules.
NEED_FIELDS = ("title", "description", "industry", "cooperation_mode", "budget_min",
               "budget_max", "region", "deadline", "contact")
RESULT_FIELDS = ("title", "abstract", "result_type", "patent_number", "maturity", "industry",
                 "keywords", "inventors", "transfer_modes", "asking_price", "published_on")
LIST_FIELDS = ("keywords", "inventors", "transfer_modes")
REASON_MAX = 500
# The platform's users are in China: "today" for a deadline is the Beijing date.
BEIJING = timezone(timedelta(hours=8))


def beijing_today() -> date:
    return datetime.now(BEIJING).date()


def fields_for(side: Side) -> tuple[str, ...]:
    return NEED_FIELDS if side == "need" else RESULT_FIELDS


def schema_of(side: Side) -> SideSchema:
    return NEED_SCHEMA if side == "need" else RESULT_SCHEMA


def validate(side: Side, raw: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Clean values for the editable fields in `raw`. Unknown fields are errors (a typo in
    an API call must not be silently ignored); with `partial`, absent fields stay as they are.
    """
    allowed = fields_for(side)
    errors = {name: "未知字段" for name in raw if name not in allowed}
    given = {name: value for name, value in raw.items() if name in allowed}
    if not partial:
        given = {name: given.get(name) for name in allowed}
    clean, problems = validate_values(schema_of(side), 1, given)
    for problem in problems:
        if partial and problem.field not in given and problem.message.startswith("缺少"):
            continue
        errors.setdefault(problem.field or "_", problem.message)
    if errors:
        raise FieldErrors(errors)
    return {name: (join_list(value) if name in LIST_FIELDS and value else
                   None if name in LIST_FIELDS else value)
            for name, value in clean.items()}


def _apply(row: Need | Result, values: Mapping[str, Any]) -> dict[str, list[Any]]:
    changes: dict[str, list[Any]] = {}
    for name, value in values.items():
        old = getattr(row, name)
        if old != value:
            changes[name] = [old, value]
            setattr(row, name, value)
    return changes


def _check_budget(need: Need) -> None:
    if (need.budget_min is not None and need.budget_max is not None
            and need.budget_min > need.budget_max):
        message = f"预算上限 {need.budget_max:g} 小于下限 {need.budget_min:g}"
        raise FieldErrors({"budget_max": message})


def _check_deadline(values: Mapping[str, Any], current: date | None = None) -> None:
    """A deadline before today (Beijing) is refused when it is set: a need posted already
    expired is a typo. An expired need keeps its deadline through an edit of other fields."""
    deadline = values.get("deadline")
    if isinstance(deadline, date) and deadline != current and deadline < beijing_today():
        raise FieldErrors({"deadline": f"截止日期 {deadline.isoformat()} 已过，"
                                       f"须不早于今天（{beijing_today().isoformat()}）"})


def create_need(session: Session, user: User, raw: Mapping[str, Any]) -> Need:
    if user.organisation_id is None:
        raise PermissionError("只有绑定企业的账号可以发布需求")
    values = validate("need", raw)
    _check_deadline(values)
    need = Need(organisation_id=user.organisation_id, status=MATCHABLE_STATUS["need"],
                **values)
    session.add(need)
    session.flush()
    record(session, user, "create", "need", need.id, {"title": need.title})
    return need


def update_need(session: Session, user: User, need: Need, raw: Mapping[str, Any], *,
                partial: bool = False) -> dict[str, list[Any]]:
    values = validate("need", raw, partial=partial)
    _check_deadline(values, need.deadline)
    changes = _apply(need, values)
    _check_budget(need)
    if changes:
        record(session, user, "update", "need", need.id, {"fields": sorted(changes)})
    return changes


def set_need_status(session: Session, user: User, need: Need, status: str) -> None:
    if status not in NEED_STATUSES:
        raise FieldErrors({"status": "状态须为 open 或 closed"})
    if need.status != status:
        record(session, user, "reopen" if status == "open" else "close", "need", need.id)
        need.status = status


def create_result(session: Session, user: User, raw: Mapping[str, Any]) -> Result:
    if user.organisation_id is None:
        raise PermissionError("只有绑定高校或院所的账号可以发布成果")
    values = validate("result", raw)
    result = Result(organisation_id=user.organisation_id, status=MATCHABLE_STATUS["result"],
                    **values)
    session.add(result)
    session.flush()
    record(session, user, "create", "result", result.id, {"title": result.title})
    return result


def update_result(session: Session, user: User, result: Result, raw: Mapping[str, Any], *,
                  partial: bool = False) -> dict[str, list[Any]]:
    changes = _apply(result, validate("result", raw, partial=partial))
    if "title" in changes and result.title_derived:
        # The office has given the record its own title: it is no longer one the demo
        # derived from the abstract, so the page stops saying so.
        result.title_derived = False
        changes["title_derived"] = [True, False]
    if changes:
        record(session, user, "update", "result", result.id, {"fields": sorted(changes)})
    return changes


def set_result_status(session: Session, user: User, result: Result, status: str) -> None:
    if status not in RESULT_STATUSES:
        raise FieldErrors({"status": "状态须为 active 或 withdrawn"})
    if result.status != status:
        action = "restore" if status == "active" else "withdraw"
        record(session, user, action, "result", result.id)
        result.status = status


def mark_match(session: Session, user: User, need: Need, result_id: Any, relevant: Any,
               reason: Any) -> MatchFeedback:
    """A firm's relevant / not-relevant mark on one of its need's matches (one per pair)."""
    errors: dict[str, str] = {}
    result = None
    if (parsed_id := as_id(result_id)) is None:
        errors["result_id"] = "须为成果编号（整数）"
    else:
        result = session.get(Result, parsed_id)
        if result is None:
            errors["result_id"] = f"成果 {result_id} 不存在"
    if isinstance(relevant, str):
        relevant = {"1": True, "true": True, "yes": True, "0": False, "false": False,
                    "no": False}.get(relevant.strip().lower(), relevant)
    if not isinstance(relevant, bool):
        errors["relevant"] = "须为 true（相关）或 false（不相关）"
    if reason is not None and not isinstance(reason, str):
        errors["reason"] = "须为文本"
    elif reason and len(reason) > REASON_MAX:
        errors["reason"] = f"理由不超过 {REASON_MAX} 字"
    elif reason and encoding_problem(reason):
        errors["reason"] = str(encoding_problem(reason))
    if errors:
        raise FieldErrors(errors)
    assert result is not None
    reason = (reason or "").strip() or None
    def existing() -> MatchFeedback | None:
        return session.scalar(select(MatchFeedback).where(
            MatchFeedback.need_id == need.id, MatchFeedback.result_id == result.id))

    feedback = existing()
    if feedback is None:
        try:
            # A savepoint: a double-click may insert the same mark twice at once; the
            # loser of that race updates the winner's row instead of failing.
            with session.begin_nested():
                feedback = MatchFeedback(need_id=need.id, result_id=result.id,
                                         user_id=user.id, relevant=relevant, reason=reason)
                session.add(feedback)
        except IntegrityError:
            feedback = existing()
    if feedback is None:
        raise FieldErrors({"result_id": "标记未能保存，请重试"})
    feedback.relevant, feedback.reason, feedback.user_id = relevant, reason, user.id
    session.flush()
    record(session, user, "mark", "need", need.id,
           {"result_id": result.id, "relevant": relevant, "reason": reason})
    return feedback


def unmark_match(session: Session, user: User, need: Need, result_id: Any) -> MatchFeedback:
    """Take back a firm's mark on one of its need's matches (the undo of a hidden result)."""
    if (parsed_id := as_id(result_id)) is None:
        raise FieldErrors({"result_id": "须为成果编号（整数）"})
    feedback = session.scalar(select(MatchFeedback).where(
        MatchFeedback.need_id == need.id, MatchFeedback.result_id == parsed_id))
    if feedback is None:
        raise LookupError(f"成果 {parsed_id} 在此需求上没有标记")
    session.delete(feedback)
    session.flush()
    record(session, user, "unmark", "need", need.id,
           {"result_id": parsed_id, "relevant": feedback.relevant})
    return feedback


def organisation_name(session: Session, organisation_id: int | None) -> str | None:
    if organisation_id is None:
        return None
    organisation = session.get(Organisation, organisation_id)
    return organisation.name if organisation else None
