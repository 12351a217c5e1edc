"""The API against its own description: schemathesis over real HTTP, signed in as each role.

A seeded SQLite site with the fake encoder is served by the production server (waitress, as
`web.serve` sets it up: its own limits, its own error answers) on 127.0.0.1 in a thread, and
schemathesis' command line reads /api/v1/openapi.json from it and calls every operation it
describes with generated requests, valid and invalid, as a firm, an office, an officer and an
admin, and once without credentials. Each answer is checked: no 5xx, a status the description
lists for that operation, the content type it lists, the headers it promises, and a body that
matches the answer's schema (extra keys included: the answer models forbid them); a method a
path does not have gets a 405 that says, in Allow, which it does.

The hostile-input tests (test_hostile_api, test_web_api) keep their own, stronger checks on
what a refusal leaves in the database; this one checks that the description is true.

Bounded for CI (about a minute on two cores): each role runs the boundary-value phase
("coverage", ~1,500 requests), 20 random examples per operation, and sequences that follow
the links from a new record to the operations on it ("stateful"); without credentials only
the random ones (every answer is a 401 then). CONTRACT_EXAMPLES=200 for a deeper hunt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest

from tests.support.api import add_shortlist, bearer
from tests.support.web import make_site
from web import serve
from web.api.openapi import document

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "20"))
SEED = os.environ.get("CONTRACT_SEED", "20261201")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,"
          # A method a path does not have: 405 with the ones it has in Allow (RFC 9110).
          "unsupported_method,allow_header_conformance")
# role → the seeded account that plays it (tests.support.web.USERS); None: no credentials.
ROLES: dict[str, str | None] = {"admin": "admin", "firm": "firm_a", "office": "office_u1",
                                "officer": "officer", "anonymous": None}
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# "stateful" follows the description's links: POST /needs, then GET and PATCH what it made.
ALL_PHASES = "examples,coverage,fuzzing,stateful"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("contract")
    site = make_site(f"sqlite:///{home / 'site.sqlite'}", home / "home")
    add_shortlist(site)
    tokens = {role: bearer(site, user)["Authorization"]
              for role, user in ROLES.items() if user is not None}
    server = serve.create(site.app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{server.effective_port}", "tokens": tokens,
               "home": home}
    finally:
        server.close()
        thread.join(timeout=10)
        site.app.extensions["matcher.engine"].dispose()


def operations_described() -> int:
    return sum(len(item) for item in document()["paths"].values())


def schemathesis(live: dict[str, Any], role: str) -> list[str]:
    """The command line, as CI runs it (printed on failure, to be rerun by hand)."""
    command = [str(SCHEMATHESIS), "run", f"{live['base']}/api/v1/openapi.json",
               "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", SEED,
               "--workers", "1", "--request-timeout", "30", "--generation-database", "none",
               "--phases", "fuzzing" if role == "anonymous" else ALL_PHASES,
               "--no-color"]
    if role in live["tokens"]:
        command += ["--header", f"Authorization: {live['tokens'][role]}"]
    return command


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_keeps_its_description(live: dict[str, Any], role: str,
                                               tmp_path: Path) -> None:
    command = schemathesis(live, role)
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         check=False, env={**os.environ, "NO_COLOR": "1"})
    shown = " ".join(part if "Bearer" not in part else "'Authorization: Bearer …'"
                     for part in command)
    assert run.returncode == 0, f"{shown}\n{run.stdout[-15000:]}\n{run.stderr[-3000:]}"
    total = operations_described()
    assert f"{total} selected / {total} total" in run.stdout, run.stdout[-3000:]
    assert f"Tested: {total}" in run.stdout, run.stdout[-3000:]


def test_an_overlong_request_line_gets_a_described_answer(live: dict[str, Any]) -> None:
    """Regression (found by schemathesis): a URL longer than the server takes was answered
    431 (waitress; werkzeug says 414) by the server itself, a status the description did not
    list. It is listed now, for every operation, as the server's own plain-text answer."""
    request = Request(f"{live['base']}/api/v1/needs?industry={'x' * 40_000}",
                      headers={"Authorization": live["tokens"]["firm"]})
    try:
        with urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1
            status = response.status
    except OSError as error:
        status = getattr(error, "code", None)
    assert status == 431
    responses = document()["paths"]["/needs"]["get"]["responses"]
    assert "431" in responses and "text/plain" in responses["431"]["content"]
