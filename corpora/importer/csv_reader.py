"""Reading a CSV file: strict quoting, so a quote left open is a bad row, never a cell that
quietly swallows the rows after it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from corpora.importer.report import ImportFileError
from corpora.importer.tables import ProblemRow, SourceTable, decode_text, tabular_table
from corpora.schema import RowError, SideSchema, is_blank


def _csv_problem(error: csv.Error) -> str:
    """The csv module's English message, said in Chinese where we know it."""
    text = str(error)
    if "field larger than field limit" in text:
        return f"某个单元格超过 {csv.field_size_limit():,} 个字符（可能缺少一个结束引号）"
    if "new-line character seen in unquoted field" in text:
        return "未加引号的单元格中有换行符（请用引号括起含换行的单元格）"
    if "NUL" in text or "line contains NUL" in text:
        return "文件中含有 NUL 字符（可能不是文本文件）"
    if "unexpected end of data" in text:
        return UNCLOSED_QUOTE
    if "expected after" in text:
        return (f"{UNCLOSED_QUOTE}（结束引号后应紧跟逗号或换行；单元格内的引号须写成两个 \"\"）")
    return f"无法解析（{text}）"


# A quote opened in a cell and never closed takes every following line into that cell: the
# file's next rows silently become one abstract. The record it starts is refused instead.
UNCLOSED_QUOTE = ("引号没有闭合：从此行开始的带引号单元格一直没有结束引号，"
                  "后面的行都被并入了这个单元格")
SWALLOWED_LINE = ("引号可能没有闭合：此行开始的带引号单元格跨越了多行，而其中第 {line} 行本身就是"
                  "完整的一行数据（{width} 列）。若确是单元格内的换行，请检查引号是否成对")
# Text of a refused record kept for the rejects file (a swallowed file could be megabytes).
RAW_TEXT_MAX = 2_000


class _Lines:
    """The physical lines the csv reader takes, remembered until the record they make is
    handed on: what a refused record's text is, and what the open-quote check looks at."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.taken: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        return line

    def hand_on(self) -> list[str]:
        taken, self.taken = self.taken, []
        return taken


def _swallowed_line(lines: list[str], width: int) -> int | None:
    """The offset of a continuation line of a multi-line record that is by itself a complete
    record of the header's width, or None. A cell's own line breaks rarely leave exactly
    width - 1 bare commas on a line; an open quote's swallowed rows always do. Narrow headers
    (fewer than 3 columns) are left alone: one comma in an abstract would look like a row."""
    if len(lines) < 2 or width < 3:
        return None
    for offset, line in enumerate(lines[1:], start=1):
        if '"' in line:
            continue
        cells = next(csv.reader([line.rstrip("\r\n")]), [])
        if len(cells) == width and not is_blank(cells[0]):
            return offset
    return None


def read_csv(schema: SideSchema, data: bytes, name: str) -> SourceTable:
    return tabular_table(schema, _csv_records(decode_text(data, name)), "csv")


def _csv_records(text: str) -> Iterator[tuple[int, list[str] | ProblemRow]]:
    """(line the record starts on, its cells) for each CSV record. strict: a quote closed
    and then followed by text, or still open at the end of the file, is an error, not a
    cell that quietly runs on; either is a bad row at the line its record starts on."""
    lines = _Lines(text)
    reader = csv.reader(lines, strict=True)
    end_of_previous = 0
    width: int | None = None
    while True:
        start = end_of_previous + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            taken = lines.hand_on()
            raw = "".join(taken)[:RAW_TEXT_MAX]
            if end_of_previous == 0 or width is None:
                raise ImportFileError(
                    f"第 {start} 行附近 CSV 格式错误：{_csv_problem(error)}") from error
            yield start, ProblemRow(RowError(start, None, "整行", _csv_problem(error)), raw)
            end_of_previous = reader.line_num
            continue
        taken = lines.hand_on()
        end_of_previous = reader.line_num
        if width is None:
            if any(not is_blank(cell) for cell in cells):
                width = len(cells)  # the header
        else:
            swallowed = _swallowed_line(taken, width)
            if swallowed is not None:
                message = SWALLOWED_LINE.format(line=start + swallowed, width=width)
                raw = "".join(taken)[:RAW_TEXT_MAX]
                yield start, ProblemRow(RowError(start, None, "整行", message), raw)
                continue
        # A quoted cell may span lines: a row is numbered by the line it starts on.
        yield start, cells
