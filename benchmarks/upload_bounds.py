"""What one upload costs the worker: time and peak memory growth of `POST /results/upload`.

    .venv/bin/python benchmarks/upload_bounds.py [--cases normal empty600k ...] [--api]

Each case runs in a fresh child process (a seeded SQLite site, the fake encoder, the Flask test
client of the upload page, signed in as an office), so one case's heap cannot hide another's.
Peak memory is the growth of the child's resident set during the upload alone: the kernel's
high-water mark (VmHWM) is reset through /proc/self/clear_refs just before the request, and
read just after it.

The cases, each beside the normal file as the baseline:
- normal: 100 good rows (imported);
- empty600k: 600,000 rows whose abstract is empty (1.8 MB; rejected);
- bad5mb: the 5 MB upload cap filled with the shortest bad row there is (`a`, no abstract);
- distinct5mb: the 5 MB cap filled with short bad rows that all differ (`1`, `2`, ...);
- valid5mb: the 5 MB cap filled with distinct, short, good rows (refused: too many rows);
- quote5mb: one unclosed quote at the top of 5 MB of good rows (refused);
- xlsxfull: an .xlsx of a million rows, each one bad cell (rejected).
`--api` sends the same files to `POST /api/v1/results/import` instead.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import queue as queue_module
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CAP = 5 * 1024 * 1024 - 4096  # the upload cap, less the multipart framing
HEADER = "成果名称,摘要\n"


def _fill(row: str | None, make=None) -> bytes:  # noqa: ANN001 - a row factory
    parts = [HEADER.encode()]
    size = len(parts[0])
    number = 0
    while True:
        text = (row if make is None else make(number)).encode()
        if size + len(text) > CAP:
            break
        parts.append(text)
        size += len(text)
        number += 1
    return b"".join(parts)


def _xlsx_full_sheet() -> bytes:
    """A million rows (near Excel's 1,048,576 and the 5 MB cap), each one bad cell: about the
    most rows an .xlsx upload can make us check."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["成果名称", "摘要"])
    for _ in range(1_000_000):
        sheet.append(["a"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _normal() -> bytes:
    rows = "".join(f"机器人视觉定位方法第{i}号,一种基于深度学习的工业机器人视觉定位方法，"
                   f"定位误差小于0.{i % 10}毫米。\n" for i in range(100))
    return (HEADER + rows).encode()


CASES = {
    "normal": _normal,
    "empty600k": lambda: (HEADER + "a,\n" * 600_000).encode(),
    "bad5mb": lambda: _fill("a\n"),
    "distinct5mb": lambda: _fill(None, lambda n: f"{n}\n"),
    "valid5mb": lambda: _fill(None, lambda n: f"{n},{n}\n"),
    "xlsxfull": _xlsx_full_sheet,
    "quote5mb": lambda: (HEADER + '甲成果,"第一行摘要，引号没有闭合\n').encode()
    + _fill(None, lambda n: f"{n},{n}\n")[len(HEADER.encode()):],
}


def _status_kb(name: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{name}:\s+(\d+) kB", text, re.M).group(1))


def _run_case(case: str, api: bool, queue: multiprocessing.Queue) -> None:
    from tests.support.web import make_site

    data = CASES[case]()
    with tempfile.TemporaryDirectory() as folder:
        site = make_site(f"sqlite:///{folder}/bench.sqlite", Path(folder) / "home",
                         WTF_CSRF_ENABLED=False)
        client = site.client("office_u1")
        url = "/api/v1/results/import" if api else "/results/upload"
        # Warm the route once (templates, imports), so the figure is the upload's own.
        client.post(url, data={"file": (io.BytesIO(_normal()[:40]), "warm.csv")},
                    content_type="multipart/form-data")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _status_kb("VmRSS")
        started = time.perf_counter()
        name = f"{case}.xlsx" if data[:2] == b"PK" else f"{case}.csv"
        response = client.post(url, data={"file": (io.BytesIO(data), name)},
                               content_type="multipart/form-data")
        seconds = time.perf_counter() - started
        peak = _status_kb("VmHWM")
        body = response.get_data()
        site.app.extensions["matcher.engine"].dispose()
    queue.put({"case": case, "bytes": len(data), "status": response.status_code,
               "seconds": seconds, "peak_growth_mb": (peak - before) / 1024,
               "answer_kb": len(body) / 1024})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--api", action="store_true", help="POST /api/v1/results/import")
    args = parser.parse_args()
    cases = ["normal", *[case for case in args.cases if case != "normal"]]
    context = multiprocessing.get_context("spawn")
    results = []
    for case in cases:
        queue = context.Queue()
        child = context.Process(target=_run_case, args=(case, args.api, queue))
        child.start()
        while True:
            try:
                results.append(queue.get(timeout=2))
                break
            except queue_module.Empty:
                if not child.is_alive():
                    print(f"{case}: the child process failed (exit {child.exitcode})",
                          file=sys.stderr)
                    return 1
        child.join()
    base = results[0]
    print(f"{'case':<12} {'file':>8} {'status':>6} {'time':>8} {'× normal':>9} "
          f"{'peak +RSS':>10} {'answer':>9}")
    for row in results:
        print(f"{row['case']:<12} {row['bytes'] / 1024 / 1024:>6.2f}MB {row['status']:>6} "
              f"{row['seconds']:>7.2f}s {row['seconds'] / base['seconds']:>8.1f}x "
              f"{row['peak_growth_mb']:>8.1f}MB {row['answer_kb']:>7.0f}KB")
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
