"""Ranking metrics (definitions in FEATURES.md, "Metrics").

A ranking orders a subject's candidates by score, higher first, ties by the
smaller item id. Relevance is binary.

* ndcg_at_k: DCG@k = sum over the first k ranks i (1-based) of rel_i / log2(i + 1);
  IDCG@k is the DCG of an ideal ranking of ALL the subject's positives (also those
  the candidate generation missed), i.e. sum_{i=1..min(k, n_pos)} 1 / log2(i + 1).
* recall_at_k: positives among the first k / all positives.
* circular_hit: send_time only, stored in the recall10 field: 1 if the top-ranked
  hour is within +-1 hour (circular, 23 and 0 are adjacent) of any positive hour.
"""

from __future__ import annotations

import math

import numpy as np


def rank_order(scores, items) -> np.ndarray:
    """Indices into items, best first: score descending, then item ascending."""
    scores = np.asarray(scores, dtype=np.float64)
    items = np.asarray(items)
    return np.lexsort((items, -scores))


def ndcg_at_k(ranked_rel, n_pos: int, k: int = 10) -> float:
    if n_pos <= 0:
        return 0.0
    rel = np.asarray(ranked_rel, dtype=np.float64)[:k]
    dcg = float(sum(r / math.log2(i + 2) for i, r in enumerate(rel)))
    idcg = float(sum(1.0 / math.log2(i + 2) for i in range(min(k, n_pos))))
    return dcg / idcg


def recall_at_k(ranked_rel, n_pos: int, k: int = 10) -> float:
    if n_pos <= 0:
        return 0.0
    return float(np.sum(np.asarray(ranked_rel, dtype=np.float64)[:k])) / n_pos


def circular_distance(a: int, b: int, period: int = 24) -> int:
    d = abs(int(a) - int(b)) % period
    return min(d, period - d)


def circular_hit(top_hour: int, positive_hours, tolerance: int = 1) -> float:
    return 1.0 if any(circular_distance(top_hour, h) <= tolerance for h in positive_hours) else 0.0


def evaluate_group(scores, items, y, n_pos: int, source: str, k: int = 10) -> tuple[float, float]:
    """(ndcg@k, recall@k) for one subject; send_time: (ndcg@k, circular hit of the top hour)."""
    order = rank_order(scores, items)
    rel = np.asarray(y)[order]
    ndcg = ndcg_at_k(rel, n_pos, k)
    if source == "send_time":
        items = np.asarray(items)
        positives = items[np.asarray(y) > 0]
        return ndcg, circular_hit(int(items[order[0]]), positives.tolist())
    return ndcg, recall_at_k(rel, n_pos, k)


def auc(scores, y) -> float | None:
    """ROC AUC over pooled rows (Mann-Whitney, ties count half); None if one class."""
    y = np.asarray(y) > 0
    s = np.asarray(scores, dtype=np.float64)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return None
    from scipy.stats import rankdata

    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
