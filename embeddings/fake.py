"""A deterministic encoder for fast tests.

It hashes character uni- and bi-grams into a fixed number of buckets, so texts that share
Chinese characters or words land close together: enough signal for ranking tests to mean
something, with no model and no randomness between runs or machines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from embeddings.base import check_texts, l2_normalise


class FakeEncoder:
    def __init__(self, dimension: int = 64, window_chars: int | None = None) -> None:
        self.dimension = dimension
        # window_chars: split documents into windows of this many characters, as the real
        # encoder splits long texts into token windows (tests of multi-window documents).
        self.window_chars = window_chars
        self.name = f"fake-ngram-{dimension}" + (f"-w{window_chars}" if window_chars else "")

    def _bucket(self, gram: str) -> tuple[int, float]:
        digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        sign = 1.0 if value & 1 else -1.0
        return (value >> 1) % self.dimension, sign

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            chars = [c for c in text.lower() if not c.isspace()]
            grams = chars + [a + b for a, b in zip(chars, chars[1:], strict=False)]
            for gram in grams:
                bucket, sign = self._bucket(gram)
                out[row, bucket] += sign
        return l2_normalise(out)

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(texts)

    def encode_document_windows(self, texts: Sequence[str], *, progress: bool = False
                                ) -> list[np.ndarray]:
        texts = check_texts(texts)
        if not self.window_chars:
            return [row[None, :] for row in self._encode(texts)]
        size = self.window_chars
        out = []
        for text in texts:
            pieces = [text[start:start + size] for start in range(0, len(text), size)]
            out.append(self._encode([p for p in pieces if p.strip()] or [text]))
        return out
