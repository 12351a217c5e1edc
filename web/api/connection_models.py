"""What the 对接 and notification endpoints accept and answer, as pydantic models, in the
style of `web.api.params` (the gates that refuse a wrong JSON type) and `web.api.answers`
(answers forbid extra keys, so the contract test catches a key added here but not there).
Kept in their own module so that the 对接 endpoints' shapes are read in one place.

Types and lengths are checked here; the rules of the moves (who, in which state) are
`service.connections`', which names the field it refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from corpora.connections import (
    CONTACT_MAX,
    DEAL_FORMS,
    DECLINE_REASONS,
    MESSAGE_MAX,
    NOTE_MAX,
    SIDES,
    STAGES,
    STATUSES,
    WANTS,
)
from corpora.models import ID_MAX, as_id
from web.api.answers import Answer, Organisation, Page
from web.api.params import (
    Id,
    PageQuery,
    QueryBool,
    Strict,
    _clean_text,
    _date_type,
    _gate,
    _money_type,
    _text_type,
    one_of,
    problem,
)

# --- bodies and queries ---------------------------------------------------------------------


def _ref_to(label: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if value is None:
            raise problem("缺少此项，必填")
        if (parsed := as_id(value)) is None:
            raise problem(f"须为{label}编号（1–{ID_MAX} 的整数）")
        return parsed

    return check


def _text_of(limit: int, *, required: bool) -> Any:
    """Text within `limit`, clean Unicode; null refused when `required`."""
    text = Annotated[str, Field(max_length=limit), AfterValidator(_clean_text(limit))]
    return Annotated[text if required else text | None, _gate(_text_type, required)]


def _money_gate(value: Any) -> Any:
    if value is not None and (message := _money_type(value)) is not None:
        raise problem(message)
    return value


def _choices(values: tuple[str, ...]) -> Any:
    return one_of(values, "须为：" + "、".join(values))


class ConnectionNew(Strict):
    """发起一条对接请求：在需求与成果的匹配上，由发布需求的企业或成果所属单位发起。"""

    need_id: Annotated[Id, BeforeValidator(_ref_to("需求"))] = Field(title="需求编号")
    result_id: Annotated[Id, BeforeValidator(_ref_to("成果"))] = Field(title="成果编号")
    message: _text_of(MESSAGE_MAX, required=True) = Field(
        title="留言", description=f"不超过 {MESSAGE_MAX} 字")
    wants: Annotated[list[_choices(WANTS)], Field(max_length=len(WANTS)),
                     _gate(lambda v: None if isinstance(v, list) else "类型错误：应为列表",
                           True)] = Field(default_factory=list, title="希望获得",
                                          description="可多选")
    contact: _text_of(CONTACT_MAX, required=False) = Field(
        None, title="我方联系方式", description="对方接受后才可见；企业发起时默认为需求的联系方式")


class ConnectionAccept(Strict):
    """接受对接请求（可附上我方联系方式，发起方可见）。"""

    contact: _text_of(CONTACT_MAX, required=False) = Field(None, title="我方联系方式")


class ConnectionDecline(Strict):
    """婉拒对接请求：原因必选，说明选填；发起方可见。"""

    reason: _choices(DECLINE_REASONS) = Field(title="婉拒原因")
    note: _text_of(NOTE_MAX, required=False) = Field(None, title="补充说明")


class ConnectionStage(Strict):
    """更新已接受的对接请求的进展：signed（已签约，须给成交方式和金额）或 failed（未成交）。"""

    stage: one_of(("signed", "failed"), "须为 signed（已签约）或 failed（未成交）") = Field(
        title="阶段")
    deal_form: _choices(DEAL_FORMS) | None = Field(None, title="成交方式",
                                                  description="签约时必填")
    deal_amount: Annotated[float | None, BeforeValidator(_money_gate)] = Field(
        None, title="成交金额（万元）", description="签约时必填，大于 0")
    signed_on: Annotated[str | None, _gate(_date_type, False),
                         WithJsonSchema({"type": ["string", "null"], "format": "date"})] = Field(
        None, title="签约日期", description="YYYY-MM-DD，默认为当天")
    note: _text_of(NOTE_MAX, required=False) = Field(None, title="说明")


class ConnectionListQuery(PageQuery):
    status: one_of(STATUSES, "须为 " + " 或 ".join(STATUSES)) | None = Field(None, title="状态")
    stage: one_of(STAGES, "须为 " + " 或 ".join(STAGES)) | None = Field(None, title="阶段")
    direction: one_of(("sent", "received"), "须为 sent 或 received") | None = Field(
        None, title="方向", description="sent：本单位发起的；received：本单位收到的")


class NotificationQuery(PageQuery):
    unread: QueryBool = Field(False, title="只看未读")


# --- answers --------------------------------------------------------------------------------


class ItemRef(Answer):
    id: int
    title: str
    organisation: Organisation | None


class UserRef(Answer):
    id: int
    display_name: str


class ConnectionEventOut(Answer):
    """一次变更：谁、何时、从何到何。"""

    at: datetime
    user: UserRef | None
    kind: Literal["created", "accepted", "declined", "withdrawn", "stage"]
    from_state: str | None
    to_state: str | None
    note: str | None


class Contacts(Answer):
    """双方的联系方式：对方接受后对双方出现（官员、管理员始终可见）。"""

    firm: str | None
    office: str | None


class ConnectionOut(Answer):
    """一条对接请求。`contacts` 只在接受后对双方出现（键不存在，而不是 null）。"""

    id: int
    need: ItemRef
    result: ItemRef
    requester_side: Literal[SIDES] = Field(description="firm：企业发起；office：技术转移办公室发起")
    requester: UserRef
    message: str
    wants: list[str]
    status: Literal[STATUSES]
    status_label: str
    answered_at: datetime | None
    decline_reason: str | None
    decline_note: str | None
    stage: Literal[STAGES] | None
    stage_label: str
    deal_form: str | None
    deal_amount: float | None = Field(description="万元")
    signed_on: date | None
    contacts: Contacts | None = Field(None, description="仅接受后对双方出现")
    party: Literal["requester", "responder"] | None = Field(
        description="当前账号在此请求中的身份；官员、管理员为 null")
    created_at: datetime
    updated_at: datetime
    events: list[ConnectionEventOut]


class ConnectionPage(Page):
    """一页对接请求，及按状态的计数（不计 status 筛选）。"""

    items: list[ConnectionOut]
    counts: dict[str, int]


class NotificationOut(Answer):
    """一条站内消息。"""

    id: int
    kind: str
    text: str
    request_id: int | None
    need_id: int | None
    result_id: int | None
    created_at: datetime
    read_at: datetime | None


class NotificationPage(Page):
    """一页站内消息（未读在前），及未读总数。"""

    items: list[NotificationOut]
    unread: int = Field(ge=0)


class ReadOut(Answer):
    """标为已读的条数，及其后的未读总数。"""

    marked: int = Field(ge=0)
    unread: int = Field(ge=0)
