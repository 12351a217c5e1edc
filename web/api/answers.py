"""What the API answers with, as pydantic models: the shapes `web.api.json` and the views
build, described for the OpenAPI document.

The views build their answers as plain dicts (fast, and the contact key can simply be left
out); these models say what those dicts hold. They forbid extra keys, so that the contract
test (schemathesis against a live server, tests/web/test_api_contract.py) catches a key added
to an answer but not here, as well as a wrong type or a missing key.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from corpora.models import NEED_STATUSES, RESULT_STATUSES, ROLES

NeedStatus = Literal[NEED_STATUSES]
ResultStatus = Literal[RESULT_STATUSES]
Role = Literal[ROLES]


def _untitled(schema: dict[str, Any]) -> None:
    """Keys are their own names: pydantic's "External Id" titles would only be noise."""
    for field in schema.get("properties", {}).values():
        field.pop("title", None)


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_untitled)


class Organisation(Answer):
    """发布者所属单位。"""

    id: int
    name: str
    city: str | None


class NeedOut(Answer):
    """一条需求。`contact` 只对有权查看联系方式的人出现（键不存在，而不是 null）。"""

    id: int
    external_id: str | None
    title: str
    description: str
    industry: str | None
    cooperation_mode: str | None
    budget_min: float | None = Field(description="万元")
    budget_max: float | None = Field(description="万元")
    region: str | None
    deadline: date | None
    contact: str | None = Field(None, description="仅对可查看联系方式的账号出现")
    status: NeedStatus
    organisation: Organisation | None
    created_at: datetime
    updated_at: datetime
    editable: bool = Field(description="当前账号能否修改")


class ResultOut(Answer):
    """一条成果。"""

    id: int
    external_id: str | None
    title: str
    title_derived: bool = Field(
        description="标题系据摘要拟定（原始数据没有标题），页面上以“据摘要拟题”标签标出")
    abstract: str
    result_type: str | None
    patent_number: str | None
    maturity: str | None
    industry: str | None
    keywords: list[str]
    inventors: list[str]
    transfer_modes: list[str]
    asking_price: float | None = Field(description="万元")
    published_on: date | None
    status: ResultStatus
    organisation: Organisation | None
    created_at: datetime
    updated_at: datetime
    editable: bool = Field(description="当前账号能否修改")


class Page(Answer):
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    per_page: int = Field(ge=1)


class NeedPage(Page):
    """一页需求。"""

    items: list[NeedOut]


class ResultPage(Page):
    """一页成果。"""

    items: list[ResultOut]


class FacetClash(Answer):
    """需求与成果条件不一致之处。"""

    facet: Literal["cooperation_mode", "budget"] = Field(
        description="cooperation_mode：需求的合作方式不在成果提供的方式之中；"
                    "budget：需求预算上限低于成果报价")
    wanted: str = Field(description="需求一方：合作方式（多个以 ; 分隔）或预算上限（万元）")
    offered: str = Field(description="成果一方：提供的合作方式（多个以 ; 分隔）或报价（万元）")
    text: str = Field(description="一句话说明，如“预算上限 50 万元低于报价 80 万元”")


class Explanation(Answer):
    """为什么排在这里。"""

    dense_score: float | None
    lexical_score: float | None
    dense_rank: int | None
    lexical_rank: int | None
    shared_terms: list[str] = Field(description="共同术语，已去掉虚词和一方常见词")
    facets_agreed: list[str]
    why: str = Field(description="一句话说明：匹配强度、都涉及的术语、一致与不一致的条件")
    facets_clashed: list[FacetClash]
    detail: list[str] = Field(
        description="技术细节：融合得分、语义与关键词得分及其在本列表中的名次、校准概率")


class Strength(Answer):
    """匹配强度：在已评判的需求—成果对上校准的概率及其档位。"""

    label: Literal["强", "较强", "一般", "弱"] = Field(
        description="强：校准集上约八成以上确能部分解决或可能解决需求；较强、一般、弱依次递减")
    probability: float = Field(ge=0, le=1, description="该匹配能部分解决或可能解决需求的概率")


class Match(Answer):
    """一条匹配或检索结果。"""

    id: int
    rank: int = Field(ge=1)
    score: float = Field(description="融合得分，仅在本列表内可比，不表示匹配好坏")
    title: str
    organisation: str = Field(description="单位名称")
    strength: Strength | None = Field(
        description="匹配强度；仅混合检索（语义 + 关键词）给出，其余模式为 null")
    explanation: Explanation | None


class Mark(Answer):
    """需求方给这条匹配的标记。"""

    relevant: bool
    reason: str | None


class MarkedMatch(Match):
    """一条匹配；需求的发布企业还能看到自己给的标记。"""

    mark: Mark | None = Field(None, description="仅需求的发布企业可见，且已标记时出现")


class HiddenMatch(Answer):
    """需求方标记为不相关、已从匹配列表中隐藏的成果。"""

    id: int
    title: str
    reason: str | None


class NeedMatches(Answer):
    """需求的匹配成果。"""

    need_id: int
    k: int
    matches: list[MarkedMatch] = Field(
        description="不含需求方标记为不相关的成果；排序已参考其标记为相关的成果")
    hidden: list[HiddenMatch] | None = Field(
        None, description="仅需求的发布企业可见：标记为不相关而隐藏的成果，新标记在前")


class ResultMatches(Answer):
    """成果的匹配需求。"""

    result_id: int
    k: int
    matches: list[Match]


class SearchHits(Answer):
    """检索结果。"""

    q: str
    side: Literal["need", "result"]
    k: int
    matches: list[Match]


class MarkOut(Answer):
    """保存后的标记。"""

    need_id: int
    result_id: int
    relevant: bool
    reason: str | None
    updated_at: datetime


class UnmarkOut(Answer):
    """撤销的标记。"""

    need_id: int
    result_id: int
    relevant: bool = Field(description="撤销前的标记")


class InterestedNeed(Answer):
    id: int
    title: str
    status: NeedStatus
    organisation: Organisation | None
    contact: str | None = Field(None, description="仅对可查看联系方式的账号出现")


class Interest(Answer):
    need: InterestedNeed
    relevant: bool
    reason: str | None
    updated_at: datetime


class ResultInterest(Answer):
    """企业对某成果的意向标记。"""

    result_id: int
    items: list[Interest]


class Lot(Answer):
    position: int = Field(ge=1)
    result_id: int
    title: str
    reserve_price: float | None = Field(description="万元")
    note: str | None
    organisation: Organisation | None
    status: ResultStatus
    outcome: Literal["sold", "unsold"] | None = Field(
        description="拍卖结果：sold 成交、unsold 流拍；未记录时为 null")
    sold_price: float | None = Field(description="成交价（万元）")
    buyer: str | None = Field(description="买受人")
    outcome_at: datetime | None = Field(description="结果记录时间")


class ShortlistOut(Answer):
    """一份拍卖清单。"""

    id: int
    title: str
    event_date: date | None
    note: str | None
    created_at: datetime
    updated_at: datetime
    lots: list[Lot]


class ShortlistPage(Page):
    """一页拍卖清单。"""

    items: list[ShortlistOut]


class TokenUser(Answer):
    id: int
    username: str
    role: Role
    organisation: Organisation | None


class TokenOut(Answer):
    """新令牌（只显示这一次）与其账号。"""

    token: str
    user: TokenUser


class ErrorDetail(Answer):
    status: int = Field(ge=400, le=599)
    message: str
    fields: dict[str, str] | None = Field(
        None, description="出错的字段 → 原因；整个请求有误时不出现")


class ErrorOut(Answer):
    """所有错误的同一格式。"""

    error: ErrorDetail


class ImportOut(Answer):
    """导入完成：各有多少条。"""

    created: int = Field(ge=0)
    updated: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    total_rows: int = Field(ge=0)
    unknown_columns: list[str] = Field(description="未识别、已忽略的列名")


class RejectedRow(Answer):
    line: int = Field(description="文件中的行号")
    row: str | None = Field(None, description="该行的编号或标题；都为空时为 null")
    field: str | None = Field(description="出错的字段；整行有误时为 null")
    message: str


class Rejected(Answer):
    shown: list[RejectedRow] = Field(description="前若干个不合格行的全部问题")
    total: int = Field(ge=0, description="不合格的行数")
    by_reason: dict[str, int] = Field(description="原因 → 行数（一行两个原因时两边都计）")


class ImportRefusal(Answer):
    """文件未导入：error 说明原因；有不合格的行时 rejected 列出它们。"""

    error: ErrorDetail
    rejected: Rejected | None = Field(None, description="有不合格的行时出现")
