#!/usr/bin/python3
"""Offline trials of candidate features for channel_browser and composer_dm.

    feature_trials.py --data datasets/rails-collab [--out training/report/feature-trials.md]
    feature_trials.py --data DIR --out /tmp/trials.md --quick        # smoke test

Why it exists: the issue "Better features within the privacy rule" asks whether
signals the served models do not have yet (channel-name similarity, recency
decay, channel growth, neighbours' recent joins, and for DMs decayed shared
channels, profile cosines, partner-of-partner recency and the candidate's
partners in the user's channels) lift NDCG@10 towards +20% over recent
popularity. A feature earns a place in features.py, FEATURES.md and the
TypeScript feature store only if it lifts the held-out NDCG@10 of the better
base model (lr or xgboost) by more than that lift's spread across cuts and by
more than the promotion gate's minimum margin (gate.py's rule). This script
makes that measurement reproducible, with the pipeline's own code: groups from
features.build_groups (the base features, candidates and labels of train.py),
fits from models.fit / sample_weights, scores from models.score and
features.baseline_scores, metrics from train.evaluate. It registers nothing,
and neither features.py nor the served features change.

Privacy: the two name features (channel_browser's content similarity,
composer_dm's name-profile cosine) read channel NAMES (channels.csv.gz
``name``). Only this trial script reads them; data.py and every served feature
read ids, days and counts only, and FEATURES.md's privacy rule says channel
names are never features (the feature ledger the Worker exports for retraining
leaves them empty). So they could not be served as they are: they are measured
here to know what that rule costs.

Protocol (as train.py): the default evaluation cuts (data.default_cuts: three,
a year apart, the last one leaving 365 days of labels); for each, models are
fitted on the rankings with at least one positive among the candidates of the
training cuts train.training_cuts(T, 16, 365/4, first day), whose labels end at
or before T; every variant ranks the same candidates of the same subjects at T
(all subjects; --quick: 150 per cut, 4 training cuts, 50 trees).

The candidate features are exactly those of the experiment that proposed them;
their formulas are in DEFINITIONS (printed in the report too) and next to the
code that computes them. Notation, all before the cut T: M(u) the channels u
was ever active in, M365(u) those of the last 365 days, first/last(u, c) u's
first/last active day in c, days_w(u, c) u's active days in c in the last w
days, sim(c', c) the pipeline's all-time co-membership cosine (Tables.sim),
P(u) / P365(u) u's interaction partners (all time / last 365 days).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import re
import sys
import time

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from data import LABEL_DAYS, default_cuts, iso_of, load_dataset  # noqa: E402
from features import (CANDIDATES_PER_GENERATOR, Cut, Group, baseline_scores, build_groups,  # noqa: E402
                      dense_row, feature_names)
import gate as G  # noqa: E402
from metrics import ndcg_at_k  # noqa: E402
import models as M  # noqa: E402
import progress  # noqa: E402
from progress import log  # noqa: E402
from train import evaluate, training_cuts  # noqa: E402

SOURCES = ("channel_browser", "composer_dm")
DEFAULT_OUT = os.path.join(HERE, "report", "feature-trials.md")
TARGET = 1.2  # the goal: +20% NDCG@10 over recent popularity
SINGLE_TOP = 25

# The candidate feature families per source, in column order.
FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "channel_browser": {
        "content similarity (names)": ("name_cos", "name_max", "name_max365", "name_dec"),
        "recency-decayed co-membership": ("cf_dec90", "cf_dec365"),
        "candidate growth": ("growth", "act_ratio"),
        "neighbours' recent joins": ("nj90", "nj365"),
    },
    "composer_dm": {
        "decayed shared channels": ("sh_dec90", "sh_dec365", "aa_dec", "d90_in_u"),
        "channel-profile cosine": ("chan_cos365",),
        "name-profile cosine (names)": ("name_cos",),
        "partner-of-partner decay": ("pp_dec",),
        "v's partners in u's channels": ("pin", "pin_w", "pin_frac"),
    },
}

# tok(c): the channel name lowercased and split on / _ - . into a set of tokens, as an idf-weighted
# bag of words (idf(t) = ln((1 + C) / (1 + df(t))) + 1 over the dataset's C channels), scaled to unit
# length (zero for a name without tokens). namesim(c', c) = tok(c') . tok(c).
DEFINITIONS: dict[str, dict[str, str]] = {
    "channel_browser": {
        "name_cos": "cos(tok(c), p(u)), p(u) = sum_{c' in M365(u)} days_365(u, c') tok(c') "
                    "(M365(u) empty: sum_{c' in M(u)} tok(c'))",
        "name_max": "max_{c' in M(u)} namesim(c', c)",
        "name_max365": "max_{c' in M365(u)} namesim(c', c)",
        "name_dec": "sum_{c' in M(u)} exp(-(T - last(u, c')) / 90) namesim(c', c)",
        "cf_dec90": "sum_{c' in M(u)} exp(-(T - last(u, c')) / 90) sim(c', c)",
        "cf_dec365": "sum_{c' in M(u)} exp(-(T - last(u, c')) / 365) sim(c', c)",
        "growth": "log1p(new_90(c)) - log1p(max(new_365(c) - new_90(c), 0) / 3); new_w(c) = people whose "
                  "first day in c is in the last w days",
        "act_ratio": "(active_90(c) + 1) / (active_365(c) + 4); active_w(c) = people active in c in the last w days",
        "nj90": "log1p(sum_{v != u} |M365(u) & M365(v)| [first(v, c) >= T - 90])",
        "nj365": "log1p(sum_{v != u} |M365(u) & M365(v)| [first(v, c) >= T - 365])",
    },
    "composer_dm": {
        "sh_dec90": "sum_{c in M(u) & M(v)} exp(-(T - min(last(u, c), last(v, c))) / 90)",
        "sh_dec365": "sum_{c in M(u) & M(v)} exp(-(T - min(last(u, c), last(v, c))) / 365)",
        "aa_dec": "sum_{c in M(u) & M(v)} exp(-(T - min(last(u, c), last(v, c))) / 365) / ln(1 + members(c))",
        "d90_in_u": "log1p(sum_{c in M(u)} days_90(v, c))",
        "chan_cos365": "cos(days_365(u, .), days_365(v, .)) over channels",
        "name_cos": "cos(sum_c days_365(u, c) tok(c), sum_c days_365(v, c) tok(c))",
        "pp_dec": "sum_{x in P(u), x has interacted with v} exp(-(T - last interaction(x, v)) / 180)",
        "pin": "log1p(#{x in P365(v), x != u : |M365(x) & M365(u)| > 0})",
        "pin_w": "log1p(sum_{x in P365(v), x != u} |M365(x) & M365(u)|)",
        "pin_frac": "#{x in P365(v), x != u : |M365(x) & M365(u)| > 0} / max(|P365(v)|, 1)",
    },
}

# A constant column: adding it to xgboost changes nothing but its column sampling (colsample_bytree),
# so the placebo variant shows how far a family's delta can move by that alone.
PLACEBO = "zero"


def extra_names(source: str) -> list[str]:
    return [f for fam in FAMILIES[source].values() for f in fam] + [PLACEBO]


class ChannelNames:
    """tok(c) for every channel (rows of ``unit``) and namesim (``sim``, C x C)."""

    def __init__(self, data_dir: str, ds):
        names = {}
        with gzip.open(os.path.join(data_dir, "channels.csv.gz"), "rt", newline="") as f:
            for r in csv.DictReader(f):
                names[r["channel_id"]] = r["name"]
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for i, cid in enumerate(ds.channel_ids):
            for tok in {t for t in re.split(r"[/_\-.]+", names.get(cid, "").lower()) if t}:
                rows.append(i)
                cols.append(vocab.setdefault(tok, len(vocab)))
        tok = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(ds.n_channels, len(vocab)))
        df = np.asarray((tok > 0).sum(axis=0)).ravel()
        idf = np.log((1 + ds.n_channels) / (1 + df)) + 1
        w = tok.multiply(idf[None, :]).tocsr()
        norm = np.sqrt(np.asarray(w.multiply(w).sum(axis=1)).ravel())
        norm[norm == 0] = 1
        self.unit = (sp.diags(1 / norm) @ w).tocsr()
        self.sim = (self.unit @ self.unit.T).toarray()


class CutExtras:
    """The candidate features at one cut. Everything that does not depend on the subject is computed
    once here, so a subject costs only its own rows."""

    def __init__(self, cut: Cut, names: ChannelNames):
        t, T = cut.t, cut.T
        self.cut, self.names = cut, names
        # growth = log1p(new_90) - log1p(max(new_365 - new_90, 0) / 3): the last 90 days against the
        # quarterly average of the 275 days before them
        g90, g365 = t.ch_new_members[90], t.ch_new_members[365]
        self.growth = np.log1p(g90) - np.log1p(np.maximum(g365 - g90, 0) / 3.0)
        self.act_ratio = (t.ch_users[90] + 1) / (t.ch_users[365] + 4)
        # joined_w[v, c] = 1 when v's first day in c is in the last w days
        self.joined = {}
        for w in (90, 365):
            j = t.uc_first.tocsr().copy()
            j.data = (j.data >= T - w).astype(float)
            self.joined[w] = j
        self.last_csc = t.uc_last.tocsc()
        self.days90_csc = t.uc_days[90].tocsc()
        d365 = t.uc_days[365]
        self.d365_norm = np.sqrt(np.asarray(d365.multiply(d365).sum(axis=1)).ravel())
        self.name_profile = (d365 @ names.unit).tocsr()   # U x V: sum_c days_365(v, c) tok(c)
        np_ = self.name_profile
        self.name_profile_norm = np.sqrt(np.asarray(np_.multiply(np_).sum(axis=1)).ravel())

    def channel_browser(self, u: int, c: np.ndarray) -> dict:
        t, T, tok, namesim = self.cut.t, self.cut.T, self.names.unit, self.names.sim
        C = t.C
        M, M365 = t.member_channels(u), t.member_channels(u, 365)
        ulast = dense_row(t.uc_last, u)
        days365 = dense_row(t.uc_days[365], u)
        # name_cos: cos(tok(c), p(u)), p(u) the days-weighted sum of tok over M365(u), else over M(u)
        if len(M365):
            prof = np.asarray((sp.diags(days365[M365]) @ tok[M365]).sum(axis=0)).ravel()
        elif len(M):
            prof = np.asarray(tok[M].sum(axis=0)).ravel()
        else:
            prof = np.zeros(tok.shape[1])
        pn = np.linalg.norm(prof)
        name_cos = (tok @ prof) / pn if pn > 0 else np.zeros(C)
        name_max = namesim[M].max(axis=0) if len(M) else np.zeros(C)
        name_max365 = namesim[M365].max(axis=0) if len(M365) else np.zeros(C)
        # weights exp(-(T - last(u, c')) / tau) over c' in M(u): a channel left years ago counts little
        if len(M):
            age = T - ulast[M]
            w90, w365 = np.exp(-age / 90.0), np.exp(-age / 365.0)
            cf_dec90, cf_dec365 = w90 @ t.sim[M], w365 @ t.sim[M]
            name_dec = w90 @ namesim[M]
        else:
            cf_dec90 = cf_dec365 = name_dec = np.zeros(C)
        # nj_w(c) = sum over v != u of |M365(u) & M365(v)| [v joined c in the last w days]
        b365 = t.B[365]
        shared = b365 @ dense_row(b365, u)
        shared[u] = 0.0
        nj90, nj365 = self.joined[90].T @ shared, self.joined[365].T @ shared
        return {"name_cos": name_cos[c], "name_max": name_max[c], "name_max365": name_max365[c],
                "name_dec": name_dec[c], "cf_dec90": cf_dec90[c], "cf_dec365": cf_dec365[c],
                "growth": self.growth[c], "act_ratio": self.act_ratio[c],
                "nj90": np.log1p(nj90[c]), "nj365": np.log1p(nj365[c])}

    def composer_dm(self, u: int, v: np.ndarray) -> dict:
        t, T = self.cut.t, self.cut.T
        U = t.U
        # shared channels c in M(u) & M(v), each weighted by exp(-(T - min(last(u, c), last(v, c))) / tau):
        # the pair's most recent common activity there is at most the earlier of their two last days
        ulast = dense_row(t.uc_last, u)
        Mu = np.flatnonzero(ulast > 0)
        if len(Mu):
            L = self.last_csc[:, Mu].toarray()              # U x |M(u)|: last(v, c)
            both = np.minimum(L, ulast[Mu][None, :])
            w90 = np.where(L > 0, np.exp(-(T - both) / 90.0), 0.0)
            w365 = np.where(L > 0, np.exp(-(T - both) / 365.0), 0.0)
            sh_dec90, sh_dec365 = w90.sum(axis=1), w365.sum(axis=1)
            aa_dec = (w365 * t.aa_weight[Mu][None, :]).sum(axis=1)   # aa_weight = 1 / ln(1 + members)
            d90 = np.asarray(self.days90_csc[:, Mu].sum(axis=1)).ravel()
        else:
            sh_dec90 = sh_dec365 = aa_dec = d90 = np.zeros(U)
        # chan_cos365: cosine of the two people's days_365 rows over channels
        du = dense_row(t.uc_days[365], u)
        nu = np.linalg.norm(du)
        num = t.uc_days[365] @ du
        chan_cos365 = np.where((self.d365_norm > 0) & (nu > 0), num / np.maximum(self.d365_norm * nu, 1e-12), 0.0)
        # name_cos: cosine of the two people's days-weighted name profiles
        pu = dense_row(self.name_profile, u)
        npu = np.linalg.norm(pu)
        num = self.name_profile @ pu
        n2 = self.name_profile_norm
        name_cos = np.where((n2 > 0) & (npu > 0), num / np.maximum(n2 * npu, 1e-12), 0.0)
        # pp_dec(v) = sum over u's partners x of exp(-(T - last interaction(x, v)) / 180)
        P = t.partners(u)
        if len(P):
            uul = t.uu_last[P].toarray()
            pp_dec = np.where(uul > 0, np.exp(-(T - uul) / 180.0), 0.0).sum(axis=0)
        else:
            pp_dec = np.zeros(U)
        # v's partners of the last 365 days who share a channel of the last 365 days with u
        b365 = t.B[365]
        x_in_u = b365 @ dense_row(b365, u)                  # |M365(x) & M365(u)| per person x
        x_in_u[u] = 0.0
        pin = t.P[365] @ (x_in_u > 0).astype(float)
        pin_w = t.P[365] @ x_in_u
        pin_frac = pin / np.maximum(t.u_partners[365], 1)
        return {"sh_dec90": sh_dec90[v], "sh_dec365": sh_dec365[v], "aa_dec": aa_dec[v],
                "d90_in_u": np.log1p(d90[v]), "chan_cos365": chan_cos365[v], "name_cos": name_cos[v],
                "pp_dec": pp_dec[v], "pin": np.log1p(pin[v]), "pin_w": np.log1p(pin_w[v]), "pin_frac": pin_frac[v]}


def build_all(ds, names: ChannelNames, dates, max_subjects, seed) -> tuple[dict, dict]:
    """(groups, stats) per (date, source). A group's X is [base features | extra_names(source)]."""
    groups, stats = {}, {}
    for d in dates:
        t0 = time.time()
        cut = Cut(ds, d)
        extras = CutExtras(cut, names)
        for src in SOURCES:
            gs, st = build_groups(cut, src, max_subjects=max_subjects, seed=seed)
            fn = getattr(extras, src)
            cols = extra_names(src)
            out = []
            for g in gs:
                e = fn(g.subject, g.items)
                e[PLACEBO] = np.zeros(len(g.items))
                E = np.column_stack([np.asarray(e[k], dtype=np.float64) for k in cols])
                out.append(Group(g.subject, g.items, np.hstack([g.X, E]), g.y, g.n_pos))
            groups[(d, src)], stats[(d, src)] = out, st
        log(f"  cut {iso_of(d)}: " + ", ".join(f"{s}={stats[(d, s)]['subjects']}" for s in SOURCES)
            + f" ({time.time() - t0:.1f}s)")
    return groups, stats


def variants(source: str) -> list[dict]:
    """What is evaluated, in report order. ``ref``: the base model a delta is taken against."""
    fams = FAMILIES[source]
    out = [{"name": "recent_popularity", "kind": "baseline", "extras": (), "ref": None},
           {"name": "lr", "kind": "lr", "extras": (), "ref": None},
           {"name": "xgboost", "kind": "xgboost", "extras": (), "ref": None},
           {"name": "xgboost rank:pairwise", "kind": "rank", "extras": (), "ref": "xgboost"},
           {"name": "lr + xgboost rank average", "kind": "ensemble", "extras": (), "ref": "best"},
           {"name": "xgboost + zero column (placebo)", "kind": "xgboost", "extras": (PLACEBO,), "ref": "xgboost"}]
    for fam, feats in list(fams.items()) + [("all families", tuple(f for fs in fams.values() for f in fs))]:
        for kind in ("lr", "xgboost"):
            out.append({"name": f"{kind} + {fam}", "kind": kind, "extras": feats, "ref": kind})
    return out


def columns(source: str, extras) -> np.ndarray:
    n = len(feature_names(source))
    ext = extra_names(source)
    return np.array(list(range(n)) + [n + ext.index(f) for f in extras], dtype=np.int64)


def select(groups, cols):
    return [Group(g.subject, g.items, g.X[:, cols], g.y, g.n_pos) for g in groups]


def fit_scorer(kind, train, *, trees, seed, threads):
    """A scorer X -> scores; raises models.OneClass when the training labels have one class."""
    X = np.vstack([g.X for g in train]) if train else np.zeros((0, 0))
    y = np.concatenate([g.y for g in train]) if train else np.zeros(0)
    if kind in M.KINDS:
        model = M.fit(kind, X, y, weights=M.sample_weights(kind, train), trees=trees, seed=seed, threads=threads)
        return lambda Z: M.score(model, Z)
    if kind == "rank":
        import xgboost as xgb

        if len(y) == 0 or y.min() == y.max():
            raise M.OneClass(f"{len(y)} rows, positives={int(y.sum())}")
        # rank:pairwise learns from pairs within a ranking (qid = training ranking), so it needs no weights
        qid = np.concatenate([np.full(len(g.y), i) for i, g in enumerate(train)])
        model = xgb.XGBRanker(n_estimators=trees, objective="rank:pairwise", learning_rate=M.learning_rate(trees),
                              n_jobs=threads, random_state=seed, **M.XGB_PARAMS)
        model.fit(X, y, qid=qid)
        return lambda Z: model.predict(Z) if len(Z) else np.zeros(0)
    raise ValueError(kind)


def run_variants(groups, cuts, plan, *, trees, seed, threads) -> dict:
    """{source: {variant name: {**variant, "per_cut": [ndcg10 or None], "notes": [why a cut has None]}}}."""
    out = {}
    for src in SOURCES:
        out[src] = {}
        fitted = {}   # (kind, T) -> scorer of the base features, reused by the ensemble
        for v in variants(src):
            t0 = time.time()
            cols = columns(src, v["extras"])
            per_cut, notes = [], []
            for T in cuts:
                ev = select(groups[(T, src)], cols)
                if v["kind"] == "baseline":
                    per_cut.append(evaluate(src, ev, lambda X: baseline_scores(src, v["name"], X))["ndcg10"])
                    continue
                train = select([g for c in plan[T] for g in groups[(c, src)] if g.y.sum() > 0], cols)
                try:
                    if v["kind"] == "ensemble":
                        a, b = fitted[("lr", T)], fitted[("xgboost", T)]
                        if a is None or b is None:
                            raise M.OneClass("a base model was not fitted")
                        scorer = lambda X, a=a, b=b: rankdata(a(X)) + rankdata(b(X))  # noqa: E731
                    else:
                        scorer = fit_scorer(v["kind"], train, trees=trees, seed=seed, threads=threads)
                    if not v["extras"] and v["kind"] in M.KINDS:
                        fitted[(v["kind"], T)] = scorer
                    per_cut.append(evaluate(src, ev, scorer)["ndcg10"])
                except M.OneClass as e:
                    if not v["extras"] and v["kind"] in M.KINDS:
                        fitted[(v["kind"], T)] = None
                    per_cut.append(None)
                    notes.append(f"{iso_of(T)}: not fitted ({e})")
            out[src][v["name"]] = {**v, "per_cut": per_cut, "notes": notes}
            shown = " ".join("n/a" if x is None else f"{x:.3f}" for x in per_cut)
            log(f"  {src} {v['name']}: {shown} ({time.time() - t0:.1f}s)")
    return out


def complete(r) -> bool:
    return all(x is not None for x in r["per_cut"])


def mean(r) -> float | None:
    return float(np.mean(r["per_cut"])) if complete(r) else None


def best_base(res: dict) -> str | None:
    """The base model (lr or xgboost, base features) with the higher mean; lr on a tie."""
    ok = [k for k in M.KINDS if complete(res[k])]
    return max(ok, key=lambda k: (mean(res[k]), k == "lr")) if ok else None


def best_variant(res: dict) -> str:
    return max((n for n in res if complete(res[n])), key=lambda n: mean(res[n]))


def reference(res: dict, v: dict) -> str | None:
    return best_base(res) if v["ref"] == "best" else v["ref"]


def delta(res: dict, name: str, ref: str | None) -> dict | None:
    """The gate's paired comparison with k = 1 and no minimum margin: D = mean(d_i), S = std(d_i, ddof 1),
    passes when D > S."""
    if ref is None or not complete(res[name]) or not complete(res[ref]):
        return None
    return G.compare(res[name]["per_cut"], res[ref]["per_cut"], k=1.0, min_margin=0.0)


def oracle(groups) -> float:
    """NDCG@10 of ranking the positives among the candidates first: the ceiling of any scorer."""
    return float(np.mean([ndcg_at_k(np.sort(g.y)[::-1], g.n_pos) for g in groups])) if groups else 0.0


def single_features(src, groups, cuts) -> list[tuple]:
    """(name, sign, mean, per cut) of every base and candidate feature used alone as a scorer, best first.

    Features constant within every ranking (the subject's own counts) are left out: alone they rank by
    item id only."""
    names = feature_names(src) + [f"{f} (trial)" for f in extra_names(src) if f != PLACEBO]
    rows = []
    for j, name in enumerate(names):
        if all(np.ptp(g.X[:, j]) == 0 for T in cuts for g in groups[(T, src)] if len(g.items)):
            continue
        for sign in (1.0, -1.0):
            per_cut = [evaluate(src, groups[(T, src)], lambda X: sign * X[:, j])["ndcg10"] for T in cuts]
            rows.append((name, sign, float(np.mean(per_cut)), per_cut))
    return sorted(rows, key=lambda r: (-r[2], r[0], -r[1]))


# --- the report --------------------------------------------------------------------------------------------


def f3(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def signed(x) -> str:
    """A difference of NDCG@10: one more digit than the values, as most differences here are below .01."""
    return "n/a" if x is None else f"{x:+.4f}"


def f4(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def verdict(res: dict, family: str) -> tuple[bool, str]:
    """(kept, text). Kept when the family, added to the better base model, lifts its mean NDCG@10 by more
    than the spread across cuts of that lift (D > S) and by more than the promotion gate's minimum margin:
    the gate's own rule, so that a lift at the level of rounding noise is not called an improvement."""
    base = best_base(res)
    if base is None:
        return False, "**not kept**: no base model was fitted at every cut"
    d = delta(res, f"{base} + {family}", base)
    other = "xgboost" if base == "lr" else "lr"
    od = delta(res, f"{other} + {family}", other)
    also = (f"; with {other}: D = {signed(od['improvement'])}, S = {f4(od['improvement_std'])}"
            if od else f"; with {other}: not fitted at every cut")
    if d is None:
        return False, f"**not kept**: {base} + {family} was not fitted at every cut{also}"
    nums = (f"{base} + {family} {f3(mean(res[f'{base} + {family}']))} vs {base} {f3(mean(res[base]))}: "
            f"D = {signed(d['improvement'])}, S = {f4(d['improvement_std'])} "
            f"(per cut {', '.join(signed(x) for x in d['improvement_per_cut'])})")
    spread = float(np.std(res[base]["per_cut"], ddof=1))
    nums += f"; {base}'s own std across cuts {spread:.3f}"
    if d["improvement"] <= 0:
        why = "D <= 0"
    elif not d["passes"]:
        why = "D <= S"
    elif d["improvement"] <= G.DEFAULT_MIN_MARGIN:
        why = f"D > S, but D <= {G.DEFAULT_MIN_MARGIN}, the promotion gate's minimum margin"
    else:
        return True, f"**kept**: {nums}{also}"
    return False, f"**not kept** ({why}): {nums}{also}"


def write_report(path, *, ds, args, cuts, plan, n_train, max_subjects, trees, results, singles, oracles, stats,
                 timing) -> None:
    L = []
    L.append("# Feature trials: channel_browser and composer_dm")
    L.append("")
    run = "QUICK smoke test, not a result" if args.quick else "full run"
    L.append(f"Written by `training/feature_trials.py` ({run}). Regenerate with:")
    L.append("")
    L.append("```sh")
    L.append(f"/usr/bin/python3 training/feature_trials.py --data {args.data}"
             + (" --quick" if args.quick else "") + (f" --out {args.out}" if os.path.abspath(args.out) != DEFAULT_OUT else ""))
    L.append("```")
    L.append("")
    L.append(f"- Dataset: `{ds.name}` ({ds.n_users} people, {ds.n_channels} channels).")
    L.append(f"- Evaluation cuts: {', '.join(iso_of(T) for T in cuts)}; labels: the {LABEL_DAYS} days after each.")
    L.append(f"- Training: per evaluation cut, the rankings with a positive among the candidates at "
             f"{n_train} training cuts {LABEL_DAYS / 4:g} days apart, the latest {LABEL_DAYS} days before it "
             f"(train.training_cuts; their labels end at or before the evaluation cut), e.g. for "
             f"{iso_of(cuts[-1])}: {iso_of(plan[cuts[-1]][0])} .. {iso_of(plan[cuts[-1]][-1])}.")
    L.append(f"- Subjects: {'all' if max_subjects is None else f'at most {max_subjects}'} per cut; "
             f"candidates: {CANDIDATES_PER_GENERATOR} per generator (features.build_groups, as train.py); "
             f"xgboost {trees} trees, learning rate {M.learning_rate(trees):g}, {M.XGB_PARAMS}; "
             f"lr and xgboost from models.fit with models.sample_weights; seed {args.seed}, {args.threads} threads.")
    L.append(f"- Runtime: {timing['total']:.0f} s on {args.threads} threads ({timing['build']:.0f} s building the "
             f"rankings of {timing['dates']} cut dates, {timing['variants']:.0f} s fitting and evaluating the "
             f"variants, {timing['singles']:.0f} s the single-feature scorers).")
    L.append(f"- Target: +20% over recent popularity, i.e. {TARGET} x its mean NDCG@10: "
             + "; ".join(f"{src} {TARGET * mean(results[src]['recent_popularity']):.3f} (recent popularity "
                         f"{mean(results[src]['recent_popularity']):.3f})" for src in SOURCES) + ".")
    L.append("- Privacy: the two name features (channel_browser's content similarity, composer_dm's name-profile "
             "cosine) read channel names. Only this script reads them; the served features and data.py read ids, "
             "days and counts only, and nothing here changes them. FEATURES.md's privacy rule says channel names "
             "are never features, so these two could not be served as they are; they measure what the rule costs. "
             "Their idf is taken over every channel name in the dataset, including channels that first appear "
             "after a cut.")
    L.append("")
    L.append("## Summary")
    L.append("")
    for src in SOURCES:
        res = results[src]
        rp = mean(res["recent_popularity"])
        base = best_base(res)
        best_name = best_variant(res)
        kept = [fam for fam in list(FAMILIES[src]) + ["all families"] if verdict(res, fam)[0]]
        L.append(f"- {src}: better base model {base or 'none'}"
                 + (f" {f3(mean(res[base]))} ({f3(mean(res[base]) / rp)} x recent popularity)" if base else "")
                 + f"; best variant {best_name} {f3(mean(res[best_name]))} ({f3(mean(res[best_name]) / rp)} x); "
                 f"families kept: {', '.join(kept) if kept else 'none'}.")
    L.append("")
    L.append("NDCG@10 per variant: the mean over the evaluation cuts and each cut's value (each model refitted per "
             "cut on earlier data only). `x rp`: the mean over recent popularity's. `D`: the mean over cuts of "
             "the per-cut difference with the reference model (`ref`: the same kind with the base features; for "
             "the ensemble, the better base model); `S`: the sample std (ddof 1) of those differences, the spread "
             "across cuts. A family is **kept** only if, added to the better base model, D > S and D > "
             f"{G.DEFAULT_MIN_MARGIN} (the promotion gate's rule: k = 1, minimum margin {G.DEFAULT_MIN_MARGIN}). "
             "The rankings and cuts are the same for every variant, so the differences are paired.")
    L.append("")
    for src in SOURCES:
        res = results[src]
        rp = mean(res["recent_popularity"])
        L.append(f"## {src}")
        L.append("")
        L.append("| cut | subjects | rows | positives | in candidates | oracle NDCG@10 |")
        L.append("|---|---|---|---|---|---|")
        for T, o in zip(cuts, oracles[src]):
            st = stats[(T, src)]
            L.append(f"| {iso_of(T)} | {st['subjects']} | {st['rows']} | {st['positives']} | "
                     f"{st['positives_in_candidates']} | {o:.3f} |")
        L.append(f"| mean | | | | | {np.mean(oracles[src]):.3f} |")
        L.append("")
        L.append("| variant | mean | x rp | " + " | ".join(iso_of(T) for T in cuts) + " | ref | D | S | D per cut |")
        L.append("|---|---|---|" + "---|" * len(cuts) + "---|---|---|---|")
        for name, r in res.items():
            m = mean(r)
            ref = reference(res, r)
            d = delta(res, name, ref)
            L.append(f"| {name} | {f3(m)} | {f3(m / rp) if m is not None and rp else 'n/a'} | "
                     + " | ".join(f3(x) for x in r["per_cut"])
                     + f" | {ref or ''} | {signed(d['improvement']) if d else ''} | "
                     f"{f4(d['improvement_std']) if d else ''} | "
                     f"{', '.join(signed(x) for x in d['improvement_per_cut']) if d else ''} |")
        notes = [f"{name}: {n}" for name, r in res.items() for n in r["notes"]]
        if notes:
            L.append("")
            L.extend(f"- {n}" for n in notes)
        L.append("")
        L.append("### Verdicts")
        L.append("")
        base = best_base(res)
        L.append(f"Better base model: {base or 'none'}"
                 + (f" ({f3(mean(res[base]))}, {f3(mean(res[base]) / rp)} x recent popularity)" if base else "")
                 + ".")
        L.append("")
        for fam in list(FAMILIES[src]) + ["all families"]:
            L.append(f"- {fam}: {verdict(res, fam)[1]}")
        placebo = delta(res, "xgboost + zero column (placebo)", "xgboost")
        if placebo:
            L.append(f"- for scale, the placebo (a column of zeros added to xgboost) moves it by "
                     f"D = {signed(placebo['improvement'])} (per cut "
                     f"{', '.join(signed(x) for x in placebo['improvement_per_cut'])}).")
        best_name = best_variant(res)
        reached = mean(res[best_name]) >= TARGET * rp
        L.append(f"- Best variant: {best_name}, {f3(mean(res[best_name]))} = {f3(mean(res[best_name]) / rp)} x recent "
                 f"popularity: the {TARGET} x target is {'reached' if reached else 'not reached'}.")
        L.append("")
        L.append(f"### Single features as scorers (top {SINGLE_TOP} of feature x sign)")
        L.append("")
        L.append("`(trial)`: a candidate feature of this script; the others are the served base features. "
                 "Features constant within every ranking (the subject's own counts) are left out.")
        L.append("")
        L.append("| feature | sign | mean | " + " | ".join(iso_of(T) for T in cuts) + " |")
        L.append("|---|---|---|" + "---|" * len(cuts))
        for name, sign, m, per_cut in singles[src][:SINGLE_TOP]:
            L.append(f"| {name} | {'+' if sign > 0 else '-'} | {m:.3f} | "
                     + " | ".join(f"{x:.3f}" for x in per_cut) + " |")
        L.append("")
        L.append("### Definitions of the candidate features")
        L.append("")
        L.append("Before the cut T; `tok(c)`: the idf-weighted bag of the channel name's tokens (split on "
                 "`/ _ - .`, lowercased), unit length; `namesim(c', c) = tok(c') . tok(c)`; `sim`: the pipeline's "
                 "all-time co-membership cosine; M(u) / M365(u): u's channels (all time / last 365 days); "
                 "P(u) / P365(u): u's interaction partners.")
        L.append("")
        L.append("| family | feature | definition |")
        L.append("|---|---|---|")
        for fam, feats in FAMILIES[src].items():
            for f in feats:
                formula = DEFINITIONS[src][f].replace("|", "\\|")   # a bare | would end the table cell
                L.append(f"| {fam} | {f} | `{formula}` |")
        L.append("")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        fh.write("\n".join(L).rstrip() + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset directory (channels/activity/interactions/hours .csv.gz)")
    p.add_argument("--out", default=None, help=f"the Markdown report (default {os.path.relpath(DEFAULT_OUT)}; "
                   "--quick needs its own)")
    p.add_argument("--quick", action="store_true", help="smoke test: 4 training cuts, 150 subjects, 50 trees")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.out is None:
        if args.quick:
            p.error("--quick needs --out: the default report is a full run's")
        args.out = DEFAULT_OUT
    progress.QUIET = args.quiet
    t_start = time.time()
    n_train, max_subjects, trees = (4, 150, 50) if args.quick else (16, None, 200)

    ds = load_dataset(args.data)
    names = ChannelNames(args.data, ds)
    lo, _ = ds.day_range()
    cuts = default_cuts(ds)
    plan = {T: training_cuts(T, n_train, LABEL_DAYS / 4, lo) for T in cuts}
    dates = sorted(set(cuts) | {c for tc in plan.values() for c in tc})
    log(f"dataset {ds.name}: eval cuts {[iso_of(T) for T in cuts]}, {len(dates)} cut dates to build")
    groups, stats = build_all(ds, names, dates, max_subjects, args.seed)
    timing = {"dates": len(dates), "build": time.time() - t_start}
    log(f"built in {timing['build']:.0f}s")
    t0 = time.time()
    results = run_variants(groups, cuts, plan, trees=trees, seed=args.seed, threads=args.threads)
    timing["variants"] = time.time() - t0
    t0 = time.time()
    singles = {src: single_features(src, groups, cuts) for src in SOURCES}
    oracles = {src: [oracle(groups[(T, src)]) for T in cuts] for src in SOURCES}
    timing["singles"] = time.time() - t0
    timing["total"] = time.time() - t_start
    write_report(args.out, ds=ds, args=args, cuts=cuts, plan=plan, n_train=n_train, max_subjects=max_subjects,
                 trees=trees, results=results, singles=singles, oracles=oracles, stats=stats, timing=timing)
    log(f"done in {time.time() - t_start:.0f}s -> {args.out}")


if __name__ == "__main__":
    main()
