"""benchmarks/load.py's load beside hostile traffic: slow clients and hostile uploads.

    .venv/bin/python benchmarks/hostile_load.py [--users 50] [--think 5] [--duration 30]
        [--warmup 20] [--limit 1000] [--slow 100] [--upload-rounds 1] [--seed 60]

Builds its own small demo site in a temporary MATCHER_HOME (`flask setup-demo --limit N`, the
fake encoder: what is measured is serving, not encoding) and serves it the way run.sh does
(`python -m web.serve`, waitress). Then it runs, each on a freshly started server:

1. baseline: load.py's virtual users (50 users, think time 5 s, full mix), nothing else;
2. hostile: the same load while (a) `--slow` connections that never finish their request are
   held open (a partial request line, headers without the blank line, a body shorter than its
   Content-Length; each sends one more byte every 10 s, and any the server closes is opened
   again, as an attacker would) and (b) one office account posts hostile files to the upload
   page, one after the other, once each when the counted period starts (`--upload-rounds N`:
   N times each; 0: back to back until the end): an XLSX that declares
   `<dimension ref="A1:XFD60000"/>` with a header and one row at row 60,000 (1.6 KB), a CSV of
   600,000 rows with empty abstracts (1.8 MB), and a CSV with a quote left open.

In both, over the counted period, a probe sends a fresh `GET /login` every second (the
slow-client probe of tests/system/test_slow_clients.py) and counts answers slower than 1 s. The
warm-up is long (20 s) because the 50 sign-ins (password hashing) come first. The same probe,
on its own, runs against waitress and against gunicorn gthread (1 worker, 8 threads: what
run.sh served with before) holding the same slow connections, for comparison. Printed: load.py's
table and targets for both runs, the probe's figures, every hostile upload (status, seconds,
size of the answer), the server's peak resident memory, and the errors of each.
About three minutes with the defaults.

Exit status 0 when the hostile run has no errors and meets load.py's targets.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import (  # noqa: E402
    CSRF,
    DEMO_PASSWORD,
    MIXES,
    Client,
    check_targets,
    discover,
    percentile,
    report,
    run_load,
)

REPO = Path(__file__).resolve().parent.parent
PROBE_EVERY_S = 1.0
PROBE_TIMEOUT_S = 5.0
PROBE_BOUND_S = 1.0  # tests/system/test_slow_clients.py's bound
UPLOAD_TIMEOUT_S = 120.0
TRICKLE_EVERY_S = 10.0
UPLOADER = "office"  # a demo account that may upload results
PARTIAL_REQUESTS = (
    b"GET /lo",
    b"GET /login HTTP/1.1\r\n",
    b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow",
    b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
    b"\r\nContent-Length: 1000000\r\n\r\nusername=",
)


# --- the hostile files ---------------------------------------------------------------------


def wide_xlsx() -> bytes:
    """A sheet that declares A1:XFD60000 and holds a header and one row, at row 60,000."""
    def cell(ref: str, text: str) -> str:
        return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'

    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<dimension ref="A1:XFD60000"/><sheetData>'
        f'<row r="1">{cell("A1", "标题")}{cell("B1", "摘要")}</row>'
        f'<row r="60000">{cell("A60000", "远处的成果")}'
        f'{cell("B60000", "一行在第六万行的成果摘要，前面全是空行。")}</row>'
        '</sheetData></worksheet>')
    parts = {
        "[Content_Types].xml":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="成果" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def empty_abstracts_csv(rows: int = 600_000) -> bytes:
    """A header and `rows` rows with a title and an empty abstract: 1.8 MB."""
    return ("title,abstract\n" + "t,\n" * rows).encode("utf-8")


def unclosed_quote_csv() -> bytes:
    """An abstract whose quote is never closed, then two good rows it would swallow."""
    return ("标题,摘要\n"
            '甲成果,"第一行摘要，引号没有闭合\n'
            "乙成果,第二行摘要：一种用于工业机器人的视觉定位方法\n"
            "丙成果,第三行摘要：一种锂电池正极材料的包覆工艺\n").encode()


HOSTILE_FILES = (
    ("wide.xlsx", wide_xlsx),
    ("empty-abstracts.csv", empty_abstracts_csv),
    ("unclosed-quote.csv", unclosed_quote_csv),
)


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(kind: str, port: int, threads: int = 8) -> list[str]:
    if kind == "gunicorn":  # what run.sh served with before issue 12
        return [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", str(threads),
                "--bind", f"127.0.0.1:{port}", "--timeout", "120", "--no-control-socket",
                "web.wsgi:app"]
    return [sys.executable, "-m", "web.serve", "--host", "127.0.0.1", "--port", str(port),
            "--threads", str(threads)]


def site_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MATCHER_HOME=str(home), MATCHER_MODEL="fake", PYTHONPATH=str(REPO))
    env.pop("DATABASE_URL", None)
    return env


def build_site(home: Path, limit: int) -> None:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "web", "setup-demo",
                           "--limit", str(limit)], cwd=REPO, env=site_env(home),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"setup-demo failed:\n{done.stdout}\n{done.stderr}")
    print(f"site: setup-demo --limit {limit} with the fake encoder in {home} "
          f"({time.perf_counter() - started:.0f} s)")


def login_status(port: int, timeout: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/login")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@contextlib.contextmanager
def serving(kind: str, home: Path, log: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(server_command(kind, port), cwd=REPO, env=site_env(home),
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{kind} exited with {process.returncode}; see {log}")
            with contextlib.suppress(OSError):
                if login_status(port, 2) == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind} not serving after 120 s; see {log}")
            time.sleep(0.2)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM of the process and its children (gunicorn's worker is a child)."""
    total, found = 0.0, False
    for candidate in [pid, *children_of(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
                    found = True
        except OSError:
            continue
    return total if found else None


def children_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# --- hostile traffic -----------------------------------------------------------------------


class SlowClients(threading.Thread):
    """Holds `count` connections that never finish a request; one more byte on each every
    TRICKLE_EVERY_S; any the server closes is opened again."""

    def __init__(self, port: int, count: int) -> None:
        super().__init__(name="slow-clients", daemon=True)
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.connections: list[socket.socket | None] = [None] * count
        self.reopened = 0
        self.refused = 0

    def _open(self, n: int) -> None:
        try:
            connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            connection.sendall(PARTIAL_REQUESTS[n % len(PARTIAL_REQUESTS)])
            self.connections[n] = connection
        except OSError:
            self.refused += 1
            self.connections[n] = None

    def open_all(self) -> None:
        for n in range(self.count):
            self._open(n)

    def run(self) -> None:
        rng = random.Random(7)
        due = [time.monotonic() + rng.uniform(0, TRICKLE_EVERY_S) for _ in range(self.count)]
        while not self.stop.wait(0.2):
            now = time.monotonic()
            for n, connection in enumerate(self.connections):
                if connection is None:
                    self._open(n)
                    self.reopened += 1
                    continue
                if now < due[n]:
                    continue
                due[n] = now + TRICKLE_EVERY_S
                try:
                    connection.sendall(b"x")
                except OSError:
                    connection.close()
                    self._open(n)
                    self.reopened += 1

    def held(self) -> int:
        return sum(connection is not None for connection in self.connections)

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=10)
        for connection in self.connections:
            if connection is not None:
                connection.close()


class Probe(threading.Thread):
    """A fresh `GET /login` every second; latencies in ms, time-outs and errors counted."""

    def __init__(self, port: int, after: float = 0.0) -> None:
        super().__init__(name="probe", daemon=True)
        self.port, self.after = port, after
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        self.stop.wait(self.after)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                status = login_status(self.port, PROBE_TIMEOUT_S)
                if status != 200:
                    self.failures.append(f"HTTP {status}")
                self.latencies.append((time.perf_counter() - started) * 1000)
            except (OSError, http.client.HTTPException) as error:
                self.failures.append(type(error).__name__)
            self.stop.wait(max(0.0, PROBE_EVERY_S - (time.perf_counter() - started)))

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=PROBE_TIMEOUT_S + 5)

    def summary(self) -> str:
        values = sorted(self.latencies)
        slow = sum(v >= PROBE_BOUND_S * 1000 for v in values)
        tried = len(values) + len(self.failures)
        if not values:
            return (f"{tried} probes, none answered within {PROBE_TIMEOUT_S:.0f} s "
                    f"(errors: {', '.join(sorted(set(self.failures)))})")
        return (f"{tried} probes: p50 {percentile(values, 0.5):.0f} ms, max {values[-1]:.0f} ms, "
                f"{slow} answered after {PROBE_BOUND_S:.0f} s, {len(self.failures)} errors"
                + (f" ({', '.join(sorted(set(self.failures)))})" if self.failures else ""))


@dataclass
class Upload:
    name: str
    status: int
    seconds: float
    answer_bytes: int
    error: str | None = None


class Uploader(threading.Thread):
    """Signs in as an office account and, once the warm-up is over (`after` seconds), posts
    the hostile files in turn: `rounds` times each, or until stopped when `rounds` is 0."""

    def __init__(self, url: str, *, after: float, rounds: int) -> None:
        super().__init__(name="uploader", daemon=True)
        self.url, self.after, self.rounds = url, after, rounds
        self.stop = threading.Event()
        self.files = [(name, make()) for name, make in HOSTILE_FILES]
        self.done: list[Upload] = []
        self.failure: str | None = None

    def run(self) -> None:
        # Refusing a hostile file may take long (before the importer fixes: 30 s and more).
        client = Client(self.url, timeout=UPLOAD_TIMEOUT_S)
        try:
            status, data, _ = client.request("GET", "/login")
            token = CSRF.search(data.decode("utf-8", "replace"))
            body = (f"csrf_token={token.group(1) if token else ''}&username={UPLOADER}"
                    f"&password={DEMO_PASSWORD}").encode()
            status, _, _ = client.request("POST", "/login", body=body, headers={
                "Content-Type": "application/x-www-form-urlencoded"})
            if status != 302:
                raise RuntimeError(f"sign-in as {UPLOADER}: HTTP {status}")
            n = 0
            self.stop.wait(self.after)
            while not self.stop.is_set() and (not self.rounds
                                              or n < self.rounds * len(self.files)):
                name, content = self.files[n % len(self.files)]
                n += 1
                self.done.append(self.post(client, name, content))
        except Exception as error:  # noqa: BLE001 - reported with the figures
            self.failure = f"{type(error).__name__}: {error}"
        finally:
            client.close()

    def post(self, client: Client, name: str, content: bytes) -> Upload:
        status, data, _ = client.request("GET", "/results/upload")
        token = CSRF.search(data.decode("utf-8", "replace"))
        boundary = "----hostile-load-boundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
                f"{token.group(1) if token else ''}\r\n--{boundary}\r\n"
                f"Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + content + \
            f"\r\n--{boundary}--\r\n".encode()
        started = time.perf_counter()
        try:
            status, data, _ = client.request("POST", "/results/upload", body=body, headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}"})
        except (OSError, http.client.HTTPException) as error:
            client.close()
            return Upload(name, 0, time.perf_counter() - started, 0,
                          f"{type(error).__name__}: {error}")
        return Upload(name, status, time.perf_counter() - started, len(data),
                      f"HTTP {status}" if status >= 500 else None)

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=UPLOAD_TIMEOUT_S + 10)

    def summary(self) -> list[str]:
        lines = []
        for name, _ in self.files:
            mine = [u for u in self.done if u.name == name]
            if not mine:
                lines.append(f"  {name:<20} not posted")
                continue
            statuses = sorted({u.status for u in mine})
            lines.append(
                f"  {name:<20} {len(mine):>3} posted, HTTP {statuses}, "
                f"{min(u.seconds for u in mine):.2f}–{max(u.seconds for u in mine):.2f} s, "
                f"answer up to {max(u.answer_bytes for u in mine) / 1024:.0f} KiB, "
                f"{sum(u.error is not None for u in mine)} errors")
        if self.failure:
            lines.append(f"  uploader stopped: {self.failure}")
        return lines


# --- the runs ------------------------------------------------------------------------------


@dataclass
class Outcome:
    label: str
    rows: dict[str, dict[str, float]]
    seconds: float
    met: bool
    probe: str
    peak_rss: float | None
    errors: int


def load_run(label: str, home: Path, log: Path, args: argparse.Namespace, hostile: bool
             ) -> Outcome:
    with serving("waitress", home, log) as (port, process):
        url = f"http://127.0.0.1:{port}"
        world = discover(url, random.Random(args.seed))
        slow = uploader = None
        if hostile:
            slow = SlowClients(port, args.slow)
            slow.open_all()
            slow.start()
            uploader = Uploader(url, after=args.warmup, rounds=args.upload_rounds)
            uploader.start()
        probe = Probe(port, after=args.warmup)  # the counted period, as the load's figures
        probe.start()
        print(f"\n== {label}: {args.users} users, think {args.think:g} s, "
              f"{args.duration:.0f} s counted after {args.warmup:.0f} s"
              + (f"; {args.slow} slow connections held, hostile uploads posted "
                 + (f"{args.upload_rounds}x each" if args.upload_rounds else "back to back")
                 if hostile else ""))
        stats, seconds, failures = run_load(world, users=args.users, duration=args.duration,
                                            warmup=args.warmup, think=args.think,
                                            seed=args.seed, mix=MIXES["full"])
        probe.close()
        held = slow.held() if slow else 0
        if uploader:
            uploader.close()
        if slow:
            slow.close()
        peak = peak_rss_mib(process.pid)
    for failure in failures:
        print(f"virtual user failed to start: {failure}")
    rows = report(stats, seconds)
    met = check_targets(rows) and not failures
    print(f"probe GET /login: {probe.summary()}")
    errors = sum(int(row["errors"]) for row in rows.values()) + len(failures)
    if slow is not None:
        print(f"slow connections: {held} of {args.slow} held at the end, "
              f"{slow.reopened} reopened after the server closed them, {slow.refused} refused")
    if uploader is not None:
        print("hostile uploads:")
        for line in uploader.summary():
            print(line)
        upload_errors = sum(u.error is not None for u in uploader.done)
        errors += upload_errors + (1 if uploader.failure else 0)
        met &= upload_errors == 0 and uploader.failure is None
    errors += len(probe.failures)
    met &= not probe.failures
    print(f"server peak RSS: {peak:.0f} MiB" if peak else "server peak RSS: unknown")
    return Outcome(label, rows, seconds, met, probe.summary(), peak, errors)


def probe_only(kind: str, home: Path, log: Path, slow_count: int, seconds: float) -> str:
    """The slow-client probe alone: `slow_count` slow connections, GET /login every second."""
    with serving(kind, home, log) as (port, _):
        slow = SlowClients(port, slow_count)
        slow.open_all()
        slow.start()
        time.sleep(0.5)
        probe = Probe(port)
        probe.start()
        time.sleep(seconds)
        probe.close()
        slow.close()
    return probe.summary()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--think", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0, help="counted seconds")
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="seconds not counted: 50 sign-ins (password hashing) come first")
    parser.add_argument("--limit", type=int, default=1000, help="setup-demo --limit")
    parser.add_argument("--slow", type=int, default=100, help="slow connections held")
    parser.add_argument("--probe-seconds", type=float, default=10.0,
                        help="how long the probe runs against each server on its own")
    parser.add_argument("--upload-rounds", type=int, default=1,
                        help="times each hostile file is posted (0: back to back until the end)")
    parser.add_argument("--seed", type=int, default=60)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hostile-load-") as folder:
        home, log = Path(folder) / "home", Path(folder) / "server.log"
        build_site(home, args.limit)
        for name, make in HOSTILE_FILES:
            print(f"hostile file {name}: {len(make()) / 1024:.1f} KiB")
        probes = {kind: probe_only(kind, home, log, args.slow, args.probe_seconds)
                  for kind in ("waitress", "gunicorn")}
        print(f"\n== the slow-client probe alone: {args.slow} slow connections held, "
              f"GET /login every {PROBE_EVERY_S:.0f} s for {args.probe_seconds:.0f} s "
              f"(time-out {PROBE_TIMEOUT_S:.0f} s)")
        print(f"  waitress (python -m web.serve, run.sh):     {probes['waitress']}")
        print(f"  gunicorn gthread (1 worker, 8 threads):     {probes['gunicorn']}")
        baseline = load_run("baseline", home, log, args, hostile=False)
        hostile = load_run("hostile", home, log, args, hostile=True)
        tracebacks = log.read_text(encoding="utf-8", errors="replace").count("Traceback")
    print("\n== side by side (p95 ms; errors)")
    print(f"{'endpoint':<18} {'baseline':>16} {'hostile':>16}")
    for name in sorted(set(baseline.rows) | set(hostile.rows)):
        cells = []
        for outcome in (baseline, hostile):
            row = outcome.rows.get(name)
            cells.append(f"{row['p95']:.1f}; {int(row['errors'])}" if row else "-")
        print(f"{name:<18} {cells[0]:>16} {cells[1]:>16}")
    for outcome in (baseline, hostile):
        total = sum(int(row["count"]) for row in outcome.rows.values())
        print(f"{outcome.label:<9} {total / outcome.seconds:5.1f} req/s, errors {outcome.errors}, "
              f"targets {'met' if outcome.met else 'MISSED'}, peak RSS "
              f"{outcome.peak_rss or 0:.0f} MiB; probe: {outcome.probe}")
    print(f"tracebacks in the server logs: {tracebacks}; "
          f"{time.perf_counter() - started:.0f} s in all")
    sys.exit(0 if hostile.met and tracebacks == 0 else 1)


if __name__ == "__main__":
    main()
