"""A Milvus that goes down: pages and API answer 503 with a message, never a 500; writes are
kept in the database; once Milvus is back the next request's sync catches up, and what was
written meanwhile is found. The site runs on a Milvus Lite server (the same code path as a
Milvus standalone), SQLite and the fake encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api import API, NEW_NEED, bearer, error_of
from tests.support.milvus import milvus_server
from tests.support.web import make_site
from web.errors import INDEX_UNAVAILABLE

pytestmark = pytest.mark.milvus


def test_milvus_down_answers_503_keeps_writes_and_catches_up(tmp_path: Path) -> None:
    with milvus_server(tmp_path / "milvus") as server:
        site = make_site(f"sqlite:///{tmp_path / 'site.sqlite'}", tmp_path / "home",
                         WTF_CSRF_ENABLED=False, INDEX_BACKEND="milvus",
                         MILVUS_URI=server.uri, INDEX_POLL_SECONDS=0)
        try:
            client = site.app.test_client()
            firm, office = bearer(site, "firm_a"), bearer(site, "office_u1")
            query = {"q": "机器人视觉定位", "side": "result"}
            assert client.get(f"{API}/search", query_string=query,
                              headers=office).status_code == 200

            server.stop()
            # The API: 503, the message, a Retry-After; never a 500.
            down = client.get(f"{API}/search", query_string=query, headers=office)
            assert error_of(down, 503)["message"] == INDEX_UNAVAILABLE
            assert int(down.headers["Retry-After"]) > 0
            # The pages: the error page in Chinese.
            page = site.client("firm_a").get("/search", query_string={"q": "机器人视觉定位"})
            assert page.status_code == 503
            assert "匹配索引服务（Milvus）暂时无法连接" in page.get_data(as_text=True)
            # A write while it is down is saved (the database is the source of truth).
            body = NEW_NEED | {"title": "量子点显示膜制备工艺需求",
                               "description": "需要量子点显示膜的制备工艺。"}
            created = client.post(f"{API}/needs", json=body, headers=firm)
            assert created.status_code == 201, created.get_data(as_text=True)
            need_id = created.get_json()["id"]
            assert client.get(f"{API}/needs/{need_id}", headers=firm).status_code == 200

            server.start()  # same data, same port
            hits = client.get(f"{API}/search", query_string={"q": "量子点显示膜",
                                                             "side": "need"}, headers=office)
            assert hits.status_code == 200, hits.get_data(as_text=True)
            assert hits.get_json()["matches"][0]["id"] == need_id
            matches = client.get(f"{API}/needs/{need_id}/matches", headers=firm)
            assert matches.status_code == 200 and matches.get_json()["matches"]
        finally:
            site.app.extensions["matcher.engine"].dispose()
