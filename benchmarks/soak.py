"""Soak test: a steady, lighter mix for ten minutes while watching the server's memory.

    .venv/bin/python benchmarks/soak.py [--url http://127.0.0.1:5055] [--duration 600]
        [--users 10] [--think 2.0] [--mix full] [--pid PID] [--every 60]

The same virtual users as benchmarks/load.py (same sign-in, same actions, full mix by
default), fewer of them and slower: what a quiet working day looks like, for long enough that
a leak shows. The server's resident memory (VmRSS from /proc/<pid>/status) is printed before
the load starts, every `--every` seconds and at the end, for each of its processes: the
gunicorn master and its workers, found as the processes holding the listening socket of
--url's port, or given as --pid (that process and its children). Workers are looked up again
at each reading, so a restarted worker shows as a new pid rather than as a drop.

"Flat" is judged from the first reading under load (caches, the BM25 model and the query
embedding cache are warm by then) to the end; the reading before the load is printed too,
for the cost of warming up.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import MIXES, check_targets, discover, report, run_load  # noqa: E402


def listening_pids(port: int) -> set[int]:
    """Processes holding a listening TCP socket on `port` (IPv4 or IPv6)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if str(fd.readlink()) in inodes:
                    pids.add(int(entry.name))
                    break
        except OSError:
            continue  # gone, or not ours to read
    return pids


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == pid:
            found.add(int(entry.name))
    return found


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Server:
    """The server's processes, found again at every reading."""

    def __init__(self, port: int, pid: int | None) -> None:
        self.port = port
        self.pid = pid

    def pids(self) -> list[int]:
        found = ({self.pid} | children_of(self.pid)) if self.pid else listening_pids(self.port)
        return sorted(found)

    def reading(self) -> tuple[float, str]:
        """(total MiB, one line naming each process's RSS)."""
        pids = self.pids()
        parts = []
        total = 0.0
        for pid in pids:
            rss = rss_mib(pid)
            if rss is None:
                continue
            role = "worker" if parent_of(pid) in pids else "master"
            parts.append(f"{role} {pid} {rss:.1f} MiB")
            total += rss
        return total, ", ".join(parts) or "no server process found"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5055")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--think", type=float, default=2.0, help="mean think time, seconds")
    parser.add_argument("--mix", choices=sorted(MIXES), default="full")
    parser.add_argument("--pid", type=int, default=None,
                        help="the server's pid (default: whoever listens on --url's port)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between readings")
    parser.add_argument("--seed", type=int, default=61)
    args = parser.parse_args(argv)
    parts = urlsplit(args.url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("soak.py drives a local test site only (--url on 127.0.0.1)")
    server = Server(parts.port or 80, args.pid)
    if not server.pids():
        raise SystemExit(f"no process listens on port {server.port}: pass --pid")

    world = discover(args.url, random.Random(args.seed))
    print(f"soak: {args.users} users, {args.mix} mix, {args.duration:.0f} s, think time "
          f"{args.think:g} s, {args.url}", flush=True)
    before, line = server.reading()
    print(f"RSS start (before load)  {before:8.1f} MiB  [{line}]", flush=True)
    readings: list[float] = []

    def tick(elapsed: float) -> None:
        total, line = server.reading()
        readings.append(total)
        print(f"RSS t={elapsed:5.0f} s         {total:8.1f} MiB  [{line}]", flush=True)

    stats, seconds, failures = run_load(
        world, users=args.users, duration=args.duration, warmup=0.0, think=args.think,
        seed=args.seed, mix=MIXES[args.mix], on_tick=tick, tick=args.every)
    end, line = server.reading()
    print(f"RSS end   (t={seconds:.0f} s)     {end:8.1f} MiB  [{line}]")
    first = readings[0] if readings else before
    print(f"RSS change: {end - before:+.1f} MiB since the start, {end - first:+.1f} MiB "
          f"({(end - first) / first * 100:+.1f}%) since the first reading under load")
    for failure in failures:
        print(f"virtual user failed to start: {failure}")
    rows = report(stats, seconds)
    check_targets(rows)


if __name__ == "__main__":
    main()
