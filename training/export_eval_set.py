#!/usr/bin/python3
"""Evaluation sets for the Worker's promotion gate.

    export_eval_set.py --data datasets/rails-collab --out DIR [--sources a,b] [--cuts YYYY-MM-DD,...]
                       [--n-cuts 3] [--max-subjects N] [--seed 0]

Writes DIR/<source>.eval-set.ndjson: the held-out rankings of each evaluation
cut (the same cuts, candidates, features and labels train.py evaluates every
model on: ``build_groups`` at the cut, labels from the year after it), in the
format the Worker takes at ``PUT /v1/admin/models/<source>/eval-set``
(src/recommend/eval-set.ts):

    {"format": "eval-set/1", "source": ..., "dataset": ..., "features": [names]}
    {"cut": "YYYY-MM-DD", "query": <subject>, "positives": n_pos, "items": [...], "labels": [0|1...], "x": [[...]]}

``positives`` is every positive of the subject (also those candidate
generation missed: the IDCG of metrics.py); feature values are the float64
values train.py scores, exactly (the Worker's baselines then rank exactly as
train.py's; the models read float32, as when serving). train.py writes the
same files for the cuts it evaluates with ``--eval-sets DIR``.

The Worker then scores an uploaded model, the serving one and the baselines
on these rankings and applies gate.py's rule (POST /v1/admin/models/<source>/promote).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from data import default_cuts, iso_of, load_dataset, parse_cuts  # noqa: E402
from features import CANDIDATES_PER_GENERATOR, SOURCES, Cut, build_groups, feature_names  # noqa: E402

FORMAT = "eval-set/1"


def _num(v) -> float | None:
    # Exact (shortest repr of the float64): rounding would move near-ties of rule scores (sums of logs
    # that are equal in exact arithmetic) to the other side, and the Worker's NDCG away from train.py's.
    x = float(v)
    return x if math.isfinite(x) else None


def _item(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return str(v)


def eval_set_lines(dataset: str, source: str, cut_groups) -> list[str]:
    """NDJSON lines: the header, then one line per ranking of every (iso_cut, groups) pair."""
    lines = [json.dumps({"format": FORMAT, "source": source, "dataset": dataset,
                         "features": feature_names(source)})]
    for iso, groups in cut_groups:
        for g in groups:
            if len(g.items) == 0:
                continue
            lines.append(json.dumps({
                "cut": iso, "query": int(g.subject), "positives": int(g.n_pos),
                "items": [_item(i) for i in g.items], "labels": [1 if y > 0 else 0 for y in g.y],
                "x": [[_num(v) for v in row] for row in g.X],
            }, separators=(",", ":"), allow_nan=False))
    return lines


def write_eval_set(path: str, dataset: str, source: str, cut_groups) -> int:
    """Writes the eval set; answers the number of rankings."""
    lines = eval_set_lines(dataset, source, cut_groups)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines) - 1


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sources", help="comma-separated subset of sources")
    p.add_argument("--cuts", help="comma-separated evaluation cut dates YYYY-MM-DD (default: train.py's)")
    p.add_argument("--n-cuts", type=int, default=3)
    p.add_argument("--max-subjects", type=int, default=None, help="subjects per cut and source (all)")
    p.add_argument("--candidates-per-generator", type=int, default=CANDIDATES_PER_GENERATOR)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    ds = load_dataset(args.data)
    cuts = parse_cuts(args.cuts) if args.cuts else default_cuts(ds, args.n_cuts)
    sources = args.sources.split(",") if args.sources else list(SOURCES)
    per_source: dict[str, list] = {s: [] for s in sources}
    for T in cuts:
        cut = Cut(ds, T, k=args.candidates_per_generator)
        for src in sources:
            groups, _ = build_groups(cut, src, max_subjects=args.max_subjects, seed=args.seed)
            per_source[src].append((iso_of(T), groups))
    for src in sources:
        path = os.path.join(args.out, f"{src}.eval-set.ndjson")
        n = write_eval_set(path, ds.name, src, per_source[src])
        print(f"{src}: {n} rankings over {len(cuts)} cuts -> {path} ({os.path.getsize(path)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
