import numpy as np
import pytest

from matcher.fusion import Fusion, is_keyword_list, minmax


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
