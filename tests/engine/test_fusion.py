import numpy as np
import pytest

from matcher.fusion import FULL_EVIDENCE_SHARE, Fusion, is_keyword_list, lexical_evidence, minmax


@pytest.mark.parametrize(
    ("query", "keywords"),
    [
        ("染整 废水处理 降解 光催化剂 二氧化钛", True),
        ("graphene wearable sensor", True),
        ("基于石墨烯-ZnO纳米线的复合电极在GaN LED中的应用", False),
        ("我司需要提高正极材料循环稳定性，希望合作开发。", False),
        ("a flexible sensor for wearable devices", False),
        ("锂电池", False),  # one term is a short statement, not a list
    ],
)
def test_query_form(query, keywords):
    assert is_keyword_list(query) is keywords


def test_weights_follow_query_form():
    fusion = Fusion(prose_dense_weight=0.8, keyword_dense_weight=0.2)
    dense = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    lexical = np.array([0.0, 5.0, 10.0], dtype=np.float32)
    prose = fusion.fuse("一句完整的需求描述，说明问题。", dense, lexical)
    listed = fusion.fuse("正极 包覆 循环", dense, lexical)
    assert int(np.argmax(prose)) == 0  # dense decides
    assert int(np.argmax(listed)) == 2  # lexical decides
    np.testing.assert_allclose(prose, [0.8, 0.5, 0.2], atol=1e-6)


def test_fusion_beats_either_component_when_they_disagree_partially():
    # doc 0: strong in both; doc 1: only dense; doc 2: only lexical.
    fused = Fusion().fuse("锂电池 正极", np.array([0.85, 0.86, 0.70]), np.array([9.0, 0.0, 10.0]))
    assert int(np.argmax(fused)) == 0


def test_degenerate_inputs():
    assert minmax(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert Fusion().fuse("x", np.zeros(0), np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        Fusion().fuse("x", np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Fusion(prose_dense_weight=1.5)


# Five candidates in a clear dense order; BM25 found one word of the query in the last one
# only (an English need meeting the one abstract that says "AI").
DENSE = np.array([0.90, 0.89, 0.88, 0.87, 0.86], dtype=np.float32)
STRAY = np.array([0.0, 0.0, 0.0, 0.0, 4.0], dtype=np.float32)
PROSE = "We need a vision system that detects surface defects on the production line."


def test_a_lexical_side_with_one_stray_hit_gets_little_weight():
    trusted = Fusion().fuse(PROSE, DENSE, STRAY)
    # Full weight (min-max lifts the stray hit to 1): it climbs over a better dense match.
    assert np.argsort(-trusted, kind="stable").tolist() == [0, 1, 2, 4, 3]
    # One word in ten is in the index: BM25 keeps 0.15² of its weight, the dense order holds.
    fused = Fusion().fuse(PROSE, DENSE, STRAY, known_share=0.1)
    assert np.argsort(-fused, kind="stable").tolist() == [0, 1, 2, 3, 4]
    assert fused[4] == pytest.approx(0.3 * 0.15**2 / (0.7 + 0.3 * 0.15**2), abs=1e-6)
    assert fused.min() >= 0.0 and fused.max() <= 1.0


def test_an_evident_lexical_side_keeps_its_weight_and_order():
    dense = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    lexical = np.array([0.0, 5.0, 10.0], dtype=np.float32)
    fusion = Fusion()
    for query in ("正极 包覆 循环", "一句完整的需求描述，说明问题。"):
        full = fusion.fuse(query, dense, lexical)
        # Two thirds of the words known is full evidence: today's fusion, to the bit.
        np.testing.assert_array_equal(
            fusion.fuse(query, dense, lexical, known_share=FULL_EVIDENCE_SHARE), full)
        np.testing.assert_array_equal(fusion.fuse(query, dense, lexical, known_share=0.9), full)
    assert int(np.argmax(fusion.fuse("正极 包覆 循环", dense, lexical, known_share=0.8))) == 2


def test_lexical_evidence_grows_with_the_known_share_up_to_full():
    assert lexical_evidence(0.0) == 0.0
    assert lexical_evidence(1 / 3) == pytest.approx(0.25)
    assert lexical_evidence(0.5) == pytest.approx(0.5625)
    assert lexical_evidence(FULL_EVIDENCE_SHARE) == pytest.approx(1.0)
    assert lexical_evidence(1.0) == 1.0
    with pytest.raises(ValueError, match="share"):
        lexical_evidence(1.5)
    with pytest.raises(ValueError, match="share"):
        Fusion().fuse("x", np.zeros(2), np.zeros(2), known_share=-0.1)


def test_no_evidence_and_no_dense_weight_leaves_the_dense_order():
    fused = Fusion(prose_dense_weight=0.0).fuse(PROSE, DENSE, STRAY, known_share=0.0)
    np.testing.assert_allclose(fused, minmax(DENSE))
