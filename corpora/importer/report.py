"""What an import tells its caller: the report of what it did, and the errors it raises."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from corpora.schema import RowError, schema_for
from matcher.types import Side


class ImportProblem(ValueError):
    """Base of the importer's errors: the message is meant for the user (Chinese)."""


class ImportFileError(ImportProblem):
    """The file as a whole cannot be imported: wrong type, empty, no header, wrong encoding."""


class RowsRejected(ImportProblem):
    """Some rows are bad, so nothing was imported; `report` lists the first
    `REJECTED_SHOWN_MAX` bad rows in full and counts all of them by reason."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.summary())
        self.report = report


# A rejected upload answers with this many bad rows in full and the rest as counts per reason:
# a file of 600,000 bad rows must not become a 46 MB page (or 730 MB of RowError objects).
# A keep_valid import keeps every rejected row, for its rejects file.
REJECTED_SHOWN_MAX = 200
# Distinct reasons counted; any further one is counted under REASON_OTHER, so that the counts
# stay small whatever a file holds.
REASONS_MAX = 50
REASON_OTHER = "其他原因"

# What makes two messages of one kind differ: the value shown (「…」), a length, a line or
# column number. Taken out, "「abc」 不是数字" and "「x」 不是数字" are one reason.
_REASON_DETAILS = (
    (re.compile(r"「.*?」…?\s*"), ""),
    (re.compile(r"长度 \d+( 个字符)?，"), "长度"),
    (re.compile(r"共 \d+ 项，"), "项数"),
    (re.compile(r"第 \d+ 行"), "前面某行"),
    (re.compile(r"（第 \d+ 列）"), ""),
)


def row_name(fields: dict[str, Any]) -> str:
    """A row's 编号 (external_id), else its title, as text no longer than ROW_NAME_MAX."""
    for field_name, shown in (("external_id", "编号 {}"), ("title", "《{}》")):
        value = fields.get(field_name)
        text = "" if value is None else " ".join(str(value).split())
        if text:
            if len(text) > ROW_NAME_MAX:
                text = text[:ROW_NAME_MAX - 1] + "…"
            return shown.format(text)
    return ""


def reason_of(error: RowError) -> str:
    """The kind of problem an error is, without the details that vary from row to row:
    "摘要：必填，不能为空", "成果类型：不是允许的取值；可选：…"."""
    return _reason(error.label, error.message)


def reasons_of(errors: list[RowError]) -> tuple[str, ...]:
    """A bad row's reasons, each once: a row with two problems of one kind counts once."""
    return tuple(dict.fromkeys(_reason(error.label, error.message) for error in errors))


@lru_cache(maxsize=4096)
def _reason(label: str, message: str) -> str:
    for pattern, replacement in _REASON_DETAILS:
        message = pattern.sub(replacement, message)
    return f"{label}：{message.strip()}"


# A rejected row is named by its 编号 or title beside its line number, cut to this length.
ROW_NAME_MAX = 40


@dataclass
class RejectedRow:
    line: int
    original: dict[str, Any]  # the row as it was in the file: column → value
    errors: list[RowError]
    name: str = ""  # its 编号, else its title, as written (cut): what a user recognises it by

    @property
    def reason(self) -> str:
        return "；".join(f"{error.label}：{error.message}" for error in self.errors)


@dataclass
class ImportReport:
    side: Side
    source: str
    total_rows: int = 0
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)
    unchanged_ids: list[int] = field(default_factory=list)
    # Every rejected row when `keeps_all_rejected` (a keep_valid import: the rejects file);
    # else the first REJECTED_SHOWN_MAX. The counts below always cover every one.
    rejected: list[RejectedRow] = field(default_factory=list)
    rejected_total: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)  # rows per reason
    keeps_all_rejected: bool = False
    unknown_columns: list[str] = field(default_factory=list)
    organisations_created: list[str] = field(default_factory=list)
    written: bool = False  # rows went to the session (the caller's commit makes them stick)
    rejects_path: Path | None = None

    @property
    def created(self) -> int:
        return len(self.created_ids)

    @property
    def updated(self) -> int:
        return len(self.updated_ids)

    @property
    def unchanged(self) -> int:
        return len(self.unchanged_ids)

    @property
    def changed_ids(self) -> list[int]:
        """Rows whose embedded text may have changed: what an indexer has to (re)encode."""
        return sorted(self.created_ids + self.updated_ids)

    def wants_rejected(self) -> bool:
        """Whether the next rejected row is kept in full (else it is only counted)."""
        return self.keeps_all_rejected or len(self.rejected) < REJECTED_SHOWN_MAX

    def reject(self, row: RejectedRow | None, errors: list[RowError] | tuple[str, ...]
               ) -> None:
        """Count a bad row by its reasons (its errors, or `reasons_of` them), and keep it in
        full if given (see wants_rejected)."""
        self.rejected_total += 1
        counts = self.rejected_by_reason
        for reason in errors if isinstance(errors, tuple) else reasons_of(errors):
            if reason not in counts and len(counts) >= REASONS_MAX:
                reason = REASON_OTHER
            counts[reason] += 1
        if row is not None:
            self.rejected.append(row)

    @property
    def hidden_total(self) -> int:
        """Rejected rows counted but not kept in full."""
        return self.rejected_total - len(self.rejected)

    def hidden_by_reason(self) -> list[tuple[str, int]]:
        """The rows not kept in full, counted by reason, most frequent first."""
        hidden = Counter(self.rejected_by_reason)
        for row in self.rejected:
            for reason in reasons_of(row.errors):
                if reason in hidden:
                    hidden[reason] -= 1
                elif REASON_OTHER in hidden:
                    hidden[REASON_OTHER] -= 1
        return [(reason, count) for reason, count in hidden.most_common() if count > 0]

    @property
    def errors(self) -> list[RowError]:
        """The errors of the rejected rows kept in full."""
        return [error for row in self.rejected for error in row.errors]

    def summary(self, max_errors: int = 50) -> str:
        label = schema_for(self.side).label
        lines = [
            f"导入{label}《{self.source}》：共 {self.total_rows} 行，新增 {self.created} 条，"
            f"更新 {self.updated} 条，未变 {self.unchanged} 条，拒绝 {self.rejected_total} 行。"
        ]
        if self.rejected_total and not self.written:
            lines.append(
                f"文件中有 {self.rejected_total} 行有错误，未导入任何数据。请修改后重新导入："
            )
        elif self.rejected_total:
            lines.append("以下行未导入：")
        errors = self.errors
        named = [(error, row.name) for row in self.rejected for error in row.errors]
        lines.extend(f"  {error}" + (f"（{name}）" if name else "")
                     for error, name in named[:max_errors])
        if len(errors) > max_errors:
            lines.append(f"  ……另有 {len(errors) - max_errors} 处错误未列出")
        if self.hidden_total:
            lines.append(f"  ……另有 {self.hidden_total:,} 行未逐行列出：" + "；".join(
                f"{reason} {count:,} 行" for reason, count in self.hidden_by_reason()))
        if self.rejects_path is not None:
            lines.append(f"被拒绝的行已写入 {self.rejects_path}")
        if self.unknown_columns:
            lines.append("未识别的列（已忽略）：" + "、".join(self.unknown_columns))
        if self.organisations_created:
            lines.append("新建单位：" + "、".join(self.organisations_created))
        return "\n".join(lines)
