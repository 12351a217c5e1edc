"""Hubs: a result near every need is discounted (CSLS) or kept only for the needs it is
nearest to (mutual nearest neighbours); a result about one need keeps that need."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matcher.hubness import csls_scores, mutual_pairs, neighbourhood_density, reverse_ranks

NEEDS = 6
DIMENSION = NEEDS + 1


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _case() -> tuple[np.ndarray, np.ndarray]:
    """Needs on their own axes; result 0 is a hub (equally near all six, cosine 0.41),
    results 1..6 are each about one need only (cosine 0.38 with it, 0 with the others)."""
    needs = np.eye(DIMENSION, dtype=np.float32)[:NEEDS]
    hub = _unit(np.r_[np.ones(NEEDS), 0.0])
    specific = [_unit(np.r_[0.38 * np.eye(NEEDS)[i], math.sqrt(1 - 0.38 ** 2)])
                for i in range(NEEDS)]
    return needs, np.vstack([hub, *specific])


def test_the_hub_tops_every_need_until_csls_discounts_it() -> None:
    needs, results = _case()
    cosines = needs @ results.T  # (needs × results)
    assert (cosines.argmax(axis=1) == 0).all()  # raw cosine: the hub is every need's first
    density = neighbourhood_density(results, needs, k=3)
    assert density[0] == pytest.approx(1 / math.sqrt(NEEDS), abs=1e-6)
    assert density[1:] == pytest.approx(np.full(NEEDS, 0.38 / 3), abs=1e-6)
    discounted = csls_scores(cosines, density[None, :], 0.5)
    # Each need's own result now comes first; the hub's scores fall below them all.
    assert discounted.argmax(axis=1).tolist() == list(range(1, NEEDS + 1))
    assert csls_scores(cosines, density[None, :], 0.0) == pytest.approx(cosines)
    with pytest.raises(ValueError, match="weight"):
        csls_scores(cosines, density, -1.0)


def test_density_leaves_the_point_itself_out_and_copes_with_few_neighbours() -> None:
    points = np.eye(3, dtype=np.float32)
    points[2] = _unit(np.array([1.0, 1.0, 0.0]))
    same = neighbourhood_density(points, points, k=1, same=True)
    assert same == pytest.approx([0.7071, 0.7071, 0.7071], abs=1e-4)  # never its own 1.0
    few = neighbourhood_density(points[:1], points[1:], k=10)  # 2 others for k=10: both
    assert few == pytest.approx([(0.0 + 0.7071) / 2], abs=1e-4)
    assert neighbourhood_density(points[:0], points, k=3).shape == (0,)
    with pytest.raises(ValueError, match="k must be positive"):
        neighbourhood_density(points, points, k=0)


def test_mutual_pairs_keep_the_hub_only_for_the_needs_it_is_nearest_to() -> None:
    needs, results = _case()
    results[0] = _unit(results[0] + 0.05 * np.r_[1.0, 1.0, np.zeros(NEEDS - 1)])  # nearer 0, 1
    # Coverage as the service sees it: the hub in every need's top K, each specific result
    # in its own need's.
    needs_of = {"hub": {f"n{i}": 1 for i in range(NEEDS)}}
    needs_of.update({f"r{i}": {f"n{i}": 2} for i in range(NEEDS)})
    result_vectors = {"hub": results[0], **{f"r{i}": results[i + 1] for i in range(NEEDS)}}
    need_vectors = {f"n{i}": needs[i] for i in range(NEEDS)}
    kept = mutual_pairs(needs_of, result_vectors, need_vectors, k=2)
    assert kept["hub"] == {"n0": 1, "n1": 1}
    assert all(kept[f"r{i}"] == {f"n{i}": 2} for i in range(NEEDS))
    # Nothing known about a result (no vector): its pairs stand.
    assert mutual_pairs({"new": {"n3": 4}}, {}, need_vectors, k=1) == {"new": {"n3": 4}}
    assert reverse_ranks(results[:1], needs)[0, :2].tolist() == [1, 2]
    with pytest.raises(ValueError, match="k must be positive"):
        mutual_pairs(needs_of, result_vectors, need_vectors, k=0)


def test_the_engine_ranks_a_needs_own_result_above_the_hub() -> None:
    from embeddings.fake import FakeEncoder
    from matcher.retriever import HUB_WEIGHT, Matcher
    from matcher.types import Item

    needs, results = _case()
    matcher = Matcher(FakeEncoder(DIMENSION))
    # Texts share no word, so BM25 is silent and the dense side decides.
    matcher.index_items([Item(i, "need", "寻求方案", "") for i in range(NEEDS)], vectors=needs)
    matcher.index_items([Item(i, "result", "样品成果", "") for i in range(len(results))],
                        vectors=results)

    def firsts() -> list[int]:
        return [m[0].id for m in matcher.search_many(
            ["寻求方案"] * NEEDS, side="result", k=3, explain=False,
            query_vectors=needs, query_side="need")]

    assert HUB_WEIGHT > 0 and firsts() == list(range(1, NEEDS + 1))
    matcher.hub_weight = 0.0
    assert firsts() == [0] * NEEDS  # without the discount the hub tops every need
