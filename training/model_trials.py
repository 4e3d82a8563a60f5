#!/usr/bin/python3
"""Offline trials of other model families, training data and candidate scorers for channel_browser and
composer_dm.

    model_trials.py --data datasets/rails-collab [--out training/report/model-trials.md]
    model_trials.py --data DIR --out /tmp/model-trials.md --quick      # smoke test

Why it exists: issue 20 asks for +20% NDCG@10 over recent popularity on channel_browser and composer_dm.
feature_trials.py found no extra feature that lifts the base models; this script tries other model
families and scorers instead, measured exactly as feature_trials.py measures (same evaluation cuts, labels,
candidates, NDCG@10 and recent-popularity numbers, built by features.build_groups), and judged with the
promotion gate's rule against the better base model (lr or xgboost with the base features):

* collaborative scorers computed from the count tables before each cut (ids, days and counts only):
  EASE (Steck 2019) over the binary and the recency-weighted person x item matrix, RP3beta (a 3-step
  random walk person -> item -> person -> item with a popularity penalty), and sequential transitions
  (P(join B within 90 days | joined A), learned from the joins before the cut, scored from the subject's
  own recency-weighted joins). For channel_browser the items are channels (the matrix is the all-time
  membership B); for composer_dm the items are people (the all-time partner matrix P, columns restricted
  to the people alive at the cut, who are the only candidates). Each is evaluated alone, as an extra
  column for lr and xgboost, and rank-averaged with the better base model. Their hyper-parameter
  (EASE lambda, RP3 beta, transition recency tau) is chosen per evaluation cut on that cut's own training
  rankings (labels ending at or before the cut), never on the evaluation labels;
* LambdaMART (xgboost objective rank:ndcg, one query per ranking);
* per-ranking normalised features (each base feature's percentile rank / z-score within the subject's
  candidate list) added to xgboost;
* denser and longer training data: training cuts every 30 days (on one grid anchored at the last
  evaluation cut minus 365 days), over the same four years as train.py's 16 cuts 91.25 days apart, or over
  all of the history.

Everything at a cut date d reads only rows with day < d (features.Tables and the first-join tables below),
and a training cut's labels end at or before its evaluation cut, as in train.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from data import LABEL_DAYS, default_cuts, iso_of, load_dataset  # noqa: E402
from features import Cut, Group, baseline_scores, build_groups, feature_names  # noqa: E402
import feature_trials as FT  # noqa: E402
from feature_trials import complete, f3, f4, mean, oracle, signed  # noqa: E402
import gate as G  # noqa: E402
import models as M  # noqa: E402
import progress  # noqa: E402
from progress import log  # noqa: E402
from train import evaluate, training_cuts  # noqa: E402

SOURCES = FT.SOURCES
DEFAULT_OUT = os.path.join(HERE, "report", "model-trials.md")
TARGET = FT.TARGET
DENSE_STEP = 30
TRANS_WINDOW = 90       # a transition A -> B: B joined within 90 days after A (same day counts both ways)
TRANS_SMOOTH = 5.0      # P(B | A) = N(A, B) / (joins(A) + 5)

# Scorer families: name -> (parameter name, grid). Every (family, value) is one extra column; the value
# used at an evaluation cut is the one whose single-scorer NDCG@10 is best on that cut's training rankings.
FAMILIES: dict[str, dict[str, tuple[str, tuple]]] = {
    "channel_browser": {
        "ease": ("lambda", (10.0, 50.0, 250.0)),
        "ease_rec": ("lambda", (10.0, 50.0, 250.0)),
        "rp3": ("beta", (0.0, 0.3, 0.6)),
        "trans": ("tau", (90.0, 365.0)),
    },
    "composer_dm": {
        "ease": ("lambda", (2.0, 10.0, 50.0)),
        "ease_rec": ("lambda", (2.0, 10.0, 50.0)),
        "rp3": ("beta", (0.0, 0.3, 0.6)),
        "trans": ("tau", (90.0, 365.0)),
    },
}

DEFINITIONS = {
    "channel_browser": {
        "ease": "X = all-time membership B (person x channel, 0/1) before the cut; P = (X'X + lambda I)^-1; "
                "W = I - P diag(1/diag(P)) (zero diagonal); score(u, c) = (X W)[u, c]",
        "ease_rec": "as ease with X[u, c] = exp(-(T - last(u, c)) / 365) for members",
        "rp3": "Pui = X row-normalised, Piu = X' row-normalised; score(u, c) = (Pui Piu Pui)[u, c] / members(c)^beta",
        "trans": "N(A, B) = people whose first day in B is 0..90 days after their first day in A (B's before T); "
                 "score(u, c) = sum_{A in M(u)} exp(-(T - first(u, A)) / tau) N(A, c) / (joins(A) + 5)",
    },
    "composer_dm": {
        "ease": "X = all-time partner matrix P (person x person, 0/1) before the cut, columns = people alive at T; "
                "P' = (X'X + lambda I)^-1; W = I - P' diag(1/diag(P')); score(u, v) = (X W)[u, v]",
        "ease_rec": "as ease with X[u, x] = exp(-(T - last interaction(u, x)) / 365)",
        "rp3": "Pn = P row-normalised; score(u, v) = (Pn Pn Pn)[u, v] / partners(v)^beta",
        "trans": "N(x, v) = people whose first interaction with v is 0..90 days after their first with x (before T); "
                 "score(u, v) = sum_{x in P(u)} exp(-(T - first(u, x)) / tau) N(x, v) / (starts(x) + 5)",
    },
}


def extra_cols(src: str) -> list[str]:
    return [f"{f}@{p:g}" for f, (_, grid) in FAMILIES[src].items() for p in grid]


# --- first-join events and transitions --------------------------------------------------------------------


class Joins:
    """First-join events (person, item, day) over the whole dataset and the transition pairs between them.

    A person's first day with an item is the same at every cut after it, so one table serves every cut:
    at a cut T only events with day < T (and pairs whose later day is < T) are read."""

    def __init__(self, person, item, day, n_items: int, window: int = TRANS_WINDOW):
        self.n_items = n_items
        key = person.astype(np.int64) * n_items + item.astype(np.int64)
        order = np.lexsort((day, key))
        key, day = key[order], day[order]
        first = np.ones(len(key), bool)
        first[1:] = key[1:] != key[:-1]
        self.p, self.i, self.d = key[first] // n_items, key[first] % n_items, day[first]
        o = np.lexsort((self.i, self.d, self.p))
        p, i, d = self.p[o], self.i[o], self.d[o]
        a, b, db = [], [], []
        k = 1
        while k < len(p):
            ok = (p[k:] == p[:-k]) & (d[k:] - d[:-k] <= window)
            if not ok.any():
                break
            lo_, hi_ = np.flatnonzero(ok), np.flatnonzero(ok) + k
            a.append(i[lo_]); b.append(i[hi_]); db.append(d[hi_])
            same = d[hi_] == d[lo_]                      # same day: both directions
            a.append(i[hi_][same]); b.append(i[lo_][same]); db.append(d[hi_][same])
            k += 1
        self.pa = np.concatenate(a) if a else np.zeros(0, np.int64)
        self.pb = np.concatenate(b) if b else np.zeros(0, np.int64)
        self.pd = np.concatenate(db) if db else np.zeros(0, np.int64)

    def transition(self, T: int) -> sp.csr_matrix:
        """P(B | A) = N(A, B) / (joins(A) + smoothing), from events before T."""
        k = self.pd < T
        n = self.n_items
        N = sp.csr_matrix((np.ones(int(k.sum())), (self.pa[k], self.pb[k])), shape=(n, n))
        N.sum_duplicates()
        joins = np.bincount(self.i[self.d < T], minlength=n).astype(float)
        return (sp.diags(1.0 / (joins + TRANS_SMOOTH)) @ N).tocsr()


def ease_weights(X, lam: float) -> np.ndarray:
    """Steck's closed form: W = I - P diag(1/diag(P)), P = (X'X + lam I)^-1, with zero diagonal."""
    Gm = np.asarray((X.T @ X).todense() if sp.issparse(X) else X.T @ X, dtype=np.float64)
    Gm[np.diag_indices_from(Gm)] += lam
    P = np.linalg.inv(Gm)
    W = -P / np.diag(P)[None, :]
    W[np.diag_indices_from(W)] = 0.0
    return W


def row_normalise(X: sp.csr_matrix) -> sp.csr_matrix:
    s = np.asarray(X.sum(axis=1)).ravel()
    return (sp.diags(np.where(s > 0, 1.0 / np.where(s > 0, s, 1), 0.0)) @ X).tocsr()


class CutScorers:
    """The scorer columns (extra_cols) at one cut, for given subjects and their candidates."""

    def __init__(self, cut: Cut, joins: dict):
        self.cut, self.joins = cut, joins

    def channel_browser(self, groups) -> list[np.ndarray]:
        t, T = self.cut.t, self.cut.T
        subj = np.array([g.subject for g in groups], dtype=np.int64)
        out = {g.subject: {} for g in groups}
        if not len(subj):
            return []
        Xb = t.B[None]
        Xr = t.uc_last.copy().tocsr()
        Xr.data = np.exp(-(T - Xr.data) / 365.0)
        for fam, X in (("ease", Xb), ("ease_rec", Xr)):
            Xs = X[subj].toarray()
            for lam in FAMILIES["channel_browser"][fam][1]:
                S = Xs @ ease_weights(X, lam)
                for r, g in enumerate(groups):
                    out[g.subject][f"{fam}@{lam:g}"] = S[r, g.items]
        # RP3beta: item-item W = Piu Pui (C x C), then / pop^beta
        Pui, Piu = row_normalise(Xb), row_normalise(Xb.T.tocsr())
        S3 = (Pui[subj] @ (Piu @ Pui)).toarray()
        pop = np.asarray(Xb.sum(axis=0)).ravel()
        for beta in FAMILIES["channel_browser"]["rp3"][1]:
            pen = np.where(pop > 0, np.power(np.maximum(pop, 1), -beta), 0.0)
            for r, g in enumerate(groups):
                out[g.subject][f"rp3@{beta:g}"] = S3[r, g.items] * pen[g.items]
        self._trans("channel_browser", t.uc_first, subj, groups, out)
        return [np.column_stack([out[g.subject][c] for c in extra_cols("channel_browser")]) for g in groups]

    def composer_dm(self, groups) -> list[np.ndarray]:
        t, T = self.cut.t, self.cut.T
        subj = np.array([g.subject for g in groups], dtype=np.int64)
        out = {g.subject: {} for g in groups}
        if not len(subj):
            return []
        alive = np.flatnonzero(t.alive_people)
        pos = np.full(t.U, -1)
        pos[alive] = np.arange(len(alive))
        Pb = t.P[None]
        Pr = t.uu_last.copy().tocsr()
        Pr.data = np.exp(-(T - Pr.data) / 365.0)
        for fam, X in (("ease", Pb), ("ease_rec", Pr)):
            Xa = X[:, alive].tocsr()
            Xs = Xa[subj].toarray()
            for lam in FAMILIES["composer_dm"][fam][1]:
                S = Xs @ ease_weights(Xa, lam)
                for r, g in enumerate(groups):
                    out[g.subject][f"{fam}@{lam:g}"] = S[r, pos[g.items]]   # candidates are alive people
        Pn = row_normalise(Pb)
        S3 = (((Pn[subj] @ Pn) @ Pn)).toarray()
        pop = t.u_partners[None]
        for beta in FAMILIES["composer_dm"]["rp3"][1]:
            pen = np.where(pop > 0, np.power(np.maximum(pop, 1), -beta), 0.0)
            for r, g in enumerate(groups):
                out[g.subject][f"rp3@{beta:g}"] = S3[r, g.items] * pen[g.items]
        self._trans("composer_dm", t.uu_first, subj, groups, out)
        return [np.column_stack([out[g.subject][c] for c in extra_cols("composer_dm")]) for g in groups]

    def _trans(self, src, first, subj, groups, out):
        T = self.cut.T
        Ptr = self.joins[src].transition(T)
        F = first.tocsr()[subj]
        for tau in FAMILIES[src]["trans"][1]:
            W = F.copy()
            W.data = np.exp(-(T - W.data) / tau)
            S = (W @ Ptr).toarray()
            for r, g in enumerate(groups):
                out[g.subject][f"trans@{tau:g}"] = S[r, g.items]


def make_joins(ds) -> dict:
    m = ds.i_user != ds.i_other
    iu, iv, idy = ds.i_user[m], ds.i_other[m], ds.i_day[m]
    return {"channel_browser": Joins(ds.a_user, ds.a_chan, ds.a_day, ds.n_channels),
            "composer_dm": Joins(np.concatenate([iu, iv]), np.concatenate([iv, iu]), np.concatenate([idy, idy]),
                                 ds.n_users)}


def build_all(ds, dates, max_subjects, seed) -> tuple[dict, dict]:
    """(groups, stats) per (date, source); a group's X is [base features | extra_cols(source)]."""
    joins = make_joins(ds)
    groups, stats = {}, {}
    for n, d in enumerate(dates):
        t0 = time.time()
        cut = Cut(ds, d)
        sc = CutScorers(cut, joins)
        for src in SOURCES:
            gs, st = build_groups(cut, src, max_subjects=max_subjects, seed=seed)
            E = getattr(sc, src)(gs)
            groups[(d, src)] = [Group(g.subject, g.items, np.hstack([g.X, e]), g.y, g.n_pos) for g, e in zip(gs, E)]
            stats[(d, src)] = st
        log(f"  [{n + 1}/{len(dates)}] cut {iso_of(d)}: "
            + ", ".join(f"{s}={stats[(d, s)]['subjects']}" for s in SOURCES) + f" ({time.time() - t0:.1f}s)")
    return groups, stats


# --- variants ----------------------------------------------------------------------------------------------


def variants(src: str) -> list[dict]:
    fams = list(FAMILIES[src])
    V = [{"name": "recent_popularity", "kind": "baseline"},
         {"name": "lr", "kind": "lr"},
         {"name": "xgboost", "kind": "xgboost"}]
    for f in fams:
        V.append({"name": f"{f} alone", "kind": "single", "family": f})
    for f in fams:
        V.append({"name": f"rank average: best base + {f}", "kind": "blend", "family": f})
    for f in fams:
        for kind in ("lr", "xgboost"):
            V.append({"name": f"{kind} + {f}", "kind": kind, "extras": (f,)})
    for kind in ("lr", "xgboost"):
        V.append({"name": f"{kind} + all scorers", "kind": kind, "extras": tuple(fams)})
    V.append({"name": "lambdamart", "kind": "lambdamart"})
    V.append({"name": "lambdamart + all scorers", "kind": "lambdamart", "extras": tuple(fams)})
    V.append({"name": "xgboost + per-ranking ranks", "kind": "xgboost", "norm": "rank"})
    V.append({"name": "xgboost + per-ranking z-scores", "kind": "xgboost", "norm": "z"})
    V.append({"name": "xgboost + all scorers + per-ranking ranks", "kind": "xgboost", "extras": tuple(fams),
              "norm": "rank"})
    for train in ("dense4y", "denseall"):
        for kind in ("lr", "xgboost", "lambdamart"):
            V.append({"name": f"{kind}, {train}", "kind": kind, "train": train})
        V.append({"name": f"xgboost + all scorers, {train}", "kind": "xgboost", "train": train,
                  "extras": tuple(fams)})
    # rank averages (sum of within-ranking ranks) of variants fitted above, on their own columns
    V.append({"name": "rank average: lr + xgboost", "kind": "ensemble", "members": ("lr", "xgboost")})
    V.append({"name": "rank average: base-feature models", "kind": "ensemble",
              "members": ("lr", "xgboost", "lambdamart", "lr, dense4y", "xgboost, dense4y", "lambdamart, dense4y",
                          "lr, denseall", "xgboost, denseall", "lambdamart, denseall")})
    V.append({"name": "rank average: lr + all scorers, xgboost + all scorers", "kind": "ensemble",
              "members": ("lr + all scorers", "xgboost + all scorers")})
    for v in V:
        v.setdefault("extras", ())
        v.setdefault("train", "default")
        v.setdefault("norm", None)
    return V


def normalise(X: np.ndarray, nb: int, how: str | None) -> np.ndarray:
    """Append each base column's within-ranking percentile rank (average ties) or z-score."""
    if how is None or len(X) == 0:
        return X
    B = X[:, :nb]
    if how == "rank":
        Z = np.empty_like(B)
        for j in range(B.shape[1]):     # average rank of ties, as rankdata, divided by the list length
            srt = np.sort(B[:, j])
            Z[:, j] = (np.searchsorted(srt, B[:, j], "left") + np.searchsorted(srt, B[:, j], "right") + 1) / 2
        Z /= len(B)
    else:
        sd = B.std(axis=0)
        Z = np.where(sd > 0, (B - B.mean(axis=0)) / np.where(sd > 0, sd, 1), 0.0)
    return np.hstack([X, Z])


class Runner:
    def __init__(self, groups, cuts, plans, *, trees, seed, threads):
        self.groups, self.cuts, self.plans = groups, cuts, plans
        self.trees, self.seed, self.threads = trees, seed, threads
        self.choice = {}      # (src, T, family) -> chosen grid value
        self.fitted = {}      # (src, T, variant name) -> scorer of a fitted variant over a group's full X

    def train_groups(self, src, T, train):
        return [g for c in self.plans[train][T] for g in self.groups[(c, src)] if g.y.sum() > 0]

    def choose(self, src, T, fam) -> float:
        """The grid value whose single-scorer NDCG@10 is best on T's default training rankings."""
        key = (src, T, fam)
        if key not in self.choice:
            nb, ext = len(feature_names(src)), extra_cols(src)
            tr = self.train_groups(src, T, "default")
            best = None
            for p in FAMILIES[src][fam][1]:
                j = nb + ext.index(f"{fam}@{p:g}")
                nd = evaluate(src, tr, lambda X, j=j: X[:, j])["ndcg10"] if tr else 0.0
                if best is None or nd > best[0]:
                    best = (nd, p)
            self.choice[key] = best[1]
        return self.choice[key]

    def columns(self, src, T, fams) -> np.ndarray:
        nb, ext = len(feature_names(src)), extra_cols(src)
        return np.array(list(range(nb)) + [nb + ext.index(f"{f}@{self.choose(src, T, f):g}") for f in fams],
                        dtype=np.int64)

    def view(self, src, gs, cols, norm):
        nb = len(feature_names(src))
        return [Group(g.subject, g.items, normalise(g.X[:, cols], nb, norm), g.y, g.n_pos) for g in gs]

    def fit(self, kind, train):
        if kind in M.KINDS:
            return FT.fit_scorer(kind, train, trees=self.trees, seed=self.seed, threads=self.threads)
        if kind == "lambdamart":
            import xgboost as xgb

            X = np.vstack([g.X for g in train]) if train else np.zeros((0, 0))
            y = np.concatenate([g.y for g in train]) if train else np.zeros(0)
            if len(y) == 0 or y.min() == y.max():
                raise M.OneClass(f"{len(y)} rows, positives={int(y.sum())}")
            qid = np.concatenate([np.full(len(g.y), i) for i, g in enumerate(train)])
            model = xgb.XGBRanker(n_estimators=self.trees, objective="rank:ndcg",
                                  learning_rate=M.learning_rate(self.trees), n_jobs=self.threads,
                                  random_state=self.seed, **M.XGB_PARAMS)
            model.fit(X, y, qid=qid)
            return lambda Z: model.predict(Z) if len(Z) else np.zeros(0)
        raise ValueError(kind)

    def run(self, src, v) -> dict:
        per_cut, notes = [], []
        nb = len(feature_names(src))
        for T in self.cuts:
            ev_all = self.groups[(T, src)]
            try:
                if v["kind"] == "baseline":
                    s = evaluate(src, ev_all, lambda X: baseline_scores(src, v["name"], X))["ndcg10"]
                elif v["kind"] == "single":
                    j = int(self.columns(src, T, (v["family"],))[-1])
                    s = evaluate(src, ev_all, lambda X: X[:, j])["ndcg10"]
                    notes.append(f"{iso_of(T)}: {FAMILIES[src][v['family']][0]} = {self.choose(src, T, v['family']):g}")
                elif v["kind"] == "ensemble":
                    fs = [self.fitted.get((src, T, m)) for m in v["members"]]
                    if any(f is None for f in fs):
                        raise M.OneClass("a member was not fitted")
                    s = evaluate(src, ev_all, lambda X: sum(rankdata(f(X)) for f in fs))["ndcg10"]
                elif v["kind"] == "blend":
                    base = self.best_base_kind(src)
                    f = self.fitted.get((src, T, base))
                    if f is None:
                        raise M.OneClass("the base model was not fitted")
                    j = int(self.columns(src, T, (v["family"],))[-1])
                    s = evaluate(src, ev_all, lambda X: rankdata(f(X)) + rankdata(X[:, j]))["ndcg10"]
                else:
                    cols = self.columns(src, T, v["extras"])
                    train = self.view(src, self.train_groups(src, T, v["train"]), cols, v["norm"])
                    scorer = self.fit(v["kind"], train)
                    norm = v["norm"]
                    self.fitted[(src, T, v["name"])] = lambda X, sc=scorer, cols=cols, norm=norm: sc(
                        normalise(X[:, cols], nb, norm))
                    s = evaluate(src, self.view(src, ev_all, cols, v["norm"]), scorer)["ndcg10"]
                per_cut.append(s)
            except M.OneClass as e:
                per_cut.append(None)
                notes.append(f"{iso_of(T)}: not fitted ({e})")
        return {**v, "per_cut": per_cut, "notes": notes}

    def best_base_kind(self, src) -> str:
        return FT.best_base(self.results[src])

    def run_all(self) -> dict:
        self.results = {}
        for src in SOURCES:
            self.results[src] = {}
            for v in variants(src):
                t0 = time.time()
                r = self.run(src, v)
                r["seconds"] = time.time() - t0
                self.results[src][v["name"]] = r
                shown = " ".join("n/a" if x is None else f"{x:.3f}" for x in r["per_cut"])
                log(f"  {src} {v['name']}: {shown} ({r['seconds']:.1f}s)")
        return self.results


# --- verdicts and the report ------------------------------------------------------------------------------


def judge(res: dict, name: str) -> tuple[str | None, dict | None, bool]:
    """(reference, gate comparison, kept) of a variant against the better base model."""
    base = FT.best_base(res)
    if base is None or name == base or name in ("lr", "xgboost", "recent_popularity") or not complete(res[name]):
        return base, None, False
    d = G.compare(res[name]["per_cut"], res[base]["per_cut"], k=1.0, min_margin=0.0)
    kept = d["improvement"] > 0 and d["passes"] and d["improvement"] > G.DEFAULT_MIN_MARGIN
    return base, d, kept


def why(d) -> str:
    if d is None:
        return ""
    if d["improvement"] <= 0:
        return "D <= 0"
    if not d["passes"]:
        return "D <= S"
    if d["improvement"] <= G.DEFAULT_MIN_MARGIN:
        return f"D <= {G.DEFAULT_MIN_MARGIN}"
    return "kept"


def write_report(path, *, ds, args, cuts, plans, trees, max_subjects, results, oracles, stats, timing, choice):
    L = []
    run = "QUICK smoke test, not a result" if args.quick else "full run"
    L += ["# Model trials: channel_browser and composer_dm", "",
          f"Written by `training/model_trials.py` ({run}). Regenerate with:", "", "```sh",
          f"/usr/bin/python3 training/model_trials.py --data {args.data}" + (" --quick" if args.quick else "")
          + (f" --out {args.out}" if os.path.abspath(args.out) != DEFAULT_OUT else ""), "```", ""]
    last = cuts[-1]
    L.append(f"- Dataset: `{ds.name}` ({ds.n_users} people, {ds.n_channels} channels).")
    L.append(f"- Evaluation cuts: {', '.join(iso_of(T) for T in cuts)}; labels: the {LABEL_DAYS} days after each; "
             f"subjects, candidates ({FT.CANDIDATES_PER_GENERATOR} per generator), labels and base features from "
             f"features.build_groups, NDCG@10 from train.evaluate, as train.py and feature_trials.py "
             f"({'all subjects' if max_subjects is None else f'at most {max_subjects} subjects'} per cut).")
    L.append(f"- Training data `default`: train.training_cuts(T, {args.n_train}, {LABEL_DAYS / 4:g}) (for "
             f"{iso_of(last)}: {len(plans['default'][last])} cuts {iso_of(plans['default'][last][0])} .. "
             f"{iso_of(plans['default'][last][-1])}); `dense4y`: the cuts of a {DENSE_STEP}-day grid "
             f"(anchored at {iso_of(last)} - {LABEL_DAYS} days) from the first default training cut to T - "
             f"{LABEL_DAYS} ({len(plans['dense4y'][last])} for {iso_of(last)}); `denseall`: every grid cut "
             f"with a year of history up to T - {LABEL_DAYS} ({len(plans['denseall'][last])} for {iso_of(last)}, "
             f"from {iso_of(plans['denseall'][last][0])}). Only rankings with a positive among the candidates "
             f"are trained on; every training cut's labels end at or before T.")
    L.append(f"- Models: lr and xgboost from models.fit with models.sample_weights (xgboost {trees} trees, "
             f"learning rate {M.learning_rate(trees):g}, {M.XGB_PARAMS}); LambdaMART = xgboost.XGBRanker "
             f"objective rank:ndcg with one query per ranking and the same tree parameters (xgboost 1.7 has no "
             f"lambdarank_pair_method / lambdarank_num_pair_per_sample; those need xgboost >= 2.0). Seed "
             f"{args.seed}, {args.threads} threads.")
    L.append(f"- Runtime: {timing['total']:.0f} s ({timing['build']:.0f} s building {timing['dates']} cut dates "
             f"with their scorer columns, {timing['variants']:.0f} s fitting and evaluating the variants).")
    L.append("- Target: +20% over recent popularity: " + "; ".join(
        f"{src} {TARGET * mean(results[src]['recent_popularity']):.3f} (recent popularity "
        f"{mean(results[src]['recent_popularity']):.3f})" for src in SOURCES) + ".")
    L.append("- Verdict rule (the promotion gate's, as feature_trials.py): a variant is **kept** only if against "
             f"the better base model (lr or xgboost, base features, default training data) the mean per-cut "
             f"difference D > S (its sample std across cuts, ddof 1) and D > {G.DEFAULT_MIN_MARGIN}.")
    L.append("- Privacy: every scorer reads ids, days and counts of the count tables only (no channel names).")
    L.append("")
    L.append("## Summary")
    L.append("")
    for src in SOURCES:
        res = results[src]
        rp = mean(res["recent_popularity"])
        base = FT.best_base(res)
        best = max((n for n in res if complete(res[n])), key=lambda n: mean(res[n]))
        kept = [n for n in res if judge(res, n)[2]]
        L.append(f"- {src}: better base model {base} {f3(mean(res[base]))} ({f3(mean(res[base]) / rp)} x recent "
                 f"popularity); best variant {best} {f3(mean(res[best]))} ({f3(mean(res[best]) / rp)} x); target "
                 f"{TARGET * rp:.3f} {'reached' if mean(res[best]) >= TARGET * rp else 'not reached'}; kept by the "
                 f"gate rule: {', '.join(kept) if kept else 'none'}.")
    L.append("")
    for src in SOURCES:
        res = results[src]
        rp = mean(res["recent_popularity"])
        L += [f"## {src}", ""]
        L.append("| cut | subjects | rows | positives | in candidates | oracle NDCG@10 |")
        L.append("|---|---|---|---|---|---|")
        for T, o in zip(cuts, oracles[src]):
            st = stats[(T, src)]
            L.append(f"| {iso_of(T)} | {st['subjects']} | {st['rows']} | {st['positives']} | "
                     f"{st['positives_in_candidates']} | {o:.3f} |")
        L.append("")
        L.append("| variant | mean | x rp | " + " | ".join(iso_of(T) for T in cuts)
                 + " | ref | D | S | D per cut | verdict |")
        L.append("|---|---|---|" + "---|" * len(cuts) + "---|---|---|---|---|")
        for name, r in res.items():
            m = mean(r)
            ref, d, kept = judge(res, name)
            L.append(f"| {name} | {f3(m)} | {f3(m / rp) if m is not None else 'n/a'} | "
                     + " | ".join(f3(x) for x in r["per_cut"])
                     + f" | {ref if d else ''} | {signed(d['improvement']) if d else ''} | "
                     f"{f4(d['improvement_std']) if d else ''} | "
                     f"{', '.join(signed(x) for x in d['improvement_per_cut']) if d else ''} | "
                     f"{('**kept**' if kept else 'not kept (' + why(d) + ')') if d else ''} |")
        L.append("")
        L.append("Hyper-parameters chosen per evaluation cut on its default training rankings: "
                 + "; ".join(f"{f} ({FAMILIES[src][f][0]}) " + ", ".join(
                     f"{iso_of(T)}: {choice.get((src, T, f), float('nan')):g}" for T in cuts) for f in FAMILIES[src])
                 + ".")
        notes = [f"{n}: {x}" for n, r in res.items() for x in r["notes"] if "not fitted" in x]
        if notes:
            L.append("")
            L.extend(f"- {x}" for x in notes)
        L.append("")
        L.append("| scorer | definition (all before the cut T) |")
        L.append("|---|---|")
        for f, text in DEFINITIONS[src].items():
            L.append(f"| {f} | `{text}` |")
        L.append("")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        fh.write("\n".join(L).rstrip() + "\n")


def make_plans(cuts, lo, n_train, dense: bool = True) -> dict:
    plans = {"default": {T: training_cuts(T, n_train, LABEL_DAYS / 4, lo) for T in cuts}}
    anchor = cuts[-1] - LABEL_DAYS
    grid = [anchor - DENSE_STEP * k for k in range(0, 10 ** 6) if anchor - DENSE_STEP * k - lo >= 365]
    grid = sorted(grid)
    plans["denseall"] = {T: [d for d in grid if d <= T - LABEL_DAYS] for T in cuts}
    plans["dense4y"] = {T: [d for d in grid if (min(plans["default"][T], default=T - LABEL_DAYS) <= d
                                                <= T - LABEL_DAYS)] for T in cuts}
    return plans


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--out", default=None, help=f"the Markdown report (default {os.path.relpath(DEFAULT_OUT)}; "
                   "--quick needs its own)")
    p.add_argument("--quick", action="store_true", help="smoke test: 4 training cuts, 150 subjects, 50 trees")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.out is None:
        if args.quick:
            p.error("--quick needs --out: the default report is a full run's")
        args.out = DEFAULT_OUT
    progress.QUIET = args.quiet
    np.random.seed(args.seed)
    t_start = time.time()
    args.n_train, max_subjects, trees = (4, 150, 50) if args.quick else (16, None, 200)
    ds = load_dataset(args.data)
    lo, _ = ds.day_range()
    cuts = default_cuts(ds)
    plans = make_plans(cuts, lo, args.n_train)
    if args.quick:   # a smoke test: the dense grids thinned to their last 4 cuts
        for k in ("dense4y", "denseall"):
            plans[k] = {T: v[-4:] for T, v in plans[k].items()}
    dates = sorted(set(cuts) | {c for pl in plans.values() for tc in pl.values() for c in tc})
    log(f"dataset {ds.name}: eval cuts {[iso_of(T) for T in cuts]}, {len(dates)} cut dates to build")
    groups, stats = build_all(ds, dates, max_subjects, args.seed)
    timing = {"dates": len(dates), "build": time.time() - t_start}
    log(f"built in {timing['build']:.0f}s")
    t0 = time.time()
    runner = Runner(groups, cuts, plans, trees=trees, seed=args.seed, threads=args.threads)
    results = runner.run_all()
    timing["variants"] = time.time() - t0
    oracles = {src: [oracle(groups[(T, src)]) for T in cuts] for src in SOURCES}
    timing["total"] = time.time() - t_start
    write_report(args.out, ds=ds, args=args, cuts=cuts, plans=plans, trees=trees, max_subjects=max_subjects,
                 results=results, oracles=oracles, stats=stats, timing=timing, choice=runner.choice)
    log(f"done in {timing['total']:.0f}s -> {args.out}")
    if not args.quiet:
        print(f"model_trials: {timing['total']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
