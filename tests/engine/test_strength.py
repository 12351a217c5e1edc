import json
import math

import numpy as np
import pytest

from embeddings.fake import FakeEncoder
from matcher.retriever import Matcher
from matcher.strength import (
    FEATURES,
    LABELS,
    MODEL_PATH,
    StrengthModel,
    default_model,
    features,
)
from matcher.types import Item

RESULTS = [
    Item(1, "result", "高镍三元正极材料包覆改性", "通过氧化铝包覆提高锂电池正极循环稳定性"),
    Item(2, "result", "工业视觉缺陷检测", "基于深度学习的表面缺陷检测算法，用于产线质检"),
    Item(3, "result", "锂电池电解液添加剂", "提高锂电池高温循环寿命的电解液添加剂"),
    Item(4, "result", "光伏组件清洗机器人", "自动清洗光伏板表面灰尘的机器人"),
    Item(5, "result", "污水处理膜生物反应器", "低能耗膜生物反应器处理印染废水"),
]


@pytest.fixture(scope="module")
def matcher():
    m = Matcher(FakeEncoder())
    m.index_items(RESULTS)
    return m


def test_features_take_logs_of_bm25_and_rank():
    x = features(0.9, 3.0, 0.75, 4)
    assert x.tolist() == pytest.approx([0.9, math.log(4.0), 0.75, math.log(4)])
    assert features(0.9, float("-0.0"), 0.0, 1)[1] == 0.0
    with pytest.raises(ValueError, match="rank"):
        features(0.9, 3.0, 0.75, 0)


def test_features_beyond_the_judged_range_read_as_its_edge():
    model = default_model()
    edge = model.high.copy()
    beyond = edge + np.array([0.05, 5.0, 0.0, 0.0])
    assert model.probability(beyond) == model.probability(edge)
    # No word known at all (an English or made-up query) is read as the least share judged.
    assert model.probability(features(0.85, 0.0, 0.0, 1)) == \
        model.probability(features(0.85, 0.0, float(model.low[2]), 1))


def test_the_shipped_model_is_ordered_and_names_its_features():
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert tuple(data["features"]) == FEATURES
    assert set(data["feature_definitions"]) == set(FEATURES)
    t = data["thresholds"]
    assert 1 > t["强"] > t["较强"] > t["一般"] > 0
    assert data["cv"]["labels"]["强"]["precision"] >= 0.8
    model = default_model()
    assert model.label(t["强"]) == "强"
    assert model.label(t["强"] - 1e-6) == "较强"
    assert model.label(t["一般"] - 1e-6) == "弱"


def test_misordered_thresholds_are_refused():
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["thresholds"] = {"强": 0.3, "较强": 0.5, "一般": 0.1}
    with pytest.raises(ValueError, match="fall"):
        StrengthModel.from_dict(data)


def test_probability_rises_with_cosine_and_coverage_and_falls_with_rank():
    model = default_model()

    def p(dense, bm25, rank):
        return model.probability(features(dense, bm25, 0.9, rank))

    assert p(0.91, 5.0, 1) > p(0.88, 5.0, 1) > p(0.84, 5.0, 1)
    assert p(0.9, 20.0, 1) > p(0.9, 2.0, 1)
    assert p(0.9, 5.0, 1) > p(0.9, 5.0, 20)


# What the site's model (e5-small) gives throw-away queries against the need-results corpus:
# cosines of 0.82–0.87 for its best match (e5 puts everything near), little or no BM25, the
# share of known words anywhere from none (asdf qwer zxcv) to all (测试, 今天天气不错).
@pytest.mark.parametrize("dense, bm25, share", [
    (0.884, 4.0, 1.0), (0.869, 3.0, 1.0), (0.823, 0.0, 0.0), (0.86, 1.0, 0.5), (0.87, 0.0, 0.9),
])
def test_throw_away_queries_cosines_are_not_strong(dense, bm25, share):
    model = default_model()
    assert model.assess(features(dense, bm25, share, 1)).label not in ("强", "较强")


def test_a_need_sharing_its_rare_words_with_a_close_result_is_strong():
    assert default_model().assess(features(0.92, 25.0, 0.9, 1)).label == "强"


def test_hybrid_matches_carry_strength_and_a_copy_of_a_result_is_the_strongest(matcher):
    text = RESULTS[0].full_text
    matches = matcher.search(text, side="result", k=5)
    assert all(m.explanation.strength is not None for m in matches)
    assert matches[0].id == 1
    # Five documents give BM25's idf little room, so a copy reaches 较强 here, not more.
    assert matches[0].explanation.strength.label in ("强", "较强")
    probabilities = [m.explanation.strength.probability for m in matches]
    assert probabilities[0] == max(probabilities)
    assert all(0 <= p <= 1 for p in probabilities)
    assert {m.explanation.strength.label for m in matches} <= set(LABELS)


@pytest.mark.parametrize("text", ["量子引力弦论黑洞蒸发", "zxqv wplk bbrt", "今天天气不错"])
def test_nonsense_or_off_corpus_queries_get_no_strong_match(matcher, text):
    matches = matcher.search(text, side="result", k=5)
    assert matches, "the ranking still lists something"
    labels = [m.explanation.strength.label for m in matches]
    assert "强" not in labels and "较强" not in labels, labels


def test_single_ranker_modes_carry_no_strength(matcher):
    for mode in ("dense", "lexical"):
        matches = matcher.search("锂电池正极", side="result", k=3, mode=mode)
        assert all(m.explanation.strength is None for m in matches)


def test_only_needs_searching_results_are_rated(matcher):
    """The calibration was fitted on needs against results; a result's needs and an item's
    neighbours on its own side carry no strength rather than an uncalibrated one."""
    assert all(m.explanation.strength is not None
               for m in matcher.search("锂电池正极", side="result", k=3))
    assert all(m.explanation.strength is None
               for m in matcher.search_many(["锂电池正极"], side="result", k=3,
                                            query_side="result")[0])
    assert all(m.explanation.strength is None
               for m in matcher.match_item(RESULTS[0], target="result", k=3))


def test_rating_without_explaining_gives_the_same_strengths_and_no_terms(matcher):
    text = RESULTS[0].full_text
    explained = matcher.search_many([text], side="result", k=5)[0]
    rated = matcher.search_many([text], side="result", k=5, explain=False, rate=True)[0]
    bare = matcher.search_many([text], side="result", k=5, explain=False)[0]
    assert [m.id for m in rated] == [m.id for m in explained] == [m.id for m in bare]
    assert [m.explanation.strength for m in rated] == \
        [m.explanation.strength for m in explained]
    assert all(m.explanation.shared_terms == () for m in rated)
    assert all(m.explanation is None for m in bare)
