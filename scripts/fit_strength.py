"""Fit match strength (`matcher/strength.json`) on the judged need-results set.

    .venv/bin/python scripts/fit_strength.py --cache var/cache/eval-embeddings.sqlite

Ranks every need (hybrid, top 20, as the site lists them), keeps the pairs the judges graded
(qrels.tsv, 0–3), and fits a logistic regression for P(grade ≥ 2) on `matcher.strength`'s
features. Everything reported is cross-validated by need (GroupKFold, 5 folds): each fold's
model and thresholds are fitted on the other needs only, so the figures describe needs the
model never saw. The thresholds are picked on out-of-fold probabilities of the training
needs: 强 at the deepest cut where the precision (share of grade ≥ 2) of the pairs at or above
it clears TARGET_PRECISION by a standard error (Wilson's lower bound), 较强 and 一般 likewise
for the pairs at or above them; the rest are 弱. Fitting needs scikit-learn
(requirements-dev.txt); the site applies the JSON with numpy alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matcher.evaluation import load_corpus, load_qrels, load_queries  # noqa: E402
from matcher.ranking import QUERY_SIDE, SIDE, EvalRanker  # noqa: E402
from matcher.retriever import known_share  # noqa: E402
from matcher.strength import FEATURES, LABELS, MODEL_PATH, features  # noqa: E402

SET_DIR = ROOT / "datasets" / "eval" / "need-results"
TOP_K = 20
FOLDS = 5
RELEVANT = 2
# Least precision of the pairs at or above each label's threshold (强 is the target).
TARGET_PRECISION = {"强": 0.8, "较强": 0.6, "一般": 0.35}
DEFINITIONS = {
    "dense": "cosine of the match's best window with the query (later windows −0.02)",
    "log_bm25": "ln(1 + the match's BM25 score, the query side's weights applied)",
    "known_share": "share of the query's distinct words the index holds",
    "log_rank": "ln of the match's place in its list, 1 = best",
}
# Each feature is clipped to this percentile range of the judged pairs, in fitting and use.
CLIP_PERCENTILES = (1, 99)
# One standard error: the cut's precision must clear its target by about that much.
WILSON_Z = 1.0


def judged_pairs(encoder_spec: str | None, cache: str | None):
    """(X, y, groups, grades, model name) over the judged pairs in each need's top TOP_K."""
    from matcher.cli import _encoder

    docs = load_corpus(SET_DIR / "corpus.jsonl")
    queries = load_queries(SET_DIR / "queries.jsonl")
    qrels = load_qrels(SET_DIR / "qrels.tsv")
    encoder = _encoder(encoder_spec, cache)
    ranker = EvalRanker(encoder, docs)
    matcher = ranker.matcher
    # As `evaluate` and the platform rank: the needs indexed, so the hub discount applies.
    ranker.index_queries_as_needs(queries)
    coll = matcher.collections[SIDE]
    texts = [q.text for q in queries]
    vectors = encoder.encode_queries(texts)
    # Without explanations: they would carry the strength of the JSON being replaced. The
    # two scores are the matcher's own (best window's cosine; BM25 with the need side's
    # weights), as `Matcher._rank_one` computes them.
    results = matcher.search_many(texts, side=SIDE, k=TOP_K, mode="hybrid", explain=False,
                                  query_vectors=vectors)
    rows, labels, groups = [], [], []
    for g, (query, matches) in enumerate(zip(queries, results, strict=True)):
        judged = qrels.get(query.id, {})
        share = known_share(coll.lexical, query.text)
        ids = np.array([m.id for m in matches], dtype=np.int64)
        dense = coll.dense_scores(ids, vectors[g])
        lexical = coll.lexical.score(
            query.text, query_side=matcher.collections[QUERY_SIDE].lexical).of(ids)
        for rank, match in enumerate(matches, start=1):
            grade = judged.get(docs[match.id].id)
            if grade is None:
                continue
            rows.append(features(float(dense[rank - 1]), float(lexical[rank - 1]), share, rank))
            labels.append(grade)
            groups.append(g)
    grades = np.array(labels)
    return np.vstack(rows), (grades >= RELEVANT).astype(int), np.array(groups), grades, \
        encoder.name


@dataclass(frozen=True)
class Fitted:
    low: np.ndarray
    high: np.ndarray
    scaler: StandardScaler
    model: LogisticRegression

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(grade ≥ 2), the features clipped to the fitted range as `matcher.strength` does."""
        clipped = np.clip(X, self.low, self.high)
        return self.model.predict_proba(self.scaler.transform(clipped))[:, 1]


def fit(X: np.ndarray, y: np.ndarray) -> Fitted:
    low, high = np.percentile(X, CLIP_PERCENTILES[0], axis=0), \
        np.percentile(X, CLIP_PERCENTILES[1], axis=0)
    clipped = np.clip(X, low, high)
    scaler = StandardScaler().fit(clipped)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(clipped), y)
    return Fitted(low, high, scaler, model)


def lower_bound(hits: np.ndarray, n: np.ndarray, z: float = WILSON_Z) -> np.ndarray:
    """Wilson's lower bound on a precision of hits / n: the cut must meet its target with a
    margin, or the deepest cut meeting it by luck on the training needs misses it elsewhere."""
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def pick_thresholds(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Per label, the least probability at which the pairs at or above it reach its target
    precision (its lower bound does; never above the previous label's threshold)."""
    order = np.argsort(-p, kind="stable")
    bound = lower_bound(np.cumsum(y[order]), np.arange(1, len(y) + 1))
    thresholds, ceiling = {}, 1.0
    for label in LABELS[:-1]:
        ok = np.flatnonzero(bound >= TARGET_PRECISION[label])
        # The deepest cut that still meets the target; none met: nothing gets the label.
        t = float(p[order][ok[-1]]) if len(ok) else ceiling
        thresholds[label] = min(t, ceiling)
        ceiling = thresholds[label]
    return thresholds


def out_of_fold(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each pair's probability from a model fitted on the other needs."""
    p = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=FOLDS).split(X, y, groups):
        p[test] = fit(X[train], y[train]).predict(X[test])
    return p


def fitted_thresholds(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Thresholds picked on out-of-fold probabilities, as unseen needs would get them (picked
    on the fitted model's own probabilities they are optimistic: 强 0.75 precision held out)."""
    return pick_thresholds(out_of_fold(X, y, groups), y)


def label_of(p: float, thresholds: dict[str, float]) -> str:
    return next((name for name in LABELS[:-1] if p >= thresholds[name]), LABELS[-1])


def cross_validate(X, y, groups):
    oof_p = np.zeros(len(y))
    oof_label = np.empty(len(y), dtype=object)
    for train, test in GroupKFold(n_splits=FOLDS).split(X, y, groups):
        thresholds = fitted_thresholds(X[train], y[train], groups[train])
        oof_p[test] = fit(X[train], y[train]).predict(X[test])
        oof_label[test] = [label_of(p, thresholds) for p in oof_p[test]]
    return oof_p, oof_label


def report(y, oof_p, oof_label) -> dict:
    relevant = int(y.sum())
    per_label = {}
    for label in LABELS:
        mask = oof_label == label
        per_label[label] = {
            "pairs": int(mask.sum()),
            "precision": round(float(y[mask].mean()), 4) if mask.any() else None,
            "recall": round(float(y[mask].sum()) / relevant, 4),
        }
    bins = np.linspace(0, 1, 11)
    reliability = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        mask = (oof_p >= lo) & ((oof_p < hi) | (hi == 1.0))
        if mask.any():
            reliability.append({"bin": f"{lo:.1f}–{hi:.1f}", "pairs": int(mask.sum()),
                                "mean_probability": round(float(oof_p[mask].mean()), 4),
                                "observed": round(float(y[mask].mean()), 4)})
    return {
        "pairs": len(y), "relevant": relevant,
        "brier": round(float(np.mean((oof_p - y) ** 2)), 4),
        "brier_base_rate": round(float(np.mean((y.mean() - y) ** 2)), 4),
        "labels": per_label,
        "reliability": reliability,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: the settings')")
    parser.add_argument("--cache", default=None, help="embedding cache (SQLite)")
    parser.add_argument("--out", default=str(MODEL_PATH))
    args = parser.parse_args(argv)
    X, y, groups, grades, model_name = judged_pairs(args.model, args.cache)
    oof_p, oof_label = cross_validate(X, y, groups)
    cv = report(y, oof_p, oof_label)
    fitted = fit(X, y)
    scaler, model = fitted.scaler, fitted.model
    thresholds = fitted_thresholds(X, y, groups)
    out = {
        "model": model_name,
        "fitted": dt.date.today().isoformat(),
        "fitted_on": f"datasets/eval/need-results, hybrid top {TOP_K}, judged pairs, "
                     f"target grade ≥ {RELEVANT}",
        "method": "logistic regression (scikit-learn, C=1) on standardised features, "
                  f"clipped to their {CLIP_PERCENTILES} percentiles; "
                  f"cross-validated by need, GroupKFold {FOLDS}; thresholds on out-of-fold "
                  f"probabilities, Wilson lower bound (z={WILSON_Z}) ≥ target",
        "features": list(FEATURES),
        "feature_definitions": DEFINITIONS,
        "low": fitted.low.round(6).tolist(),
        "high": fitted.high.round(6).tolist(),
        "mean": scaler.mean_.round(6).tolist(),
        "scale": scaler.scale_.round(6).tolist(),
        "coefficients": model.coef_[0].round(6).tolist(),
        "intercept": round(float(model.intercept_[0]), 6),
        "thresholds": {k: round(v, 4) for k, v in thresholds.items()},
        "target_precision": TARGET_PRECISION,
        "cv": cv,
    }
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n",
                              encoding="utf-8")
    print(f"{len(y)} judged pairs in the top {TOP_K} of {len(set(groups))} needs, "
          f"{int(y.sum())} at grade ≥ {RELEVANT}; model {model_name}")
    print("coefficients (standardised):",
          dict(zip(FEATURES, out["coefficients"], strict=True)), "intercept", out["intercept"])
    print("thresholds (fitted on all):", out["thresholds"])
    print(f"cross-validated: Brier {cv['brier']} (base rate {cv['brier_base_rate']})")
    for label, row in cv["labels"].items():
        print(f"  {label}: {row['pairs']} pairs, precision {row['precision']}, "
              f"recall {row['recall']}")
    print("  reliability: bin, pairs, mean p, observed")
    for row in cv["reliability"]:
        print(f"    {row['bin']} {row['pairs']:>5} {row['mean_probability']:.3f} "
              f"{row['observed']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
