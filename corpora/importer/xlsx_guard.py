"""What an .xlsx may contain, checked before openpyxl opens it: zip bombs, macros (an .xlsm
renamed), external links and data connections, and XML parts that declare a DOCTYPE or
entities are refused with a message that says why."""

from __future__ import annotations

import codecs
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


def check_xlsx_archive(path: Path) -> None:
    """Refuse, with a clear message, an .xlsx that is a zip bomb, carries macros (an .xlsm
    renamed), links to other files, or declares XML entities; before any XML is parsed."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
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
