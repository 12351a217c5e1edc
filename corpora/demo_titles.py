"""Titles a firm can read, for the demo's patents.

Most demo patents (KPPatent-ZH) come without a title, and some titles that do come were
OCR'd from the front page with its page counts ("权利要求书3页说明书8页附图7页…"). A derived
title is taken from the abstract's own words, never invented: the patent's subject as the
abstract names it ("本发明公开了一种X，包括…" → "一种X"; "高压气体容器(100)包括：…" →
"高压气体容器"), cut at a clause, boilerplate and reference numerals dropped. A candidate that
does not read as a title (a page count, a claim number, a bracket, a fragment that starts or
ends mid-sentence, a whole sentence) is refused and the next way of finding one is tried.

That a title was derived is not written into it: the caller stores the flag beside it
(`Result.title_derived`) and the pages show it as a tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

DERIVED_TITLE_MAX = 60
DERIVED_TITLE_MIN = 3  # "包装袋", "冷却塔"

# How a derived title was found; the demo's report counts them.
HOW_YIZHONG = "abstract: 一种…"  # "…公开了一种X，…" → "一种X"
HOW_OPENING = "abstract: opening"  # "本申请涉及X的方法，…" → "X的方法"
HOW_SUBJECT = "abstract: subject"  # "波纹翅片型热交换器具备：…" → "波纹翅片型热交换器"
HOW_LATER = "abstract: later sentence"  # "…。本发明的激光光源装置具有：…" → "激光光源装置"
HOW_KEYWORDS = "keywords"  # nothing readable in the abstract: its keywords, said as such
HOW_UNNAMED = "unnamed"  # not even keywords: "一项未具名的发明专利"

# --- what a title must not look like ------------------------------------------------------

PAGE_COUNT = re.compile(r"^(权利要求书|说明书|附图|摘要)\s*\d+\s*页")
_PAGE_COUNTS = re.compile(r"^((权利要求书|说明书|附图|摘要)\s*\d+\s*页\s*)+")
CLAIM_NUMBER = re.compile(r"^(\d+\s*[.．、]|根据权利要求|如权利要求|权利要求\s*\d)")
# "(41)", "（3）", "(2a)", "(1、20)", "(13‑1、13‑2)", "(S210)": figure labels, not words.
REFERENCE_NUMERAL = re.compile(
    r"\s*[(（]\s*[A-Za-z]?\d+[A-Za-z]?(?:\s*[-‑–~～、,，]\s*[A-Za-z]?\d+[A-Za-z]?)*\s*[)）]"
)
LETTER_LABEL = re.compile(r"[(（][A-Za-z]['′]?[)）]")
LEADING_REFERENCE = re.compile(r"^([(（]\s*[A-Za-z]?\d|\d+\s*、)")
# A derived title starts with its subject, never with a bracket, punctuation or a word that
# continues a sentence ("的…", "所述…", "其中…", "该…").
_BAD_START = re.compile(
    r"^([\s(（\[【〔<《“\"‘'\-‑—_,，.。、;；:：!?！？·…/]"
    r"|的|所述|其中|其|该|此|这|并|且|而|和|与|及|或|以|于|为|是|若|则|即|但|也|还|又|被"
    r"|上述|以下|如下|包括|用以|从而|因此)"
)
# Words that open a title only when a thing follows ("通过X的方法", "在Y中筛选Z的方法"), and
# open a sentence otherwise ("在栓塞疗法期间", "将输入信号从模拟形式转换成数字形式").
_VERB_START = re.compile(r"^(在|将|对|通过|使|由|从|如|当|利用|使用|采用|用(?!于)|可|能够|可以)")
_BAD_END = re.compile(r"(的|和|与|及|或|以及|并|且|在|将|对|其|被|由|用于|、|/|-|‑)$")
_OPENERS = "([（【《〔“‘"
_CLOSERS = ")]）】》〕”’"

# --- pieces of an abstract ----------------------------------------------------------------

_SENTENCE_END = re.compile(r"[。；;!?！？]")
_CLAUSE_END = re.compile(r"[，,：:。；;!?！？]")
# Boilerplate in front of the subject, taken off one after another.
_BOILERPLATE = tuple(
    re.compile(pattern)
    for pattern in (
        r"^(根据|按照)(本(发明|公开|申请|技术|披露))?的?(一些|各种|某些|多个|一个)?"
        r"(示例性)?(实施例|实施方式|实施方案|方面)(中)?[，,]?",
        r"^(在)?(一个|一些|多个|各种|某些)?(示例性)?(示例|实施例|实施方式|实施方案)(中)?(的)?",
        r"^((本|该)(发明|实用新型|申请|公开|文|技术|披露)|发明(?=公开|涉及|提供))(的)?"
        r"(一些|各种|某些)?(实施例|实施方式|实施方案|方面)?(中)?",
        r"^(的)?(目的|课题|名称)",
        r"^(是|为|在于|旨在)",
        r"^(可|可以|能够)?(公开|提供|涉及|提出|描述|揭示|披露|属于|介绍|是关于|关于|有关于"
        r"|给出|讨论|适用于|包括)(了|的是)?",
        r"^(是|为)",
    )
)
_SPECIFYING = re.compile(
    r"^(其)?(具体|尤其|特别|更具体|更特别|进一步|并且|并|还|且)?(地|是|而言|的)?"
    r"(涉及|提供|公开|提出|属于|为|是)?(了)?$"
)
_MEANS = re.compile(r"^(在|将|对|通过|使|从|如|当|利用|使用|采用|用(?!于)|能够|可以)")
_ORDINAL = re.compile(r"^第\s*[\d一二三四五六七八九十]")
_FIELD_CLAUSE = re.compile(r"(技术)?领域$")
_SPECIFICALLY = re.compile(
    r"^(具体|尤其|特别|更具体|更特别|进一步)(地|是|而言|的)?[，,]?"
)
# "一种" that names the subject, not "至少一种…", "其中一种…".
_YIZHONG = re.compile(r"(?<![少多任每另中一两几和或同])一种")
# Where the subject ends and what it does begins: "X包括：…", "X包括以下步骤", "X具备…".
_VERB = re.compile(
    r"(可以|可|能够|还|进一步)?(包括|包含|具备|具有|设有|含有|由|采用|利用|其特征在于|其包括)"
)
# A sentence that opens with its subject ("晶体管器件在…之间具有…") ends it at more words.
_VERB_STRICT = re.compile(
    r"(可以|可|能够|还)?(包括|包含|具备|具有|设有|含有|(?<!经)由|采用|利用|使用|为|是"
    r"|(?<![存所现])在|通过|连接|(?<!针)对|用于|用作|其特征在于|其包括|涉及"
    r"|(存储|设置|形成|安装|配置|搭载|收纳|保持)有)"
)
_NOT_A_SUBJECT_END = re.compile(r"(一种|用于|和|的|及|或|、|被|所|可|来|以|并|将|对|与)$")
# "一种装置", "一种方法": names nothing.
_GENERIC = frozenset("方法 装置 系统 设备 产品 组合物 材料 器件 结构 组件 工艺 技术 用途".split())
_STEPS_TAIL = re.compile(r"((包含|包括)((以下|如下)的?步骤)?|的(实施方式|实施例|示例))$")
# A noun phrase the abstract goes on to describe: "由短纤维制成的纱线，所述短纤维包括…".
_DESCRIBED = re.compile(r"^[，,]\s*(所述|其|该|它|包括|具有|包含)")
# What a subject ends in: the thing a patent claims. Kept broad, but a phrase ending in none of
# these ("…从模拟形式转换成数字形式") is more likely a sentence than a title.
_HEAD = re.compile(
    r"(方法|工艺|装置|设备|系统|器件|元件|组件|部件|构件|结构|电路|模块|单元|终端|介质|产品"
    r"|程序|材料|组合物|复合物|化合物|配合物|制剂|涂料|薄膜|膜|纤维|合金|钢板|玻璃|树脂"
    r"|机构|机器人|车辆|电池|电极|传感器|芯片|网络|平台|技术|应用|用途|制备|制造|控制|方案"
    r"|机|器|仪|件|体|物|剂|剂盒|品|料|线|管|板|阀|泵|灯|罩|架|箱|盒|座|环|轴|轮|头|夹|片"
    r"|针|带|袋|桶|炉|塔|柜|舱|屏|网|层|套|锁|笔|鞋|服|衣|刀|钻|胶|液|粉|球|车|船|桩|站|楼"
    r"|墙|门|窗|床|桌|椅|杯|瓶|壶|锅|盘|槽|罐|缸|筒|柱|梁|块|包|垫|帽|绳|索|链|钩|扣|塞|芯"
    r"|轨|部|体系|模型|算法|数据|信号|图像|视频|通信|接口|协议|疗法|菌株|细胞|抗体|蛋白|疫苗"
    r"|基因|序列|载体|肥|饲料|食品|饮料|茶|酒|药|酶|酸|盐|碱|酯|醇|胺|烯|酮|苷|素|碳|硅|架构|棉|厂|工厂|纱|网)$"
)
# A later sentence that names the subject: "本发明提供的导光板…的方法，…", "本发明的激光光源
# 装置具有：…", "所述防雾涂料包括…".
_OFFERED = re.compile(r"^本(?:发明|实用新型|申请|公开)(?:实施例)?提供的([^，,：:]{3,60})[，,]")
_NAMED = re.compile(r"^(?:本(?:发明|实用新型|申请|公开)(?:实施方式)?的|所述|该)(.{3,60})")


@dataclass(frozen=True)
class DerivedTitle:
    text: str
    how: str  # one of the HOW_* labels


def readable(title: str) -> bool:
    """True when `title` reads as a title: no page count, claim number, reference numeral or
    bracket at its start, no fragment that starts or ends mid-sentence, within the limit."""
    if not DERIVED_TITLE_MIN <= len(title) <= DERIVED_TITLE_MAX:
        return False
    if PAGE_COUNT.match(title) or CLAIM_NUMBER.match(title) or LEADING_REFERENCE.match(title):
        return False
    if _BAD_START.match(title) or _BAD_END.search(title):
        return False
    if _VERB_START.match(title) and not _HEAD.search(title):
        return False
    if REFERENCE_NUMERAL.search(title) or "本发明" in title or "权利要求" in title:
        return False
    return _balanced(title)


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _clean(text: str) -> str:
    """Reference numerals out, spacing tidied."""
    text = REFERENCE_NUMERAL.sub("", text)
    text = LETTER_LABEL.sub("", text)
    return " ".join(text.split()).replace("‑", "-")


def _first_clause(text: str) -> str:
    return _CLAUSE_END.split(text, maxsplit=1)[0].strip()


def _strip_boilerplate(text: str) -> str:
    for pattern in _BOILERPLATE:
        text = pattern.sub("", text, count=1).strip()
    return text


def _subject(clause: str, strict: bool = False) -> tuple[str, bool]:
    """The clause up to its first verb that follows a thing, and whether it was cut there:
    "一种X方法包括以下步骤" → "一种X方法", "高压气体容器包括" → "高压气体容器"; a verb right
    after "一种" ("一种具有双组分基底的…") belongs to the subject and is kept."""
    for match in (_VERB_STRICT if strict else _VERB).finditer(clause):
        before = clause[: match.start()].rstrip()
        if len(before) < 3 or _NOT_A_SUBJECT_END.search(before):
            continue
        # After "一种…" a verb ends the subject only where a thing precedes it: "…等含有…"
        # is still inside the modifier.
        if strict or _HEAD.search(before):
            return before, True
    return _STEPS_TAIL.sub("", clause).strip(), False


def _yizhong(sentence: str, first: bool = False) -> str | None:
    match = _YIZHONG.search(sentence)
    if match is None:
        return None
    # In the first sentence, "一种" after a finished clause names the subject only when the
    # words between say so ("本发明涉及计算机系统，特别涉及一种…"), not when they go on to
    # something else ("…的方法，从而提供一种快速且有效的方法…").
    gap = re.split(r"[，,：:]", sentence[: match.start()])
    if first and len(gap) > 1 and not _SPECIFYING.match(gap[-1].strip()):
        return None
    subject, _ = _subject(_first_clause(sentence[match.start():]))
    named = subject.removeprefix("一种")
    return subject if len(named) >= 2 and named not in _GENERIC else None


def _opening(sentence: str) -> str | None:
    """The first sentence without its boilerplate, past a "X技术领域，具体涉及" clause; None
    when it has no boilerplate."""
    stripped = _strip_boilerplate(sentence)
    if stripped == sentence:
        return None
    clause = _first_clause(stripped)
    if _FIELD_CLAUSE.search(clause):
        rest = stripped[len(clause):].lstrip("，,")
        clause = _first_clause(_strip_boilerplate(_SPECIFICALLY.sub("", rest, count=1)))
    subject, _ = _subject(clause)
    return subject


def _is_thing(subject: str) -> bool:
    """A thing a patent is about; "设定数据存储部" (a part, "…部(41)存储有…") and "第3电磁
    钢板" are components, and an abstract that only lists those does not say what the whole
    is."""
    return (bool(_HEAD.search(subject)) and not subject.endswith("部")
            and not _ORDINAL.match(subject)  # "第3电磁钢板": one part among several
            and not _MEANS.match(subject))  # "通过第一数字滤波器(对…滤波)": a means


def _named(sentence: str) -> str | None:
    offered = _OFFERED.match(sentence)
    if offered:
        return _subject(offered.group(1))[0]
    named = _NAMED.match(sentence)
    if named:
        subject, cut = _subject(_first_clause(named.group(1)), strict=True)
        if cut and len(subject) >= 4 and _is_thing(subject):
            return subject
    return None


def _candidates(abstract: str) -> Iterator[tuple[str, str | None]]:
    """Ways of finding the subject, best first (see `derive_title`)."""
    text = _clean(abstract)
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if not sentences:
        return
    first = sentences[0]
    yield HOW_YIZHONG, _yizhong(first, first=True)
    opening = _opening(first)
    if opening is not None and _HEAD.search(opening):
        yield HOW_OPENING, opening
    if opening is None:  # it opens with its subject, or with a plain sentence
        clause = _first_clause(first)
        subject, cut = _subject(clause, strict=True)
        described = _DESCRIBED.match(first[len(clause):])
        if _is_thing(subject) and (cut or described or len(first) <= DERIVED_TITLE_MAX):
            yield HOW_SUBJECT, subject
    for sentence in sentences[1:]:
        yield HOW_LATER, _yizhong(sentence)
    for sentence in sentences:
        yield HOW_LATER, _named(sentence)
    for sentence in sentences[1:]:
        subject, cut = _subject(_first_clause(sentence), strict=True)
        if cut and len(subject) >= 4 and _is_thing(subject):
            yield HOW_LATER, subject
    yield HOW_OPENING, opening  # one without a thing at its end: better than keywords


_LIST_TAIL = re.compile(r"(、|以及|及其|及|和|与)")


def _shortened(title: str) -> str:
    """A subject over the limit without its list tail ("X方法、Y装置及存储介质" → "X方法"),
    else its head after the last "的" ("一种由…形成的聚缩甲醛树脂共聚物" → "一种聚缩甲醛树脂共
    聚物"): still the abstract's own words, and still a noun phrase."""
    if len(title) <= DERIVED_TITLE_MAX:
        return title
    best = None
    for match in _LIST_TAIL.finditer(title):
        before = title[: match.start()]
        if len(before) > DERIVED_TITLE_MAX:
            break
        # Only a list at the top ("…方法、装置及介质"), not one inside a modifier ("A、B的C").
        if _HEAD.search(before) and "的" not in title[match.end():]:
            best = before
    if best is not None:
        return best
    head = title.rsplit("的", 1)[-1]
    return "一种" + head if title.startswith("一种") and not head.startswith("一种") else head


def _from_keywords(abstract: str, keywords: Sequence[str], result_type: str) -> str | None:
    """Said for what it is: "涉及A、B、C的发明专利", from the keywords that are words, those
    the abstract uses most first."""
    words = [k.strip() for k in keywords if len(k.strip()) >= 2 and not _BAD_START.match(k)]
    words.sort(key=lambda word: -abstract.count(word))  # stable: ties keep the given order
    if not words:
        return None
    title = f"涉及{'、'.join(words[:3])}的{result_type}"
    return title if len(title) <= DERIVED_TITLE_MAX else None


def derive_title(
    abstract: str, keywords: Sequence[str] = (), result_type: str = "发明专利"
) -> DerivedTitle | None:
    """A readable title from the abstract's own opening (see the module docstring), else one
    that says it only names the keywords (or that the record is unnamed); None for an empty
    abstract."""
    for how, candidate in _candidates(abstract or ""):
        if candidate is not None:
            candidate = _shortened(candidate.strip(" 　"))
            if readable(candidate) and candidate.removeprefix("一种") not in _GENERIC:
                return DerivedTitle(candidate, how)
    fallback = _from_keywords(abstract or "", keywords, result_type)
    if fallback:
        return DerivedTitle(fallback, HOW_KEYWORDS)
    # Still the truth, and still a title: an abstract without a subject or keywords.
    if not (abstract or "").strip():
        return None
    return DerivedTitle(f"一项未具名的{result_type}", HOW_UNNAMED)


def clean_source_title(title: str, abstract: str = "") -> str:
    """A patent's own title without the front page's OCR around it.

    "权利要求书3页说明书8页附图7页自动烟雾/一氧化碳排放方法和系统" → "自动烟雾/一氧化碳排放方法和
    系统"; where the page counts ran into a sentence of the abstract, the title is what follows
    its last full stop, or the abstract's own name for the subject when the title ends with it
    ("…获取衣物的图像信息洗衣机控制方法及装置" → "洗衣机控制方法及装置")."""
    title = " ".join(title.split())
    stripped = _PAGE_COUNTS.sub("", title)
    if stripped == title:
        return title
    stripped = re.split(r"[。；;]", stripped)[-1].strip(" ，,、")
    derived = derive_title(abstract) if abstract else None
    if derived is not None:
        for name in (derived.text, derived.text.removeprefix("一种")):
            if len(name) >= 4 and stripped.endswith(name):
                return name
    return stripped
