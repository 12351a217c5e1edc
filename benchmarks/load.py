"""Load test: many signed-in users on the running site, a realistic mix, latency per endpoint.

    .venv/bin/python benchmarks/load.py [--url http://127.0.0.1:5055] [--users 50]
        [--duration 60] [--warmup 10] [--think 1.0] [--seed 60]

Meant for the scaled demo site (benchmarks/scale_demo.py: 100,000 results) served by
gunicorn on 127.0.0.1; never point it at a site with real users: it signs in with the demo
accounts (password g60-demo-2026), posts needs, edits results and shortlists.

Every virtual user is one thread with one keep-alive HTTP/1.1 connection (the standard
library's http.client: no dependency, and a thread per user is what a browser tab is). Each
signs in through the sign-in form (CSRF token included) as one of the demo accounts, round
robin over firm, firm2, office, office2, officer, admin, then loops: pick an action its role
may do (weights below), send it, wait an exponential think time (mean --think seconds; 0 for
a closed-loop stress test), repeat. API calls use a bearer token per account, fetched once
through POST /api/v1/token (a new token replaces the old, so users of one account share it).

The mix (MIX below, relative weights; each user draws among the actions its role may do):
reads for everyone — search page 14, need page 16, result page 12, home page 4, API need 8,
API result 8, API need matches 10, API search 8; for firms and offices the 对接 inbox page 5
and their requests over the API (GET /api/v1/connections) 4. Writes: a firm posts a need 3
and starts a 对接 request on one of its needs' matches 1.5 (half through the page form, half
through the API); an office edits a result 3 and answers a pending request 1.5 (reads its
received pending requests, then accepts three in four and declines the rest, over the API, so
the pipeline moves); the officer adds and removes shortlist lots 4. So reads are ~87% of a
firm's requests and ~91% of all. `--mix reads` leaves every write out.

Requests in the first --warmup seconds are sent but not counted (caches, connection set-up,
sign-ins). An error is a status other than 2xx/3xx, or an exception (timeout, reset). Writes
that are expected to redirect (form posts) count 302 as success. Starting a 对接 request that
is already open for the same need, result and side is answered with the existing one (the
page: a redirect to it) or a 409 (the API); both count as success, as does a 409 on an answer
when the other user of the same account answered that request first.

Targets (the reliability issue): no errors; p95 under 300 ms for the match pages (a need's
page with its matching results, a result's page) and for the inbox page; under 100 ms for the
API reads (their requests over the API included).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

DEMO_PASSWORD = "g60-demo-2026"
ACCOUNTS = ("firm", "office", "officer", "firm2", "office2", "admin")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOT_REMOVE = re.compile(r"/lots/(\d+)/remove")
TIMEOUT = 30.0
API = "/api/v1"
MATCH_PAGES = ("need page", "result page")
INBOX_PAGES = ("inbox page",)
API_READS = ("api need", "api result", "api need matches", "api search", "api connections")
MATCH_P95_MS = 300.0
INBOX_P95_MS = 300.0
PAIRS_NEEDS = 8  # a firm account's open needs whose matches it may start 对接 requests on
PAIRS_K = 20  # matches read per such need
DECLINE_REASONS = ("时机尚早", "非本领域", "已有合作方")
WANTS = ("会面洽谈", "技术资料", "报价")
RESULT_PAGES_SAMPLED = 10  # pages of 100 result ids to draw from (each list call is slow)
API_P95_MS = 100.0

SEARCH_TERMS = ("机器人", "视觉定位", "锂电池", "正极材料", "抗体", "伺服电机", "振动抑制",
                "新能源汽车", "集成电路", "芯片封装", "人工智能", "深度学习", "生物医药",
                "新材料", "石墨烯", "传感器", "储能", "光伏", "氢能", "无人机", "工业互联网",
                "数控机床", "检测方法", "智能制造", "医疗器械", "疫苗", "碳纤维", "激光")


class Stats:
    """Latencies (ms) and errors per endpoint, thread-safe; nothing before `counting`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.samples: dict[str, str] = {}  # endpoint → one error, to show
        self.counting = False

    def add(self, name: str, ms: float, error: str | None) -> None:
        if not self.counting:
            return
        with self.lock:
            self.latencies.setdefault(name, []).append(ms)
            if error:
                self.errors[name] = self.errors.get(name, 0) + 1
                self.samples.setdefault(name, error)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Client:
    """One keep-alive connection with its own cookies (one browser, as it were)."""

    def __init__(self, base: str, timeout: float = TIMEOUT) -> None:
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port,
                                                         timeout=self.timeout)
        return self.connection

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        sent = {"Connection": "keep-alive", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=sent)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: what a browser does too is
                # reconnect and resend, once (only if nothing at all came back).
                self.close()
                if attempt == 2:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["expires"] and "1970" in morsel["expires"] or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, data, {k.lower(): v for k, v in response.getheaders()}

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def api_json(client: Client, method: str, path: str, token: str,
             payload: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    body = None
    if payload is not None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    status, data, _ = client.request(method, path, body=body, headers=headers)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, None


def form_post(client: Client, path: str, fields: dict[str, Any]) -> tuple[int, bytes, dict]:
    body = urlencode(fields).encode("utf-8")
    return client.request("POST", path, body=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})


# --- what the site holds: ids and texts to ask about ---------------------------------------


@dataclass
class World:
    """Read once before the run, through the API, shared by every virtual user."""

    url: str
    tokens: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    need_ids: list[int] = field(default_factory=list)
    need_titles: list[str] = field(default_factory=list)
    result_ids: list[int] = field(default_factory=list)
    own_results: dict[str, list[int]] = field(default_factory=dict)  # office account → ids
    # firm account → (need id, result id) of its own open needs and their matches, and the
    # subset whose result belongs to a demo office account (requests that office can answer)
    pairs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    pairs_to_offices: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def queries(self, rng: random.Random) -> str:
        """A search: a need's title (often asked, so often cached) or a fresh pair of terms."""
        if self.need_titles and rng.random() < 0.4:
            return rng.choice(self.need_titles)
        return " ".join(rng.sample(SEARCH_TERMS, 2))


def discover(url: str, rng: random.Random) -> World:
    world = World(url)
    client = Client(url)
    office_orgs: set[str] = set()
    try:
        for username in ACCOUNTS:
            status, body = get_token(client, username)
            if status != 200:
                raise SystemExit(f"cannot get an API token for {username}: {status} {body}")
            world.tokens[username] = body["token"]
            world.roles[username] = body["user"]["role"]
            organisation = body["user"].get("organisation") or {}
            if body["user"]["role"] == "office" and organisation.get("name"):
                office_orgs.add(organisation["name"])
        admin = world.tokens["admin"]
        page = 1
        while True:
            status, body = api_json(client, "GET", f"{API}/needs?status=open&per_page=100"
                                    f"&page={page}", admin)
            if status != 200:
                raise SystemExit(f"cannot list needs: {status} {body}")
            world.need_ids += [n["id"] for n in body["items"]]
            world.need_titles += [n["title"] for n in body["items"]]
            if page * 100 >= body["total"]:
                break
            page += 1
        status, body = api_json(client, "GET", f"{API}/results?per_page=100", admin)
        pages = max(1, (body["total"] + 99) // 100)
        for page in rng.sample(range(1, pages + 1), min(pages, RESULT_PAGES_SAMPLED)):
            status, body = api_json(client, "GET", f"{API}/results?status=active&per_page=100"
                                    f"&page={page}", admin)
            world.result_ids += [r["id"] for r in body["items"]]
        for username in ACCOUNTS:
            if world.roles[username] == "office":
                status, body = api_json(client, "GET", f"{API}/results?mine=1&per_page=100",
                                        world.tokens[username])
                world.own_results[username] = [r["id"] for r in body["items"]]
        for username in ACCOUNTS:
            if world.roles[username] == "firm":
                discover_pairs(client, world, username, office_orgs)
    finally:
        client.close()
    if not world.need_ids or not world.result_ids:
        raise SystemExit("the site holds no open needs or no active results")
    return world


def discover_pairs(client: Client, world: World, username: str, office_orgs: set[str]) -> None:
    """The needs' matches a firm account may start 对接 requests on."""
    token = world.tokens[username]
    status, body = api_json(client, "GET", f"{API}/needs?mine=1&status=open&per_page=100",
                            token)
    if status != 200:
        raise SystemExit(f"cannot list {username}'s needs: {status} {body}")
    pairs, to_offices = [], []
    for need in body["items"][:PAIRS_NEEDS]:
        status, found = api_json(client, "GET", f"{API}/needs/{need['id']}/matches?k={PAIRS_K}",
                                 token)
        for match in (found or {}).get("matches", []) if status == 200 else []:
            pairs.append((need["id"], match["id"]))
            if match.get("organisation") in office_orgs:
                to_offices.append((need["id"], match["id"]))
    world.pairs[username], world.pairs_to_offices[username] = pairs, to_offices


def get_token(client: Client, username: str) -> tuple[int, Any]:
    body = json.dumps({"username": username, "password": DEMO_PASSWORD}).encode("utf-8")
    status, data, _ = client.request("POST", f"{API}/token", body=body,
                                     headers={"Content-Type": "application/json"})
    return status, json.loads(data) if data else None


# --- virtual users -----------------------------------------------------------------------------

# (name, weight, roles that do it; None = every role)
MIX: tuple[tuple[str, float, tuple[str, ...] | None], ...] = (
    ("search page", 14, None),
    ("need page", 16, None),
    ("result page", 12, None),
    ("home page", 4, None),
    ("api need", 8, None),
    ("api result", 8, None),
    ("api need matches", 10, None),
    ("api search", 8, None),
    ("need post", 3, ("firm",)),
    ("result edit", 3, ("office",)),
    ("shortlist edit", 4, ("officer",)),
    ("inbox page", 5, ("firm", "office")),
    ("api connections", 4, ("firm", "office")),
    ("request start", 1.5, ("firm",)),
    ("request answer", 1.5, ("office",)),
)
WRITES = ("need post", "result edit", "shortlist edit", "request start", "request answer")
# `--mix reads`: the same reads without any write, to see the read path on its own.
READ_MIX = tuple(row for row in MIX if row[0] not in WRITES)
MIXES = {"full": MIX, "reads": READ_MIX}


class VirtualUser(threading.Thread):
    def __init__(self, number: int, world: World, stats: Stats, stop: threading.Event, *,
                 think: float, seed: int, start_within: float,
                 mix: tuple[tuple[str, float, tuple[str, ...] | None], ...] = MIX) -> None:
        super().__init__(name=f"vu-{number}", daemon=True)
        self.number = number
        self.world = world
        self.stats = stats
        self.stop = stop
        self.think = think
        self.start_within = start_within
        self.rng = random.Random(seed * 1000 + number)
        self.username = ACCOUNTS[number % len(ACCOUNTS)]
        self.role = world.roles[self.username]
        self.token = world.tokens[self.username]
        self.client = Client(world.url)
        self.csrf = ""
        self.posted = 0
        self.shortlist_id: int | None = None
        self.lots: list[int] = []
        actions = [(name, weight) for name, weight, roles in mix
                   if roles is None or self.role in roles]
        self.actions = [name for name, _ in actions]
        self.weights = [weight for _, weight in actions]
        self.failure: str | None = None
        self.handlers: dict[str, Callable[[], tuple[int, str | None]]] = {
            "search page": self.search_page, "need page": self.need_page,
            "result page": self.result_page, "home page": self.home_page,
            "api need": self.api_need, "api result": self.api_result,
            "api need matches": self.api_need_matches, "api search": self.api_search,
            "need post": self.need_post, "result edit": self.result_edit,
            "shortlist edit": self.shortlist_edit, "inbox page": self.inbox_page,
            "api connections": self.api_connections, "request start": self.request_start,
            "request answer": self.request_answer,
        }

    # -- timing --------------------------------------------------------------------------
    def timed(self, name: str, method: str, path: str, *, body: bytes | None = None,
              headers: dict[str, str] | None = None, also_ok: tuple[int, ...] = ()
              ) -> tuple[int, bytes, dict[str, str]]:
        started = time.perf_counter()
        try:
            status, data, got = self.client.request(method, path, body=body, headers=headers)
        except (OSError, http.client.HTTPException) as error:
            self.client.close()
            self.stats.add(name, (time.perf_counter() - started) * 1000,
                           f"{type(error).__name__}: {error}")
            return 0, b"", {}
        ms = (time.perf_counter() - started) * 1000
        failed = status >= 400 and status not in also_ok
        self.stats.add(name, ms, f"HTTP {status} {method} {path}" if failed else None)
        return status, data, got

    def api(self, name: str, method: str, path: str, payload: Any = None,
            also_ok: tuple[int, ...] = ()) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        body = None
        if payload is not None:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        status, data, _ = self.timed(name, method, path, body=body, headers=headers,
                                     also_ok=also_ok)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, None

    def form(self, name: str, path: str, fields: dict[str, Any]
             ) -> tuple[int, bytes, dict[str, str]]:
        body = urlencode({"csrf_token": self.csrf, **fields}).encode("utf-8")
        return self.timed(name, "POST", path, body=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})

    # -- set-up --------------------------------------------------------------------------
    def sign_in(self) -> None:
        status, data, _ = self.timed("sign-in form", "GET", "/login")
        found = CSRF.search(data.decode("utf-8", "replace"))
        if status != 200 or not found:
            raise RuntimeError(f"sign-in page: HTTP {status}")
        self.csrf = found.group(1)
        status, _, headers = self.form("sign-in", "/login", {
            "username": self.username, "password": DEMO_PASSWORD})
        if status != 302:
            raise RuntimeError(f"sign-in as {self.username}: HTTP {status}")
        # Follow the redirect, as the browser does: sign-in starts a fresh session, whose
        # CSRF token is on the page it lands on (the one from the sign-in form is void).
        location = urlsplit(headers.get("location") or "/")
        landing = (location.path or "/") + (f"?{location.query}" if location.query else "")
        status, data, _ = self.timed("sign-in landing", "GET", landing)
        found = CSRF.search(data.decode("utf-8", "replace"))
        if found:
            self.csrf = found.group(1)
        if self.role == "officer":
            status, _, headers = self.form("shortlist create", "/shortlists/", {
                "title": f"负载测试清单 {self.number}", "note": "benchmarks/load.py"})
            match = re.search(r"/shortlists/(\d+)", headers.get("location", ""))
            if status != 302 or not match:
                raise RuntimeError(f"creating a shortlist: HTTP {status}")
            self.shortlist_id = int(match.group(1))

    # -- the actions ---------------------------------------------------------------------
    def search_page(self) -> None:
        side = "need" if self.rng.random() < 0.2 else "result"
        query = urlencode({"q": self.world.queries(self.rng), "side": side})
        self.timed("search page", "GET", f"/search?{query}")

    def need_page(self) -> None:
        self.timed("need page", "GET", f"/needs/{self.rng.choice(self.world.need_ids)}")

    def result_page(self) -> None:
        self.timed("result page", "GET", f"/results/{self.rng.choice(self.world.result_ids)}")

    def home_page(self) -> None:
        self.timed("home page", "GET", "/")

    def api_need(self) -> None:
        self.api("api need", "GET", f"{API}/needs/{self.rng.choice(self.world.need_ids)}")

    def api_result(self) -> None:
        self.api("api result", "GET", f"{API}/results/{self.rng.choice(self.world.result_ids)}")

    def api_need_matches(self) -> None:
        need = self.rng.choice(self.world.need_ids)
        self.api("api need matches", "GET", f"{API}/needs/{need}/matches?k=10")

    def api_search(self) -> None:
        side = "need" if self.rng.random() < 0.2 else "result"
        query = urlencode({"q": self.world.queries(self.rng), "side": side, "k": 10})
        self.api("api search", "GET", f"{API}/search?{query}")

    def need_post(self) -> None:
        self.posted += 1
        terms = self.rng.sample(SEARCH_TERMS, 3)
        self.form("need post", "/needs/new", {
            "title": f"负载测试需求 {self.number}-{self.posted}：{terms[0]}{terms[1]}",
            "description": (f"我司需要{terms[0]}与{terms[1]}方面的技术支持，希望与高校合作，"
                            f"解决{terms[2]}相关的工程问题，提升产品性能与良品率。"),
            "industry": "智能制造", "cooperation_mode": "合作开发",
            "contact": "13800000000 负载测试"})

    def result_edit(self) -> None:
        own = self.world.own_results.get(self.username) or []
        if not own:
            return
        result = self.rng.choice(own)
        if self.rng.random() < 0.5:
            payload: dict[str, Any] = {"asking_price": self.rng.randint(10, 500)}
        else:  # a change to the text: the result is re-encoded and re-indexed
            payload = {"keywords": self.rng.sample(SEARCH_TERMS, 2)}
        self.api("result edit", "PATCH", f"{API}/results/{result}", payload)

    def shortlist_edit(self) -> None:
        if self.shortlist_id is None:
            return
        if self.lots and (len(self.lots) >= 5 or self.rng.random() < 0.4):
            lot = self.lots.pop(self.rng.randrange(len(self.lots)))
            self.form("shortlist edit", f"/shortlists/{self.shortlist_id}/lots/{lot}/remove", {})
            return
        self.form("shortlist edit", f"/shortlists/{self.shortlist_id}/lots",
                  {"result_id": self.rng.choice(self.world.result_ids)})
        # As the browser does: follow the redirect to the shortlist, which names its lots.
        status, data, _ = self.timed("shortlist page", "GET", f"/shortlists/{self.shortlist_id}")
        if status == 200:
            found = LOT_REMOVE.findall(data.decode("utf-8", "replace"))
            self.lots = sorted({int(lot) for lot in found})

    def inbox_page(self) -> None:
        self.timed("inbox page", "GET", "/inbox")

    def api_connections(self) -> None:
        self.api("api connections", "GET", f"{API}/connections?per_page=20")

    def request_start(self) -> None:
        # Mostly on results of the demo offices, whose users answer them (request answer).
        to_offices = self.world.pairs_to_offices.get(self.username) or []
        pairs = to_offices if to_offices and self.rng.random() < 0.7 else \
            self.world.pairs.get(self.username) or []
        if not pairs:
            return
        need, result = self.rng.choice(pairs)
        fields = {"need_id": need, "result_id": result,
                  "message": f"负载测试对接 {self.number}：希望进一步了解该成果",
                  "wants": self.rng.choice(WANTS)}
        if self.rng.random() < 0.5:
            self.form("request start", "/connections/new", fields)  # new or existing: 302
        else:  # an open one for this need, result and side already: 409, as documented
            self.api("request start", "POST", f"{API}/connections",
                     fields | {"wants": [fields["wants"]]}, also_ok=(409,))

    def request_answer(self) -> None:
        status, body = self.api("api connections", "GET", f"{API}/connections?status=pending"
                                "&direction=received&per_page=20")
        items = (body or {}).get("items") or [] if status == 200 else []
        if not items:
            return
        found = self.rng.choice(items)["id"]
        if self.rng.random() < 0.75:
            payload: dict[str, Any] = {"contact": "021-00000000 负载测试"}
            path = f"{API}/connections/{found}/accept"
        else:
            payload = {"reason": self.rng.choice(DECLINE_REASONS)}
            path = f"{API}/connections/{found}/decline"
        # 409: the other user of this account answered it in the meantime
        self.api("request answer", "POST", path, payload, also_ok=(409,))

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        time.sleep(self.rng.uniform(0, self.start_within))
        try:
            self.sign_in()
        except Exception as error:  # noqa: BLE001 - reported, the others carry on
            self.failure = f"{self.name}: {error}"
            return
        while not self.stop.is_set():
            action = self.rng.choices(self.actions, self.weights)[0]
            self.handlers[action]()
            if self.think > 0:
                self.stop.wait(self.rng.expovariate(1 / self.think))
        self.client.close()


# --- running and reporting ---------------------------------------------------------------------


def run_load(world: World, *, users: int, duration: float, warmup: float, think: float,
             seed: int, mix: tuple = MIX,
             on_tick: Callable[[float], None] | None = None, tick: float = 60.0
             ) -> tuple[Stats, float, list[str]]:
    """Run `users` virtual users; count `duration` seconds after `warmup`. `on_tick(t)` is
    called every `tick` seconds of the counted period (the soak prints memory there)."""
    stats = Stats()
    stop = threading.Event()
    vus = [VirtualUser(n, world, stats, stop, think=think, seed=seed,
                       start_within=min(5.0, warmup / 2), mix=mix) for n in range(users)]
    for vu in vus:
        vu.start()
    time.sleep(warmup)
    stats.counting = True
    started = time.perf_counter()
    next_tick = tick
    while True:
        elapsed = time.perf_counter() - started
        if elapsed >= duration:
            break
        if on_tick is not None and elapsed >= next_tick:
            on_tick(elapsed)
            next_tick += tick
        time.sleep(min(1.0, duration - elapsed))
    stats.counting = False
    measured = time.perf_counter() - started
    stop.set()
    for vu in vus:
        vu.join(TIMEOUT + 5)
    failures = [vu.failure for vu in vus if vu.failure]
    return stats, measured, failures


def report(stats: Stats, seconds: float) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    every: list[float] = []
    print(f"{'endpoint':<18} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'errors':>7}")
    for name in sorted(stats.latencies, key=lambda n: -len(stats.latencies[n])):
        values = sorted(stats.latencies[name])
        every += values
        row = {"count": len(values), "rps": len(values) / seconds,
               "p50": percentile(values, 0.50), "p95": percentile(values, 0.95),
               "p99": percentile(values, 0.99), "errors": stats.errors.get(name, 0)}
        rows[name] = row
        print(f"{name:<18} {row['count']:>7} {row['rps']:>7.1f} {row['p50']:>8.1f} "
              f"{row['p95']:>8.1f} {row['p99']:>8.1f} {row['errors']:>7}")
    every.sort()
    errors = sum(stats.errors.values())
    print(f"{'TOTAL':<18} {len(every):>7} {len(every) / seconds:>7.1f} "
          f"{percentile(every, 0.50):>8.1f} {percentile(every, 0.95):>8.1f} "
          f"{percentile(every, 0.99):>8.1f} {errors:>7}")
    for name, sample in stats.samples.items():
        print(f"  first error on {name}: {sample}")
    return rows


def check_targets(rows: dict[str, dict[str, float]]) -> bool:
    """Print each target of the issue as met or missed; True when all are met."""
    met = True
    errors = sum(int(row["errors"]) for row in rows.values())
    print(f"target: no errors ................................. "
          f"{'met' if errors == 0 else 'MISSED'} ({errors})")
    met &= errors == 0
    for names, limit, label in ((MATCH_PAGES, MATCH_P95_MS, "match pages"),
                                (INBOX_PAGES, INBOX_P95_MS, "inbox page"),
                                (API_READS, API_P95_MS, "API reads")):
        for name in names:
            if name not in rows:
                continue
            p95 = rows[name]["p95"]
            ok = p95 < limit
            met &= ok
            print(f"target: {label} p95 < {limit:.0f} ms: {name:<18} "
                  f"{'met' if ok else 'MISSED'} ({p95:.1f} ms)")
    return met


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5055")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="counted seconds")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds not counted")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean think time between a user's requests, seconds (0: none)")
    parser.add_argument("--mix", choices=sorted(MIXES), default="full",
                        help="full: reads and writes; reads: the reads alone")
    parser.add_argument("--seed", type=int, default=60)
    args = parser.parse_args(argv)
    host = urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load.py drives a local test site only (--url on 127.0.0.1)")
    world = discover(args.url, random.Random(args.seed))
    print(f"load: {args.users} users, {args.mix} mix, {args.duration:.0f} s counted after "
          f"{args.warmup:.0f} s warm-up, think time {args.think:g} s (exponential), {args.url}; "
          f"{len(world.need_ids)} open needs, {len(world.result_ids)} result ids sampled, "
          f"{sum(map(len, world.pairs.values()))} need-match pairs to start 对接 requests on "
          f"({sum(map(len, world.pairs_to_offices.values()))} with a demo office's result)")
    stats, seconds, failures = run_load(world, users=args.users, duration=args.duration,
                                        warmup=args.warmup, think=args.think, seed=args.seed,
                                        mix=MIXES[args.mix])
    for failure in failures:
        print(f"virtual user failed to start: {failure}")
    rows = report(stats, seconds)
    met = check_targets(rows) and not failures
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
