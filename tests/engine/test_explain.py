from matcher.explain import agreed_facets, highlight_spans, shared_terms
from matcher.types import Item


def flat_idf(term: str) -> float:
    return {"钙钛矿": 5.0, "电池": 1.0}.get(term, 2.0)


def test_shared_terms_are_specific_and_rarest_first():
    terms = shared_terms(
        "钙钛矿太阳能电池的稳定性问题", "一种钙钛矿太阳能电池及其封装方法", flat_idf
    )
    names = [t.term for t in terms]
    assert names[0] == "钙钛矿"
    assert "电池" in names and names.index("电池") == len(names) - 1
    assert "方法" not in names and "的" not in names


def test_nothing_shared():
    assert shared_terms("光伏清洗", "基因测序", flat_idf) == ()


def test_highlight_spans_mark_terms_in_original_text():
    text = "高镍正极材料包覆，提高正极循环寿命"
    spans = highlight_spans(text, ["正极", "包覆", "正极材料"])
    assert [text[a:b] for a, b in spans] == ["正极材料", "包覆", "正极"]
    assert spans == sorted(spans)


def test_highlight_spans_case_insensitive_and_safe_with_regex_chars():
    text = "Graphene (石墨烯) sensor"
    spans = highlight_spans(text, ["graphene", "(石墨烯)", ""])
    assert [text[a:b] for a, b in spans] == ["Graphene", "(石墨烯)"]


def test_agreed_facets_handle_multi_valued_modes():
    result = Item(
        1, "result", "t", "x", {"industry": "新材料", "cooperation_mode": "技术转让;许可"}
    )
    need_facets = {"industry": "新材料", "cooperation_mode": "许可", "region": "上海松江"}
    assert agreed_facets(need_facets, result) == ("industry=新材料", "cooperation_mode=许可")
    assert agreed_facets({"industry": "人工智能"}, result) == ()
