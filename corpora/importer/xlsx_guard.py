"""What an .xlsx may contain, checked before openpyxl opens it: zip bombs, macros (an .xlsm
renamed), external links and data connections, XML parts that declare a DOCTYPE or
entities, and cells or rows beyond Excel's own limits are refused with a message that says
why."""

from __future__ import annotations

import codecs
import re
import xml.parsers.expat
import zipfile
import zlib
from pathlib import Path

from corpora.importer.report import ImportFileError, ImportProblem

# An .xlsx is a zip of XML parts. openpyxl would inflate whatever the zip holds and parse it,
# so the zip directory is inspected first. The sizes it declares can be trusted as bounds:
# Python's zipfile never returns more than a member's declared size (a member that inflates
# further fails its CRC check), so a lying directory cannot make us inflate more.
# Total uncompressed size: generous for real spreadsheets (XML is verbose; a 5 MB upload
# rarely inflates past 50 MB), far below what a zip bomb unpacks to.
XLSX_MAX_UNCOMPRESSED = 100 * 1024 * 1024
# Inflation ratio refused for the whole archive and for any member over XLSX_RATIO_MIN_BYTES:
# real sheets compress 5-30 times; a bomb compresses thousands of times.
XLSX_MAX_RATIO = 100
XLSX_RATIO_MIN_BYTES = 1024 * 1024
XLSX_MAX_MEMBERS = 10_000
# How much of each XML part's start is read to check its prolog (no DOCTYPE / entities).
XLSX_PROLOG_BYTES = 64 * 1024
_MACRO_MARKERS = ("vbaproject", "macroenabled", "activex")
# External workbook links (and DDE), and data connections / web queries that refresh from
# outside when the file is opened in Excel.
_EXTERNAL_MARKERS = ("externallink", "connections.xml", "connections+xml", "querytable")
# What reading a damaged zip member can raise (CRC, truncation, encryption, odd methods).
ZIP_READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError,
                   ValueError, zlib.error)
# Excel's sheet: rows 1..1,048,576, columns A..XFD. A reference beyond them is no Excel file;
# it is how a 1.6 KB file asked openpyxl for millions of empty cells. A row may hold at most
# one element per column: more, and openpyxl would build the whole row in memory first.
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384
# Sheet XML is read in pieces of this size: memory stays flat whatever the part's size.
SCAN_CHUNK_BYTES = 64 * 1024
_CELL_REFERENCE = re.compile(r"([A-Za-z]+)([0-9]+)")
NOT_XLSX = ("不是有效的 XLSX 文件（文件已损坏，或并非 Excel 2007 及以后的 .xlsx 格式；"
            "旧版 .xls 请在 Excel 中另存为 .xlsx）。")


def xlsx_problem(path: Path, message: str) -> ImportFileError:
    return ImportFileError(f"《{path.name}》{message}")


def _xml_prolog_problem(head: bytes) -> str | None:
    """None if the XML part starts with an ordinary prolog (declaration, comments,
    processing instructions) and then its root element; a reason otherwise. OOXML never
    uses a DOCTYPE, and entity declarations are how "billion laughs" files blow up."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head[1:2] == b"\x00" \
            or head[:1] == b"\x00":
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        rest = text[position:]
        if rest.startswith("<?"):
            end = text.find("?>", position)
        elif rest.startswith("<!--"):
            end = text.find("-->", position)
        elif rest.startswith("<!"):
            return "含有 DOCTYPE 或实体声明"
        elif len(rest) >= 2 and rest[0] == "<" and (rest[1].isalpha() or rest[1] in "_:"):
            return None
        else:
            return "不是正常的 XML 部件"
        if end < 0:
            return "XML 部件的开头过长或不完整"
        position = end + 2


class _OutOfSheet(Exception):
    """A row or cell beyond Excel's limits; the message says which."""


class _SheetScan:
    """Expat callbacks that follow the rows and cells of a `<sheetData>` the way openpyxl
    numbers them (a row without `r` follows the previous one, a cell without `r` the previous
    cell) and stop at the first one beyond Excel's limits. Nothing is kept but counters, so
    a part of any size is scanned in constant memory and linear time."""

    def __init__(self) -> None:
        self.in_sheet_data = False
        self.seen_sheet_data = False
        self.row = 0
        self.column = 0
        self.cells_in_row = 0

    def start(self, name: str, attributes: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        if local == "sheetData":
            self.in_sheet_data = self.seen_sheet_data = True
        elif not self.in_sheet_data:
            return
        elif local == "row":
            self._row(attributes.get("r"))
        elif local == "c":
            self._cell(attributes.get("r"))

    def end(self, name: str) -> None:
        if name.rpartition(" ")[2] == "sheetData":
            self.in_sheet_data = False

    def _row(self, reference: str | None) -> None:
        if reference is None:
            self.row += 1
        else:
            try:
                number = float(reference.strip())
            except ValueError:
                raise _OutOfSheet(f"行号「{reference[:20]}」无效") from None
            if not number.is_integer() or number < 1:
                raise _OutOfSheet(f"行号「{reference[:20]}」无效")
            self.row = int(min(number, EXCEL_MAX_ROWS + 1))
        self._check_row(self.row)
        self.column = 0
        self.cells_in_row = 0

    def _cell(self, reference: str | None) -> None:
        self.cells_in_row += 1
        if self.cells_in_row > EXCEL_MAX_COLUMNS:
            raise _OutOfSheet(f"第 {self.row:,} 行的单元格多于 Excel 的上限 "
                              f"{EXCEL_MAX_COLUMNS:,} 列")
        if reference is None:
            self.column += 1
        else:
            match = _CELL_REFERENCE.fullmatch(reference.strip())
            if match is None:
                raise _OutOfSheet(f"单元格引用「{reference[:20]}」无效")
            letters, digits = match.groups()
            if len(letters) > 3:
                self.column = EXCEL_MAX_COLUMNS + 1
            else:
                self.column = 0
                for letter in letters.upper():
                    self.column = self.column * 26 + ord(letter) - ord("A") + 1
            if self.column > EXCEL_MAX_COLUMNS:
                raise _OutOfSheet(f"有单元格 {reference[:20]}，超出 Excel 的上限 "
                                  f"{EXCEL_MAX_COLUMNS:,} 列（最后一列是 XFD）")
            self._check_row(int(digits) if len(digits) <= 8 else EXCEL_MAX_ROWS + 1,
                            reference)
        if self.column > EXCEL_MAX_COLUMNS:
            raise _OutOfSheet(f"第 {self.row:,} 行的单元格超出 Excel 的上限 "
                              f"{EXCEL_MAX_COLUMNS:,} 列（最后一列是 XFD）")

    @staticmethod
    def _check_row(row: int, reference: str | None = None) -> None:
        if row > EXCEL_MAX_ROWS:
            where = f"有单元格 {reference[:20]}" if reference else "有一行的行号"
            raise _OutOfSheet(f"{where}超出 Excel 的上限 {EXCEL_MAX_ROWS:,} 行")
        if row < 1:
            raise _OutOfSheet(f"单元格引用「{(reference or '')[:20]}」无效")


def _scan_sheet_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    """A reason if the part's `<sheetData>` holds a row or cell beyond Excel's limits."""
    scan = _SheetScan()
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(SCAN_CHUNK_BYTES):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _OutOfSheet as problem:
        return str(problem)
    except LookupError:
        # `<?xml … encoding="UTF-4"?>`: expat asks Python for a codec that does not exist
        # (found by the fuzzer: it was a 500 on upload).
        return "声明了无法识别的字符编码"
    except xml.parsers.expat.ExpatError:
        # Broken XML in a sheet is broken for openpyxl too; elsewhere openpyxl may never read
        # the part, and the prolog check already refused the dangerous kinds of XML.
        return "不是完整的 XML" if scan.seen_sheet_data else None
    return None


def check_xlsx_archive(path: Path) -> None:
    """Refuse, with a clear message, an .xlsx that is a zip bomb, carries macros (an .xlsm
    renamed), links to other files, declares XML entities, or has rows or cells beyond
    Excel's limits; before openpyxl parses any of its XML."""
    try:
        archive = zipfile.ZipFile(path)
    except ZIP_READ_ERRORS as error:
        raise xlsx_problem(path, NOT_XLSX) from error
    try:
        with archive:
            _check_members(path, archive)
    except ImportProblem:
        raise
    except ZIP_READ_ERRORS as error:
        raise xlsx_problem(path, NOT_XLSX) from error


def _check_members(path: Path, archive: zipfile.ZipFile) -> None:
    members = archive.infolist()
    if len(members) > XLSX_MAX_MEMBERS:
        raise xlsx_problem(path, f"包含 {len(members)} 个部件，超过上限 {XLSX_MAX_MEMBERS}，"
                                 "不像正常的 Excel 文件，已拒绝。")
    total = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    swollen = [member for member in members if member.file_size > XLSX_RATIO_MIN_BYTES
               and member.file_size > XLSX_MAX_RATIO * max(member.compress_size, 1)]
    if total > XLSX_MAX_UNCOMPRESSED or swollen or (
            total > XLSX_RATIO_MIN_BYTES and total > XLSX_MAX_RATIO * max(packed, 1)):
        raise xlsx_problem(
            path, f"解压后共 {total / 1024 / 1024:,.0f} MB（压缩前 "
            f"{packed / 1024 / 1024:,.1f} MB），超过上限 "
            f"{XLSX_MAX_UNCOMPRESSED // 1024 // 1024} MB 或压缩比异常（可能是“压缩炸弹”），"
            "已拒绝。请删去无关的工作表、图片后另存，或分成几个文件导入。")
    names = [member.filename.replace("\\", "/").lower() for member in members]
    content_types = ""
    if "[content_types].xml" in names:
        info = members[names.index("[content_types].xml")]
        with archive.open(info) as handle:
            content_types = handle.read(XLSX_PROLOG_BYTES * 4).decode(
                "utf-8", errors="replace").lower()
    relations = ""
    for info, name in zip(members, names, strict=True):
        if name.endswith(".rels"):
            with archive.open(info) as handle:
                relations += handle.read(XLSX_PROLOG_BYTES).decode(
                    "utf-8", errors="replace").lower()
    if any(marker in name for name in names for marker in _MACRO_MARKERS) or \
            any(marker in content_types for marker in _MACRO_MARKERS):
        raise xlsx_problem(
            path, "含有宏（VBA）或 ActiveX 控件，是启用宏的工作簿（.xlsm）改名而来。为安全起见"
            "不予导入：请在 Excel 中另存为“Excel 工作簿（*.xlsx）”后再上传。")
    if any(marker in text for text in (content_types, relations, *names)
           for marker in _EXTERNAL_MARKERS):
        raise xlsx_problem(
            path, "含有指向其他文件的外部链接（外部引用、DDE 或数据连接）。为安全起见不予导入："
            "请在 Excel 中用“数据 → 编辑链接 → 断开链接”并删除数据连接，保存后再上传。")
    for info, name in zip(members, names, strict=True):
        if not name.endswith((".xml", ".rels")) or info.is_dir():
            continue
        with archive.open(info) as handle:
            problem = _xml_prolog_problem(handle.read(XLSX_PROLOG_BYTES))
        if problem:
            raise xlsx_problem(path, f"的部件 {info.filename} {problem}，不是正常的 Excel "
                                     "文件，已拒绝。")
    # Only once every part is known to be plain XML: the sheets' rows and cells. Every XML
    # part is scanned, not only xl/worksheets/, since the workbook may name any part a sheet.
    for info, name in zip(members, names, strict=True):
        if not name.endswith(".xml") or info.is_dir():
            continue
        problem = _scan_sheet_part(archive, info)
        if problem:
            raise xlsx_problem(path, f"的工作表 {info.filename} {problem}，不是正常的 Excel "
                                     f"文件，已拒绝（Excel 最多 {EXCEL_MAX_ROWS:,} 行、"
                                     f"{EXCEL_MAX_COLUMNS:,} 列）。")
