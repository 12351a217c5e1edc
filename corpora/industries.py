"""The G60 industries, the corridor's nine cities, and a keyword classifier for demo results.

The classifier is a heuristic used only to give the demo corpus (public papers and patents that
carry no industry of their own) an industry facet. It is a transparent keyword table, not a
model: every decision can be traced to the terms listed below, which `IndustryGuess.matched`
reports. Imported needs and results keep the industry their owners gave them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The ten industry fields of the demo and of the import schema (see datasets/seed/).
G60_INDUSTRIES: tuple[str, ...] = (
    "人工智能",
    "集成电路",
    "生物医药",
    "新能源汽车",
    "新材料",
    "智能制造",
    "低碳技术",
    "新一代信息技术",
    "高端装备",
    "现代农业",
)

# 长三角G60科创走廊“九城”.
G60_CITIES: tuple[str, ...] = (
    "上海松江",
    "嘉兴",
    "杭州",
    "金华",
    "苏州",
    "湖州",
    "宣城",
    "芜湖",
    "合肥",
)

# Other spellings people write in spreadsheets, mapped onto the canonical names above.
INDUSTRY_SYNONYMS: Mapping[str, str] = {
    "ai": "人工智能",
    "人工智能产业": "人工智能",
    "半导体": "集成电路",
    "芯片": "集成电路",
    "生物医药产业": "生物医药",
    "医药": "生物医药",
    "生命健康": "生物医药",
    "新能源车": "新能源汽车",
    "智能网联汽车": "新能源汽车",
    "先进材料": "新材料",
    "工业互联网": "智能制造",
    "智能制造/工业互联网": "智能制造",
    "智能制造与工业互联网": "智能制造",
    "节能环保": "低碳技术",
    "绿色低碳": "低碳技术",
    "新能源": "低碳技术",
    "信息技术": "新一代信息技术",
    "电子信息": "新一代信息技术",
    "高端装备制造": "高端装备",
    "先进装备制造": "高端装备",
    "农业": "现代农业",
}

CITY_SYNONYMS: Mapping[str, str] = {
    "松江": "上海松江",
    "上海市松江区": "上海松江",
    "上海松江区": "上海松江",
    "松江区": "上海松江",
}


def canonical_industry(value: str) -> str | None:
    """The canonical G60 industry for `value`, or None when it names none of them."""
    text = value.strip()
    if text in G60_INDUSTRIES:
        return text
    return INDUSTRY_SYNONYMS.get(text.lower())


def canonical_city(value: str) -> str | None:
    """The canonical G60 city for `value` ("嘉兴市" → "嘉兴"), or None."""
    text = value.strip()
    if text in G60_CITIES:
        return text
    if text in CITY_SYNONYMS:
        return CITY_SYNONYMS[text]
    if text.endswith("市") and text[:-1] in G60_CITIES:
        return text[:-1]
    return None


# --- the demo classifier ---------------------------------------------------------------

# Terms whose presence suggests an industry. Kept to fairly specific technical words: a
# generic word ("系统", "方法") would pull everything into one bucket.
INDUSTRY_TERMS: Mapping[str, tuple[str, ...]] = {
    "人工智能": (
        "人工智能", "机器学习", "深度学习", "神经网络", "卷积", "强化学习", "自然语言处理",
        "计算机视觉", "图像识别", "目标检测", "语音识别", "知识图谱", "模式识别", "大模型",
        "注意力机制", "支持向量机", "智能算法", "学习样本", "人脸识别", "聚类", "图像处理",
    ),
    "集成电路": (
        "集成电路", "芯片", "半导体", "晶圆", "晶体管", "光刻", "刻蚀", "管芯", "存储器",
        "场效应", "CMOS", "硅片", "外延", "掩膜", "FPGA", "处理器", "引线框架", "键合",
        "封装件",
    ),
    "生物医药": (
        "药物", "医药", "制剂", "抗体", "疫苗", "蛋白", "基因", "细胞", "肿瘤", "癌",
        "临床", "患者", "治疗", "诊断", "中药", "中医", "病毒", "抑制剂", "受试者", "医用",
        "手术", "医疗", "口腔", "血液", "栓塞",
    ),
    "新能源汽车": (
        "新能源汽车", "电动汽车", "动力电池", "锂离子电池", "锂电池", "充电桩", "燃料电池",
        "电池管理", "整车", "汽车", "混合动力", "续航", "车载", "自动驾驶", "正极材料",
        "负极材料", "电解液",
    ),
    "新材料": (
        "复合材料", "纳米", "涂层", "涂料", "聚合物", "合金", "陶瓷", "碳纤维", "薄膜",
        "树脂", "高分子", "石墨烯", "橡胶", "塑料", "粉末", "改性", "材料", "纤维", "纺织",
        "催化剂", "胶乳", "铁氧体", "磁性",
    ),
    "智能制造": (
        "智能制造", "工业互联网", "机器人", "自动化", "数控", "生产线", "装配", "机械手",
        "夹具", "焊接", "3D打印", "增材制造", "数字孪生", "模具", "控制器", "加工设备",
    ),
    "低碳技术": (
        "低碳", "碳排放", "碳中和", "节能", "减排", "光伏", "太阳能", "风电", "风力发电",
        "储能", "氢能", "污水", "废水", "废气", "脱硫", "脱硝", "固废", "二氧化碳",
        "污染", "余热", "生物质", "环保", "回收", "逆变器", "变频", "电网", "输电",
    ),
    "新一代信息技术": (
        "通信", "5G", "无线", "信号", "服务器", "云计算", "区块链", "物联网", "软件",
        "数据库", "终端", "基站", "加密", "信息安全", "网络安全", "协议", "虚拟机",
        "客户端", "用户设备", "光纤", "天线", "大数据", "计算机",
    ),
    "高端装备": (
        "装备", "航空", "航天", "飞行器", "船舶", "轨道交通", "钢轨", "发动机", "轴承",
        "齿轮", "液压", "机床", "燃气轮机", "无人机", "卫星", "盾构", "掘进机", "电梯",
        "起重", "压缩机", "涡轮", "油田",
    ),
    "现代农业": (
        "农业", "作物", "种植", "育种", "水稻", "小麦", "玉米", "果树", "蔬菜", "园艺",
        "畜牧", "养殖", "水产", "饲料", "土壤", "肥料", "农药", "病虫害", "灌溉", "食品",
        "栽培", "兽医", "林业", "茶叶", "品种",
    ),
}

# CSL's disciplines that point clearly at one industry.
DISCIPLINE_INDUSTRY: Mapping[str, str] = {
    "计算机科学与技术": "新一代信息技术",
    "信息与通信工程": "新一代信息技术",
    "电子科学与技术": "集成电路",
    "材料科学与工程": "新材料",
    "纺织科学与工程": "新材料",
    "冶金工程": "新材料",
    "药学": "生物医药",
    "中医学/中药学": "生物医药",
    "基础医学/临床医学": "生物医药",
    "口腔医学": "生物医药",
    "公共卫生与预防医学": "生物医药",
    "生物学/生物科学与工程": "生物医药",
    "园艺学": "现代农业",
    "作物学": "现代农业",
    "水产": "现代农业",
    "农业工程": "现代农业",
    "畜牧学/兽医学": "现代农业",
    "农业资源利用": "现代农业",
    "林学/林业工程": "现代农业",
    "植物保护": "现代农业",
    "食品科学与工程": "现代农业",
    "农林经济管理": "现代农业",
    "环境科学与工程": "低碳技术",
    "动力工程及工程热物理": "低碳技术",
    "机械工程": "智能制造",
    "控制科学与工程": "智能制造",
    "航空宇航科学与技术": "高端装备",
    "船舶与海洋工程": "高端装备",
    "兵器科学与技术": "高端装备",
}

# Humanities and social-science disciplines: no G60 industry, whatever words they use
# ("网络舆论" is not information technology).
NON_INDUSTRIAL_DISCIPLINES: frozenset[str] = frozenset({
    "法学", "哲学", "历史学", "艺术学", "新闻传播学", "政治学", "民族学", "教育学", "体育学",
    "中国语言文学", "心理学", "社会学", "图书馆、情报与档案管理", "军事学", "理论经济学",
    "应用经济学", "公共管理", "工商管理",
})

TITLE_WEIGHT = 3
KEYWORD_WEIGHT = 2
ABSTRACT_WEIGHT = 1
DISCIPLINE_WEIGHT = 3
# One abstract mention alone is too weak a signal to claim an industry.
MIN_SCORE = 2


@dataclass(frozen=True)
class IndustryGuess:
    industry: str | None
    score: int
    matched: tuple[str, ...]  # the terms (and discipline) that decided it


def classify_industry(
    title: str,
    abstract: str,
    keywords: Iterable[str] = (),
    discipline: str | None = None,
) -> IndustryGuess:
    """Pick the G60 industry whose terms score highest; None below `MIN_SCORE`.

    Each term counts once per place it appears: in the title (×3), in a keyword (×2), in the
    abstract (×1); a discipline from `DISCIPLINE_INDUSTRY` adds 3. Ties go to the industry
    listed first in `G60_INDUSTRIES`, so the result is deterministic.
    """
    if discipline in NON_INDUSTRIAL_DISCIPLINES:
        return IndustryGuess(None, 0, (f"学科:{discipline}",))
    keyword_text = "\n".join(keywords)
    # Upper-cased so Latin terms (CMOS, FPGA, 5G) match whatever case the text uses.
    title_upper = title.upper()
    abstract_upper = abstract.upper()
    keyword_upper = keyword_text.upper()
    best = IndustryGuess(None, 0, ())
    for industry in G60_INDUSTRIES:
        score = 0
        matched: list[str] = []
        for term in INDUSTRY_TERMS[industry]:
            needle = term.upper()
            weight = (
                TITLE_WEIGHT * (needle in title_upper)
                + KEYWORD_WEIGHT * (needle in keyword_upper)
                + ABSTRACT_WEIGHT * (needle in abstract_upper)
            )
            if weight:
                score += weight
                matched.append(term)
        if discipline and DISCIPLINE_INDUSTRY.get(discipline) == industry:
            score += DISCIPLINE_WEIGHT
            matched.append(f"学科:{discipline}")
        if score > best.score:
            best = IndustryGuess(industry, score, tuple(matched))
    if best.score < MIN_SCORE:
        return IndustryGuess(None, best.score, best.matched)
    return best
