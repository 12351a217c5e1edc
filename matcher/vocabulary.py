"""The lexical side's domain vocabulary, derived from the corpus's own keyword fields.

Authors and offices tag results with the terms of their field (水肥一体化, 热失控, 化学机械抛光);
jieba's general dictionary cuts many of them apart. A term that several documents give as a
keyword is a word of the domain, so it joins the segmenter's dictionary (`tokenize.Segmenter`)
and stays whole in the BM25 index, in queries and in explanations. No list is typed by hand:
the vocabulary is whatever the keyword fields say, recomputed as results come and go.

Documents and queries must be cut with one vocabulary, so the vocabulary is part of the BM25
index (saved with its postings) and changing it means re-tokenising every document. That costs
about 1.6 ms a document here, so it is not done on every edit: a sync (start-up, import) always
brings the vocabulary up to date, and a single edit only when the terms it would add or drop
exceed `EDIT_TOLERANCE` of the active vocabulary. Until then new documents are cut with the
vocabulary in force, which keeps them consistent with the queries.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from matcher.lexical import LexicalIndex
from matcher.tokenize import known_word, normalise
from matcher.types import Item

# A term must be a keyword of this many documents: one document's keyword is often a phrase
# of its own (热处理电子技术保鲜); two documents agreeing on it make it a term of the field.
MIN_DOCUMENTS = 2
# Longer "keywords" are phrases or sentences, not terms a segmenter should keep whole.
MAX_LENGTH = 12
# Share of the active vocabulary an edit may leave unapplied before the index is re-tokenised.
EDIT_TOLERANCE = 0.1

_TERM = re.compile(rf"[\u3400-\u9fff]{{2,{MAX_LENGTH}}}")


def domain_terms(keyword_lists: Iterable[Sequence[str]], *,
                 min_documents: int = MIN_DOCUMENTS) -> tuple[str, ...]:
    """Multi-character CJK keywords given by at least `min_documents` documents that jieba's
    dictionary does not already hold whole, sorted. Latin keywords need no help: jieba keeps a
    Latin run whole anyway."""
    counts: Counter[str] = Counter()
    for keywords in keyword_lists:
        counts.update({normalise(k).strip() for k in keywords})
    return tuple(sorted(term for term, n in counts.items()
                        if n >= min_documents and _candidate(term)))


def _candidate(term: str) -> bool:
    return bool(_TERM.fullmatch(term)) and not known_word(term)


def brings_new_terms(vocabulary: Sequence[str], items: Iterable[Item]) -> bool:
    """Could these (new or edited) items add a term to `vocabulary`? A cheap test that spares
    an edit counting every item's keywords when it cannot matter."""
    active = set(vocabulary)
    return any(term not in active and _candidate(term)
               for item in items for term in (normalise(k).strip() for k in item.keywords))


def vocabulary_of(items: Iterable[Item]) -> tuple[str, ...]:
    """The domain vocabulary of these items' keyword fields."""
    return domain_terms(item.keywords for item in items)


def drift(active: Sequence[str], wanted: Sequence[str]) -> float:
    """How far the vocabulary in force is from the wanted one: terms to add or drop, as a
    share of the active vocabulary (any change to an empty one counts as all of it)."""
    changed = len(set(active) ^ set(wanted))
    return changed / len(active) if active else float(changed > 0)


def index_with(items: Iterable[Item], vocabulary: Sequence[str]) -> LexicalIndex:
    """A BM25 index of `items` (their `full_text`, as the matcher indexes them) cut with
    `vocabulary`."""
    index = LexicalIndex(vocabulary)
    index.build((item.id, item.full_text) for item in items)
    return index


def refreshed(index: LexicalIndex, items: Sequence[Item], *,
              tolerance: float = 0.0) -> LexicalIndex | None:
    """A re-tokenised copy of `index` over `items` (the side's whole contents) when their
    vocabulary has drifted more than `tolerance` from the index's; None when it has not."""
    wanted = vocabulary_of(items)
    if wanted == index.vocabulary or drift(index.vocabulary, wanted) <= tolerance:
        return None
    return index_with(items, wanted)
