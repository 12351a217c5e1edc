"""Fusing dense and lexical scores (provisional; tuned below once measured)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


@dataclass(frozen=True)
class Fusion:
    dense_weight: float = 0.5

    def fuse(self, query: str, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        return self.dense_weight * _minmax(dense) + (1 - self.dense_weight) * _minmax(lexical)


def default_fusion() -> Fusion:
    return Fusion()
