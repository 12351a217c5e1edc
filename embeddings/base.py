"""The seam every encoder sits behind.

Callers only ever see L2-normalised float32 matrices, one row per input text, so inner
product is cosine similarity everywhere downstream (FAISS, brute force, explanations).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


class EmptyTextError(ValueError):
    """Raised before any model sees an empty or whitespace-only text."""


@runtime_checkable
class Encoder(Protocol):
    #: Stable identifier of the model and its settings; keys caches and index sidecars.
    name: str
    dimension: int

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """Refuse anything that is not a non-blank string, naming the offending position."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got a single str")
    checked: list[str] = []
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text #{position} is {type(text).__name__}, not str")
        if not text.strip():
            raise EmptyTextError(f"text #{position} is empty or whitespace only")
        checked.append(text)
    return checked


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def encode_document_windows(encoder: Encoder, texts: Sequence[str], *, progress: bool = False
                            ) -> list[np.ndarray]:
    """Per text, the vectors of its windows (one row each, L2-normalised, in text order).

    Encoders that split long texts (the sentence-transformers one) expose
    `encode_document_windows`; for any other encoder each text is one window.
    """
    method = getattr(encoder, "encode_document_windows", None)
    if method is not None:
        return method(texts, progress=progress)
    vectors = encoder.encode_documents(texts, progress=progress)
    return [row[None, :] for row in vectors]
