"""The domain vocabulary: derived from keyword fields, kept whole by the index's own segmenter,
saved with the postings, and re-applied consistently when results bring new terms."""

from __future__ import annotations

from pathlib import Path

import jieba

from embeddings.fake import FakeEncoder
from matcher.indexing import IndexStore, open_store
from matcher.lexical import LexicalIndex
from matcher.sources import MemoryItems
from matcher.tokenize import content_terms, tokenize
from matcher.types import Item
from matcher.vocabulary import (
    EDIT_TOLERANCE,
    brings_new_terms,
    domain_terms,
    drift,
    refreshed,
    vocabulary_of,
)

TERMS = ("水肥一体化", "热失控", "化学机械抛光")


def _result(item_id: int, title: str, text: str, *keywords: str) -> Item:
    return Item(id=item_id, side="result", title=title, text=text, keywords=keywords)


# A tiny corpus: each of the three terms is a keyword of two results.
CORPUS = [
    _result(1, "智能灌溉施肥系统", "滴灌管网按墒情施肥。", "水肥一体化", "滴灌"),
    _result(2, "设施农业水肥一体化装备", "温室果蔬的灌溉与施肥。", "水肥一体化", "温室"),
    _result(3, "锂电池热失控预警", "电芯温升与产气监测。", "热失控", "储能"),
    _result(4, "储能电站安全防护", "抑制电池热失控蔓延的隔热材料。", "热失控"),
    _result(5, "晶圆化学机械抛光液", "铜互连平坦化用抛光液。", "化学机械抛光", "抛光液"),
    _result(6, "抛光垫修整工艺", "化学机械抛光中抛光垫的寿命。", "化学机械抛光"),
    _result(7, "一份孤例", "只有它自己的关键词。", "孤立关键词组"),
]


def test_the_base_dictionary_cuts_the_terms_apart() -> None:
    # What the vocabulary fixes (and proof the global dictionary is left alone by the tests).
    for term in TERMS:
        assert term not in tokenize(f"关于{term}的研究")


def test_vocabulary_comes_from_keyword_fields_of_two_documents() -> None:
    vocabulary = vocabulary_of(CORPUS)
    assert set(TERMS) <= set(vocabulary)
    assert "孤立关键词组" not in vocabulary  # one document's keyword is not a domain term
    assert "滴灌" not in vocabulary and "储能" not in vocabulary  # jieba keeps them already
    assert domain_terms([["ＡＢ电池组件"], ["Lyapunov函数"], ["Lyapunov函数"]]) == ()


def test_index_keeps_terms_whole_and_still_emits_sub_words() -> None:
    index = LexicalIndex(vocabulary_of(CORPUS))
    index.build((item.id, item.full_text) for item in CORPUS)
    words = index.tokenize("希望解决储能电池热失控和水肥一体化问题")
    assert {"热失控", "水肥一体化", "失控", "一体化"} <= set(words)
    assert "化学机械抛光" in index.words(5) and "抛光" in index.words(5)
    # A need saying only the sub-word still meets the result.
    assert index.search("抛光", 2)[0][0] in {5, 6}
    hits = index.search("水肥一体化", 3)
    assert {i for i, _ in hits[:2]} == {1, 2}
    # The global jieba dictionary was not touched.
    assert "水肥一体化" not in jieba.lcut("水肥一体化")


def test_explanation_terms_show_the_terms_whole() -> None:
    index = LexicalIndex(vocabulary_of(CORPUS))
    index.build((item.id, item.full_text) for item in CORPUS)
    query = "我们需要化学机械抛光的抛光液，以及热失控监测"
    # What explanations draw on: the query cut by the index, the document's indexed words.
    shared = content_terms(index.tokenize(query)) & content_terms(index.words(5))
    assert "化学机械抛光" in shared
    assert {"化学机械抛光", "热失控"} <= content_terms(index.tokenize(query))


def test_vocabulary_is_saved_and_reloaded_with_the_postings(tmp_path: Path) -> None:
    index = LexicalIndex(vocabulary_of(CORPUS))
    index.build((item.id, item.full_text) for item in CORPUS)
    index.save(tmp_path)
    again = LexicalIndex.load(tmp_path)
    assert again.vocabulary == index.vocabulary
    query = "热失控与化学机械抛光"
    assert again.tokenize(query) == index.tokenize(query)
    assert again.search(query, 7) == index.search(query, 7)
    assert "热失控" in again.words(3)


def test_an_index_without_vocabulary_cuts_as_before() -> None:
    index = LexicalIndex()
    assert index.vocabulary == ()
    assert index.tokenize("水肥一体化设备") == tokenize("水肥一体化设备")


def test_refreshed_only_past_the_tolerance() -> None:
    index = LexicalIndex(vocabulary_of(CORPUS))
    index.build((item.id, item.full_text) for item in CORPUS)
    assert refreshed(index, CORPUS) is None
    grown = [*CORPUS, _result(8, "极耳焊接", "超声焊接。", "孤立关键词组")]
    assert drift(index.vocabulary, vocabulary_of(grown)) > 0
    assert refreshed(index, grown, tolerance=1.0) is None  # small drift: wait
    again = refreshed(index, grown)
    assert again is not None and "孤立关键词组" in again.vocabulary
    assert set(again.ids().tolist()) == {item.id for item in grown}
    assert "孤立关键词组" in again.words(7)  # old documents re-cut with the new vocabulary


def test_sync_extends_the_vocabulary_with_a_new_results_keyword(tmp_path: Path) -> None:
    source = MemoryItems(CORPUS)
    store, _ = open_store(tmp_path, FakeEncoder(), source)
    lexical = store.matcher.collections["result"].lexical
    assert set(TERMS) <= set(lexical.vocabulary)
    assert "孤立关键词组" not in lexical.vocabulary
    source.put(_result(8, "极耳焊接工艺", "超声焊接极耳。", "孤立关键词组"))
    store.sync(source)
    lexical = store.matcher.collections["result"].lexical
    assert "孤立关键词组" in lexical.vocabulary
    # Documents indexed before the term joined are re-cut: no mix of old and new words.
    assert "孤立关键词组" in lexical.words(7)
    assert store.matcher.search("孤立关键词组", side="result", k=2, mode="lexical")[0].id in {7, 8}
    # Saved with it: a fresh store loads the same vocabulary and has nothing to redo.
    fresh, reports = open_store(tmp_path, FakeEncoder(), source)
    assert fresh.matcher.collections["result"].lexical.vocabulary == lexical.vocabulary
    assert not any(r.changed for r in reports)
    assert not any(r.changed for r in fresh.check(source))


def test_an_edit_re_cuts_only_when_the_vocabulary_drifts_far(tmp_path: Path) -> None:
    source = MemoryItems(CORPUS)
    store = IndexStore(tmp_path, FakeEncoder())
    store.sync(source)
    before = store.matcher.collections["result"].lexical.vocabulary
    # One new term among four is a drift of 1/4 > EDIT_TOLERANCE: applied at once.
    assert 1 / len(before) > EDIT_TOLERANCE
    source.put(_result(8, "极耳焊接工艺", "超声焊接极耳。", "孤立关键词组"))
    store.items_changed(source, "result", [8])
    lexical = store.matcher.collections["result"].lexical
    assert "孤立关键词组" in lexical.vocabulary and "孤立关键词组" in lexical.words(7)
    assert store.check(source)[1].changed is False


def test_an_edit_that_brings_no_domain_term_keeps_the_index(tmp_path: Path) -> None:
    source = MemoryItems(CORPUS)
    store = IndexStore(tmp_path, FakeEncoder())
    store.sync(source)
    lexical = store.matcher.collections["result"].lexical
    assert not brings_new_terms(lexical.vocabulary, [_result(9, "甲", "乙", "热失控", "电池")])
    assert brings_new_terms(lexical.vocabulary, [_result(9, "甲", "乙", "新型关键词")])
    # A keyword of one result only: a candidate, but not yet a domain term: no re-cut.
    source.put(_result(9, "固态电解质", "硫化物电解质界面。", "硫化物固态电解质"))
    store.items_changed(source, "result", [9])
    assert store.matcher.collections["result"].lexical is lexical
    assert 9 in lexical


def test_a_match_explains_with_the_domain_term_whole(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, FakeEncoder(), MemoryItems(CORPUS))
    match = store.matcher.search("我司需要晶圆化学机械抛光液的国产替代", side="result", k=1,
                                 mode="lexical")[0]
    assert match.id == 5
    terms = [term.term for term in match.explanation.shared_terms]
    assert "化学机械抛光" in terms and "化学" not in terms and "机械" not in terms


def test_words_common_in_needs_weigh_little_when_a_need_searches_results(
        tmp_path: Path) -> None:
    """Forty needs all say 我司 希望 合作; a result that shares only those words must not
    outrank one that shares the subject (the need side is the default query side)."""
    needs = [Item(id=100 + n, side="need", title=f"需求{n}",
                  text=f"我司希望合作开发第{n}类产品的工艺。") for n in range(40)]
    results = [_result(1, "希望合作", "我司希望合作，我司希望合作。"),
               _result(2, "涂层干燥工艺", "一种涂层的低温干燥工艺。")]
    results += [_result(10 + n, f"其他成果{n}", f"与本题无关的第{n}项内容。") for n in range(30)]
    store, _ = open_store(tmp_path, FakeEncoder(), MemoryItems([*needs, *results]))
    ranked = store.matcher.search("我司希望合作：涂层干燥", side="result", k=2, mode="lexical")
    assert ranked[0].id == 2
