"""The OpenAPI description and the docs page: served, complete, valid, and the same models
that check the requests.

What these tests hold: every /api/v1 route is described (a route added without a
description fails here); the document is OpenAPI 3.1 that schemathesis loads and whose
schemas are valid JSON Schema 2020-12; the body models are the importer's field table (a
limit changed there changes the description and the check together); answers of the main
flows match their models; the docs page is the site's own HTML with no script or inline
style, under the site's Content-Security-Policy.
"""

from __future__ import annotations

import io
import re
from typing import Any

import jsonschema_rs
import pytest
import schemathesis

from service.records import fields_for, schema_of
from tests.support.api import API, NEW_NEED, bearer, error_of, need_id, result_id
from tests.support.web import Site
from web.api import answers
from web.api.contract import OPERATIONS
from web.api.openapi import document
from web.api.params import CHANGE_BODY, NEW_BODY, SIDES
from web.security import CONTENT_SECURITY_POLICY

# Routes of the API that are not operations of it: the description itself and its page.
NOT_OPERATIONS = {"api.openapi", "api.docs"}


def routes(site: Site) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every /api/v1 route the app serves."""
    found = set()
    for rule in site.app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint in NOT_OPERATIONS:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).removeprefix(API)
        found |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def described() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document()["paths"].items()
            for method in item}


def test_every_api_route_is_described(sqlite_site: Site) -> None:
    assert routes(sqlite_site) == described()
    assert len(described()) >= 16


def test_the_description_is_served_without_credentials(sqlite_site: Site) -> None:
    response = sqlite_site.app.test_client().get(f"{API}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body == document()
    assert body["openapi"].startswith("3.1") and body["servers"] == [{"url": API}]


def test_the_description_is_valid_openapi_and_json_schema() -> None:
    schema = schemathesis.openapi.from_dict(document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(described())
    for name, component in document()["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(component), name
    for item in document()["paths"].values():
        for operation in item.values():
            for parameter in operation["parameters"]:
                assert jsonschema_rs.meta.is_valid(parameter["schema"]), parameter["name"]


def test_each_operation_lists_what_it_can_answer() -> None:
    for op in OPERATIONS.values():
        responses = document()["paths"][op.path][op.method.lower()]["responses"]
        assert str(op.status) in responses and "400" in responses and "431" in responses
        if not op.public:
            assert "401" in responses, op.endpoint
        if op.body is not None:
            assert "413" in responses, op.endpoint
        if "{" in op.path:
            assert "404" in responses, op.endpoint


@pytest.mark.parametrize("side", SIDES)
def test_bodies_are_the_importers_fields(side: str) -> None:
    """Generated from the import schema: same fields, same required ones, same limits."""
    components = document()["components"]["schemas"]
    schema = schema_of(side)
    new = components[NEW_BODY[side].__name__]
    change = components[CHANGE_BODY[side].__name__]
    assert list(new["properties"]) == list(fields_for(side))
    assert list(change["properties"]) == [*fields_for(side), "status"]
    assert set(new["required"]) == {s.name for s in schema.required if s.name in new["properties"]}
    assert "required" not in change
    assert new["additionalProperties"] is False and change["additionalProperties"] is False
    for name in fields_for(side):
        spec = schema.by_name(name)
        text = str(new["properties"][name])
        if spec.max_len is not None and spec.kind in ("str", "text"):
            assert f"'maxLength': {spec.max_len}" in text, name
        for choice in spec.shown_choices:
            assert choice in text, (name, choice)


def test_a_field_over_the_importers_limit_is_refused_by_name(sqlite_site: Site) -> None:
    """The description's limit is the check's: maxLength + 1 is refused, naming the field."""
    client = sqlite_site.app.test_client()
    limits = document()["components"]["schemas"]["NeedNew"]["properties"]
    for name in ("title", "region", "contact"):
        limit = next(part["maxLength"] for part in [limits[name], *limits[name].get("anyOf", [])]
                     if "maxLength" in part)
        for length, refused in ((limit, False), (limit + 1, True)):
            response = client.post(f"{API}/needs", json=NEW_NEED | {name: "长" * length},
                                   headers=bearer(sqlite_site, "firm_a"))
            if refused:
                assert name in error_of(response, 400)["fields"]
            else:
                assert response.status_code == 201, response.get_json()


def validate(model: type[answers.Answer], body: Any) -> None:
    model.model_validate(body)


def test_answers_match_their_models(sqlite_site: Site) -> None:
    """The main flows' answers, checked with the models the description publishes (a key in
    an answer that the model lacks is an error: the models forbid extra keys)."""
    client = sqlite_site.app.test_client()
    owner, other = bearer(sqlite_site, "firm_a"), bearer(sqlite_site, "firm_b")
    need, result = need_id(sqlite_site), result_id(sqlite_site)
    mine = client.get(f"{API}/needs/{need}", headers=owner).get_json()
    validate(answers.NeedOut, mine)
    assert "contact" in mine
    theirs = client.get(f"{API}/needs/{need}", headers=other).get_json()
    validate(answers.NeedOut, theirs)
    assert "contact" not in theirs
    validate(answers.NeedPage, client.get(f"{API}/needs", headers=other).get_json())
    validate(answers.ResultPage, client.get(f"{API}/results", headers=owner).get_json())
    validate(answers.ResultOut, client.get(f"{API}/results/{result}", headers=owner).get_json())
    mark = client.post(f"{API}/needs/{need}/feedback", headers=owner,
                       json={"result_id": result, "relevant": True, "reason": "合适"})
    validate(answers.MarkOut, mark.get_json())
    matches = client.get(f"{API}/needs/{need}/matches", headers=owner).get_json()
    validate(answers.NeedMatches, matches)
    assert any("mark" in item for item in matches["matches"])
    validate(answers.ResultMatches,
             client.get(f"{API}/results/{result}/matches", headers=owner).get_json())
    validate(answers.SearchHits, client.get(f"{API}/search", query_string={"q": "机器人"},
                                            headers=owner).get_json())
    office = bearer(sqlite_site, "office_u1")
    validate(answers.ResultInterest,
             client.get(f"{API}/results/{result}/interest", headers=office).get_json())
    upload = "成果名称,摘要\n描述文件里的成果,一种用于描述的成果\n没有摘要的成果,\n"
    for rows, model in ((upload.rsplit("没有", 1)[0], answers.ImportOut),
                        (upload, answers.ImportRefusal)):
        response = client.post(f"{API}/results/import", headers=office,
                               data={"file": (io.BytesIO(rows.encode()), "成果.csv")},
                               content_type="multipart/form-data")
        validate(model, response.get_json())
    validate(answers.ErrorOut, client.get(f"{API}/needs/999999", headers=owner).get_json())
    validate(answers.ErrorOut, client.get(f"{API}/needs", query_string={"page": "x"},
                                          headers=owner).get_json())


def test_the_docs_page_is_our_own_html(sqlite_site: Site) -> None:
    response = sqlite_site.app.test_client().get(f"{API}/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    page = response.get_data(as_text=True)
    assert "<script" not in page and "style=" not in page and "<style" not in page
    assert f'href="{API}/openapi.json"' in page
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # nothing from another host
    for method, path in described():
        assert f"{method} {API}{path}" in page
    for name in fields_for("result"):
        assert f"<code>{name}</code>" in page


def test_a_method_not_allowed_says_which_are(sqlite_site: Site) -> None:
    """RFC 9110: a 405 lists the methods the resource does support, in `Allow` (found by
    schemathesis' unsupported_method check: web/errors.py used to drop the header)."""
    response = sqlite_site.app.test_client().delete(f"{API}/needs",
                                                    headers=bearer(sqlite_site, "admin"))
    error_of(response, 405)
    assert {"GET", "POST"} <= set(response.headers.get("Allow", "").replace(" ", "").split(","))


def test_a_sibling_resource_is_not_read_as_an_id(sqlite_site: Site) -> None:
    """Regression (found by schemathesis' unsupported_method and allow_header_conformance
    checks): PATCH and GET on /results/import, which only takes POST, reached
    /results/{result_id} with the id "import" and were answered 400 "编号有误", and OPTIONS
    on it listed GET and PATCH. They are a 405 that lists POST only. Junk ids stay a 400."""
    client = sqlite_site.app.test_client()
    headers = bearer(sqlite_site, "admin")
    for method in ("GET", "PATCH"):
        response = client.open(f"{API}/results/import", method=method, headers=headers,
                               json={"title": "x"})
        error_of(response, 405)
        assert "POST" in response.headers["Allow"] and "PATCH" not in response.headers["Allow"]
    allowed = client.options(f"{API}/results/import").headers["Allow"]
    assert set(allowed.replace(" ", "").split(",")) == {"POST", "OPTIONS"}
    assert "result_id" in error_of(client.get(f"{API}/results/imports", headers=headers),
                                   400)["fields"]
