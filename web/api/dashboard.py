"""The dashboard's figures as JSON (GET /api/v1/dashboard): what /dashboard draws, for the
same readers (officers and admins: every figure; an office: its own institution's) and with
the same filters, checked by `web.dashboard.filters` (a bad one is a 400 naming it)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import request
from pydantic import Field

from web.api.answers import Answer
from web.api.auth import viewer
from web.api.contract import operation, read_query
from web.api.input import fail
from web.api.params import Strict
from web.api.replies import ok
from web.dashboard.filters import dashboard_filters
from web.dashboard.scope import REFUSED, as_json, can_read, figures_for
from web.matchview import BadFilter


class DashboardQuery(Strict):
    date_from: str | None = Field(None, title="起始日期", description="YYYY-MM-DD，含当天")
    date_to: str | None = Field(None, title="结束日期", description="YYYY-MM-DD，含当天")
    industry: str | None = Field(None, title="产业领域", max_length=50)
    city: str | None = Field(None, title="所在城市",
                             description="G60 九城之一；技术转移办公室的看板不适用")


class FiltersOut(Answer):
    date_from: date | None
    date_to: date | None
    industry: str | None
    city: str | None


class VolumeOut(Answer):
    label: str
    needs: int = Field(ge=0)
    results: int = Field(ge=0)


class FunnelStepOut(Answer):
    step: Literal["matches", "marks", "requests", "accepted", "signed"]
    label: str
    count: int = Field(ge=0)
    conversion: float | None = Field(
        description="该步数量 / 上一步数量；第一步或上一步为 0 时为 null")


class BucketOut(Answer):
    label: str
    count: int = Field(ge=0)


class AnswerTimeOut(Answer):
    answered: int = Field(ge=0)
    pending: int = Field(ge=0)
    median_hours: float | None
    mean_hours: float | None
    buckets: list[BucketOut]


class AuctionsOut(Answer):
    sold: int = Field(ge=0)
    unsold: int = Field(ge=0)
    unrecorded: int = Field(ge=0)
    sold_total: float = Field(description="成交总额，万元")
    ratio: float | None = Field(description="Σ成交价 / Σ保留价（有保留价的成交拍品）")
    with_reserve: int = Field(ge=0)
    reserve_total: float


class UnansweredOut(Answer):
    industry: str
    open_needs: int = Field(ge=0)
    unanswered: int = Field(ge=0)
    share: float | None


class ResultInterestOut(Answer):
    result_id: int
    title: str
    industry: str | None
    status: str
    strong_matches: int = Field(ge=0)
    relevant_marks: int = Field(ge=0)
    requests: int = Field(ge=0)
    accepted: int = Field(ge=0)
    signed: int = Field(ge=0)
    unasked: bool = Field(description="无相关标记、无对接请求")


class DashboardOut(Answer):
    """数据看板：scope 为 all（科委/G60 官员、管理员：全平台）或 institution
    （技术转移办公室：本单位成果）。只属于一种范围的字段在另一种范围中不出现。"""

    scope: Literal["all", "institution"]
    organisation: str | None
    filters: FiltersOut
    min_label: str
    top_k: int
    funnel: list[FunnelStepOut]
    answer_time: AnswerTimeOut
    by_industry: list[VolumeOut] | None = None
    by_city: list[VolumeOut] | None = None
    by_month: list[VolumeOut] | None = None
    decline_reasons: list[BucketOut] | None = None
    auctions: AuctionsOut | None = None
    unanswered: list[UnansweredOut] | None = None
    results: list[ResultInterestOut] | None = None


@operation("GET", "/dashboard", tag="数据看板", summary="数据看板的全部数字",
           answer=DashboardOut, query=DashboardQuery, errors=(403,),
           description="科委/G60 官员和管理员：全平台；技术转移办公室：本单位成果；企业 403。"
           "口径与 /dashboard 页面相同。")
def get_dashboard() -> Any:
    if not can_read(viewer()):
        fail(403, REFUSED)
    read_query()
    try:
        filters = dashboard_filters(request.args)
    except BadFilter as bad:
        fail(400, "查询参数有误", {bad.field: bad.message})
    return ok(as_json(figures_for(viewer(), filters)))
