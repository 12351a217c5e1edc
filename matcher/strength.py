"""A match's strength: the probability that it answers its query, and the label users read.

The fused `Match.score` is min-max normalised per query, so a throw-away need's best match
scores near 1 like a good need's: it ranks, it does not say how good. Strength reads features
that mean the same across queries and turns them into P(grade ≥ 2) ("partly answers or could
solve") with a logistic regression fitted on the judged need-results set
(`scripts/fit_strength.py`, cross-validated by need). The fitted coefficients, the label
thresholds and the cross-validated figures live in `strength.json` beside this module (JSON,
read once; fitting needs scikit-learn, applying it only numpy).

The features (`features`), each clipped to the range it spanned on the judged pairs (their 1st
to 99th percentile, in the JSON): a query unlike any judged need (a few words, no known word at
all) would otherwise be extrapolated far out, where a linear logit says nothing:

* dense: the cosine of the match's best window with the query (absolute, not normalised);
* log_bm25: ln(1 + the BM25 score): the rare words the match shares with the query, in
  amount. (BM25 over the query's own ceiling, the sum of the idf of its known words, was
  tried: it cross-validates alike, 强 precision 0.823 against 0.829, but a one-word query
  reaches a high share of its tiny ceiling with any document holding the word: 测试 came out
  强.);
* known_share: the share of the query's distinct words the index holds at all (fusion's BM25
  evidence, `retriever.known_share`);
* log_rank: ln of the match's place in its list (1 = best): the 20th match of a good need is
  weaker than its first even at the same cosine.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from matcher.types import Strength

FEATURES: tuple[str, ...] = ("dense", "log_bm25", "known_share", "log_rank")
# Best first: a match takes the first label whose threshold its probability reaches.
LABELS: tuple[str, ...] = ("强", "较强", "一般", "弱")
# The labels a firm can act on: a need whose matches reach none of them is told so plainly,
# and only these count as answering a need. Below them a match is a near miss.
STRONG_LABELS: tuple[str, ...] = LABELS[:2]
MODEL_PATH = Path(__file__).with_name("strength.json")


def features(dense: float, lexical: float, known_share: float, rank: int) -> np.ndarray:
    """The feature vector (`FEATURES` order) of one match, before clipping."""
    if rank < 1:
        raise ValueError(f"rank counts from 1, got {rank}")
    return np.array([dense, math.log1p(max(lexical, 0.0)), known_share, math.log(rank)],
                    dtype=np.float64)


@dataclass(frozen=True)
class StrengthModel:
    """A fitted logistic regression on standardised features, and its label thresholds."""

    model: str
    mean: np.ndarray
    scale: np.ndarray
    low: np.ndarray  # each feature's clipping range
    high: np.ndarray
    coefficients: np.ndarray
    intercept: float
    thresholds: dict[str, float]  # label -> least probability; the last label takes the rest

    @classmethod
    def from_dict(cls, data: dict) -> StrengthModel:
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"strength model features {data['features']} are not {FEATURES}")
        thresholds = {label: float(data["thresholds"][label]) for label in LABELS[:-1]}
        ordered = [thresholds[label] for label in LABELS[:-1]]
        if ordered != sorted(ordered, reverse=True):
            raise ValueError(f"strength thresholds must fall from 强 to 一般, got {thresholds}")
        return cls(
            model=str(data["model"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            low=np.asarray(data["low"], dtype=np.float64),
            high=np.asarray(data["high"], dtype=np.float64),
            coefficients=np.asarray(data["coefficients"], dtype=np.float64),
            intercept=float(data["intercept"]),
            thresholds=thresholds,
        )

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> StrengthModel:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def probability(self, x: np.ndarray) -> float:
        x = np.clip(x, self.low, self.high)
        z = float((x - self.mean) / self.scale @ self.coefficients) + self.intercept
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def label(self, probability: float) -> str:
        for name in LABELS[:-1]:
            if probability >= self.thresholds[name]:
                return name
        return LABELS[-1]

    def assess(self, x: np.ndarray) -> Strength:
        p = self.probability(x)
        return Strength(label=self.label(p), probability=round(p, 4))


@cache
def default_model() -> StrengthModel:
    """The model in `strength.json`, read once per process."""
    return StrengthModel.load()
