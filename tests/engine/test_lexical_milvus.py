"""The BM25 side on Milvus's full-text search (`matcher.lexical_milvus`), on Milvus Lite:
its scores are the in-process index's, query-side weights included; filters run inside;
a full sync makes it hold exactly what the database does; and the store uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embeddings.fake import FakeEncoder
from matcher import vector_milvus
from matcher.filters import Filters
from matcher.index_backend import IndexBackend
from matcher.indexing import IndexStore
from matcher.lexical import LexicalIndex
from matcher.lexical_milvus import QUANTUM, MilvusFullText, safe_word, words_field
from matcher.retriever import Matcher
from matcher.sources import MemoryItems
from matcher.types import Item
from matcher.vector_common import IndexUnavailableError

pytestmark = pytest.mark.milvus
TINY = Path(__file__).resolve().parents[1] / "data" / "tiny"


@pytest.fixture
def uri(tmp_path: Path):  # noqa: ANN201
    path = str(tmp_path / "milvus.db")
    yield path
    vector_milvus.close_client(path)


def tiny_items(side: str = "result") -> list[Item]:
    rows = [json.loads(line) for line in (TINY / "corpus.jsonl").read_text().splitlines()]
    return [Item(n, side, r.get("title", ""), r.get("text", ""),  # type: ignore[arg-type]
                 facets={"industry": ["电子信息", "生物医药"][n % 2]})
            for n, r in enumerate(rows)]


def queries() -> list[str]:
    return [json.loads(line)["text"] for line in
            (TINY / "queries.jsonl").read_text().splitlines()]


def lexical_pair(uri: str) -> tuple[Matcher, Matcher]:
    """The same items on a matcher with the in-process BM25 and one on Milvus's."""
    local = Matcher(None)
    shared = Matcher(None, full_text_factory=lambda side: MilvusFullText(
        uri=uri, collection=f"t_{side}_text"))
    for matcher in (local, shared):
        matcher.index_items(tiny_items())
    return local, shared


def test_safe_words_stay_whole_and_distinct() -> None:
    assert safe_word("c++") != safe_word("c")
    assert safe_word("c++") != safe_word("c--")
    assert safe_word("锂电池") == "锂电池"
    assert words_field(["c++", "5g", "锂电池"]).split(" ") == [safe_word("c++"), "5g", "锂电池"]


def test_scores_are_the_in_process_bm25s(uri: str) -> None:
    local, shared = lexical_pair(uri)
    coll_local, coll_shared = local.collections["result"], shared.collections["result"]
    ids = np.array(sorted(coll_local.items), dtype=np.int64)
    empty_side = local.collections["need"].lexical
    assert coll_shared.full_text is not None and coll_shared.full_text.count() == len(ids)
    for text in queries():
        words = coll_local.lexical.tokenize(text)
        ours = coll_local.lexical_scores(text, words, empty_side, None)
        theirs = coll_shared.lexical_scores(text, words, empty_side, None)
        # `of` first: the ids' scores do not depend on what `top` fetched before.
        np.testing.assert_allclose(theirs.of(ids), ours.of(ids), rtol=1e-4, atol=1e-5)
        assert [i for i, _ in theirs.top(5)] == [i for i, _ in ours.top(5)]


def test_query_side_weights_reach_milvus_to_one_quantum(uri: str) -> None:
    """A need's common words weigh less (`LexicalIndex.query_weight`): sent as repeats."""
    local, shared = lexical_pair(uri)
    needs = LexicalIndex()
    needs.add((1000 + n, "我司希望寻求合作 " + text) for n, text in enumerate(queries() * 10))
    assert needs.query_weight("希望") < 0.2 < needs.query_weight("电池")
    ids = np.array(sorted(local.collections["result"].items), dtype=np.int64)
    for text in queries():
        text = "我司希望寻求合作 " + text
        words = local.collections["result"].lexical.tokenize(text)
        ours = local.collections["result"].lexical_scores(text, words, needs, None).of(ids)
        theirs = shared.collections["result"].lexical_scores(text, words, needs, None).of(ids)
        unweighted = local.collections["result"].lexical.score(text, words=words).of(ids)
        # Each weight is rounded to 1/QUANTUM: within half of that of the idf, per word.
        assert np.all(np.abs(theirs - ours) <= unweighted / QUANTUM + 1e-4)
        assert np.any(np.abs(unweighted - ours) > 1e-3), "the weights changed the scores"


def test_filters_run_inside_the_full_text_search(uri: str) -> None:
    _, shared = lexical_pair(uri)
    coll = shared.collections["result"]
    filters = Filters(facets={"industry": frozenset({"生物医药"})})
    allowed = {i for i, item in coll.items.items() if filters.allows(item)}
    found: set[int] = set()
    for text in [*queries(), *(item.full_text for item in coll.items.values())]:
        words = coll.lexical.tokenize(text)
        found |= {i for i, _ in coll.lexical_scores(text, words, LexicalIndex(), filters).top(50)}
    assert found == allowed
    matches = shared.search_many(queries(), side="result", k=3, mode="lexical",
                                 filters=filters, explain=False)
    assert all(m.id in allowed for row in matches for m in row)


def test_edits_and_removals_are_written_through(uri: str) -> None:
    _, shared = lexical_pair(uri)
    coll = shared.collections["result"]
    assert coll.full_text is not None
    shared.remove_items("result", [0, 1])
    edited = Item(2, "result", "量子点显示器件", "一种量子点发光二极管及其制备方法")
    shared.index_items([edited])
    again = MilvusFullText(uri=uri, collection="t_result_text")  # another process's view
    assert set(again.held()) == set(coll.items)
    top = coll.lexical_scores("量子点发光", coll.lexical.tokenize("量子点发光"),
                              LexicalIndex(), None).top(1)
    assert top[0][0] == 2


def test_a_full_sync_reconciles_what_milvus_holds(uri: str, tmp_path: Path) -> None:
    backend = IndexBackend("milvus", uri, "sync")
    items = tiny_items()
    source = MemoryItems(items)
    store = IndexStore(tmp_path / "home", FakeEncoder(16), backend)
    store.sync(source)
    text = store.matcher.collections["result"].full_text
    assert text is not None and set(text.held()) == {i.id for i in items}

    # A write lost to an outage, a row left over, and a facet edit the log never delivered.
    stale = MilvusFullText(uri=uri, collection="sync_result_text")
    stale.remove([3])
    stale.upsert([Item(999, "result", "遗留", "已删除的成果")], LexicalIndex())
    items[4] = Item(4, "result", items[4].title, items[4].full_text,
                    facets={"industry": "人工智能"})
    fresh = IndexStore(tmp_path / "home", FakeEncoder(16), backend)
    fresh.load()
    problems = {r.side: r.problem for r in fresh.check(MemoryItems(items))}
    assert "全文索引" in problems["result"] and not problems["need"]
    fresh.sync(MemoryItems(items))
    assert not any(r.problem for r in fresh.check(MemoryItems(items)))
    held = MilvusFullText(uri=uri, collection="sync_result_text")
    assert set(held.held()) == {i.id for i in items}
    coll = fresh.matcher.collections["result"]
    filtered = coll.lexical_scores(items[4].full_text, coll.lexical.tokenize(items[4].full_text),
                                   LexicalIndex(), Filters(facets={"industry": frozenset(
                                       {"人工智能"})})).top(5)
    assert [i for i, _ in filtered] == [4]


def test_the_process_setting_keeps_bm25_in_the_process(uri: str) -> None:
    assert IndexBackend("milvus", uri, "p", milvus_lexical="process").full_text_factory is None
    assert IndexBackend().full_text_factory is None
    with pytest.raises(ValueError, match="lexical"):
        IndexBackend("milvus", uri, "p", milvus_lexical="elsewhere")


def test_an_unreachable_milvus_is_a_clear_error() -> None:
    with pytest.raises(IndexUnavailableError, match="Milvus"):
        MilvusFullText(uri="http://127.0.0.1:9", collection="t_result_text")
