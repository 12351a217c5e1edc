"""The command line: `python -m corpora.importer FILE --side need|result ...`.

Exit status 0 when the file was imported, 1 when rows were rejected (nothing imported; the
report goes to stderr), 2 when the file as a whole cannot be imported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from corpora.db import create_engine_for, session_scope, upgrade
from corpora.importer.imports import import_file
from corpora.importer.report import ImportFileError, RowsRejected
from settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m corpora.importer",
        description="导入技术需求或科技成果（JSONL / CSV / XLSX）",
    )
    parser.add_argument("path", type=Path)
    parser.add_argument("--side", choices=("need", "result"), required=True,
                        help="need = 技术需求, result = 科技成果")
    parser.add_argument("--keep-valid", action="store_true",
                        help="导入正确的行，错误行写入拒绝文件")
    parser.add_argument("--rejects", type=Path, help="拒绝文件路径（默认与源文件同目录）")
    parser.add_argument("--organisation", help="行中未写单位时使用的单位名称")
    parser.add_argument("--database-url", help="默认：DATABASE_URL 或 MATCHER_HOME 下的 SQLite")
    args = parser.parse_args(argv)

    url = args.database_url or Settings.from_env().database_url
    upgrade(url)
    engine = create_engine_for(url)
    try:
        with session_scope(engine) as session:
            report = import_file(
                session, args.path, args.side, keep_valid=args.keep_valid,
                rejects_path=args.rejects, organisation=args.organisation,
            )
    except RowsRejected as rejected:
        print(rejected.report.summary(max_errors=200), file=sys.stderr)
        return 1
    except ImportFileError as error:
        print(f"无法导入：{error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(report.summary())
    return 0
