"""A user's e-mail address and how often notifications are e-mailed (immediate, a daily
digest, or none). The caller commits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from corpora.models import User
from corpora.notify import EMAIL_MAX, EMAIL_MODES
from corpora.schema import FieldErrors
from service.audit import record

# ASCII only: a non-ASCII address needs SMTPUTF8, which many servers lack.
ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def set_email(session: Session, user: User, raw: Mapping[str, Any]) -> None:
    """Set `email` (blank: none) and `email_mode`; a `FieldErrors` names a bad one."""
    email = str(raw.get("email") or "").strip()
    mode = str(raw.get("email_mode") or "").strip()
    errors: dict[str, str] = {}
    if len(email) > EMAIL_MAX:
        errors["email"] = f"电子邮件地址最长 {EMAIL_MAX} 个字符"
    elif email and not ADDRESS.fullmatch(email):
        errors["email"] = "电子邮件地址格式不正确（例如 name@example.com，仅限英文字符）"
    if mode not in EMAIL_MODES:
        errors["email_mode"] = f"邮件通知方式须为 {' / '.join(EMAIL_MODES)} 之一"
    elif mode != "none" and not email:
        errors["email"] = "选择接收邮件时须填写电子邮件地址"
    if errors:
        raise FieldErrors(errors)
    before = (user.email, user.email_mode)
    user.email, user.email_mode = email or None, mode
    if before != (user.email, user.email_mode):
        record(session, user, "set_email", "user", user.id,
               {"email_mode": mode, "has_email": bool(email)})
