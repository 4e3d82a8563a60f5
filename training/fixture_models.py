"""Tiny fixture models for the Worker's ONNX parity test and the scoring bench.

Writes test/fixtures/models/lr/ (StandardScaler + LogisticRegression) and
test/fixtures/models/xgboost/ (200 trees, depth 6), both trained on the same
synthetic data with a fixed seed. Their parity.json rows include the edge cases
the runtime must agree on: values exactly at (and one float32 ULP around) split
thresholds, missing values (NaN, written as null) and large magnitudes.

Run: /usr/bin/python3 training/fixture_models.py
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from onnx_export import PARITY_ROWS, write_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "models")
SEED = 20261124
N_TRAIN = 6000

# Made-up "people you may know" features; only their order and defaults matter.
FEATURES = [
    {"name": "shared_channels", "default": 0.0},
    {"name": "shared_teams", "default": 0.0},
    {"name": "messages_30d", "default": 0.0},
    {"name": "days_since_contact", "default": 365.0},
    {"name": "same_domain", "default": 0.0},
    {"name": "mutual_contacts", "default": 0.0},
    {"name": "tenure_days", "default": 30.0},
    {"name": "timezone_gap_h", "default": 0.0},
    {"name": "is_guest", "default": 0.0},
    {"name": "profile_completeness", "default": 0.5},
]


def synthetic(rs: np.random.RandomState, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.column_stack(
        [
            rs.poisson(3, n),
            rs.poisson(1, n),
            rs.gamma(1.0, 40.0, n),
            rs.exponential(60.0, n),
            rs.binomial(1, 0.4, n),
            rs.poisson(5, n),
            rs.uniform(1, 2000, n),
            rs.randint(0, 13, n),
            rs.binomial(1, 0.1, n),
            rs.beta(2, 2, n),
        ]
    ).astype(np.float64)
    logit = (
        0.35 * x[:, 0]
        + 0.5 * x[:, 1]
        + 0.8 * np.log1p(x[:, 2])
        - 0.02 * x[:, 3]
        + 0.9 * x[:, 4]
        + 0.15 * np.sqrt(x[:, 5])
        - 0.1 * x[:, 7]
        - 1.2 * x[:, 8]
        + 1.5 * (x[:, 9] - 0.5)
        + 0.6 * (x[:, 0] > 4) * (x[:, 4] == 1)
        - 2.5
    )
    y = (rs.rand(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return x.astype(np.float32), y


def threshold_rows(booster, base: np.ndarray, count: int) -> np.ndarray:
    """Rows with one feature set exactly to a split threshold, or one ULP below / above it."""
    doc = json.loads(bytes(booster.save_raw(raw_format="json")).decode("utf-8"))
    splits = []
    for tree in doc["learner"]["gradient_booster"]["model"]["trees"][:count]:
        if tree["left_children"][0] != -1:
            splits.append((int(tree["split_indices"][0]), np.float32(tree["split_conditions"][0])))
    rows = []
    for i, (fid, thr) in enumerate(splits[:count]):
        row = base[i % len(base)].copy()
        row[fid] = (thr, np.nextafter(thr, np.float32(-np.inf)), np.nextafter(thr, np.float32(np.inf)))[i % 3]
        rows.append(row)
    return np.asarray(rows, dtype=np.float32)


def main() -> None:
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rs = np.random.RandomState(SEED)
    x, y = synthetic(rs, N_TRAIN)
    x_test, y_test = synthetic(rs, 2000)

    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    lr_rows = np.vstack([x_test[:56], x_test[56:64] * 50]).astype(np.float32)  # the last 8 far out of range
    write_model(
        os.path.join(OUT, "lr"),
        kind="lr",
        model=lr,
        source="fixtures",
        name="lr",
        version="fixture-1",
        features=FEATURES,
        output_meaning="probability the candidate is accepted (synthetic fixture)",
        metrics={"auc": round(float(roc_auc_score(y_test, lr.predict_proba(x_test)[:, 1])), 4), "rows": N_TRAIN},
        X_sample=lr_rows,
    )

    # 10% missing values in training so trees learn both default directions.
    x_holes = x.copy()
    x_holes[rs.rand(*x.shape) < 0.1] = np.nan
    booster_model = xgb.XGBClassifier(
        n_estimators=200,
        max_depth=6,
        learning_rate=0.1,
        tree_method="hist",
        n_jobs=1,
        random_state=SEED % 2**31,
    ).fit(x_holes, y)
    at_thresholds = threshold_rows(booster_model.get_booster(), x_test, 24)
    with_missing = x_test[100:124].copy()
    with_missing[rs.rand(*with_missing.shape) < 0.3] = np.nan
    with_missing[0, :] = np.nan
    xgb_rows = np.vstack([x_test[:16], at_thresholds, with_missing])[:PARITY_ROWS]
    write_model(
        os.path.join(OUT, "xgboost"),
        kind="xgboost",
        model=booster_model,
        source="fixtures",
        name="xgboost",
        version="fixture-1",
        features=FEATURES,
        output_meaning="probability the candidate is accepted (synthetic fixture)",
        metrics={
            "auc": round(float(roc_auc_score(y_test, booster_model.predict_proba(x_test)[:, 1])), 4),
            "rows": N_TRAIN,
            "trees": 200,
            "max_depth": 6,
        },
        X_sample=xgb_rows,
    )
    for kind in ("lr", "xgboost"):
        size = os.path.getsize(os.path.join(OUT, kind, "model.onnx"))
        print(f"{kind}: {os.path.join(OUT, kind)} model.onnx {size} bytes")


if __name__ == "__main__":
    main()
