import numpy as np
import pytest

from embeddings.fake import FakeEncoder
from matcher.collection import LATER_WINDOW_DISCOUNT
from matcher.filters import Filters
from matcher.retriever import Matcher, known_share
from matcher.types import Item

RESULTS = [
    Item(
        1,
        "result",
        "高镍三元正极材料包覆改性",
        "通过氧化铝包覆提高锂电池正极循环稳定性",
        {
            "industry": "新能源汽车",
            "result_type": "发明专利",
            "maturity": "中试",
            "cooperation_mode": "技术转让;许可",
        },
    ),
    Item(
        2,
        "result",
        "工业视觉缺陷检测",
        "基于深度学习的表面缺陷检测算法，用于产线质检",
        {"industry": "人工智能", "result_type": "论文", "maturity": "实验室"},
    ),
    Item(
        3,
        "result",
        "锂电池电解液添加剂",
        "提高锂电池高温循环寿命的电解液添加剂",
        {"industry": "新能源汽车", "result_type": "论文", "maturity": "小试", "date": "2021-05-01"},
    ),
    Item(
        4,
        "result",
        "光伏组件清洗机器人",
        "自动清洗光伏板表面灰尘的机器人",
        {"industry": "低碳技术", "result_type": "样机", "maturity": "产业化"},
    ),
    Item(
        5,
        "result",
        "高镍三元正极材料包覆改性方法",
        "通过氧化铝包覆提高锂电池正极循环稳定性的方法",
        {"industry": "新能源汽车", "result_type": "发明专利", "maturity": "小试"},
    ),
]
NEEDS = [
    Item(
        101,
        "need",
        "锂电池正极循环寿命不足",
        "我司高镍正极循环衰减快，需要包覆改性技术",
        {"industry": "新能源汽车", "cooperation_mode": "许可"},
    ),
    Item(
        102,
        "need",
        "产线表面缺陷自动检测",
        "人工质检漏检率高，需要视觉检测算法",
        {"industry": "人工智能"},
    ),
]


@pytest.fixture()
def matcher() -> Matcher:
    m = Matcher(FakeEncoder(64))
    m.index_items(RESULTS + NEEDS)
    return m


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_free_text_finds_the_right_side(matcher, mode):
    matches = matcher.search("锂电池正极包覆", side="result", k=3, mode=mode)
    assert matches[0].id in {1, 5}
    assert all(m.id < 100 for m in matches)


def test_known_share_counts_the_query_words_the_index_holds(matcher):
    lexical = matcher.collections["result"].lexical
    assert known_share(lexical, "锂电池 正极") == 1.0
    assert known_share(lexical, "quantum photonics lattice") == 0.0
    mixed = known_share(lexical, "lithium battery 电池 coating")
    assert 0.0 < mixed < 0.5
    assert known_share(lexical, "，。") == 0.0  # no words at all: no evidence


def test_need_to_results_and_result_to_needs(matcher):
    need = NEEDS[0]
    top = matcher.match_item(need, target="result", k=2)
    assert {m.id for m in top} == {1, 5}
    back = matcher.match_item(RESULTS[1], target="need", k=1)
    assert back[0].id == 102


def test_similar_items_excludes_self_and_finds_duplicate(matcher):
    similar = matcher.match_item(RESULTS[0], target="result", k=3)
    assert 1 not in [m.id for m in similar]
    assert similar[0].id == 5  # the near-duplicate


def test_explanation_has_components_terms_and_facets(matcher):
    match = matcher.match_item(NEEDS[0], target="result", k=1)[0]
    exp = match.explanation
    assert exp is not None
    assert np.isfinite(exp.dense_score) and exp.lexical_score > 0
    terms = {t.term for t in exp.shared_terms}
    assert {"包覆", "正极"} <= terms
    assert "industry=新能源汽车" in exp.facets_agreed
    if match.id == 1:
        assert "cooperation_mode=许可" in exp.facets_agreed


def _places(scores: list[float]) -> list[int]:
    """1-based place of each score, highest first, ties in list order: the expected ranks."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return [order.index(i) + 1 for i in range(len(scores))]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_explanations_rank_each_score_within_the_returned_list(matcher, mode):
    # k=4 of 5 results, a self-match left out: ranks count only the matches returned.
    for matches in (
        matcher.search("锂电池正极包覆 缺陷检测", side="result", k=4, mode=mode),
        matcher.match_item(RESULTS[0], target="result", k=4, mode=mode),
    ):
        # lexical search returns only the items sharing a word with the query
        assert len(matches) >= 2 and (mode == "lexical" or len(matches) == 4)
        exps = [m.explanation for m in matches]
        dense = [e.dense_score for e in exps]
        lexical = [e.lexical_score for e in exps]
        if mode == "lexical":
            assert all(e.dense_rank is None for e in exps)
        else:
            assert [e.dense_rank for e in exps] == _places(dense)
        if mode == "dense":
            assert all(e.lexical_rank is None for e in exps)
        else:
            assert [e.lexical_rank for e in exps] == _places(lexical)
    assert all(m.explanation is None
               for m in matcher.search("锂电池", side="result", k=3, explain=False))


def test_filters_keep_top_k_full(matcher):
    filters = Filters.of(industry="新能源汽车", result_type="论文")
    matches = matcher.search("缺陷检测算法", side="result", k=5, filters=filters)
    assert [m.id for m in matches] == [3]  # the only allowed item, even though unrelated
    wide = matcher.search(
        "缺陷检测", side="result", k=3, filters=Filters.of(industry=["新能源汽车", "人工智能"])
    )
    assert len(wide) == 3


def test_date_filter_and_unknown_filter(matcher):
    dated = matcher.search("锂电池", side="result", k=5, filters=Filters.of(date_from="2021-01-01"))
    assert [m.id for m in dated] == [3]
    with pytest.raises(ValueError, match="unknown filter"):
        Filters.of(colour="red")
    with pytest.raises(ValueError, match="date_from"):
        Filters.of(date_from="yesterday")


def test_update_and_remove_one_item(matcher):
    matcher.index_items([Item(2, "result", "锂电池正极包覆", "正极包覆改性")])
    assert 2 in [m.id for m in matcher.search("正极包覆", side="result", k=3)]
    assert matcher.remove_items("result", [2, 999]) == 1
    for mode in ("hybrid", "dense", "lexical"):
        assert 2 not in [m.id for m in matcher.search("正极包覆", side="result", k=5, mode=mode)]


def test_bad_arguments(matcher):
    with pytest.raises(ValueError, match="mode"):
        matcher.search("x", side="result", mode="magic")
    with pytest.raises(ValueError, match="k must be positive"):
        matcher.search("x", side="result", k=0)


# --- long documents: one vector per window, scored by the best window ---------------------


def _window_score(windows: np.ndarray, q: np.ndarray) -> float:
    """The first window's cosine, or a later one's less the discount, whichever is higher."""
    scores = windows @ q
    return float(max(scores[0], (scores[1:] - LATER_WINDOW_DISCOUNT).max(initial=-np.inf)))

LONG_TEXT = "。".join(["风电叶片复合材料的疲劳寿命评估"] * 6
                     + ["高镍三元正极材料氧化铝包覆提高循环稳定性"])


def _windowed_matcher() -> tuple[Matcher, FakeEncoder]:
    encoder = FakeEncoder(64, window_chars=40)
    matcher = Matcher(encoder)
    long_item = Item(10, "result", "风电叶片", LONG_TEXT, {"industry": "新材料"})
    matcher.index_items([*RESULTS, long_item])
    return matcher, encoder


def test_a_long_document_scores_by_its_best_window() -> None:
    matcher, encoder = _windowed_matcher()
    coll = matcher.collections["result"]
    long_item = Item(10, "result", "风电叶片", LONG_TEXT)
    windows = encoder.encode_document_windows([long_item.full_text])[0]
    assert coll.extra_windows[10] == len(windows) - 1 > 1
    query = "正极材料氧化铝包覆循环稳定性"
    q = encoder.encode_queries([query])[0]
    [best] = matcher.search(query, side="result", k=20, mode="dense", explain=False)[:1]
    scores = {m.id: m.score for m in matcher.search(query, side="result", k=20, mode="dense")}
    assert scores[10] == pytest.approx(_window_score(windows, q), abs=1e-5)
    assert scores[10] > float(windows[0] @ q) + 0.1  # the tail window, not the head, decides
    # Brute force over every stored window agrees with the index's dense ranking.
    truth = {item_id: _window_score(encoder.encode_document_windows([item.full_text])[0], q)
             for item_id, item in coll.items.items()}
    assert [m.id for m in matcher.search(query, side="result", k=5, mode="dense")] == sorted(
        truth, key=lambda i: (-truth[i], i))[:5]
    assert best.id == max(truth, key=truth.get)


def test_hybrid_scores_long_documents_by_their_best_window() -> None:
    matcher, encoder = _windowed_matcher()
    query = "正极材料氧化铝包覆循环稳定性"
    hybrid = {m.id: m for m in matcher.search(query, side="result", k=20)}
    dense = {m.id: m.score for m in matcher.search(query, side="result", k=20, mode="dense")}
    assert hybrid[10].explanation.dense_score == pytest.approx(dense[10], abs=1e-5)


def _unit(*parts: tuple[int, float]) -> np.ndarray:
    vector = np.zeros(8, dtype=np.float32)
    for axis, value in parts:
        vector[axis] = value
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_a_later_window_must_beat_the_first_by_the_discount(mode: str) -> None:
    """A generic passage deep in a long document must not lift it above a document that
    matches as well on its first window; a clearly better later window still counts."""
    query = _unit((0, 1.0))
    head = _unit((0, 0.9), (1, (1 - 0.9**2) ** 0.5))  # cosine 0.90 on its only window
    unrelated = _unit((2, 1.0))
    barely = _unit((0, 0.91), (3, (1 - 0.91**2) ** 0.5))  # 0.91: within the discount
    clearly = _unit((0, 0.95), (4, (1 - 0.95**2) ** 0.5))  # 0.95: beyond it
    items = [Item(1, "result", "首窗匹配", "甲"), Item(2, "result", "长文一", "乙"),
             Item(3, "result", "长文二", "丙")]
    matcher = Matcher(FakeEncoder(8))
    matcher.index_items(items, windows=[head[None], np.vstack([unrelated, barely]),
                                        np.vstack([unrelated, clearly])])
    hits = matcher.search_many(["任意"], side="result", k=3, mode=mode,
                               query_vectors=query[None])[0]
    assert [m.id for m in hits] == [3, 1, 2]
    dense = {m.id: m.explanation.dense_score for m in hits}
    assert dense[1] == pytest.approx(0.90, abs=1e-5)
    assert dense[2] == pytest.approx(0.91 - LATER_WINDOW_DISCOUNT, abs=1e-5)
    assert dense[3] == pytest.approx(0.95 - LATER_WINDOW_DISCOUNT, abs=1e-5)


def test_windows_follow_edits_removals_and_filters() -> None:
    matcher, _ = _windowed_matcher()
    coll = matcher.collections["result"]
    before = coll.windows.count()
    assert before > 0
    filtered = matcher.search("正极材料氧化铝包覆", side="result", k=5, mode="dense",
                              filters=Filters.of(industry="人工智能"))
    assert 10 not in [m.id for m in filtered]
    # An edit that makes the text short leaves no stale windows behind.
    matcher.index_items([Item(10, "result", "风电叶片", "短文本")])
    assert 10 not in coll.extra_windows and coll.windows.count() == 0
    matcher.index_items([Item(10, "result", "风电叶片", LONG_TEXT)])
    assert coll.windows.count() == before
    matcher.remove_items("result", [10])
    assert coll.windows.count() == 0 and 10 not in coll.extra_windows
