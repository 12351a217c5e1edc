"""Slow and malformed clients, against the real server started as `./run.sh` starts it.

A hundred connections that never finish their request (a partial request line, headers with
no blank line, a body shorter than its Content-Length) must not hold up anyone else: a normal
`GET /login` still answers within a second, and again while some of them trickle a byte at a
time. Under gunicorn's gthread worker (8 threads), what run.sh served with before issue 12,
eight such connections froze the site: run this file with `SLOW_CLIENTS_SERVER=gunicorn` to
see it fail there.

The answers the server gives itself, before the app sees a request (a malformed request line,
headers too large, a body over the limit, a transfer coding it cannot read), carry the same
security headers as the app's own pages, and `Cache-Control: no-store`. They are sent over a
raw socket, so an upgrade of the server that bypasses the hook (web.serve) fails here.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from settings import MAX_UPLOAD_BYTES
from tests.support.servers import REPO, seed_site, site_env
from web.serve import MAX_HEADER_BYTES

# The bound the issue asks for: a page within a second while the slow clients are held.
ANSWER_WITHIN_S = 1.0
IDLE_CONNECTIONS = 100
TRICKLING = 20
# What the app sets on every page (web.security); the values are read from the app's own
# answer to GET /login on the same server, never copied here.
SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
                    "Referrer-Policy", "Cache-Control")
# Each stops short of a complete request.
PARTIAL_REQUESTS = (
    b"GET /lo",
    b"GET /login HTTP/1.1\r\n",
    b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow",
    b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
    b"\r\nContent-Length: 1000\r\n\r\nusername=",
)


def server_command(port: int) -> list[str]:
    """The server process: run.sh's last line (`python -m web.serve`), or with
    SLOW_CLIENTS_SERVER=gunicorn the gunicorn gthread server it ran before."""
    if os.environ.get("SLOW_CLIENTS_SERVER") == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "8",
                "--bind", f"127.0.0.1:{port}", "--timeout", "120", "--no-control-socket",
                "web.wsgi:app"]
    return [sys.executable, "-m", "web.serve", "--host", "127.0.0.1", "--port", str(port),
            "--threads", "8"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Site:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


def get_login(port: int, timeout: float) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/login")
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("slow-clients")
    home, db_url = folder / "home", f"sqlite:///{folder / 'site.sqlite'}"
    seed_site(home, db_url)
    port, log = free_port(), folder / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(server_command(port), cwd=REPO, env=site_env(home, db_url),
                                   stdout=out, stderr=subprocess.STDOUT)
    site = Site(port, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{site.output()}")
            try:
                if get_login(port, timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server is not serving after 60 s:\n{site.output()}")
            time.sleep(0.1)
        yield site
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def answers_in_time(site: Site, moment: str) -> float:
    """Seconds a normal GET /login took; fails if it did not answer 200 within the bound."""
    started = time.monotonic()
    try:
        status = get_login(site.port, timeout=ANSWER_WITHIN_S).status
    except TimeoutError:
        pytest.fail(f"GET /login did not answer within {ANSWER_WITHIN_S} s {moment}")
    took = time.monotonic() - started
    assert status == 200, f"GET /login answered {status} {moment}"
    assert took < ANSWER_WITHIN_S, f"GET /login took {took:.2f} s {moment}"
    return took


def still_open(connection: socket.socket) -> bool:
    """True while the server holds the connection without having answered or closed it."""
    connection.setblocking(False)
    try:
        connection.recv(1, socket.MSG_PEEK)  # b"": closed; anything else: answered
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        connection.setblocking(True)
    return False


def test_a_hundred_idle_connections_do_not_hold_up_a_page(site: Site) -> None:
    idle: list[socket.socket] = []
    stop = threading.Event()
    try:
        for n in range(IDLE_CONNECTIONS):
            connection = socket.create_connection(("127.0.0.1", site.port), timeout=5)
            connection.sendall(PARTIAL_REQUESTS[n % len(PARTIAL_REQUESTS)])
            idle.append(connection)
        time.sleep(0.5)  # the server has seen them all by now
        took = [answers_in_time(site, f"with {IDLE_CONNECTIONS} idle connections open")
                for _ in range(3)]

        def trickle() -> None:
            """A byte at a time on some of them: still never a complete request."""
            while not stop.wait(0.1):
                for connection in idle[:TRICKLING]:
                    connection.sendall(b"x")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        for _ in range(5):
            took.append(answers_in_time(site, f"while {TRICKLING} of them send a byte slowly"))
            time.sleep(0.2)
        stop.set()
        trickler.join(timeout=5)
        # The probe really held them: the server neither answered nor dropped them.
        assert sum(still_open(connection) for connection in idle) == IDLE_CONNECTIONS
        print(f"GET /login beside {IDLE_CONNECTIONS} idle connections: "
              f"{', '.join(f'{t * 1000:.0f}' for t in took)} ms")
    finally:
        stop.set()
        for connection in idle:
            connection.close()
    assert "Traceback" not in site.output(), site.output()


def raw_answer(site: Site, request: bytes) -> tuple[int, dict[str, str]]:
    """(status, headers) of what the server answers to `request`, sent as bytes."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as connection:
        # It may answer and close before the rest of a refused request is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/"), f"no HTTP answer to {request[:60]!r}: {received[:200]!r}"
    status_line, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


HOST = b"Host: 127.0.0.1\r\n"
SERVER_ERRORS = {
    "malformed request line": (b"GET /login HTTP/1.1 extra\r\n" + HOST + b"\r\n", 400),
    "raw non-ASCII in the URL": ("GET /search?q=机器人 HTTP/1.1\r\n".encode() + HOST + b"\r\n",
                                 400),
    "header without a colon": (b"GET /login HTTP/1.1\r\n" + HOST + b"no colon here\r\n\r\n",
                               400),
    "headers too large": (b"GET /login HTTP/1.1\r\n" + HOST
                          + b"X-Padding: " + b"a" * (MAX_HEADER_BYTES + 1000) + b"\r\n\r\n", 431),
    "body over the limit": (b"POST /login HTTP/1.1\r\n" + HOST + b"Content-Length: "
                            + str(MAX_UPLOAD_BYTES * 10).encode() + b"\r\n\r\n", 413),
    "unknown transfer coding": (b"POST /login HTTP/1.1\r\n" + HOST
                                + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    "broken chunked body": (b"POST /login HTTP/1.1\r\n" + HOST
                            + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
}


@pytest.mark.parametrize("case", sorted(SERVER_ERRORS))
def test_the_servers_own_error_answers_carry_the_security_headers(site: Site,
                                                                   case: str) -> None:
    expected = get_login(site.port, timeout=10).headers
    request, status = SERVER_ERRORS[case]
    got_status, got = raw_answer(site, request)
    assert got_status == status, (case, got_status, got)
    for name in SECURITY_HEADERS:
        assert expected[name], f"the app's own page has no {name}"
        assert got.get(name.lower()) == expected[name], (case, name, got)
    assert got.get("cache-control") == "no-store", (case, got)


def test_a_body_a_little_over_the_upload_cap_gets_the_apps_own_page(site: Site) -> None:
    """The server's own body limit sits above the app's cap (web.serve.BODY_SLACK_BYTES), so
    an upload just over the cap is refused by the app, in Chinese, not by the server."""
    body = b"x" * (MAX_UPLOAD_BYTES + 1)
    request = (b"POST /login HTTP/1.1\r\n" + HOST
               + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    status, headers = raw_answer(site, request)
    assert status == 413, headers
    assert headers["content-type"].startswith("text/html"), headers  # the app's error page
    assert headers["x-frame-options"] == "DENY", headers
