"""A Milvus server for the tests: Milvus Lite's own gRPC servicer on 127.0.0.1, in a process.

Several processes (two gunicorn workers, a CLI beside them) reach it by URI, exactly as they
would reach a Milvus standalone: a Lite *file* admits one process only. It can be stopped and
started again on the same data to show what a Milvus outage does.

`milvus-lite server` itself keeps gRPC's default keep-alive policy, which answers pymilvus's
ping every 10 s on an idle connection with GOAWAY ("too many pings") after half a minute; a
Milvus server allows those pings. So the process runs Lite's servicer in a gRPC server that
allows them too (`SERVE`), as Milvus does.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

READY_WITHIN_S = 60
SERVE = """
import sys
from concurrent import futures

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import milvus_pb2_grpc

data_dir, port = sys.argv[1], sys.argv[2]
db = MilvusLite(data_dir)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), options=[
    ("grpc.max_receive_message_length", 256 << 20),
    ("grpc.max_send_message_length", 256 << 20),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.http2.max_ping_strikes", 0),
])
milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
server.add_insecure_port(f"127.0.0.1:{port}")
server.start()
try:
    server.wait_for_termination()
finally:
    server.stop(grace=2)
    db.close()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MilvusServer:
    data_dir: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.data_dir.parent / f"milvus-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(self.data_dir), str(self.port)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-lite server exited with {self.process.returncode}")
            if self._answers():
                return
            time.sleep(0.2)
        raise RuntimeError(f"milvus-lite server not listening after {READY_WITHIN_S}s")

    def _answers(self) -> bool:
        """Does it serve requests yet? (It listens a moment before it does.)"""
        from pymilvus import MilvusClient

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
            client = MilvusClient(uri=self.uri, timeout=2)
        except Exception:  # noqa: BLE001 - not up yet, whatever pymilvus raises
            return False
        try:
            client.list_collections()
            return True
        except Exception:  # noqa: BLE001
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # KeyboardInterrupt: closes its data
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None


@contextmanager
def milvus_server(directory: Path) -> Iterator[MilvusServer]:
    directory.mkdir(parents=True, exist_ok=True)
    server = MilvusServer(directory / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()
