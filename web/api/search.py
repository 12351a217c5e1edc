"""The API's free-text search over needs or results."""

from __future__ import annotations

from typing import Any

from corpora.schema import encoding_problem
from web.api import bp
from web.api.input import (
    DATE_ARGS,
    K_DEFAULT,
    K_MAX,
    check_args,
    fail,
    filters_for,
    int_arg,
    one_arg,
)
from web.api.replies import ok
from web.database import get_db
from web.matching import service
from web.matchview import FILTER_PARAMS, match_rows

QUERY_MAX = 2000


@bp.get("/search")
def search() -> Any:
    side = one_arg("side") or "result"
    if side not in ("need", "result"):
        fail(400, "查询参数有误", {"side": "须为 need 或 result"})
    check_args({"q", "side", "k", *FILTER_PARAMS[side], *DATE_ARGS})
    q = one_arg("q")
    if q is None:
        fail(400, "查询参数有误", {"q": "缺少检索词"})
    if len(q) > QUERY_MAX:
        fail(400, "查询参数有误", {"q": f"检索词不超过 {QUERY_MAX} 字"})
    if problem := encoding_problem(q):
        fail(400, "查询参数有误", {"q": problem})
    k = int_arg("k", K_DEFAULT, 1, K_MAX)
    filters = filters_for(side)
    rows = match_rows(get_db(), side, service().search(q, side, k=k, filters=filters))
    return ok({"q": q, "side": side, "k": k, "matches": [row.as_json() for row in rows]})
