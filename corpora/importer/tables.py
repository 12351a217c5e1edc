"""What the readers share: a file's rows as raw values (`SourceRow`, `SourceTable`), its text
decoded (UTF-8, or GBK/GB18030 as Excel on Chinese Windows saves a CSV), and a tabular file's
header mapped to fields.

Each row keeps its line number, the values as written in the file (for the rejects file) and
the values under their canonical field names; problems found while reading (two columns for one
field, a record the reader could not split) travel with the row.
"""

from __future__ import annotations

import codecs
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from charset_normalizer import from_bytes

from corpora.importer.report import ImportFileError
from corpora.schema import RowError, SideSchema, is_blank


@dataclass(slots=True)
class SourceRow:
    line: int
    original: dict[str, Any]  # column (as written in the file) → value
    fields: dict[str, Any]  # canonical field name → raw value
    problems: list[RowError] = field(default_factory=list)  # found while reading
    raw_text: str | None = None  # a JSONL line that did not parse, a CSV record that did not


@dataclass
class SourceTable:
    """A file's rows. `read_source` gives them as a list; `stream_source` (what the import
    uses) as a one-pass iterator, read as it is iterated, so that memory does not grow with
    the file: headless columns found on the way are added to `unknown_columns` at its end,
    and `close` releases the file (an open workbook) if iteration stops early."""

    format: str  # "jsonl" | "csv" | "xlsx" | "records"
    rows: list[SourceRow] | Iterator[SourceRow]
    columns: list[str] = field(default_factory=list)  # tabular formats: the header
    unknown_columns: list[str] = field(default_factory=list)

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


# What charset-normalizer may call a Chinese file: all are read as GB18030, their superset
# (a GBK file never holds a byte sequence GB18030 reads differently).
GB_FAMILY = frozenset({"gb2312", "gbk", "gb18030", "cp936", "hz"})


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM); else GB18030 when charset-normalizer finds the bytes are
    Chinese in the GB family (GBK, GB2312, GB18030: what Excel on Chinese Windows saves as
    "CSV"); any other encoding is refused with advice. Stray invalid bytes in an otherwise
    UTF-8 file become U+FFFD, so the rows holding them are rejected."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(f"《{name}》是 UTF-16 编码；请另存为 UTF-8（Excel：“CSV UTF-8”）。")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data):
        return data.decode("utf-8", errors="replace")
    best = from_bytes(data).best()
    if best is not None and best.encoding in GB_FAMILY:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            pass  # a damaged GB file: refused below rather than read as mojibake
    found = f"（检测结果：{best.encoding}）" if best is not None else ""
    raise ImportFileError(
        f"《{name}》的编码无法识别为 UTF-8 或 GBK/GB18030{found}。"
        "请用 UTF-8 重新保存（Excel：另存为“CSV UTF-8（逗号分隔）”）后再导入。"
    )


def _mostly_utf8(data: bytes) -> bool:
    # A UTF-8 file with a few damaged bytes has non-ASCII lines that are valid UTF-8; a GBK
    # file has none. Only the second is a whole file in another encoding.
    for line in data.splitlines():
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def _map_columns(
    schema: SideSchema, columns: Sequence[str]
) -> tuple[dict[int, str], list[str]]:
    """Header → (column index → canonical field, unknown column names)."""
    mapping: dict[int, str] = {}
    seen: dict[str, str] = {}
    unknown: list[str] = []
    for index, column in enumerate(columns):
        if is_blank(column):
            continue
        spec = schema.field_for_column(str(column))
        if spec is None:
            unknown.append(str(column))
            continue
        if spec.name in seen:
            raise ImportFileError(
                f"列「{seen[spec.name]}」和「{column}」都对应字段「{spec.label}」，请删去其中一列。"
            )
        seen[spec.name] = str(column)
        mapping[index] = spec.name
    if not mapping:
        raise ImportFileError(
            "第一行不是可识别的表头：没有一个列名是已知字段（如 标题/title）。"
            "可用的列名见导入格式说明（上传页的“列说明”，或 docs/import-format.md）。"
        )
    missing = [spec for spec in schema.required if spec.name not in seen]
    if missing:
        names = "、".join(f"{spec.label}（{spec.aliases[-1]}）" for spec in missing)
        raise ImportFileError(f"表头缺少必需的列：{names}。")
    return mapping, unknown


Cells = Sequence[Any] | Mapping[int, Any]  # a row's cells: dense, or column index → value


def tabular_table(
    schema: SideSchema, numbered_cells: Iterable[tuple[int, Cells]], format_name: str
) -> SourceTable:
    """Rows of cells (line number, values) whose first non-blank row is the header. The
    header is read now (its problems are the whole file's); the rows are read as the table's
    `rows` is iterated, once, so a file is never held in memory as rows."""
    iterator = iter(numbered_cells)
    header: list[str] | None = None
    for _line, cells in iterator:
        if isinstance(cells, Mapping):
            cells = [cells.get(index) for index in range(max(cells, default=-1) + 1)]
        if any(not is_blank(cell) for cell in cells):
            header = ["" if cell is None else str(cell).strip() for cell in cells]
            break
    if header is None:
        raise ImportFileError("文件为空：没有表头，也没有数据。")
    mapping, unknown = _map_columns(schema, header)
    # Duplicate unknown names are kept apart in the rejects file: "备注", "备注#2".
    names: list[str] = []
    for index, column in enumerate(header):
        name = column or f"(第{index + 1}列)"
        copy = 2
        while name in names:
            name = f"{column}#{copy}"
            copy += 1
        names.append(name)
    table = SourceTable(format_name, [], columns=names, unknown_columns=unknown)
    table.rows = _tabular_rows(iterator, header, names, mapping, table)
    return table


def _tabular_rows(
    iterator: Iterator[tuple[int, Cells]], header: list[str], names: list[str],
    mapping: dict[int, str], table: SourceTable,
) -> Iterator[SourceRow]:
    headless_with_data: set[str] = set()
    any_rows = False
    width = len(names)
    mapped = sorted(mapping.items())
    field_names = [name for _index, name in mapped]
    pick = operator.itemgetter(*(index for index, _name in mapped))  # one field at least
    if len(mapped) == 1:
        single = pick
        pick = lambda cells: (single(cells),)  # noqa: E731 - itemgetter of one gives no tuple
    headless = [index for index, column in enumerate(header) if not column]
    padding = [None] * width
    previous: tuple[list[Any], SourceRow] | None = None
    for line, cells in iterator:
        if type(cells) is list and len(cells) <= width:
            # A CSV row (text cells, no wider than the header): the common case, built with
            # as little Python per cell as can be, since a 5 MB upload may hold 2.6 million.
            if previous is not None and cells == previous[0]:
                # The same cells as the row before: the same (read-only) values, so that a
                # checker may recognise them by identity.
                yield SourceRow(line, previous[1].original, previous[1].fields)
                continue
            if not "".join(cells).strip():
                continue
            raw = cells
            if len(cells) < width:
                # A short row: trailing cells left off are blank.
                cells = cells + padding[len(cells):]
            for index in headless:
                if not is_blank(cells[index]):
                    headless_with_data.add(names[index])
            any_rows = True
            row = SourceRow(line, dict(zip(names, cells, strict=True)),
                            dict(zip(field_names, pick(cells), strict=True)))
            previous = (raw, row)
            yield row
            continue
        if isinstance(cells, ProblemRow):
            any_rows = True
            yield SourceRow(line, {}, {}, [cells.problem], raw_text=cells.raw_text)
            continue
        if all(is_blank(cell) for cell in (
                cells.values() if isinstance(cells, Mapping) else cells)):
            continue
        pairs = cells.items() if isinstance(cells, Mapping) else enumerate(cells)
        original = {}
        values = {}
        for index, cell in pairs:
            if index >= width:
                if is_blank(cell):
                    continue
                name = f"(第{index + 1}列)"
                headless_with_data.add(name)
            else:
                name = names[index]
                if not header[index] and not is_blank(cell):
                    headless_with_data.add(name)
            original[name] = cell
            if index in mapping:
                values[mapping[index]] = cell
        for index, field_name in mapping.items():
            # A short CSV row (trailing cells left off) has those fields blank.
            values.setdefault(field_name, None)
            original.setdefault(names[index], None)
        any_rows = True
        yield SourceRow(line, original, values)
    if not any_rows:
        raise ImportFileError("文件只有表头，没有数据行。")
    table.unknown_columns.extend(f"{name}（无表头）" for name in sorted(headless_with_data))


@dataclass(frozen=True)
class ProblemRow:
    """A record the reader could not split into cells (a CSV quote left open): reported as
    a bad row at the line it starts on, with its text as read."""

    problem: RowError
    raw_text: str
