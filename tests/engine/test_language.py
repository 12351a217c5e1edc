"""Script detection and the per-language centring that lets needs cross languages."""

import numpy as np
import pytest

from matcher.language import MIN_GROUP, LanguageCentres, language_of


@pytest.mark.parametrize(("text", "language"), [
    ("一种锂离子电池正极材料的包覆方法", "han"),
    ("采用PID控制与MOSFET驱动的伺服系统，CO2排放降低", "han"),
    ("A coating method for lithium-ion battery cathodes", "latin"),
    ("We need 锂电池 suppliers for our EV battery packs and modules", "latin"),
    ("12345 %%%", "other"),
])
def test_language_of_reads_the_script(text, language):
    assert language_of(text) == language


def _unit(v):
    return v / np.linalg.norm(v)


def test_the_largest_language_keeps_its_cosines_and_a_small_group_is_left_alone():
    rng = np.random.default_rng(0)
    centres = LanguageCentres(8)
    han = [_unit(rng.normal(size=8)) for _ in range(20)]
    latin = [_unit(rng.normal(size=8)) for _ in range(MIN_GROUP - 1)]
    centres.add(list(range(20)), ["han"] * 20, np.array(han))
    centres.add(list(range(100, 100 + len(latin))), ["latin"] * len(latin), np.array(latin))
    query = _unit(rng.normal(size=8))
    ids = [0, 100]
    own = np.array([han[0] @ query, latin[0] @ query])
    assert centres.major() == "han" and centres.corrected() == []
    assert np.all(centres.shifts(ids, own, query) == 0)


def test_a_minority_language_moves_by_the_difference_of_the_language_means():
    rng = np.random.default_rng(1)
    dim = 16
    # Every text of a language shares a direction that says only "this is that language".
    han_dir, latin_dir = _unit(rng.normal(size=dim)), _unit(rng.normal(size=dim))
    han = np.array([_unit(han_dir + 0.3 * rng.normal(size=dim)) for _ in range(40)])
    latin = np.array([_unit(latin_dir + 0.3 * rng.normal(size=dim)) for _ in range(MIN_GROUP)])
    centres = LanguageCentres(dim)
    centres.add(list(range(40)), ["han"] * 40, han)
    latin_ids = list(range(100, 100 + MIN_GROUP))
    centres.add(latin_ids, ["latin"] * MIN_GROUP, latin)
    assert centres.corrected() == ["latin"]
    query = _unit(han_dir + 0.3 * rng.normal(size=dim))  # a Chinese need
    own = latin @ query
    shift = centres.shifts(latin_ids, own, query)
    major_mean = han.mean(axis=0) @ query
    for n in range(MIN_GROUP):
        rest = (latin.sum(axis=0) - latin[n]) / (MIN_GROUP - 1)  # leave-one-out
        assert shift[n] == pytest.approx(major_mean - rest @ query, abs=1e-5)
    # A Chinese need is nearer the Chinese mean: the English results move up.
    assert np.all(shift > 0)
    assert np.all(centres.shifts(list(range(40)), han @ query, query) == 0)


def test_removing_an_item_takes_it_out_of_its_language_mean():
    centres = LanguageCentres(2)
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    centres.add([1, 2], ["han", "han"], vectors)
    centres.remove([1], vectors[:1])
    assert centres.counts == {"han": 1}
    assert np.allclose(centres.sums["han"], [0.0, 1.0])
    centres.remove([2, 3], np.array([[0.0, 1.0], [5.0, 5.0]]))  # 3 was never counted
    assert centres.counts == {} and centres.major() is None
    with pytest.raises(ValueError):
        centres.add([4, 4], ["han", "han"], vectors)


class _Dimension:
    """Just enough of an encoder for a Matcher fed with vectors."""

    name = "constructed"
    dimension = 32


def _bilingual_matcher(rng):
    """40 Chinese and 12 English results. Every vector is its language's direction plus what
    it says; English result 100 says exactly what the query says."""
    from matcher.retriever import Matcher
    from matcher.types import Item

    han_dir, latin_dir = np.zeros(32), np.zeros(32)
    han_dir[0], latin_dir[1] = 1.0, 1.0
    topics = [_unit(rng.normal(size=32) * np.r_[0, 0, np.ones(30)]) for _ in range(52)]
    items, vectors = [], []
    for n in range(40):
        items.append(Item(n, "result", f"成果{n}", "一种方法"))
        vectors.append(_unit(1.2 * han_dir + topics[n]))
    for n in range(12):
        items.append(Item(100 + n, "result", f"Result {n}", "A method"))
        vectors.append(_unit(1.2 * latin_dir + topics[40 + n]))
    matcher = Matcher(_Dimension())  # type: ignore[arg-type]
    matcher.index_items(items, vectors=np.array(vectors, dtype=np.float32))
    query = _unit(1.2 * han_dir + topics[40]).astype(np.float32)  # Chinese, says result 100's
    return matcher, items, vectors, query


def test_a_chinese_need_finds_the_english_result_that_says_the_same():
    matcher, _, _, query = _bilingual_matcher(np.random.default_rng(2))
    found = matcher.search_many(["需求"], side="result", k=5, mode="dense",
                                query_vectors=query[None, :])[0]
    assert found[0].id == 100
    # Without the correction every Chinese result outranks it: the language dominates.
    coll = matcher.collections["result"]
    raw = coll.vectors.vectors(np.array([100] + list(range(40)))) @ query
    assert raw[0] < raw[1:].min() + 0.5 and (raw[1:] > raw[0]).sum() >= 5


def test_centres_kept_up_to_date_equal_centres_built_afresh():
    from matcher.types import Item

    matcher, items, vectors, query = _bilingual_matcher(np.random.default_rng(3))
    coll = matcher.collections["result"]
    coll.language_centres()  # built now, then maintained
    matcher.remove_items("result", [100, 3])
    matcher.index_items([Item(3, "result", "Now in English", "A method")],
                        vectors=np.array([vectors[3]], dtype=np.float32))
    kept = coll.centres
    coll.centres = None
    fresh = coll.language_centres()
    assert kept is not None and kept.counts == fresh.counts == {"han": 39, "latin": 12}
    for language in fresh.sums:
        assert np.allclose(kept.sums[language], fresh.sums[language], atol=1e-5)
