"""Reading the shortlist forms: every field checked, each problem named for its field.

A form either parses completely or raises `FormErrors`, so a view never writes half a change.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from corpora.models import as_id

TITLE_MAX = 200
NOTE_MAX = 2000
LOT_NOTE_MAX = 1000
PRICE_MAX = 10_000_000  # 万元
PROPOSE_MAX = 50
DEFAULT_N = 10
BALANCE_MAX = 10.0
DEFAULT_BALANCE = 0.5
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
INTEGER = re.compile(r"\d{1,9}")


class FormErrors(ValueError):
    """Field name → Chinese message; nothing was saved."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


# --- reading forms ---------------------------------------------------------------------------

def form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def _optional_text(value: str) -> str | None:
    return value or None


def _parse_date(raw: str, errors: dict[str, str], name: str) -> date | None:
    if not raw:
        return None
    if not _DATE.fullmatch(raw):
        errors[name] = "日期格式应为 YYYY-MM-DD，例如 2025-09-20"
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        errors[name] = f"「{raw}」不是有效日期"
        return None
    if not 2000 <= value.year <= 2100:
        errors[name] = "日期须在 2000 年至 2100 年之间"
        return None
    return value


def _parse_number(raw: str) -> float | None:
    """A plain decimal (full-width digits accepted); None when it is not one."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if len(text) > 30 or not _NUMBER.fullmatch(text):
        return None
    return float(text)


def parse_meta(form: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    title = form_text(form, "title")
    if not title:
        errors["title"] = "请填写清单名称"
    elif len(title) > TITLE_MAX:
        errors["title"] = f"清单名称不超过 {TITLE_MAX} 字（现 {len(title)} 字）"
    event_date = _parse_date(form_text(form, "event_date"), errors, "event_date")
    note = form_text(form, "note")
    if len(note) > NOTE_MAX:
        errors["note"] = f"说明不超过 {NOTE_MAX} 字（现 {len(note)} 字）"
    if errors:
        raise FormErrors(errors)
    return {"title": title, "event_date": event_date, "note": _optional_text(note)}


def parse_lot(form: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    raw_price = form_text(form, "reserve_price")
    price = None
    if raw_price:
        price = _parse_number(raw_price)
        if price is None:
            errors["reserve_price"] = "保留价须为数字（单位：万元），例如 50 或 12.5"
        elif price < 0:
            errors["reserve_price"] = "保留价不能为负数"
        elif price > PRICE_MAX:
            errors["reserve_price"] = f"保留价不超过 {PRICE_MAX} 万元"
    note = form_text(form, "note")
    if len(note) > LOT_NOTE_MAX:
        errors["note"] = f"备注不超过 {LOT_NOTE_MAX} 字（现 {len(note)} 字）"
    if errors:
        raise FormErrors(errors)
    return {"reserve_price": price, "note": _optional_text(note)}


def parse_id(raw: str, name: str, label: str) -> int:
    if not raw:
        raise FormErrors({name: f"请填写{label}"})
    # Full-width digits (１２, a Chinese IME's) count, as in the other number fields.
    parsed = as_id(unicodedata.normalize("NFKC", raw))
    if parsed is None:
        raise FormErrors({name: f"{label}须为正整数"})
    return parsed


def parse_proposal(args: Mapping[str, Any]) -> tuple[int, float]:
    errors: dict[str, str] = {}
    raw_n = form_text(args, "n")
    n = 0
    if not INTEGER.fullmatch(raw_n) or not 1 <= int(raw_n) <= PROPOSE_MAX:
        errors["n"] = f"建议拍品数须为 1 到 {PROPOSE_MAX} 之间的整数"
    else:
        n = int(raw_n)
    raw_balance = form_text(args, "balance")
    parsed = DEFAULT_BALANCE if not raw_balance else _parse_number(raw_balance)
    balance = DEFAULT_BALANCE
    if parsed is None or not 0 <= parsed <= BALANCE_MAX:
        errors["balance"] = f"均衡系数须为 0 到 {BALANCE_MAX:g} 之间的数字，例如 0.5"
    else:
        balance = parsed
    if errors:
        raise FormErrors(errors)
    return n, balance
