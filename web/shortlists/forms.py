"""Reading the shortlist forms: every field checked, each problem named for its field.

A form either parses completely or raises `FieldErrors`, so a view never writes half a change.
Numbers and dates are read by the import schema's parsers, and a shortlist's title has a
record's title limit, so a form and a spreadsheet agree on what a price or a date is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from corpora.models import as_id
from corpora.schema import (
    MONEY_MAX,
    TITLE_MAX,
    DateOutOfRange,
    FieldErrors,
    NoSuchDay,
    ValueProblem,
    encoding_problem,
    parse_date_text,
    parse_decimal,
)

NOTE_MAX = 2000
LOT_NOTE_MAX = 1000
PROPOSE_MAX = 50
DEFAULT_N = 10
BALANCE_MAX = 10.0
DEFAULT_BALANCE = 0.5
EVENT_YEARS = (2000, 2100)  # first and last year an event date may fall in
BUYER_MAX = 200  # shortlist_lots.buyer
OUTCOMES = {"sold": "成交", "unsold": "流拍"}
CLEAR = "clear"  # the outcome form's third button: forget what was recorded
NUMBER_TEXT_MAX = 30  # characters of a typed number: longer is a mistake, not a price
INTEGER = re.compile(r"\d{1,9}")


# --- reading forms ---------------------------------------------------------------------------

def form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def _optional_text(value: str) -> str | None:
    return value or None


def _parse_date(raw: str, errors: dict[str, str], name: str) -> date | None:
    try:
        return parse_date_text(raw, iso_only=True, years=EVENT_YEARS)
    except NoSuchDay:
        errors[name] = f"「{raw}」不是有效日期"
    except DateOutOfRange:
        errors[name] = f"日期须在 {EVENT_YEARS[0]} 年至 {EVENT_YEARS[1]} 年之间"
    except ValueProblem:
        errors[name] = "日期格式应为 YYYY-MM-DD，例如 2025-09-20"
    return None


def _parse_number(raw: str) -> float | None:
    """A plain decimal (full-width digits accepted); None when it is not one."""
    return None if len(raw) > NUMBER_TEXT_MAX else parse_decimal(raw)


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
        raise FieldErrors(errors)
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
        elif price > MONEY_MAX:
            errors["reserve_price"] = f"保留价不超过 {MONEY_MAX:.0f} 万元"
    note = form_text(form, "note")
    if len(note) > LOT_NOTE_MAX:
        errors["note"] = f"备注不超过 {LOT_NOTE_MAX} 字（现 {len(note)} 字）"
    if errors:
        raise FieldErrors(errors)
    return {"reserve_price": price, "note": _optional_text(note)}


def parse_outcome(form: Mapping[str, Any]) -> dict[str, Any]:
    """成交 (a price above 0 and a buyer), 流拍, or `clear`; a 流拍 or a clear keeps no price
    or buyer, whatever the form carried."""
    outcome = form_text(form, "outcome")
    if outcome == CLEAR:
        return {"outcome": None, "sold_price": None, "buyer": None}
    if outcome not in OUTCOMES:
        raise FieldErrors({"outcome": "拍卖结果须为成交（sold）、流拍（unsold）或清除（clear）"})
    if outcome == "unsold":
        return {"outcome": "unsold", "sold_price": None, "buyer": None}
    errors: dict[str, str] = {}
    raw_price = form_text(form, "sold_price")
    price = _parse_number(raw_price) if raw_price else None
    if not raw_price:
        errors["sold_price"] = "请填写成交价（万元）"
    elif price is None:
        errors["sold_price"] = "成交价须为数字（单位：万元），例如 50 或 12.5"
    elif price <= 0:
        errors["sold_price"] = "成交价须大于 0"
    elif price > MONEY_MAX:
        errors["sold_price"] = f"成交价不超过 {MONEY_MAX:.0f} 万元"
    buyer = form_text(form, "buyer")
    if not buyer:
        errors["buyer"] = "请填写买受人"
    elif len(buyer) > BUYER_MAX:
        errors["buyer"] = f"买受人不超过 {BUYER_MAX} 字（现 {len(buyer)} 字）"
    elif (problem := encoding_problem(buyer)) is not None:
        # A lone surrogate (JSON's \ud800) cannot be stored at all; a control or bidi
        # character would be stored and shown in the exports.
        errors["buyer"] = f"买受人{problem}"
    if errors:
        raise FieldErrors(errors)
    return {"outcome": "sold", "sold_price": price, "buyer": buyer}


def parse_id(raw: str, name: str, label: str) -> int:
    if not raw:
        raise FieldErrors({name: f"请填写{label}"})
    # Full-width digits (１２, a Chinese IME's) count, as in the other number fields.
    parsed = as_id(unicodedata.normalize("NFKC", raw))
    if parsed is None:
        raise FieldErrors({name: f"{label}须为正整数"})
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
        raise FieldErrors(errors)
    return n, balance
