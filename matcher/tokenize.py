"""Chinese-first word segmentation shared by BM25 and the explanations.

jieba's search mode emits both long words and their sub-words (e.g. 锂离子电池 → 锂离子, 电池,
锂离子电池), so a need that says 电池 still meets a result that says 锂离子电池. Latin words
and numbers are lower-cased and kept whole.

jieba's own dictionary cuts domain terms it does not know (水肥一体化 → 水肥, 一体化). A
`Segmenter` adds a domain vocabulary (`matcher.vocabulary`: terms from the corpus's keyword
fields) to a jieba dictionary of its own, so those terms stay whole while search mode still
emits their sub-words. The global jieba dictionary is never changed: two indexes (or two
tests) with different vocabularies cannot leak words into each other.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import jieba

jieba.setLogLevel(logging.WARNING)

# A token worth indexing holds at least one CJK character, letter or digit.
_CONTENT = re.compile(r"[\w\u3400-\u9fff]", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u9fff]")

# Words so common in needs and abstracts that sharing them says nothing about a match.
# BM25's idf already discounts them; explanations must not show them as "shared terms".
EXPLANATION_STOPWORDS = frozenset(
    """
    的 了 和 与 及 或 在 对 为 以 于 其 中 是 有 等 将 被 由 从 并 而 可 也 上 下 后 前 该 本 个
    一种 一个 一 所述 本发明 发明 实用新型 公开 提供 包括 包含 具有 采用 利用 使用 通过 进行 实现
    方法 装置 系统 设备 结构 技术 研究 分析 结果 表明 提高 提出 基于 应用 影响 问题 需要 需求
    我们 公司 企业 目前 现有 能够 可以 以及 同时 相关 主要 其中 设置 连接 用于 一端 另一端 所示
    本文 作者 条件 情况 通过对 得到 不同 之间 作为 要求 希望 合作 解决 开发 研发 产品 生产
    the of and to in for on with by a an is are was were be this that from as at or we our
    """.split()
)


def normalise(text: str) -> str:
    # NFKC folds full-width Latin letters and digits (ＡＢＣ１２３) into their ASCII forms.
    return unicodedata.normalize("NFKC", text).lower()


class Segmenter:
    """jieba search mode over the base dictionary plus `vocabulary` (normalised words).

    Without a vocabulary it is jieba's default tokenizer. With one, it copies the base word
    frequencies (a dict copy: ~15 MB and 30 ms, where loading a second dictionary costs ~70 MB
    and a second) and adds each word with the frequency jieba suggests for keeping it whole.
    Read-only once built, so threads may share it.
    """

    def __init__(self, vocabulary: Iterable[str] = ()) -> None:
        self.vocabulary: tuple[str, ...] = tuple(sorted({normalise(w) for w in vocabulary
                                                         if w.strip()}))
        self._jieba = jieba.dt
        if self.vocabulary:
            base = jieba.dt
            base.check_initialized()
            own = jieba.Tokenizer()
            own.FREQ, own.total, own.initialized = dict(base.FREQ), base.total, True
            for word in self.vocabulary:
                own.add_word(word)
            self._jieba = own

    def tokenize(self, text: str) -> list[str]:
        """Index/query tokens: jieba search-mode words, punctuation and spaces dropped."""
        return [t for t in self._jieba.lcut_for_search(normalise(text)) if _CONTENT.search(t)]


@lru_cache(maxsize=4)
def segmenter(vocabulary: tuple[str, ...] = ()) -> Segmenter:
    """The shared segmenter for a vocabulary (indexes with the same vocabulary, such as a
    reloaded one, share one dictionary copy). Few are kept: each holds ~15 MB, and a server
    only needs the vocabularies in force (an index keeps its own alive anyway)."""
    return Segmenter(vocabulary)


def known_word(word: str) -> bool:
    """Is `word` a word of jieba's base dictionary (so it already stays whole)?"""
    jieba.dt.check_initialized()
    return bool(jieba.dt.FREQ.get(word))


def tokenize(text: str) -> list[str]:
    """Index/query tokens with jieba's base dictionary (no domain vocabulary)."""
    return segmenter().tokenize(text)


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def explanation_terms(text: str) -> set[str]:
    """Terms that can explain a match: content words, not stopwords or single characters."""
    return content_terms(_words(text))


def content_terms(words: Iterable[str]) -> set[str]:
    """The words of `words` that can explain a match.

    A single CJK character (e.g. 铁) is too ambiguous to show as a reason; a Latin token needs
    two letters or more so units and list markers (a, b, 1) stay out; function words (以上
    之间 我们 对于, see `function_word`) say nothing about a topic.
    """
    return {word for word in words
            if len(word) >= 2 and word not in EXPLANATION_STOPWORDS and not word.isdigit()
            and not function_word(word)}


# jieba's part-of-speech tags of words that carry no topic: conjunctions, prepositions,
# particles, pronouns, locality words (以上 之间), modal particles, interjections and
# onomatopoeia. Adverbs (d), numerals (m) and measure words (q) are not among them: 实时 快速,
# 三维 多元 and 阵列 are such words to jieba yet name what a text is about; the common ones
# (一种 一家 进一步) are common on a side, which `matcher.explain.common_on_a_side` drops.
FUNCTION_TAGS = frozenset("c p u uj ul uz ud ug uv r f y e o".split())


@lru_cache(maxsize=1)
def _word_tags() -> dict[str, str]:
    # Imported here: jieba.posseg loads its tag table (~350,000 words) on import, which BM25
    # alone never needs.
    import jieba.posseg

    return jieba.posseg.dt.word_tag_tab


def function_word(word: str) -> bool:
    """Is `word` a function word by jieba's dictionary tag? Words it does not know (domain
    terms, Latin words) are not."""
    return _word_tags().get(word) in FUNCTION_TAGS


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))
