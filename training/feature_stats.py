"""Training-window feature statistics for model manifests (``feature_stats``).

Each model's manifest carries, per feature, the statistics of the rows it was
trained on: ``{"mean", "std", "min", "max", "missing_rate"}`` (std: population,
over the finite values; missing_rate: the share of rows whose value is not a
finite number; min/max/mean/std over the finite values). The Worker compares
the served features with them (src/recommend/feature-health.ts: drift =
|served mean - training mean| / training std, exposed on /metrics).

``train.py`` writes them for every model it exports (onnx_export.write_model
``feature_stats=``). For models shipped before that, this script recomputes
them from the dataset with the same feature code and the same training rows
(the manifest's ``trained_on_cuts`` and candidates per generator; only the
rankings with a positive, as train.py fits on) and adds them to the manifest,
leaving every other field, the weights and parity.json as they are:

    python3 training/feature_stats.py --data datasets/rails-collab --models models

It checks that it rebuilt as many rows as the manifest's ``train_rows`` and
refuses to patch a model when the counts differ (the feature code or the
dataset is not the one the model was trained on), unless --allow-mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from data import load_dataset, parse_cuts  # noqa: E402
from features import CANDIDATES_PER_GENERATOR, Cut, build_groups, feature_names  # noqa: E402
from progress import log  # noqa: E402


def feature_stats(X, names: list[str]) -> dict[str, dict]:
    """Per column of X (rows x len(names)): mean, std, min, max over the finite values, and missing_rate."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"X must be [N, {len(names)}], got {X.shape}")
    out: dict[str, dict] = {}
    n = X.shape[0]
    for j, name in enumerate(names):
        col = X[:, j]
        ok = np.isfinite(col)
        vals = col[ok]
        missing = float(1.0 - ok.sum() / n) if n else 0.0
        if vals.size == 0:
            out[name] = {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "missing_rate": missing}
            continue
        out[name] = {
            "mean": _r(vals.mean()),
            "std": _r(vals.std()),
            "min": _r(vals.min()),
            "max": _r(vals.max()),
            "missing_rate": _r(missing),
        }
    return out


def _r(x) -> float:
    return float(f"{float(x):.9g}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the dataset the models were trained on")
    p.add_argument("--models", required=True, help="registry directory: DIR/<source>/manifest.json")
    p.add_argument("--sources", help="comma-separated subset")
    p.add_argument("--allow-mismatch", action="store_true", help="patch even when the row count differs")
    p.add_argument("--dry-run", action="store_true", help="print the stats, write nothing")
    args = p.parse_args(argv)

    ds = load_dataset(args.data)
    todo = []
    for source in sorted(os.listdir(args.models)):
        path = os.path.join(args.models, source, "manifest.json")
        if not os.path.isfile(path) or (args.sources and source not in args.sources.split(",")):
            continue
        with open(path) as f:
            manifest = json.load(f)
        metrics = manifest.get("metrics", {})
        cuts = metrics.get("trained_on_cuts")
        if manifest.get("source") != source or not cuts:
            log(f"{source}: no trained_on_cuts in the manifest; skipped")
            continue
        todo.append((path, manifest, parse_cuts(",".join(cuts)),
                     int(metrics.get("candidates_per_generator") or CANDIDATES_PER_GENERATOR)))

    # Every model of one cut date is built from the same Cut: visit the dates once, in order.
    rows: dict[str, list] = {m["source"]: [] for _, m, _, _ in todo}
    dates = sorted({(c, k) for _, _, cuts, k in todo for c in cuts})
    for c, k in dates:
        cut = Cut(ds, c, k=k)
        for _, m, cuts, mk in todo:
            if mk == k and c in cuts:
                groups, _ = build_groups(cut, m["source"])
                rows[m["source"]].extend(g.X for g in groups if g.y.sum() > 0)
        log(f"  cut {c} done")
        del cut

    failed = 0
    for path, manifest, _, _ in todo:
        source = manifest["source"]
        all_names = feature_names(source)
        X = np.vstack(rows[source]) if rows[source] else np.zeros((0, len(all_names)))
        want = manifest.get("metrics", {}).get("train_rows")
        names = [f["name"] for f in manifest["features"]]
        missing_cols = [n for n in names if n not in all_names]
        if missing_cols:
            log(f"{source}: features {missing_cols} are not computed by features.py; skipped")
            failed += 1
            continue
        if want is not None and int(want) != X.shape[0] and not args.allow_mismatch:
            log(f"{source}: rebuilt {X.shape[0]} rows, the manifest says {want} were trained on; not patched")
            failed += 1
            continue
        cols = [all_names.index(n) for n in names]
        stats = feature_stats(X[:, cols], names)
        log(f"{source}: {X.shape[0]} rows (manifest {want})")
        if args.dry_run:
            print(json.dumps({source: stats}, indent=1))
            continue
        manifest["feature_stats"] = stats
        with open(path, "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
