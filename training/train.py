#!/usr/bin/python3
"""Offline recommender pipeline: temporal-split evaluation, model export, registry.

    train.py --data DIR --out OUT [--quick] [--cuts 2023-01-01,...] [--register MODELS]
             [--report-dir DIR]
    train.py --logs DIR --out OUT [--quick] [--register MODELS] [--manifests MODELS]

Dataset mode, per evaluation cut T (default: the last three cuts 365 days apart
that leave 365 days of labels, see data.default_cuts):

* every model ranks the same candidates of the subjects evaluated at T;
* lr and xgboost are fitted on groups from training cuts T - 365 - k * step
  (k = 0 .. train_cuts - 1). A training cut's labels end at or before T, so no
  row from day >= T reaches a model evaluated at T;
* metrics per cut, then the plain mean over cuts (users: summed over cuts).

The models exported are those fitted for the latest evaluation cut. They are
candidates (OUT/models/<source>/<kind>/); one becomes the served model
(REGISTRY/<source>/, REGISTRY = --register DIR, else OUT/models) only through
the promotion gate (gate.py): it must beat the model serving before this run
(else the best baseline) by more than its noise across the cuts. The decisions
go to REGISTRY/gate.json (and OUT/gate.json) and the report. See FEATURES.md
for every definition.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from artifacts import hand_tuned_doc, install, write_json  # noqa: E402
from data import LABEL_DAYS, default_cuts, iso_of, load_dataset, parse_cuts  # noqa: E402
from features import (CANDIDATES_PER_GENERATOR, OUTPUT_MEANING, SOURCES, Cut,  # noqa: E402
                      baseline_scores, build_groups, feature_defaults, feature_names)
import gate as G  # noqa: E402
import logs  # noqa: E402
from metrics import auc, evaluate_group  # noqa: E402
import models as M  # noqa: E402
import progress  # noqa: E402
from progress import log  # noqa: E402

MODELS = ("popularity", "recent_popularity", "hand_tuned", "lr", "xgboost")


def training_cuts(T: int, n: int, step: float, min_day: int) -> list[int]:
    """T - 365 - round(k * step) for k < n, keeping cuts with at least 365 days of history.

    With the default step 365/4 the training cuts of yearly evaluation cuts fall on
    one shared grid (and an evaluation cut is a training cut of the next one), so
    each cut date is built once.
    """
    out = [T - LABEL_DAYS - int(math.floor(k * step + 0.5)) for k in range(n)]
    return sorted(c for c in out if c - min_day >= 365)


def rows_per_ranking(groups) -> dict:
    """Median and maximum candidates per ranking (what a server scores per request)."""
    n = [len(g.items) for g in groups]
    return {"rows_per_ranking_median": float(np.median(n)) if n else 0.0,
            "rows_per_ranking_max": int(max(n)) if n else 0}


def stack(groups):
    if not groups:
        return np.zeros((0, 0)), np.zeros(0)
    return np.vstack([g.X for g in groups]), np.concatenate([g.y for g in groups])


def evaluate(source, groups, scorer):
    nd, rc = [], []
    all_s, all_y = [], []
    for g in groups:
        s = scorer(g.X)
        a, b = evaluate_group(s, g.items, g.y, g.n_pos, source)
        nd.append(a)
        rc.append(b)
        all_s.append(s)
        all_y.append(g.y)
    res = {"ndcg10": float(np.mean(nd)) if nd else 0.0, "recall10": float(np.mean(rc)) if rc else 0.0,
           "users": len(groups)}
    res["auc"] = auc(np.concatenate(all_s), np.concatenate(all_y)) if all_s else None
    return res


def run_dataset(args) -> None:
    t_start = time.time()
    ds = load_dataset(args.data)
    lo, hi = ds.day_range()
    cuts = parse_cuts(args.cuts) if args.cuts else default_cuts(ds, args.n_cuts)
    for T in cuts:
        if T + LABEL_DAYS > hi + 1:
            log(f"warning: cut {iso_of(T)} has fewer than {LABEL_DAYS} days of labels")
    n_train = args.train_cuts if args.train_cuts is not None else (4 if args.quick else 16)
    trees = args.trees if args.trees is not None else (50 if args.quick else 200)
    max_subjects = args.max_subjects if args.max_subjects is not None else (150 if args.quick else None)
    sources = args.sources.split(",") if args.sources else list(SOURCES)
    k = args.candidates_per_generator
    plan = {T: training_cuts(T, n_train, args.train_step, lo) for T in cuts}
    dates = sorted(set(cuts) | {c for tc in plan.values() for c in tc})
    log(f"dataset {ds.name}: {ds.n_users} users, {ds.n_channels} channels, days {iso_of(lo)}..{iso_of(hi)}")
    log(f"eval cuts {[iso_of(c) for c in cuts]}; {len(dates)} cut dates in all; trees={trees}; "
        f"candidates per generator={k}")

    # groups per (date, source); a Cut is dropped once its groups are built
    groups: dict[tuple[int, str], list] = {}
    stats: dict[tuple[int, str], dict] = {}
    latest_cut = None
    for d in dates:
        t0 = time.time()
        cut = Cut(ds, d, k=k)
        for src in sources:
            g, st = build_groups(cut, src, max_subjects=max_subjects, seed=args.seed)
            st.update(rows_per_ranking(g))
            groups[(d, src)], stats[(d, src)] = g, st
        if d == cuts[-1]:
            latest_cut = cut
        log(f"  cut {iso_of(d)}: " + ", ".join(f"{s}={stats[(d, s)]['subjects']}" for s in sources)
            + f" ({time.time() - t0:.1f}s)")

    by_cut: dict = {"dataset": ds.name, "cuts": [], "protocol": {
        "label_days": LABEL_DAYS, "candidates_per_generator": k, "training_cuts_per_eval_cut": n_train,
        "training_cut_step_days": args.train_step,
        "xgboost": {"n_estimators": trees, "learning_rate": M.learning_rate(trees), **M.XGB_PARAMS,
                    "sample_weight": "1/rows per training ranking"},
        "lr": "StandardScaler + LogisticRegression(C=1.0); per training ranking positives and negatives "
              "each weigh 1/2",
        "training_rankings": "rankings of the training cuts with at least one positive among the candidates",
        "max_subjects_per_cut": max_subjects}}
    # the serving slot, read before this run writes anything
    registry = args.register or os.path.join(args.out, "models")
    protocol = eval_protocol(args, k, max_subjects)
    serving: dict[str, dict | None] = {}
    scorers: dict[str, object] = {}
    for src in sources:
        info = G.read_serving(registry, src)
        if info is not None and info.get("comparable") is not False:
            scorer, why = G.serving_scorer(info, feature_names(src))
            if scorer is None:
                info.update(comparable=False, why=why)
            else:
                scorers[src] = scorer
        serving[src] = info
        if info is not None:
            log(f"serving {src}: {info.get('name')} {info.get('version')} in {info['dir']}"
                + ("" if src in scorers else f" (not comparable: {info.get('why')})"))
    fitted: dict[tuple[str, str], object] = {}
    notes: dict[str, list] = {s: [] for s in sources}
    serving_rescored: dict[str, list] = {s: [] for s in sources}
    per_cut: dict[str, dict[str, list]] = {s: {m: [] for m in MODELS} for s in sources}
    for T in cuts:
        entry = {"cut": iso_of(T), "training_cuts": [iso_of(c) for c in plan[T]], "sources": {}}
        for src in sources:
            t0 = time.time()
            train_groups = [g for c in plan[T] for g in groups[(c, src)] if g.y.sum() > 0]
            Xtr, ytr = stack(train_groups)
            ev = groups[(T, src)]
            res = {}
            for m in ("popularity", "recent_popularity", "hand_tuned"):
                res[m] = evaluate(src, ev, lambda X, m=m: baseline_scores(src, m, X))
            for kind in M.KINDS:
                try:
                    model = M.fit(kind, Xtr, ytr, weights=M.sample_weights(kind, train_groups), trees=trees,
                                  seed=args.seed, threads=args.threads)
                    res[kind] = evaluate(src, ev, lambda X, model=model: M.score(model, X))
                    if T == cuts[-1]:
                        fitted[(src, kind)] = (model, Xtr)
                except M.OneClass as e:
                    res[kind] = evaluate(src, ev, lambda X: baseline_scores(src, "hand_tuned", X))
                    res[kind]["fallback"] = f"hand_tuned (training data has one class: {e})"
                    notes[src].append(f"{iso_of(T)} {kind}: fell back to hand_tuned ({e})")
                res[kind]["train_rows"] = int(len(ytr))
                res[kind]["train_positives"] = int(ytr.sum()) if len(ytr) else 0
            for m in MODELS:
                per_cut[src][m].append(res[m])
            entry["sources"][src] = {"stats": stats[(T, src)], "models": res}
            if src in scorers:
                serving_rescored[src].append(evaluate(src, ev, scorers[src]))
                entry["sources"][src]["serving_rescored"] = serving_rescored[src][-1]
            log(f"  eval {iso_of(T)} {src}: " + " ".join(f"{m}={res[m]['ndcg10']:.3f}" for m in MODELS)
                + f" (users {res['lr']['users']}, train rows {len(ytr)}, {time.time() - t0:.1f}s)")
        by_cut["cuts"].append(entry)

    metrics = {"dataset": ds.name, "cuts": [iso_of(c) for c in cuts], "sources": {}, "spread": {}}
    for src in sources:
        metrics["sources"][src] = {}
        metrics["spread"][src] = {}
        for m in MODELS:
            rows = per_cut[src][m]
            metrics["sources"][src][m] = {
                "ndcg10": round(float(np.mean([r["ndcg10"] for r in rows])), 6),
                "recall10": round(float(np.mean([r["recall10"] for r in rows])), 6),
                "users": int(sum(r["users"] for r in rows)),
            }
            metrics["spread"][src][m] = G.spread(r["ndcg10"] for r in rows)
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), metrics)
    by_cut["notes"] = {s: n for s, n in notes.items() if n}
    by_cut["notes_general"] = [
        "users = number of rankings evaluated; archive has one ranking (the team's channel list) per cut",
        "send_time: recall10 holds the hit rate of the top-ranked hour within +-1 hour (circular)",
        "metrics.json averages the per-cut means with equal weight per cut; users are summed over cuts",
    ]
    write_json(os.path.join(args.out, "metrics_by_cut.json"), by_cut)

    if args.eval_sets:
        # The rankings every model was just evaluated on, for a hand promotion's gate in the Worker.
        from export_eval_set import write_eval_set

        for src in sources:
            path = os.path.join(args.eval_sets, f"{src}.eval-set.ndjson")
            n = write_eval_set(path, ds.name, src, [(iso_of(T), groups[(T, src)]) for T in cuts])
            log(f"eval set {src}: {n} rankings -> {path}")

    # artifacts: embeddings and models of the latest cut
    T = cuts[-1]
    version = args.version or f"{ds.name}-{iso_of(T)}"
    emb_path = os.path.join(args.out, "embeddings.json")
    write_embeddings(emb_path, ds, latest_cut)
    exported = export_models(args, ds.name, version, T, fitted, metrics, per_cut, plan[T], sources,
                             protocol=protocol, registry=registry, serving=serving)

    # the promotion gate: decide per source, then register the accepted ones
    gate_doc = run_gate(args, ds.name, cuts, sources, per_cut, serving, serving_rescored, exported, protocol,
                        registry)
    for src in sources:
        d = gate_doc["sources"][src]
        if d["decision"] == "register":
            install(args.out, registry, src, d["registered"])
        log(f"gate {src}: {d['decision']} {d['registered'] or ''}: {d['reason']}")
    G.write_gate(os.path.join(args.out, "gate.json"), gate_doc)
    G.write_gate(os.path.join(registry, "gate.json"), G.merged_with_earlier(os.path.join(registry, "gate.json"),
                                                                           gate_doc))
    import report

    report.write_report(args.out, metrics, by_cut, runtime_s=time.time() - t_start, quick=args.quick,
                        exported=exported, gate=gate_doc)
    if args.report_dir:
        os.makedirs(args.report_dir, exist_ok=True)
        for f in os.listdir(args.out):
            if f.endswith((".json", ".md", ".png")) and f != "embeddings.json":
                shutil.copy2(os.path.join(args.out, f), os.path.join(args.report_dir, f))
    if args.register and any(d["decision"] == "register" for d in gate_doc["sources"].values()):
        os.makedirs(os.path.join(args.register, "embeddings"), exist_ok=True)
        shutil.copy2(emb_path, os.path.join(args.register, "embeddings", f"{ds.name}.json"))
    log(f"done in {time.time() - t_start:.1f}s -> {args.out}")


def eval_protocol(args, k, max_subjects) -> dict:
    """What decides which rankings a cut evaluates: recorded per-cut numbers are comparable only
    between runs with the same protocol (and dataset and cuts)."""
    return {"label_days": LABEL_DAYS, "candidates_per_generator": k, "max_subjects": max_subjects,
            "seed": args.seed}


def run_gate(args, dataset, cuts, sources, per_cut, serving, serving_rescored, exported, protocol,
             registry) -> dict:
    """gate.json: the gate's decision per source (rule and numbers in gate.py)."""
    doc = {"dataset": dataset, "registry": registry, "eval_cuts": [iso_of(c) for c in cuts],
           "rule": G.RULE, "k": args.gate_k, "min_margin": args.gate_min_margin, "min_cuts": args.gate_min_cuts,
           "eval_protocol": protocol, "sources": {}}
    for src in sources:
        # cuts at which the source has rankings (a cut without any gives every model 0)
        usable = [i for i, r in enumerate(per_cut[src]["lr"]) if r["users"] > 0]
        cut_iso = [iso_of(cuts[i]) for i in usable]
        series = {m: [per_cut[src][m][i]["ndcg10"] for i in usable] for m in MODELS}
        for kind in M.KINDS:
            if not exported.get(src, {}).get(kind):
                series.pop(kind, None)
        fitted_everywhere = {kind: all("fallback" not in per_cut[src][kind][i] for i in range(len(cuts)))
                             for kind in M.KINDS}
        info = serving[src]
        sv = None
        if info is not None:
            sv = G.public(info)
            if info.get("comparable") is not False and serving_rescored[src]:
                recorded = G.recorded_per_cut(info, dataset, cut_iso, protocol)
                if recorded is not None:
                    sv.update(comparable=True, how="recorded in its manifest by the run that produced it",
                              per_cut=recorded, saw_labels=[])
                else:
                    sv.update(comparable=True, how="re-scored on this run's rankings",
                              per_cut=[serving_rescored[src][i]["ndcg10"] for i in usable],
                              saw_labels=G.saw_labels(info, dataset, dict(zip(cut_iso, [cuts[i] for i in usable])),
                                                      LABEL_DAYS))
                    if sv["saw_labels"]:
                        sv["note"] = ("the serving model was trained on the label year of these cuts, which flatters "
                                      "it there: the gate errs on keeping it")
        doc["sources"][src] = G.decide(src, cut_iso, series, serving=sv, fitted_everywhere=fitted_everywhere,
                                       k=args.gate_k, min_margin=args.gate_min_margin, min_cuts=args.gate_min_cuts)
    return doc


def write_embeddings(path, ds, cut) -> None:
    e = cut.emb

    def vec(v):
        return [float(x) + 0.0 for x in np.round(v, 4)]

    doc = {
        "dataset": ds.name,
        "cut": iso_of(cut.T),
        "dims": int(e.dims),
        "note": "unit-length rows of a truncated SVD of log1p(all-time commits) user x channel before cut; "
                "features use only cosines of these vectors (FEATURES.md, Embeddings)",
        "users": {ds.user_ids[i]: vec(e.users[i]) for i in np.flatnonzero(e.has_user)},
        "channels": {ds.channel_ids[i]: vec(e.channels[i]) for i in np.flatnonzero(e.has_channel)},
    }
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))


def export_models(args, dataset, version, T, fitted, metrics, per_cut, train_cuts, sources, *, protocol=None,
                  registry=None, serving=None) -> dict:
    """Write OUT/models/<source>/<kind>/ (the candidates) for the models fitted for the latest cut.

    OUT/models/<source>/hand_tuned.json is written too, except when OUT/models is the serving
    registry and a model serves there (the gate writes it with the model it accepts)."""
    from feature_stats import feature_stats
    from onnx_export import write_model

    exported: dict[str, dict] = {}
    for src in sources:
        exported[src] = {}
        base = os.path.join(args.out, "models", src)
        os.makedirs(base, exist_ok=True)
        own_slot = registry is not None and os.path.abspath(registry) == os.path.abspath(os.path.join(args.out, "models"))
        if not (own_slot and (serving or {}).get(src)):
            write_json(os.path.join(base, "hand_tuned.json"), hand_tuned_doc(src))
        for kind in M.KINDS:
            if (src, kind) not in fitted:
                exported[src][kind] = None
                continue
            model, Xtr = fitted[(src, kind)]
            rs = np.random.RandomState(args.seed)
            sample = Xtr[rs.choice(len(Xtr), min(64, len(Xtr)), replace=False)]
            m = metrics["sources"][src][kind]
            last = per_cut[src][kind][-1]
            manifest = write_model(
                os.path.join(base, kind), kind=kind, model=model, source=src, name=f"{src}-{kind}",
                version=version, features=feature_defaults(src), output_meaning=OUTPUT_MEANING[src],
                metrics={"dataset": dataset, "eval_cuts": metrics["cuts"], "ndcg10": m["ndcg10"],
                         "recall10": m["recall10"], "users": m["users"],
                         "latest_cut": {"cut": iso_of(T), "ndcg10": last["ndcg10"], "recall10": last["recall10"],
                                        "users": last["users"], "auc": last.get("auc")},
                         "trained_on_cuts": [iso_of(c) for c in train_cuts], "train_rows": int(len(Xtr)),
                         "candidates_per_generator": args.candidates_per_generator,
                         "per_cut": {c: round(float(r["ndcg10"]), 6)
                                     for c, r in zip(metrics["cuts"], per_cut[src][kind])},
                         "eval_protocol": protocol},
                X_sample=sample, feature_stats=feature_stats(Xtr, feature_names(src)))
            exported[src][kind] = manifest["version"]
    return exported


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="dataset directory (channels/activity/interactions/hours .csv.gz)")
    p.add_argument("--logs", help="directory of NDJSON served-item logs (train from logs instead)")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="fewer training cuts and trees, subsampled users")
    p.add_argument("--cuts", help="comma-separated evaluation cut dates YYYY-MM-DD (overrides the default)")
    p.add_argument("--n-cuts", type=int, default=3, help="number of default yearly evaluation cuts")
    p.add_argument("--train-cuts", type=int, default=None, help="training cuts per evaluation cut (16; quick 4)")
    p.add_argument("--train-step", type=float, default=LABEL_DAYS / 4, help="days between training cuts (91.25)")
    p.add_argument("--candidates-per-generator", type=int, default=CANDIDATES_PER_GENERATOR,
                   help=f"K: items each candidate generator returns ({CANDIDATES_PER_GENERATOR}, as the server; "
                        "other values are for offline experiments)")
    p.add_argument("--trees", type=int, default=None, help="xgboost trees (200; quick 50)")
    p.add_argument("--max-subjects", type=int, default=None, help="subjects per cut and source (all; quick 150)")
    p.add_argument("--sources", help="comma-separated subset of sources")
    p.add_argument("--register", help="registry directory (e.g. models): the serving slot the gate guards "
                   "(default OUT/models); an accepted model is copied to DIR/<source>/")
    p.add_argument("--gate-k", type=float, default=G.DEFAULT_K,
                   help=f"gate: the improvement must exceed k x its std across cuts ({G.DEFAULT_K})")
    p.add_argument("--gate-min-margin", type=float, default=G.DEFAULT_MIN_MARGIN,
                   help=f"gate: and at least this NDCG@10 ({G.DEFAULT_MIN_MARGIN})")
    p.add_argument("--gate-min-cuts", type=int, default=G.DEFAULT_MIN_CUTS,
                   help=f"gate: cuts with rankings needed to register anything ({G.DEFAULT_MIN_CUTS})")
    p.add_argument("--manifests", help="logs mode: read feature lists from DIR/<source>/manifest.json")
    p.add_argument("--report-dir", help="also copy metrics, report and plots here")
    p.add_argument("--eval-sets", help="also write DIR/<source>.eval-set.ndjson: the held-out rankings of the "
                   "evaluation cuts, for the Worker's promotion gate (export_eval_set.py)")
    p.add_argument("--version", help="dataset mode: the exported models' version (default <dataset>-<latest cut>); "
                   "npm run retrain names each run's candidates apart, as the registry's versions are immutable")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    progress.QUIET = args.quiet
    if bool(args.data) == bool(args.logs):
        p.error("give exactly one of --data and --logs")
    if args.candidates_per_generator < 1:
        p.error("--candidates-per-generator must be at least 1")
    if args.logs:
        logs.run(args)
    else:
        run_dataset(args)


if __name__ == "__main__":
    main()
