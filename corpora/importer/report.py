"""What an import tells its caller: the report of what it did, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpora.schema import RowError, schema_for
from matcher.types import Side


class ImportProblem(ValueError):
    """Base of the importer's errors: the message is meant for the user (Chinese)."""


class ImportFileError(ImportProblem):
    """The file as a whole cannot be imported: wrong type, empty, no header, wrong encoding."""


class RowsRejected(ImportProblem):
    """Some rows are bad, so nothing was imported; `report` lists every bad row."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.summary())
        self.report = report


@dataclass
class RejectedRow:
    line: int
    original: dict[str, Any]  # the row as it was in the file: column → value
    errors: list[RowError]

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
    rejected: list[RejectedRow] = field(default_factory=list)
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

    @property
    def errors(self) -> list[RowError]:
        return [error for row in self.rejected for error in row.errors]

    def summary(self, max_errors: int = 50) -> str:
        label = schema_for(self.side).label
        lines = [
            f"导入{label}《{self.source}》：共 {self.total_rows} 行，新增 {self.created} 条，"
            f"更新 {self.updated} 条，未变 {self.unchanged} 条，拒绝 {len(self.rejected)} 行。"
        ]
        if self.rejected and not self.written:
            lines.append(
                f"文件中有 {len(self.rejected)} 行有错误，未导入任何数据。请修改后重新导入："
            )
        elif self.rejected:
            lines.append("以下行未导入：")
        errors = self.errors
        lines.extend(f"  {error}" for error in errors[:max_errors])
        if len(errors) > max_errors:
            lines.append(f"  ……另有 {len(errors) - max_errors} 处错误未列出")
        if self.rejects_path is not None:
            lines.append(f"被拒绝的行已写入 {self.rejects_path}")
        if self.unknown_columns:
            lines.append("未识别的列（已忽略）：" + "、".join(self.unknown_columns))
        if self.organisations_created:
            lines.append("新建单位：" + "、".join(self.organisations_created))
        return "\n".join(lines)
