"""Train lr / xgboost from served-item logs (``train.py --logs DIR``).

Input: every ``*.ndjson``, ``*.jsonl`` (optionally ``.gz``) file under DIR, one
served item per line:

    {"source": "channel_browser", "request_id": "r1", "item": "C42",
     "features": {"ch_members_log": 2.3, ...}, "model": "...", "arm": "...",
     "clicked": true}

* label: ``clicked`` is true (a missing or non-true ``clicked`` is 0);
* features: the source's manifest order: ``DIR/<source>/manifest.json`` of
  ``--manifests`` when present, else FEATURES[source] from features.py; a
  feature missing from a line (or not a finite number) takes the manifest
  default. Unknown sources use the sorted union of the names they logged
  (default 0). Extra logged names are ignored;
* split: a request goes to the test set when crc32(request_id) % 5 == 0, so all
  items of one request stay together;
* metrics on the test requests: pooled AUC, and NDCG@10 / recall@10 over the
  requests with at least one click (positives = clicked items of the request);
* models are fitted on the training requests and exported like the dataset
  pipeline (OUT/models/<source>/<kind>/); ``--register`` copies the better one.

The platform's raw rec-logs (src/recommend/logs.ts, what the rec-logs queue
consumer appends to R2) are accepted too, in the same directory or mixed
with joined lines: ``{"kind": "served", "request_id", "source", "model",
"version", "arm", "feature_names", "items": [{"item", "rank", "score",
"features"}], ...}`` where an item's ``features`` is a list aligned with
``feature_names`` (null: absent; an older dict ``{name: value}`` is read too)
and ``{"kind": "feedback", "request_id", "item", "action", ...}``. They are
joined into one row per served item, ``clicked`` = a ``click`` feedback exists
for (request_id, item); ``model`` becomes ``<model>@<version>``. Lines that
repeat a ``message_id`` (a regrouped queue retry) and served lines that repeat
a request_id are dropped; feedback for a request never served is counted in
``unmatched_feedback`` and otherwise ignored.

Malformed lines are counted and skipped. A source whose training rows have a
single class is reported and not exported.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import zlib
from datetime import datetime, timezone

import numpy as np

import models as M
from artifacts import hand_tuned_doc, register, write_json
from features import FEATURES
from metrics import auc, evaluate_group
from progress import log


def _open(path):
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path)


def _item_features(it: dict, names) -> dict | None:
    """A raw served item's features as {name: value}: a list aligned with the
    message's feature_names (None entries left out), or an older dict."""
    f = it.get("features", {})
    if isinstance(f, dict):
        return f
    if isinstance(f, list) and isinstance(names, list) and len(names) == len(f):
        return {str(n): v for n, v in zip(names, f) if v is not None}
    return None


def read_logs(directory: str, stats: dict | None = None) -> tuple[list[dict], int]:
    """Joined rows of every log file under DIR (raw served/feedback lines joined), and the malformed count."""
    records, bad = [], 0
    served: dict[str, dict] = {}            # request_id -> raw served line (first seen)
    clicks: set[tuple[str, str]] = set()
    feedback_requests: set[str] = set()
    seen_ids: set[str] = set()
    duplicates = 0
    for root, _, files in sorted(os.walk(directory)):
        for name in sorted(files):
            if not name.endswith((".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")):
                continue
            with _open(os.path.join(root, name)) as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        bad += 1
                        continue
                    if isinstance(rec, dict) and rec.get("kind") in ("served", "feedback"):
                        mid = rec.get("message_id")
                        if isinstance(mid, str):
                            if mid in seen_ids:
                                duplicates += 1
                                continue
                            seen_ids.add(mid)
                        if not _raw_ok(rec):
                            bad += 1
                            continue
                        rid = str(rec["request_id"])
                        if rec["kind"] == "served":
                            if rid in served:
                                duplicates += 1
                            else:
                                served[rid] = rec
                        else:
                            feedback_requests.add(rid)
                            if rec["action"] == "click":
                                clicks.add((rid, str(rec["item"])))
                        continue
                    if not isinstance(rec, dict) or not isinstance(rec.get("source"), str) \
                            or "request_id" not in rec or not isinstance(rec.get("features", {}), dict):
                        bad += 1
                        continue
                    records.append(rec)
    joined = 0
    for rid, s in served.items():
        names = s.get("feature_names")
        for it in s["items"]:
            features = _item_features(it, names) if isinstance(it, dict) else None
            if features is None or "item" not in it:
                bad += 1
                continue
            item = str(it["item"])
            records.append({"source": s["source"], "request_id": rid, "item": item,
                            "features": features, "rank": it.get("rank"), "score": it.get("score"),
                            "model": f"{s.get('model')}@{s.get('version')}", "arm": s.get("arm"),
                            "user": s.get("user"), "fallback": s.get("fallback"),
                            "clicked": (rid, item) in clicks})
            joined += 1
    if stats is not None:
        stats.update({"raw_served_requests": len(served), "raw_joined_rows": joined,
                      "raw_clicks": len(clicks), "duplicate_lines": duplicates,
                      "unmatched_feedback": len(feedback_requests - served.keys())})
    return records, bad


def _raw_ok(rec: dict) -> bool:
    if not isinstance(rec.get("request_id"), str) or not isinstance(rec.get("source"), str):
        return False
    if rec["kind"] == "served":
        return isinstance(rec.get("items"), list)
    return isinstance(rec.get("item"), str) and isinstance(rec.get("action"), str)


def feature_spec(source: str, records: list[dict], manifests: str | None) -> list[dict]:
    if manifests:
        path = os.path.join(manifests, source, "manifest.json")
        if os.path.exists(path):
            with open(path) as f:
                return [{"name": x["name"], "default": float(x.get("default", 0.0))} for x in json.load(f)["features"]]
    if source in FEATURES:
        return [{"name": n, "default": float(d)} for n, d in FEATURES[source]]
    names = sorted({k for r in records for k in r.get("features", {})})
    return [{"name": n, "default": 0.0} for n in names]


def _number(v, default: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return default
    return float(v)


def is_test(request_id) -> bool:
    return zlib.crc32(str(request_id).encode()) % 5 == 0


class _Req:
    def __init__(self, X, y, items):
        self.X, self.y, self.items = X, y, items


def requests_of(records: list[dict], spec: list[dict]) -> list[_Req]:
    by_req: dict[str, list] = {}
    for r in records:
        by_req.setdefault(str(r["request_id"]), []).append(r)
    out = []
    for rid in sorted(by_req):
        rs = by_req[rid]
        X = np.array([[_number(r.get("features", {}).get(f["name"]), f["default"]) for f in spec] for r in rs],
                     dtype=np.float64).reshape(len(rs), len(spec))
        y = np.array([1.0 if r.get("clicked") is True else 0.0 for r in rs])
        items = np.arange(len(rs))          # ties broken by log order
        req = _Req(X, y, items)
        req.request_id = rid
        out.append(req)
    return out


def evaluate_requests(source: str, reqs: list[_Req], scorer) -> dict:
    if not reqs:
        return {"auc": None, "ndcg10": None, "recall10": None, "requests_evaluated": 0}
    scores = [scorer(r.X) for r in reqs]
    pooled = auc(np.concatenate(scores), np.concatenate([r.y for r in reqs]))
    nd, rc = [], []
    for r, s in zip(reqs, scores):
        if r.y.sum() > 0:
            a, b = evaluate_group(s, r.items, r.y, int(r.y.sum()), "ranking", 10)
            nd.append(a)
            rc.append(b)
    return {"auc": pooled, "ndcg10": float(np.mean(nd)) if nd else None,
            "recall10": float(np.mean(rc)) if rc else None, "requests_evaluated": len(nd)}


def run(args) -> dict:
    from feature_stats import feature_stats
    from onnx_export import write_model

    trees = args.trees if args.trees is not None else (50 if args.quick else 200)
    raw_stats: dict = {}
    records, bad = read_logs(args.logs, raw_stats)
    by_source: dict[str, list] = {}
    for r in records:
        by_source.setdefault(r["source"], []).append(r)
    version = "logs-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = {"logs": os.path.abspath(args.logs), "lines": len(records), "malformed_lines": bad,
              "label": "clicked is true", "split": "crc32(request_id) % 5 == 0 -> test", "raw": raw_stats, "sources": {}}
    exported: dict[str, dict] = {}
    metrics_for_register = {"sources": {}}
    for src in sorted(by_source):
        recs = by_source[src]
        spec = feature_spec(src, recs, args.manifests)
        reqs = requests_of(recs, spec)
        train = [q for q in reqs if not is_test(q.request_id)]
        test = [q for q in reqs if is_test(q.request_id)]
        entry = {"rows": len(recs), "requests": len(reqs), "clicks": int(sum(q.y.sum() for q in reqs)),
                 "train_requests": len(train), "test_requests": len(test),
                 "features": [f["name"] for f in spec]}
        exported[src] = {}
        metrics_for_register["sources"][src] = {}
        X = np.vstack([q.X for q in train]) if train else np.zeros((0, len(spec)))
        y = np.concatenate([q.y for q in train]) if train else np.zeros(0)
        for kind in M.KINDS:
            try:
                model = M.fit(kind, X, y, weights=M.sample_weights(kind, train), trees=trees, seed=args.seed,
                              threads=args.threads)
            except M.OneClass as e:
                entry[kind] = {"skipped": f"training rows have one class ({e})"}
                exported[src][kind] = None
                continue
            res = evaluate_requests(src, test, lambda Z, model=model: M.score(model, Z))
            entry[kind] = res
            rs = np.random.RandomState(args.seed)
            sample = X[rs.choice(len(X), min(64, len(X)), replace=False)]
            write_model(os.path.join(args.out, "models", src, kind), kind=kind, model=model, source=src,
                        name=f"{src}-{kind}", version=version, features=spec,
                        output_meaning="probability that the served item is clicked",
                        metrics={"trained_on": "served-item logs", **res, "train_rows": int(len(y))},
                        X_sample=sample, feature_stats=feature_stats(X, [f["name"] for f in spec]))
            exported[src][kind] = version
            key = res["ndcg10"] if res["ndcg10"] is not None else (res["auc"] or 0.0)
            metrics_for_register["sources"][src][kind] = {"ndcg10": key}
        report["sources"][src] = entry
        log(f"logs {src}: {entry['rows']} rows, {entry['requests']} requests, {entry['clicks']} clicks; "
              + ", ".join(f"{k}: {entry[k]}" for k in M.KINDS))
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "logs_metrics.json"), report)
    if args.register:
        for src in by_source:
            os.makedirs(os.path.join(args.out, "models", src), exist_ok=True)
            if src in FEATURES:
                write_json(os.path.join(args.out, "models", src, "hand_tuned.json"), hand_tuned_doc(src))
        register(args.out, args.register, metrics_for_register, exported, sorted(by_source))
    return report
