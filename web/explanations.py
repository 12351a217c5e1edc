"""A match's explanation in words: the one plain sentence a firm reads, and the engineer's
figures shown behind 技术细节 (web/templates/search/_match.html)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matcher.types import Explanation, FacetClash

# How facets are named on the pages (`facet_label`: industry=智能制造 → 产业领域：智能制造).
FACET_LABELS = {"industry": "产业领域", "region": "地区", "result_type": "成果类型",
                "maturity": "成熟度", "cooperation_mode": "合作方式"}

# The sentence names this many shared terms; the page's highlights show them all.
SENTENCE_TERMS = 6


def facet_label(agreed: str) -> str:
    name, _, value = agreed.partition("=")
    return f"{FACET_LABELS.get(name, name)}：{value}"


def clash_text(clash: FacetClash) -> str:
    """One clash in words, from either side's page (the need wants, the result offers)."""
    if clash.facet == "budget":
        return f"预算上限 {clash.wanted} 万元低于报价 {clash.offered} 万元"
    label = FACET_LABELS.get(clash.facet, clash.facet)
    return (f"{label}：需求要{_listed(clash.wanted)}，"
            f"成果提供{_listed(clash.offered)}")


def sentence(exp: Explanation, terms: Sequence[str]) -> str:
    """匹配强度较强。都涉及：清洗液、颗粒残留；条件一致：集成电路、许可；不一致：…

    The strength where the ranking is calibrated; the shared terms, or that none is shared
    and the match comes from meaning alone; the facets that agree (their values) and those
    that clash."""
    opening = f"匹配强度{exp.strength.label}。" if exp.strength is not None else ""
    if terms:
        parts = ["都涉及：" + "、".join(terms[:SENTENCE_TERMS])]
    elif math.isnan(exp.dense_score):  # lexical ranking: shared words, but only common ones
        parts = ["只有常用词相同"]
    else:
        parts = ["无共同术语，按语义相近排出"]
    if exp.facets_agreed:
        parts.append("条件一致：" + "、".join(
            _listed(agreed.partition("=")[2]) for agreed in exp.facets_agreed))
    if exp.facets_clashed:
        parts.append("不一致：" + "；".join(clash_text(c) for c in exp.facets_clashed))
    return opening + "；".join(parts)


def engineer_detail(exp: Explanation, rank: int, fused: float) -> list[str]:
    """The figures behind the rank: each ranker's score and place in this list, the fused
    score and, where calibrated, the probability behind the strength label."""
    lines = [f"第 {rank} 名，融合得分 {fused:.4f}"]
    if not math.isnan(exp.dense_score):
        lines.append(f"语义相似度 {exp.dense_score:.3f}（本列表第 {exp.dense_rank} 高）")
    if not math.isnan(exp.lexical_score):
        if exp.lexical_score > 0:
            lines.append(f"关键词得分 {exp.lexical_score:.1f}（第 {exp.lexical_rank} 高）")
        else:
            lines.append("关键词得分 0（无共同关键词）")
    if exp.strength is not None:
        lines.append(f"校准概率 {exp.strength.probability:.2f}（匹配强度 {exp.strength.label}）")
    return lines


def _listed(joined: str) -> str:
    return "、".join(v for v in joined.split(";") if v)
