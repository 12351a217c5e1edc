"""A firm's marks shape its need's list, through HTTP: 不相关 hides a result (shown collapsed,
with an undo), the undo brings it back; the undo is a CSRF-checked, owner-only form and an
owner-only API DELETE; the office still sees 相关 marks."""

from __future__ import annotations

import re

from sqlalchemy import select

from corpora.models import AuditEntry, MatchFeedback
from tests.support.api import API, bearer, error_of
from tests.support.web import PASSWORD, Site, csrf_token
from web.database import sessions

NEED = "工业机器人视觉抓取精度提升"
ANSWER = "基于深度学习的机器人视觉定位方法"


def _ids(site: Site) -> tuple[int, int]:
    return site.ids["need"][NEED], site.ids["result"][ANSWER]


def _listed(page: str) -> list[int]:
    """The ids of the matches the list shows, in order (hidden ones are not `match-` rows)."""
    return [int(n) for n in re.findall(r'id="match-(\d+)"', page)]


def _hidden_block(page: str) -> str:
    found = re.search(r'<details class="hidden-matches".*?</details>', page, re.S)
    return found.group(0) if found else ""


def test_not_relevant_hides_and_undo_brings_back(site: Site) -> None:
    client = site.client("firm_a")
    need, result = _ids(site)
    before = client.get(f"/needs/{need}").get_data(as_text=True)
    assert result in _listed(before) and not _hidden_block(before)
    marked = client.post(f"/needs/{need}/feedback", data={
        "result_id": result, "relevant": "false", "reason": "精度不够"})
    assert marked.status_code == 302 and marked.headers["Location"].endswith("#hidden-matches")
    page = client.get(f"/needs/{need}").get_data(as_text=True)
    assert result not in _listed(page)
    hidden = _hidden_block(page)
    assert "已隐藏 1 条不相关的成果" in hidden and ANSWER in hidden and "精度不够" in hidden
    assert f'action="/needs/{need}/feedback/{result}/delete"' in hidden and "撤销" in hidden
    # The list keeps its length: the hidden result's place goes to the next one.
    assert len(_listed(page)) == min(len(_listed(before)), len(site.ids["result"]) - 1)

    undone = client.post(f"/needs/{need}/feedback/{result}/delete")
    assert undone.status_code == 302 and undone.headers["Location"].endswith(f"#match-{result}")
    again = client.get(f"/needs/{need}").get_data(as_text=True)
    assert _listed(again) == _listed(before) and not _hidden_block(again)
    with site.app.app_context(), sessions()() as db:
        assert db.scalar(select(MatchFeedback).where(MatchFeedback.need_id == need)) is None
        actions = list(db.scalars(select(AuditEntry.action).where(
            AuditEntry.entity == "need", AuditEntry.entity_id == need)))
        assert actions[-2:] == ["mark", "unmark"]


def test_others_see_the_list_without_the_hidden_result_nor_the_marks(site: Site) -> None:
    need, result = _ids(site)
    site.client("firm_a").post(f"/needs/{need}/feedback",
                               data={"result_id": result, "relevant": "false"})
    page = site.client("office_u1").get(f"/needs/{need}").get_data(as_text=True)
    assert result not in _listed(page)
    assert not _hidden_block(page) and "撤销" not in page


def test_undo_is_owner_only_and_names_a_bad_result(site: Site) -> None:
    need, result = _ids(site)
    owner = site.client("firm_a")
    owner.post(f"/needs/{need}/feedback", data={"result_id": result, "relevant": "false"})
    assert site.client("firm_b").post(f"/needs/{need}/feedback/{result}/delete"
                                      ).status_code == 403
    assert site.client("office_u1").post(f"/needs/{need}/feedback/{result}/delete"
                                         ).status_code == 403
    bad = owner.post(f"/needs/{need}/feedback/abc/delete")
    assert bad.status_code == 400 and "result_id" in bad.get_data(as_text=True)
    other = site.ids["result"]["肿瘤早筛血液检测方法"]
    missing = owner.post(f"/needs/{need}/feedback/{other}/delete")
    assert missing.status_code == 404 and f"成果 {other}" in missing.get_data(as_text=True)
    with site.app.app_context(), sessions()() as db:
        assert db.scalar(select(MatchFeedback.relevant).where(
            MatchFeedback.need_id == need)) is False


def test_undo_needs_the_csrf_token(csrf_site: Site) -> None:
    site = csrf_site
    client = site.app.test_client()
    login = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "firm_a", "password": PASSWORD,
                                "csrf_token": login})
    need, result = _ids(site)
    page = client.get(f"/needs/{need}").get_data(as_text=True)
    token = csrf_token(page)
    assert client.post(f"/needs/{need}/feedback", data={
        "result_id": result, "relevant": "false", "csrf_token": token}).status_code == 302
    refused = client.post(f"/needs/{need}/feedback/{result}/delete")
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    hidden = _hidden_block(client.get(f"/needs/{need}").get_data(as_text=True))
    assert client.post(f"/needs/{need}/feedback/{result}/delete",
                       data={"csrf_token": csrf_token(hidden)}).status_code == 302


def test_relevant_mark_on_a_reranked_list_still_reaches_the_office(site: Site) -> None:
    client = site.client("firm_a")
    need, result = _ids(site)
    client.post(f"/needs/{need}/feedback", data={
        "result_id": result, "relevant": "true", "reason": "希望就视觉定位洽谈"})
    page = client.get(f"/needs/{need}").get_data(as_text=True)
    assert result in _listed(page)  # a 相关 result stays: it is still an answer
    assert "已参考您标记为“相关”的 1 条成果调整排序" in page
    office_home = site.client("office_u1").get("/").get_data(as_text=True)
    assert "希望就视觉定位洽谈" in office_home
    assert "希望就视觉定位洽谈" not in site.client("office_u2").get("/").get_data(as_text=True)


def test_api_hides_and_deletes_marks(site: Site) -> None:
    client = site.app.test_client()
    firm = bearer(site, "firm_a")
    need, result = _ids(site)
    url = f"{API}/needs/{need}/feedback"
    assert client.post(url, json={"result_id": result, "relevant": False, "reason": "不适用"},
                       headers=firm).status_code == 200
    answer = client.get(f"{API}/needs/{need}/matches", headers=firm).get_json()
    assert result not in [m["id"] for m in answer["matches"]]
    assert answer["hidden"] == [{"id": result, "title": ANSWER, "reason": "不适用"}]
    public = client.get(f"{API}/needs/{need}/matches", headers=bearer(site, "office_u1"))
    assert "hidden" not in public.get_json()
    assert result not in [m["id"] for m in public.get_json()["matches"]]

    error_of(client.delete(f"{url}/{result}", headers=bearer(site, "firm_b")), 403)
    error_of(client.delete(f"{url}/{result}", headers=bearer(site, "office_u1")), 403)
    assert "result_id" in error_of(client.delete(f"{url}/x1", headers=firm), 400)["fields"]
    error_of(client.delete(f"{url}/999999", headers=firm), 404)
    deleted = client.delete(f"{url}/{result}", headers=firm)
    assert deleted.status_code == 200, deleted.get_data(as_text=True)
    assert deleted.get_json() == {"need_id": need, "result_id": result, "relevant": False}
    error_of(client.delete(f"{url}/{result}", headers=firm), 404)
    answer = client.get(f"{API}/needs/{need}/matches", headers=firm).get_json()
    assert result in [m["id"] for m in answer["matches"]] and answer["hidden"] == []


def test_api_delete_is_described(site: Site) -> None:
    document = site.app.test_client().get(f"{API}/openapi.json").get_json()
    operation = document["paths"]["/needs/{need_id}/feedback/{result_id}"]["delete"]
    assert operation["operationId"] == "delete_need_feedback"
    assert {"400", "403", "404"} <= set(operation["responses"])
    hidden = document["components"]["schemas"]["NeedMatches"]["properties"]["hidden"]
    assert "HiddenMatch" in str(hidden)
