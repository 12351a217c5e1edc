"""What checking values reports: a value that cannot be used, a problem in one row of a file,
and the field → message errors of a form or API call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RowError:
    """One problem in one row: `line` is the file line or sheet row a user would look at."""

    line: int
    field: str | None  # canonical field name; None when the problem is the whole row
    label: str  # the field's Chinese name, or "整行"
    message: str

    def __str__(self) -> str:
        return f"第 {self.line} 行 [{self.label}] {self.message}"


class ValueProblem(Exception):
    """A value that cannot be used; the message is shown to the user."""


class FieldErrors(ValueError):
    """Field name → message; nothing was saved."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)
