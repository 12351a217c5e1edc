"""The API's free-text search over needs or results."""

from __future__ import annotations

from typing import Any

from flask import request

from web.api import answers
from web.api.contract import operation, read_query
from web.api.input import fail, filters_of
from web.api.params import SearchQuery
from web.api.replies import ok
from web.database import get_db
from web.matching import service
from web.matchview import FILTER_PARAMS, match_rows

ONE_SIDE_ONLY = set(FILTER_PARAMS["need"]) ^ set(FILTER_PARAMS["result"])


@operation("GET", "/search", tag="检索", summary="检索需求或成果", answer=answers.SearchHits,
           query=SearchQuery,
           description="任何已登录账号。side=result（默认）检索成果，side=need 检索开放中的需求；"
           "筛选参数因 side 而异（见各参数说明）。")
def search() -> Any:
    args = read_query()
    # One model describes both sides' filters; a filter of the other side only is refused.
    other = {name: "未知参数" for name in request.args
             if name in ONE_SIDE_ONLY and name not in FILTER_PARAMS[args.side]}
    if other:
        fail(400, "查询参数有误", other)
    filters = filters_of(args, args.side)
    rows = match_rows(get_db(), args.side,
                      service().search(args.q, args.side, k=args.k, filters=filters))
    return ok({"q": args.q, "side": args.side, "k": args.k,
               "matches": [row.as_json() for row in rows]})
