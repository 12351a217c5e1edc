"""The import's fields: which columns a needs or results file may have, under which names
(Chinese or English, see `FieldSpec.aliases`), with which limits and vocabularies; and the two
side schemas built from them. docs/import-format.md is the user-facing description of the
same table, kept in step by a test."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from corpora.industries import G60_CITIES, G60_INDUSTRIES, canonical_city, canonical_industry
from matcher.types import Side

FieldKind = Literal["str", "text", "float", "date", "choice", "list", "choice_list"]

TITLE_MAX = 200
TEXT_MAX = 20_000
NAME_MAX = 200
EXTERNAL_ID_MAX = 100
SHORT_MAX = 100
KEYWORD_MAX = 50
KEYWORDS_MAX_COUNT = 100
INVENTORS_MAX_COUNT = 100
MONEY_MAX = 10_000_000.0  # 万元, i.e. 1,000 亿元: anything larger is a typo

COOPERATION_MODES = ("技术转让", "许可", "合作开发", "委托开发", "技术咨询", "作价入股")
RESULT_TYPES = ("发明专利", "实用新型", "软件著作权", "论文", "样机", "其他")
MATURITIES = ("实验室", "小试", "中试", "产业化")


def _choices(canonical: tuple[str, ...], synonyms: Mapping[str, str] | None = None) -> dict:
    table = {value: value for value in canonical}
    table.update(synonyms or {})
    return {_choice_key(key): value for key, value in table.items()}


def _choice_key(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lower()


@dataclass(frozen=True)
class FieldSpec:
    name: str  # canonical name: the model attribute (or organisation field) it fills
    label: str  # Chinese name used in messages and templates
    aliases: tuple[str, ...]  # other accepted column names (Chinese and English)
    kind: FieldKind
    required: bool = False
    max_len: int | None = None  # characters, for str/text; per item for lists
    max_items: int | None = None
    choices: Mapping[str, str] = field(default_factory=dict)  # normalised alias → canonical
    lookup: Callable[[str], str | None] | None = None  # for open-ended synonym rules
    shown_choices: tuple[str, ...] = ()
    note: str = ""

    def resolve_choice(self, value: str) -> str | None:
        if self.lookup is not None:
            found = self.lookup(value)
            if found is not None:
                return found
        return self.choices.get(_choice_key(value))


_COOPERATION_SYNONYMS = {
    "转让": "技术转让",
    "专利转让": "技术转让",
    "技术许可": "许可",
    "专利许可": "许可",
    "普通许可": "许可",
    "独占许可": "许可",
    "排他许可": "许可",
    "联合开发": "合作开发",
    "合作研发": "合作开发",
    "委托研发": "委托开发",
    "咨询": "技术咨询",
    "技术服务": "技术咨询",
    "技术入股": "作价入股",
}

_RESULT_TYPE_SYNONYMS = {
    "发明": "发明专利",
    "实用新型专利": "实用新型",
    "软著": "软件著作权",
    "软件": "软件著作权",
    "计算机软件著作权": "软件著作权",
    "期刊论文": "论文",
    "会议论文": "论文",
    "原型": "样机",
    "other": "其他",
}

_MATURITY_SYNONYMS = {
    "实验室阶段": "实验室",
    "研发阶段": "实验室",
    "小试阶段": "小试",
    "中试阶段": "中试",
    "产业化阶段": "产业化",
    "已产业化": "产业化",
}


def _field_common() -> dict[str, FieldSpec]:
    return {
        "external_id": FieldSpec(
            "external_id", "编号", ("编号", "id", "external_id", "外部编号"), "str",
            max_len=EXTERNAL_ID_MAX,
            note="你方自己的编号；同一单位内唯一。提供编号时，重新导入按编号更新。",
        ),
        "industry": FieldSpec(
            "industry", "产业领域", ("产业领域", "行业", "领域", "所属领域", "industry", "field"),
            "choice", lookup=canonical_industry, shown_choices=G60_INDUSTRIES,
        ),
    }


def _status_field(canonical: tuple[str, ...], synonyms: Mapping[str, str]) -> FieldSpec:
    shown = tuple(
        f"{value}（{'/'.join(k for k, v in synonyms.items() if v == value)}）"
        for value in canonical
    )
    return FieldSpec(
        "status", "状态", ("状态", "status"), "choice",
        choices=_choices(canonical, synonyms), shown_choices=shown,
        note="留空：新记录取默认值（开放/有效），已有记录保持原状态。",
    )


def _city_field(name: str, label: str, aliases: tuple[str, ...]) -> FieldSpec:
    return FieldSpec(
        name, label, aliases, "choice", lookup=canonical_city, shown_choices=G60_CITIES
    )


def _money_field(name: str, label: str, aliases: tuple[str, ...]) -> FieldSpec:
    return FieldSpec(name, label, aliases, "float", note="单位：万元，不小于 0。")


def _need_fields() -> tuple[FieldSpec, ...]:
    common = _field_common()
    return (
        common["external_id"],
        FieldSpec(
            "title", "标题", ("标题", "需求名称", "需求标题", "名称", "title"), "str",
            required=True, max_len=TITLE_MAX,
        ),
        FieldSpec(
            "description", "需求描述",
            ("需求描述", "描述", "详细描述", "需求内容", "内容", "description", "text"),
            "text", required=True, max_len=TEXT_MAX,
        ),
        common["industry"],
        FieldSpec(
            "cooperation_mode", "合作方式", ("合作方式", "期望合作方式", "cooperation_mode"),
            "choice", choices=_choices(COOPERATION_MODES, _COOPERATION_SYNONYMS),
            shown_choices=COOPERATION_MODES,
        ),
        _money_field("budget_min", "预算下限", ("预算下限", "最低预算", "budget_min")),
        _money_field("budget_max", "预算上限", ("预算上限", "最高预算", "budget_max")),
        FieldSpec("region", "地区", ("地区", "区域", "所在地区", "region"), "str",
                  max_len=SHORT_MAX),
        FieldSpec("deadline", "截止日期", ("截止日期", "截止时间", "deadline"), "date"),
        FieldSpec("contact", "联系方式", ("联系方式", "联系人", "contact"), "str",
                  max_len=NAME_MAX),
        FieldSpec(
            "firm", "企业名称", ("企业名称", "企业", "需求单位", "单位", "firm", "company",
                                 "organisation", "organization"),
            "str", max_len=NAME_MAX, note="留空时使用导入时指定的单位。",
        ),
        _city_field("firm_city", "企业所在城市", ("企业所在城市", "所在城市", "城市",
                                                   "firm_city", "city")),
        FieldSpec("firm_tier", "企业资质", ("企业资质", "企业类型", "资质", "firm_tier", "tier"),
                  "str", max_len=50, note="如 高新技术企业、科技小巨人、专精特新。"),
        _status_field(("open", "closed"), {"开放": "open", "征集中": "open", "进行中": "open",
                                           "关闭": "closed", "已关闭": "closed"}),
    )


def _result_fields() -> tuple[FieldSpec, ...]:
    common = _field_common()
    return (
        common["external_id"],
        FieldSpec(
            "title", "标题", ("标题", "成果名称", "成果标题", "名称", "title"), "str",
            required=True, max_len=TITLE_MAX,
        ),
        FieldSpec(
            "abstract", "摘要",
            ("摘要", "成果简介", "简介", "描述", "内容", "abstract", "description", "text"),
            "text", required=True, max_len=TEXT_MAX,
        ),
        FieldSpec(
            "result_type", "成果类型", ("成果类型", "类型", "result_type", "type"), "choice",
            choices=_choices(RESULT_TYPES, _RESULT_TYPE_SYNONYMS), shown_choices=RESULT_TYPES,
        ),
        FieldSpec("patent_number", "专利号", ("专利号", "申请号", "专利申请号", "patent_number"),
                  "str", max_len=50),
        FieldSpec(
            "maturity", "成熟度", ("成熟度", "技术成熟度", "maturity"), "choice",
            choices=_choices(MATURITIES, _MATURITY_SYNONYMS), shown_choices=MATURITIES,
        ),
        common["industry"],
        FieldSpec("keywords", "关键词", ("关键词", "keywords"), "list",
                  max_len=KEYWORD_MAX, max_items=KEYWORDS_MAX_COUNT,
                  note="用 ; ； , ， 、 分隔，或 JSON 数组。"),
        FieldSpec("inventors", "发明人", ("发明人", "完成人", "团队成员", "inventors"), "list",
                  max_len=NAME_MAX, max_items=INVENTORS_MAX_COUNT,
                  note="分隔方式同关键词。"),
        FieldSpec(
            "transfer_modes", "转化方式", ("转化方式", "转让方式", "合作方式", "transfer_modes"),
            "choice_list", choices=_choices(COOPERATION_MODES, _COOPERATION_SYNONYMS),
            shown_choices=COOPERATION_MODES, max_items=len(COOPERATION_MODES),
        ),
        _money_field("asking_price", "意向价格", ("意向价格", "转让价格", "价格", "asking_price")),
        FieldSpec("published_on", "公开日期",
                  ("公开日期", "公开日", "发表日期", "授权日期", "日期", "published_on", "date"),
                  "date"),
        FieldSpec(
            "institution", "单位名称",
            ("单位名称", "单位", "所属单位", "完成单位", "institution", "organisation",
             "organization", "university"),
            "str", max_len=NAME_MAX, note="留空时使用导入时指定的单位。",
        ),
        _city_field("institution_city", "单位所在城市",
                    ("单位所在城市", "所在城市", "城市", "institution_city", "city")),
        FieldSpec(
            "institution_kind", "单位类型", ("单位类型", "institution_kind"), "choice",
            choices=_choices(("university", "institute", "firm"),
                             {"高校": "university", "大学": "university",
                              "科研院所": "institute", "研究院": "institute",
                              "研究所": "institute", "企业": "firm"}),
            shown_choices=("高校", "科研院所", "企业"),
        ),
        _status_field(("active", "withdrawn"), {"有效": "active", "在售": "active",
                                                "撤回": "withdrawn", "已撤回": "withdrawn",
                                                "下架": "withdrawn"}),
    )


@dataclass(frozen=True)
class SideSchema:
    side: Side
    label: str  # 需求 / 成果
    fields: tuple[FieldSpec, ...]
    text_field: str  # the long text: description / abstract
    organisation_field: str  # firm / institution
    organisation_city_field: str
    default_organisation_kind: str

    def by_name(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @cached_property
    def _by_alias(self) -> dict[str, FieldSpec]:
        return {normalise_column(alias): spec for spec in self.fields for alias in spec.aliases}

    def field_for_column(self, column: str) -> FieldSpec | None:
        """The field a column header (any accepted alias, any case or width) names."""
        return self._by_alias.get(normalise_column(column))

    @property
    def required(self) -> tuple[FieldSpec, ...]:
        return tuple(spec for spec in self.fields if spec.required)


NEED_SCHEMA = SideSchema(
    side="need", label="需求", fields=_need_fields(), text_field="description",
    organisation_field="firm", organisation_city_field="firm_city",
    default_organisation_kind="firm",
)
RESULT_SCHEMA = SideSchema(
    side="result", label="成果", fields=_result_fields(), text_field="abstract",
    organisation_field="institution", organisation_city_field="institution_city",
    default_organisation_kind="university",
)


def schema_for(side: Side) -> SideSchema:
    if side == "need":
        return NEED_SCHEMA
    if side == "result":
        return RESULT_SCHEMA
    raise ValueError(f"unknown side {side!r}: expected 'need' or 'result'")


_UNIT_SUFFIX = re.compile(r"\([^()]*\)$")


def normalise_column(column: str) -> str:
    """'预算上限（万元）*' → '预算上限'; 'Title ' → 'title'."""
    text = unicodedata.normalize("NFKC", column).strip().lower()
    text = re.sub(r"[\s*]+", "", text)
    return _UNIT_SUFFIX.sub("", text)
