"""Index sync against an in-memory item source: the engine's repair logic without a database."""

from __future__ import annotations

from pathlib import Path

from embeddings.fake import FakeEncoder
from matcher.indexing import IndexStore, open_store
from matcher.sources import MemoryItems, text_hash
from matcher.types import Item


class CountingEncoder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.documents = 0

    def encode_document_windows(self, texts, *, progress=False):  # noqa: ANN001, ANN201
        # What indexing calls: one vector per window of each document.
        self.documents += len(texts)
        return super().encode_document_windows(texts)


def _result(item_id: int, title: str, text: str) -> Item:
    return Item(id=item_id, side="result", title=title, text=text)


def test_sync_adds_reembeds_and_drops_exactly_what_changed(tmp_path: Path) -> None:
    source = MemoryItems([_result(1, "锂电池正极材料包覆", "高镍三元正极包覆改性"),
                          _result(2, "工业视觉检测", "深度学习缺陷检测算法"),
                          Item(id=7, side="need", title="电池寿命", text="正极循环衰减")])
    encoder = CountingEncoder()
    store, reports = open_store(tmp_path, encoder, source)
    assert {r.side: (r.added, r.total) for r in reports} == {"need": (1, 1), "result": (2, 2)}
    assert store.matcher.search("正极包覆", side="result", k=1)[0].id == 1

    source.put(_result(2, "工业视觉检测", "改写后的摘要：表面瑕疵识别"))
    source.drop("result", 1)
    source.put(_result(3, "水肥一体化", "智能灌溉施肥"))
    encoder.documents = 0
    reports = {r.side: r for r in store.sync(source)}
    assert (reports["result"].added, reports["result"].updated, reports["result"].removed) == \
        (1, 1, 1)
    assert encoder.documents == 2  # the edited and the new text, nothing else
    assert 1 not in store.matcher.collections["result"].items

    # Saved files reload as they were: a fresh store has nothing left to do.
    again = CountingEncoder()
    fresh, reports = open_store(tmp_path, again, source)
    assert again.documents == 0 and not any(r.changed for r in reports)
    assert not any(r.changed for r in fresh.check(source))


def test_items_changed_applies_one_edit(tmp_path: Path) -> None:
    source = MemoryItems([_result(1, "甲", "第一段文字"), _result(2, "乙", "第二段文字")])
    store = IndexStore(tmp_path, FakeEncoder())
    store.sync(source)
    source.put(_result(2, "乙", "换了内容"))
    assert store.items_changed(source, "result", [2]) == 1
    assert store.check(source)[1].changed is False
    source.drop("result", 2)
    assert store.items_changed(source, "result", [2]) == 1
    assert set(store.matcher.collections["result"].items) == {1}


def test_hash_is_the_full_text_hash() -> None:
    item = _result(1, "标题", "正文")
    assert MemoryItems([item]).content_hashes("result") == {1: text_hash(item)}
