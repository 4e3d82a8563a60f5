"""The promotion gate: a fitted model replaces the serving one only when it is
better by more than its noise across evaluation cuts.

Every candidate (the fitted ``lr`` and ``xgboost``, the ``hand_tuned`` rule,
``popularity`` and ``recent_popularity``) has one NDCG@10 per evaluation cut
(train.py: at least ``min_cuts`` temporal cuts, each evaluated on the held-out
year after it; lr / xgboost refitted for every cut on earlier data only). The
gate uses the cuts at which the source had at least one ranking.

References, per source:

* ``serving``: the model in the serving slot before this run
  (``REGISTRY/<source>/manifest.json`` + ``model.onnx``; REGISTRY is
  ``--register DIR``, else ``OUT/models``). Its NDCG@10 per cut is, first
  available: the number its own run recorded (``manifest.metrics.per_cut``)
  when that run had this dataset, these cuts and the same evaluation protocol;
  else the serving model re-scored here, on this run's rankings of every cut
  (its ONNX graph evaluated in Python). A re-scored cut whose labels the
  serving model was trained on (same dataset, a training cut's label year
  reaching past the cut) flatters the serving model; it is marked in
  ``saw_labels`` and kept, so the gate errs on keeping the serving model. A
  serving model whose features this run does not compute, or that cannot be
  read, is "not comparable": the gate then compares with the baseline only and
  says so.
* ``best_baseline``: the baseline rule (popularity, recent_popularity,
  hand_tuned) with the highest mean NDCG@10 over the cuts.

The rule. For a candidate c and a reference r with NDCG@10 c_i, r_i at cut i
(i = 1..n): d_i = c_i - r_i, mean improvement D = mean(d_i), noise
S = std(d_i) (sample standard deviation, ddof 1, across cuts). c clears r when

    D > max(k * S, min_margin)        (defaults: k = 1, min_margin = 0.005)

A fitted candidate (lr or xgboost: the only kinds that can be served) is
eligible when it was fitted at every cut (no one-class fallback) and clears
every reference: the serving model (when there is a comparable one) and the
best baseline. Among the eligible, the one with the higher mean NDCG@10 is
registered (lr on a tie); its files are those fitted for the latest cut. With
fewer than ``min_cuts`` usable cuts (default 3) nothing is registered: the
noise is unknown. Otherwise the serving slot is left byte-for-byte untouched
and gate.json says why, with the numbers.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

SERVABLE = ("lr", "xgboost")
BASELINES = ("popularity", "recent_popularity", "hand_tuned")
DEFAULT_K = 1.0
DEFAULT_MIN_MARGIN = 0.005
DEFAULT_MIN_CUTS = 3

RULE = ("per cut i: d_i = ndcg10(candidate, i) - ndcg10(reference, i); D = mean(d_i), S = std(d_i, ddof=1) "
        "over the cuts; the candidate clears the reference when D > max(k * S, min_margin). A fitted candidate "
        "(lr, xgboost) is registered only if it was fitted at every cut and clears the serving model (when "
        "comparable) and the best baseline (highest mean of popularity, recent_popularity, hand_tuned); among "
        "those, the higher mean wins (lr on a tie). Fewer than min_cuts usable cuts: nothing is registered.")


def spread(values) -> dict:
    """Mean, sample std (ddof 1; None for one value), min, max and the values of a per-cut series."""
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "per_cut": []}
    return {"mean": round(float(v.mean()), 6), "std": round(float(v.std(ddof=1)), 6) if len(v) > 1 else None,
            "min": round(float(v.min()), 6), "max": round(float(v.max()), 6),
            "per_cut": [round(float(x), 6) for x in v]}


def compare(candidate, reference, *, k: float = DEFAULT_K, min_margin: float = DEFAULT_MIN_MARGIN) -> dict:
    """The rule for one candidate against one reference, both per-cut NDCG@10 on the same cuts."""
    c = np.asarray(list(candidate), dtype=np.float64)
    r = np.asarray(list(reference), dtype=np.float64)
    if c.shape != r.shape or len(c) == 0:
        raise ValueError(f"per-cut series differ in length: {len(c)} vs {len(r)}")
    d = c - r
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if len(d) > 1 else math.inf
    required = max(k * sd, min_margin)
    ref_mean = float(r.mean())
    return {"improvement": round(mean, 6),
            "relative": round(mean / ref_mean, 6) if ref_mean > 0 else None,
            "improvement_per_cut": [round(float(x), 6) for x in d],
            "improvement_std": round(sd, 6) if math.isfinite(sd) else None,
            "required": round(required, 6) if math.isfinite(required) else None,
            "passes": bool(mean > required)}


def best_baseline(per_cut: dict) -> str:
    """The baseline with the highest mean (first of BASELINES on a tie)."""
    return max(BASELINES, key=lambda m: (float(np.mean(per_cut[m])), -BASELINES.index(m)))


def decide(source: str, cuts: list, per_cut: dict, *, serving: dict | None = None, fitted_everywhere=None,
           k: float = DEFAULT_K, min_margin: float = DEFAULT_MIN_MARGIN, min_cuts: int = DEFAULT_MIN_CUTS) -> dict:
    """The gate's decision for one source.

    ``cuts``: the cut dates of the series; ``per_cut``: {model: [ndcg10 per cut]} for every
    baseline and fitted kind present; ``serving``: None (nothing serving) or a dict with at least
    ``present`` and, when comparable, ``per_cut`` (same cuts) and ``comparable`` True;
    ``fitted_everywhere``: {kind: bool}, False where a kind fell back at some cut.
    Returns the gate.json entry for the source.
    """
    fitted_everywhere = fitted_everywhere or {}
    out = {"source": source, "cuts": list(cuts), "rule": {"k": k, "min_margin": min_margin, "min_cuts": min_cuts},
           "candidates": {m: spread(v) for m, v in per_cut.items()}}
    serving = serving or {"present": False}
    out["serving_before"] = {key: v for key, v in serving.items() if key != "per_cut"}
    if serving.get("comparable"):
        out["candidates"]["serving"] = spread(serving["per_cut"])
    if len(cuts) < min_cuts:
        out.update(decision="keep", registered=None, comparisons={},
                   reason=f"only {len(cuts)} cut(s) with rankings (the gate needs {min_cuts} to measure noise); "
                          "the serving slot is left as it is")
        return out
    base = best_baseline(per_cut)
    refs = {f"best_baseline:{base}": per_cut[base]}
    if serving.get("comparable"):
        refs = {"serving": serving["per_cut"], **refs}
    out["references"] = list(refs)
    comparisons, eligible, why_not = {}, [], {}
    for kind in SERVABLE:
        if kind not in per_cut:
            why_not[kind] = "no model was fitted and exported"
            continue
        if fitted_everywhere.get(kind) is False:
            why_not[kind] = "fell back to hand_tuned at some cut (training data had one class)"
            continue
        comparisons[kind] = {name: compare(per_cut[kind], series, k=k, min_margin=min_margin)
                             for name, series in refs.items()}
        failed = [name for name, c in comparisons[kind].items() if not c["passes"]]
        if failed:
            why_not[kind] = "; ".join(
                f"vs {name}: mean improvement {comparisons[kind][name]['improvement']:+.4f} <= required "
                f"{_fmt(comparisons[kind][name]['required'])} (std of the per-cut improvement "
                f"{_fmt(comparisons[kind][name]['improvement_std'])})" for name in failed)
        else:
            eligible.append(kind)
    out["comparisons"] = comparisons
    out["not_eligible"] = why_not
    if eligible:
        chosen = max(eligible, key=lambda m: (float(np.mean(per_cut[m])), m == "lr"))
        c = comparisons[chosen]
        out.update(decision="register", registered=chosen,
                   reason=f"{chosen} clears every reference: " + "; ".join(
                       f"vs {name}: {v['improvement']:+.4f} > {_fmt(v['required'])}" for name, v in c.items()))
    else:
        what = "the serving model stays" if serving.get("present") else "nothing is registered (no serving model)"
        out.update(decision="keep", registered=None,
                   reason=f"no fitted candidate clears the gate, {what}: "
                          + " | ".join(f"{kind}: {txt}" for kind, txt in why_not.items()))
    if serving.get("present") and not serving.get("comparable"):
        out["reason"] += f" [serving model not comparable ({serving.get('why')}): compared with the baseline only]"
    return out


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


# --- the serving model ---------------------------------------------------------------------------


def read_serving(registry: str, source: str) -> dict | None:
    """The serving model's manifest and graph from REGISTRY/<source>/, or None when the slot is empty."""
    d = os.path.join(registry, source)
    mpath, opath = os.path.join(d, "manifest.json"), os.path.join(d, "model.onnx")
    if not (os.path.exists(mpath) and os.path.exists(opath)):
        return None
    info = {"present": True, "dir": d}
    try:
        with open(mpath) as f:
            manifest = json.load(f)
        import onnx

        graph = onnx.load(opath)
    except Exception as e:  # noqa: BLE001 - any unreadable slot is "not comparable"
        info.update(comparable=False, why=f"unreadable: {e}")
        return info
    metrics = manifest.get("metrics") or {}
    info.update(name=manifest.get("name"), kind=manifest.get("kind"), version=manifest.get("version"),
                dataset=metrics.get("dataset"), recorded_ndcg10=metrics.get("ndcg10"),
                features=[f.get("name") for f in manifest.get("features", [])],
                _manifest=manifest, _graph=graph)
    return info


def serving_scorer(info: dict, feature_names: list):
    """A scorer of this run's feature matrices for the serving model, or (None, why) when its
    features are not all computed by this run."""
    missing = [n for n in info["features"] if n not in feature_names]
    if missing:
        return None, f"needs features this run does not compute: {', '.join(missing[:5])}"
    cols = np.array([feature_names.index(n) for n in info["features"]], dtype=np.int64)
    from onnx_export import evaluate

    graph = info["_graph"]

    def score(X):
        if len(X) == 0:
            return np.zeros(0)
        return np.asarray(evaluate(graph, np.asarray(X)[:, cols]), dtype=np.float64)

    try:
        score(np.zeros((2, len(feature_names))))
    except Exception as e:  # noqa: BLE001
        return None, f"graph cannot be evaluated here: {e}"
    return score, None


def recorded_per_cut(info: dict, dataset: str, cuts: list, protocol: dict):
    """The serving model's own recorded per-cut NDCG@10 when its run matches this one, else None."""
    m = (info.get("_manifest") or {}).get("metrics") or {}
    pc = m.get("per_cut")
    if not isinstance(pc, dict) or m.get("dataset") != dataset or m.get("eval_protocol") != protocol:
        return None
    if not all(c in pc and isinstance(pc[c], (int, float)) for c in cuts):
        return None
    return [float(pc[c]) for c in cuts]


def saw_labels(info: dict, dataset: str, cut_days: dict, label_days: int) -> list:
    """Cuts (ISO) whose label year the serving model's training labels overlap (same dataset only)."""
    from data import day_of

    m = (info.get("_manifest") or {}).get("metrics") or {}
    trained = m.get("trained_on_cuts") or []
    if m.get("dataset") != dataset or not trained:
        return []
    try:
        last = max(day_of(c) for c in trained)
    except ValueError:
        return []
    return [iso for iso, T in cut_days.items() if last + label_days > T]


def public(info: dict | None) -> dict | None:
    """The serving info without the loaded objects (for gate.json)."""
    if info is None:
        return None
    return {k: v for k, v in info.items() if not k.startswith("_") and k != "features"}


def merged_with_earlier(path: str, doc: dict) -> dict:
    """The registry's gate.json: this run's decisions, plus the last decision of every source this
    run did not cover (``--sources``), marked ``from_earlier_run``, so that it describes every slot."""
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return doc
    if not isinstance(old, dict) or not isinstance(old.get("sources"), dict):
        return doc
    carried = {}
    for src, d in old["sources"].items():
        if src in doc["sources"] or not isinstance(d, dict):
            continue
        d = dict(d)
        d.setdefault("from_earlier_run", {"dataset": old.get("dataset"), "eval_cuts": old.get("eval_cuts")})
        carried[src] = d
    return {**doc, "sources": {**carried, **doc["sources"]}} if carried else doc


def write_gate(path: str, doc: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, allow_nan=False)
        f.write("\n")
