"""An in-memory `ItemSource`: index sync without a database.

The site's source of truth is the database (`corpora.items.DatabaseItems`); this one holds
items in a dict, so the engine's sync, repair and save logic is tested, and usable by a
script, without SQLAlchemy. The hash is that of `Item.full_text`, as the database stores it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from matcher.types import SIDES, Item, Side


def text_hash(item: Item) -> str:
    return hashlib.sha256(item.full_text.encode("utf-8", errors="surrogatepass")).hexdigest()


class MemoryItems:
    """Matchable items per side; `put` and `drop` are the edits."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self.items: dict[Side, dict[int, Item]] = {side: {} for side in SIDES}
        self.put(*items)

    def put(self, *items: Item) -> None:
        for item in items:
            self.items[item.side][item.id] = item

    def drop(self, side: Side, *ids: int) -> None:
        for item_id in ids:
            self.items[side].pop(item_id, None)

    def _chosen(self, side: Side, ids: Iterable[int] | None) -> list[Item]:
        held = self.items[side]
        wanted = sorted(held) if ids is None else sorted({int(i) for i in ids} & held.keys())
        return [held[i] for i in wanted]

    def content_hashes(self, side: Side, ids: Iterable[int] | None = None) -> dict[int, str]:
        return {item.id: text_hash(item) for item in self._chosen(side, ids)}

    def load_items(self, side: Side, ids: Iterable[int] | None = None) -> list[Item]:
        return self._chosen(side, ids)
