"""A second step before an action that is hard to take back (close a need, withdraw a
result, disable an account): the first POST shows what will happen, with a 确认 form that
posts the same fields again with `confirm=1`, and a 取消 link. A page, not a script: the
CSP allows no inline script, and a page works without JavaScript at all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import render_template, request


def confirmed() -> bool:
    return request.form.get("confirm") == "1"


def confirm_page(title: str, message: str, fields: Mapping[str, str], cancel_url: str,
                 button: str = "确认") -> Any:
    """The confirmation page: posts `fields` and confirm=1 back to this request's URL."""
    return render_template("confirm.html", title=title, message=message, fields=fields,
                           action=request.path, cancel_url=cancel_url, button=button)
