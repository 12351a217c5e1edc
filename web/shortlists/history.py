"""A shortlist's audit log read back as sentences, for its history on the detail page."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from corpora.models import AuditEntry
from web.templating import plain_number

SHORTLIST_LABELS = {"title": "清单名称", "event_date": "拍卖会日期", "note": "说明"}
LOT_LABELS = {"reserve_price": "保留价（万元）", "note": "备注"}
OUTCOME_WORDS = {"sold": "成交", "unsold": "流拍"}


def _outcome(detail: Mapping[str, Any]) -> str:
    """成交（85 万元，买受人 某公司） / 流拍, from an entry's outcome fields."""
    outcome = detail.get("outcome")
    if outcome == "sold":
        return (f"成交（成交价 {_value(detail.get('sold_price'))} 万元，"
                f"买受人 {_value(detail.get('buyer'))}）")
    return OUTCOME_WORDS.get(str(outcome), "未记录")


def _previous(changes: Any) -> dict[str, Any]:
    if not isinstance(changes, dict):
        return {}
    return {name: pair[0] for name, pair in changes.items()
            if isinstance(pair, list) and pair}


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
    if action == "record_outcome":
        return f"记录拍品《{title}》的拍卖结果：{_outcome(detail)}"
    if action == "clear_outcome":
        before = _outcome(_previous(detail.get("changes")))
        return f"清除拍品《{title}》的拍卖结果（原为：{before}）"
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
