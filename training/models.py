"""The two fitted model kinds (LR, XGBoost) and how they are trained."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

KINDS = ("lr", "xgboost")
XGB_PARAMS = dict(max_depth=3, subsample=0.8, colsample_bytree=0.8, min_child_weight=10.0, reg_lambda=1.0,
                  tree_method="hist")


def learning_rate(trees: int) -> float:
    """0.05 at 200 trees; fewer trees take proportionally larger steps (at most 0.3)."""
    return min(0.3, 0.05 * 200 / max(trees, 1))


def sample_weights(kind: str, groups) -> np.ndarray:
    """Row weights that give every training ranking the same say.

    lr: per ranking, positives share weight 1/2 and negatives share 1/2.
    xgboost: per ranking, every row weighs 1 / rows.
    Scaled to mean 1.
    """
    ws = []
    for g in groups:
        n, p = len(g.y), float(np.sum(g.y))
        if kind == "lr":
            ws.append(np.where(g.y > 0, 0.5 / max(p, 1.0), 0.5 / max(n - p, 1.0)))
        else:
            ws.append(np.full(n, 1.0 / n))
    w = np.concatenate(ws) if ws else np.zeros(0)
    return w * (len(w) / w.sum()) if len(w) else w


class OneClass(Exception):
    """The training labels have a single class: nothing to fit."""


def fit(kind: str, X: np.ndarray, y: np.ndarray, *, weights=None, trees: int = 200, seed: int = 0,
        threads: int = 2):
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0 or y.min() == y.max():
        raise OneClass(f"{len(y)} rows, positives={int(y.sum())}")
    if kind == "lr":
        model = Pipeline([("scale", StandardScaler()),
                          ("lr", LogisticRegression(C=1.0, max_iter=5000))])
        model.fit(X, y, lr__sample_weight=weights)
        return model
    if kind == "xgboost":
        import xgboost as xgb

        model = xgb.XGBClassifier(n_estimators=trees, objective="binary:logistic", random_state=seed,
                                  n_jobs=threads, eval_metric="logloss", learning_rate=learning_rate(trees),
                                  **XGB_PARAMS)
        model.fit(X, y, sample_weight=weights)
        return model
    raise ValueError(kind)


def score(model, X: np.ndarray) -> np.ndarray:
    if len(X) == 0:
        return np.zeros(0)
    return model.predict_proba(X)[:, 1]
