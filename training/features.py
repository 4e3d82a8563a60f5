"""Every feature, candidate set and label of the recommenders, for one cut date T.

This is the only module with feature logic; FEATURES.md is its specification
and must be kept in step (a unit test checks that every feature name here is
defined there). The TypeScript side recomputes the same features online from
the same count tables.

Conventions (all of them in FEATURES.md):

* Days are ordinals. A cut T splits history: features read only rows with
  ``day < T``; labels read rows with ``T <= day < T + 365``.
* Window ``w`` (30, 90, 365 days) is ``T - w <= day < T``; ``all`` is
  ``day < T``.
* ``ld(x) = log1p(min(x, 3650))`` for day distances; a missing day distance
  (never happened) is ``ld(3650)``.
* ``log1p`` is the natural logarithm of 1 + x.
* Ties in any top-K or ranking are broken by the smaller id (= smaller index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from data import LABEL_DAYS, Dataset, iso_of

WINDOWS = (30, 90, 365, None)          # None = all time before T
DAYS_CAP = 3650
MISSING_DAYS_LOG = math.log1p(DAYS_CAP)
EMBED_DIMS = 24
EMBED_DECIMALS = 4
CANDIDATES_PER_GENERATOR = 50
HOURS = 24

SOURCES = ("channel_browser", "composer_dm", "invite", "leave", "archive", "send_time")


def ld(days):
    """log1p(min(days, 3650)), elementwise."""
    return np.log1p(np.minimum(np.asarray(days, dtype=np.float64), DAYS_CAP))


def ld_since(T: int, last):
    """ld(T - last) where last > 0, else the missing value ld(3650)."""
    last = np.asarray(last, dtype=np.float64)
    out = np.full(last.shape, MISSING_DAYS_LOG)
    has = last > 0
    out[has] = ld(T - last[has])
    return out


# ---------------------------------------------------------------------------
# Feature lists per source: (name, default). The default is what a server uses
# when the value cannot be computed (an id unknown to its tables); the offline
# pipeline always computes the value, and the value of "never happened" equals
# the default.
# ---------------------------------------------------------------------------

def _d(name):
    return (name, MISSING_DAYS_LOG if "days_since" in name else 0.0)


FEATURES: dict[str, list[tuple[str, float]]] = {
    "channel_browser": [_d(n) for n in (
        # channel
        "ch_members_log", "ch_active_users_90_log", "ch_active_users_365_log", "ch_new_members_90_log",
        "ch_new_members_365_log", "ch_commits_30_log", "ch_days_since_last_log", "ch_age_log",
        # user x channel
        "cos_user_channel", "cf_sum", "cf_max", "cf_recent_sum", "cf_cond_365", "sameday_365_log",
        "expected_days_365_log", "partners_members_log", "partners_active_365_log", "ucf_365_log",
        # user
        "u_active_days_365_log", "u_channels_log", "u_days_since_last_log",
    )],
    "composer_dm": [_d(n) for n in (
        # candidate person
        "v_partners_log", "v_partners_90_log", "v_partners_365_log", "v_interactions_365_log",
        "v_active_days_90_log", "v_active_days_365_log",
        "v_days_since_last_log", "v_new_partners_90_log", "v_new_partners_365_log", "v_out_365_log",
        "v_in_365_log", "v_newcomer_partners_365_log",
        # user x person
        "shared_channels_log", "shared_channels_365_log", "adamic_adar", "cos_user_user", "common_partners_log",
        "common_partners_365_log", "v_days_in_u_channels_365_log", "v_share_in_u_channels_365", "role_match",
        # conversation context
        "ctx_interactions_log", "ctx_cos", "ctx_shared_channels_log",
        # user
        "u_partners_log", "u_active_days_365_log",
    )],
    "invite": [_d(n) for n in (
        # candidate person
        "v_partners_log", "v_partners_90_log", "v_partners_365_log", "v_interactions_365_log",
        "v_active_days_90_log", "v_active_days_365_log",
        "v_days_since_last_log", "v_new_partners_90_log", "v_new_partners_365_log", "v_out_365_log",
        "v_in_365_log", "v_newcomer_partners_365_log",
        # first-day channels x person
        "fd_member_count", "fd_active_365_count", "fd_share_365", "fd_share_all", "fd_cos_mean", "fd_cf_365",
        "fd_days_365_log",
        # first-day partners x person
        "fdp_interactions_log", "fdp_common_partners_log", "fdp_cos_max",
        # new member
        "fd_channels", "fd_partners",
    )],
    "leave": [_d(n) for n in (
        "uc_days_30_log", "uc_days_90_log", "uc_days_365_log", "uc_days_all_log",
        "uc_commits_365_log", "uc_days_since_last_log", "uc_tenure_log", "uc_share_365",
        "ch_active_users_90_log", "ch_active_users_365_log", "ch_days_since_last_log",
        "ch_members_log", "u_active_days_365_log", "u_channels_365_log", "cos_user_channel",
        "partners_active_365_log",
    )],
    "archive": [_d(n) for n in (
        "ch_active_users_30_log", "ch_active_users_90_log", "ch_active_users_365_log",
        "ch_members_log", "ch_commits_90_log", "ch_commits_365_log", "ch_active_days_365_log",
        "ch_days_since_last_log", "ch_age_log", "ch_new_members_90_log", "ch_new_members_365_log",
    )],
    "send_time": [_d(n) for n in (
        "uh_share_365", "uh_share_90", "uh_share_all", "uh_neighbors_share_365",
        "uh_days_365_log", "uh_days_since_last_log", "team_h_share_90", "team_h_share_365",
        "team_h_share_all", "u_hour_days_365_log",
    )],
}


def feature_names(source: str) -> list[str]:
    return [n for n, _ in FEATURES[source]]


def feature_defaults(source: str) -> list[dict]:
    return [{"name": n, "default": float(d)} for n, d in FEATURES[source]]


# Baselines: (feature, sign). The score is sign * feature; ties by smaller id.
BASELINES: dict[str, dict[str, tuple[str, float]]] = {
    "channel_browser": {"popularity": ("ch_members_log", 1.0), "recent_popularity": ("ch_active_users_90_log", 1.0)},
    "composer_dm": {"popularity": ("v_partners_log", 1.0), "recent_popularity": ("v_partners_90_log", 1.0)},
    "invite": {"popularity": ("v_partners_log", 1.0), "recent_popularity": ("v_partners_90_log", 1.0)},
    "leave": {"popularity": ("ch_members_log", -1.0), "recent_popularity": ("ch_active_users_90_log", -1.0)},
    "archive": {"popularity": ("ch_members_log", -1.0), "recent_popularity": ("ch_active_users_90_log", -1.0)},
    "send_time": {"popularity": ("team_h_share_all", 1.0), "recent_popularity": ("team_h_share_90", 1.0)},
}

# Hand-tuned rules: score = sum(weight * feature). Fixed, never fitted.
HAND_TUNED: dict[str, dict[str, float]] = {
    "channel_browser": {"ch_active_users_90_log": 1.0, "ucf_365_log": 0.5, "partners_active_365_log": 0.5},
    "composer_dm": {"v_partners_90_log": 1.0, "v_days_in_u_channels_365_log": 0.5, "ctx_interactions_log": 0.5,
                    "common_partners_log": 0.5},
    "invite": {"v_partners_90_log": 1.0, "fd_days_365_log": 0.5, "fdp_interactions_log": 0.5},
    "leave": {"uc_days_since_last_log": 1.0, "uc_days_365_log": -1.0, "ch_active_users_90_log": -0.5},
    "archive": {"ch_days_since_last_log": 1.0, "ch_active_users_365_log": -1.0, "ch_commits_90_log": -0.5},
    "send_time": {"uh_share_365": 1.0, "uh_neighbors_share_365": 0.5, "team_h_share_365": 0.1},
}

OUTPUT_MEANING = {
    "channel_browser": "probability that the user first posts in the channel within 365 days",
    "composer_dm": "probability that the user first interacts with the person within 365 days",
    "invite": "probability that the new member works with the person (interaction or shared channel activity) "
              "after their first day, within the 365 days from the cut",
    "leave": "probability that the user has no activity in the channel in the next 365 days",
    "archive": "probability that nobody has activity in the channel in the next 365 days",
    "send_time": "probability that the user is active at this local hour in the next 365 days",
}


def baseline_scores(source: str, model: str, X: np.ndarray) -> np.ndarray:
    names = feature_names(source)
    if model == "hand_tuned":
        s = np.zeros(X.shape[0])
        for f, w in HAND_TUNED[source].items():
            s += w * X[:, names.index(f)]
        return s
    f, sign = BASELINES[source][model]
    return sign * X[:, names.index(f)]


# ---------------------------------------------------------------------------
# Count tables at a cut
# ---------------------------------------------------------------------------

def _csr(rows, cols, vals, shape) -> sp.csr_matrix:
    m = sp.csr_matrix((np.asarray(vals, dtype=np.float64), (rows, cols)), shape=shape)
    m.sum_duplicates()
    return m


def _csr_reduce(rows, cols, vals, shape, op) -> sp.csr_matrix:
    """Sparse matrix whose (r, c) is op (np.maximum / np.minimum) over duplicates."""
    if len(rows) == 0:
        return sp.csr_matrix(shape, dtype=np.float64)
    key = rows.astype(np.int64) * shape[1] + cols.astype(np.int64)
    order = np.argsort(key, kind="stable")
    key, vals = key[order], np.asarray(vals, dtype=np.float64)[order]
    uniq, start = np.unique(key, return_index=True)
    red = op.reduceat(vals, start)
    return sp.csr_matrix((red, (uniq // shape[1], uniq % shape[1])), shape=shape)


def dense_row(m: sp.csr_matrix, i: int) -> np.ndarray:
    out = np.zeros(m.shape[1])
    a, b = m.indptr[i], m.indptr[i + 1]
    out[m.indices[a:b]] = m.data[a:b]
    return out


def row_indices(m: sp.csr_matrix, i: int) -> np.ndarray:
    a, b = m.indptr[i], m.indptr[i + 1]
    idx = m.indices[a:b][m.data[a:b] != 0]
    return np.sort(idx)


class Tables:
    """The count tables of FEATURES.md, built from rows with day < T."""

    def __init__(self, ds: Dataset, T: int):
        self.ds, self.T = ds, T
        U, C = ds.n_users, ds.n_channels
        self.U, self.C = U, C

        # --- activity, deduplicated to one row per (day, user, channel)
        m = ds.a_day < T
        day, u, c, commits = ds.a_day[m], ds.a_user[m], ds.a_chan[m], ds.a_commits[m]
        if len(day):
            trip = np.stack([day, u, c], axis=1)
            uniq, inv = np.unique(trip, axis=0, return_inverse=True)
            inv = np.asarray(inv).ravel()
            commits = np.bincount(inv, weights=commits, minlength=len(uniq))
            day, u, c = uniq[:, 0], uniq[:, 1], uniq[:, 2]
        self.uc_days, self.uc_commits = {}, {}
        self.ch_users, self.ch_commits, self.ch_days = {}, {}, {}
        self.u_days, self.u_commits, self.u_channels = {}, {}, {}
        for w in WINDOWS:
            k = np.ones(len(day), bool) if w is None else day >= T - w
            self.uc_days[w] = _csr(u[k], c[k], np.ones(k.sum()), (U, C))
            self.uc_commits[w] = _csr(u[k], c[k], commits[k], (U, C))
            self.ch_users[w] = np.asarray((self.uc_days[w] > 0).sum(axis=0)).ravel().astype(float)
            self.ch_commits[w] = np.asarray(self.uc_commits[w].sum(axis=0)).ravel()
            self.u_channels[w] = np.asarray((self.uc_days[w] > 0).sum(axis=1)).ravel().astype(float)
            self.u_commits[w] = np.asarray(self.uc_commits[w].sum(axis=1)).ravel()
            dc = np.unique(np.stack([day[k], c[k]], axis=1), axis=0) if k.any() else np.zeros((0, 2), int)
            self.ch_days[w] = np.bincount(dc[:, 1], minlength=C).astype(float)
            du = np.unique(np.stack([day[k], u[k]], axis=1), axis=0) if k.any() else np.zeros((0, 2), int)
            self.u_days[w] = np.bincount(du[:, 1], minlength=U).astype(float)
        self.uc_first = _csr_reduce(u, c, day, (U, C), np.minimum)
        self.uc_last = _csr_reduce(u, c, day, (U, C), np.maximum)
        self.ch_first = np.zeros(C)
        self.ch_last = np.zeros(C)
        self.u_first = np.zeros(U)
        self.u_last = np.zeros(U)
        if len(day):
            np.maximum.at(self.ch_last, c, day)
            np.maximum.at(self.u_last, u, day)
            big = np.iinfo(np.int64).max
            cf = np.full(C, big)
            np.minimum.at(cf, c, day)
            self.ch_first = np.where(cf == big, 0, cf).astype(float)
            uf = np.full(U, big)
            np.minimum.at(uf, u, day)
            self.u_first = np.where(uf == big, 0, uf).astype(float)
        # new members: (user, channel) pairs whose first day is in the window
        fr, fc = self.uc_first.nonzero()
        fd = np.asarray(self.uc_first[fr, fc]).ravel()
        self.ch_new_members = {}
        for w in WINDOWS:
            k = np.ones(len(fd), bool) if w is None else fd >= T - w
            self.ch_new_members[w] = np.bincount(fc[k], minlength=C).astype(float)

        self.B = {w: (self.uc_days[w] > 0).astype(np.float64).tocsr() for w in WINDOWS}
        self.B_csc = {w: self.B[w].tocsc() for w in WINDOWS}
        self.uc_commits_csc = {w: self.uc_commits[w].tocsc() for w in WINDOWS}

        # --- channel-channel co-membership (all time) and same-day co-activity (365)
        B = self.B[None]
        self.comembers = (B.T @ B).toarray()
        members = np.diag(self.comembers).copy()
        denom = np.sqrt(np.outer(members, members))
        with np.errstate(invalid="ignore", divide="ignore"):
            self.sim = np.where(denom > 0, self.comembers / np.where(denom > 0, denom, 1), 0.0)
        k = day >= T - 365
        if k.any():
            ud, ud_inv = np.unique(np.stack([u[k], day[k]], axis=1), axis=0, return_inverse=True)
            X = _csr(np.asarray(ud_inv).ravel(), c[k], np.ones(k.sum()), (len(ud), C))
            X.data[:] = 1.0
            self.sameday365 = (X.T @ X).toarray()
        else:
            self.sameday365 = np.zeros((C, C))

        # --- interactions, undirected, self-interactions dropped
        m = (ds.i_day < T) & (ds.i_user != ds.i_other)
        iday, iu, iv, icnt = ds.i_day[m], ds.i_user[m], ds.i_other[m], ds.i_count[m]
        r = np.concatenate([iu, iv])
        cc = np.concatenate([iv, iu])
        dd = np.concatenate([iday, iday])
        vv = np.concatenate([icnt, icnt])
        self.uu_count = {}
        for w in WINDOWS:
            k = np.ones(len(dd), bool) if w is None else dd >= T - w
            self.uu_count[w] = _csr(r[k], cc[k], vv[k], (U, U))
        self.uu_last = _csr_reduce(r, cc, dd, (U, U), np.maximum)
        self.uu_first = _csr_reduce(r, cc, dd, (U, U), np.minimum)
        self.u_new_partners = {}
        for w in WINDOWS:
            first = self.uu_first.copy()
            if w is not None:
                first.data = (first.data >= T - w).astype(np.float64)
            else:
                first.data = np.ones_like(first.data)
            self.u_new_partners[w] = np.asarray(first.sum(axis=1)).ravel()
        self.P = {w: (self.uu_count[w] > 0).astype(np.float64).tocsr() for w in WINDOWS}
        self.u_partners = {w: np.asarray(self.P[w].sum(axis=1)).ravel() for w in WINDOWS}
        self.u_interactions = {w: np.asarray(self.uu_count[w].sum(axis=1)).ravel() for w in WINDOWS}
        # directed: out = rows where the user is user_id (acted on the other's work), in = other_user_id
        self.u_out, self.u_in = {}, {}
        for w in WINDOWS:
            k = np.ones(len(iday), bool) if w is None else iday >= T - w
            self.u_out[w] = np.bincount(iu[k], weights=icnt[k], minlength=U)
            self.u_in[w] = np.bincount(iv[k], weights=icnt[k], minlength=U)
        newcomer = ((self.u_first >= T - 365) & (self.u_first > 0)).astype(np.float64)
        self.u_newcomer_partners_365 = self.P[365] @ newcomer
        self.u_out_share = (self.u_out[None] + 0.5) / (self.u_out[None] + self.u_in[None] + 1.0)
        self.u_ilast = np.zeros(U)
        if len(dd):
            np.maximum.at(self.u_ilast, r, dd)

        # --- hours
        m = ds.h_day < T
        hday, hu, hh, hc = ds.h_day[m], ds.h_user[m], ds.h_hour[m], ds.h_commits[m]
        self.uh_commits, self.uh_days, self.u_hour_days, self.team_h_commits = {}, {}, {}, {}
        for w in WINDOWS:
            k = np.ones(len(hday), bool) if w is None else hday >= T - w
            uh = np.zeros((U, HOURS))
            np.add.at(uh, (hu[k], hh[k]), hc[k])
            self.uh_commits[w] = uh
            self.team_h_commits[w] = uh.sum(axis=0)
            trip = np.unique(np.stack([hday[k], hu[k], hh[k]], axis=1), axis=0) if k.any() else np.zeros((0, 3), int)
            dh = np.zeros((U, HOURS))
            np.add.at(dh, (trip[:, 1], trip[:, 2]), 1.0)
            self.uh_days[w] = dh
            pair = np.unique(np.stack([hday[k], hu[k]], axis=1), axis=0) if k.any() else np.zeros((0, 2), int)
            self.u_hour_days[w] = np.bincount(pair[:, 1], minlength=U).astype(float)
        self.uh_last = np.zeros((U, HOURS))
        if len(hday):
            np.maximum.at(self.uh_last, (hu, hh), hday)

        # --- populations
        self.existing_channels = self.ch_days[None] > 0
        self.alive_channels = self.ch_days[365] > 0
        self.active_users_365 = self.u_days[365] > 0
        self.alive_people = (self.u_days[365] > 0) | (self.u_interactions[365] > 0)
        self.existing_people = (self.u_days[None] > 0) | (self.u_interactions[None] > 0)
        has = self.ch_commits[365] > 0
        self.inv_ch_commits_365 = np.where(has, 1.0 / np.where(has, self.ch_commits[365], 1.0), 0.0)
        # Adamic-Adar channel weight 1/ln(1 + members)
        with np.errstate(divide="ignore"):
            self.aa_weight = np.where(members > 0, 1.0 / np.log1p(np.maximum(members, 1)), 0.0)

    # helpers
    def partners(self, u: int) -> np.ndarray:
        return row_indices(self.P[None], u)

    def member_channels(self, u: int, w=None) -> np.ndarray:
        return row_indices(self.B[w], u)

    def context_partner(self, u: int) -> int:
        """The user's most recent past interaction partner, or -1.

        Largest last-interaction day; ties: larger all-time count, then smaller id.
        """
        ps = self.partners(u)
        if len(ps) == 0:
            return -1
        last = dense_row(self.uu_last, u)[ps]
        cnt = dense_row(self.uu_count[None], u)[ps]
        order = np.lexsort((ps, -cnt, -last))
        return int(ps[order[0]])


# ---------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------

@dataclass
class Embedding:
    dims: int
    users: np.ndarray       # U x dims, unit-normalised and rounded; zero row = no vector
    channels: np.ndarray    # C x dims
    has_user: np.ndarray
    has_channel: np.ndarray


def build_embedding(tables: Tables, dims: int = EMBED_DIMS, decimals: int = EMBED_DECIMALS) -> Embedding:
    """Truncated SVD of log1p(all-time commits) user x channel before T.

    user vector = U_i * sqrt(s), channel vector = V_j * sqrt(s); both are then
    scaled to unit length and rounded to ``decimals``. Only cosines of these
    rounded vectors are used as features.
    """
    M = tables.uc_commits[None].copy().tocsr()
    M.data = np.log1p(M.data)
    rows = np.flatnonzero(np.asarray((M != 0).sum(axis=1)).ravel())
    cols = np.flatnonzero(np.asarray((M != 0).sum(axis=0)).ravel())
    U_out = np.zeros((tables.U, dims))
    C_out = np.zeros((tables.C, dims))
    if len(rows) >= 2 and len(cols) >= 2:
        sub = M[rows][:, cols]
        k = min(dims, min(sub.shape) - 1)
        if min(sub.shape) <= 200 or k >= min(sub.shape) - 1:
            u_, s, vt = np.linalg.svd(sub.toarray(), full_matrices=False)
            u_, s, vt = u_[:, :k], s[:k], vt[:k]
        else:
            v0 = np.ones(min(sub.shape)) / math.sqrt(min(sub.shape))
            u_, s, vt = svds(sub.astype(np.float64), k=k, v0=v0)
            order = np.argsort(-s)
            u_, s, vt = u_[:, order], s[order], vt[order]
        # deterministic sign: the largest |entry| of each channel component is positive
        for j in range(k):
            if vt[j, np.argmax(np.abs(vt[j]))] < 0:
                vt[j] *= -1
                u_[:, j] *= -1
        root = np.sqrt(np.maximum(s, 0))
        U_out[rows, :k] = u_ * root
        C_out[cols, :k] = vt.T * root
    U_out = _unit_round(U_out, decimals)
    C_out = _unit_round(C_out, decimals)
    return Embedding(dims, U_out, C_out, np.abs(U_out).sum(1) > 0, np.abs(C_out).sum(1) > 0)


def _unit_round(X: np.ndarray, decimals: int) -> np.ndarray:
    n = np.linalg.norm(X, axis=1, keepdims=True)
    X = np.where(n > 0, X / np.where(n > 0, n, 1), 0.0)
    return np.round(X, decimals)


def cosine_rows(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(A_i, b) = dot / (|A_i| |b|); 0 when either norm is 0."""
    nb = math.sqrt(float(b @ b))
    na = np.sqrt(np.einsum("ij,ij->i", A, A))
    dots = A @ b
    out = np.zeros(A.shape[0])
    ok = (na > 0) & (nb > 0)
    out[ok] = dots[ok] / (na[ok] * nb)
    return out


# ---------------------------------------------------------------------------
# A cut: tables + embedding + labels + candidates + features
# ---------------------------------------------------------------------------

def _top_k(scores: np.ndarray, universe: np.ndarray, k: int) -> np.ndarray:
    """Up to k indices of ``universe`` with score > 0, best first, ties by smaller index."""
    idx = universe[scores[universe] > 0]
    order = np.lexsort((idx, -scores[idx]))
    return idx[order[:k]]


def _log(x):
    return np.log1p(np.asarray(x, dtype=np.float64))


class Cut:
    def __init__(self, ds: Dataset, T: int, dims: int = EMBED_DIMS, k: int = CANDIDATES_PER_GENERATOR):
        self.ds, self.T, self.k = ds, T, k
        self.t = Tables(ds, T)
        self.emb = build_embedding(self.t, dims)
        f = (ds.a_day >= T) & (ds.a_day < T + LABEL_DAYS)
        self.fa_day, self.fa_user, self.fa_chan = ds.a_day[f], ds.a_user[f], ds.a_chan[f]
        f = (ds.i_day >= T) & (ds.i_day < T + LABEL_DAYS) & (ds.i_user != ds.i_other)
        self.fi_day, self.fi_user, self.fi_other = ds.i_day[f], ds.i_user[f], ds.i_other[f]
        f = (ds.h_day >= T) & (ds.h_day < T + LABEL_DAYS)
        self.fh_user, self.fh_hour = ds.h_user[f], ds.h_hour[f]
        self._new_members = None

    # ----- subjects ---------------------------------------------------------
    def subjects(self, source: str) -> list[int]:
        t = self.t
        if source in ("channel_browser", "leave"):
            return [int(u) for u in np.flatnonzero(t.active_users_365)]
        if source == "composer_dm":
            return [int(u) for u in np.flatnonzero(t.alive_people)]
        if source == "invite":
            return sorted(self.new_members())
        if source == "archive":
            return [-1]
        if source == "send_time":
            return [int(u) for u in np.flatnonzero(t.u_hour_days[365] > 0)]
        raise KeyError(source)

    def new_members(self) -> dict[int, "NewMember"]:
        """New member -> NewMember(first day d0, first-day channels, first-day partners).

        New member: no activity and no interaction before T, first activity
        day d0 in [T, T + 365). First-day channels: channels with the member's
        activity on d0. First-day partners: existing people (any activity or
        interaction before T) with an interaction with the member on d0, either
        direction. Both are known at the end of the member's first day, when
        invite suggestions are made.
        """
        if self._new_members is None:
            t = self.t
            out = {}
            first: dict[int, int] = {}
            for d, u in zip(self.fa_day.tolist(), self.fa_user.tolist()):
                if u not in first or d < first[u]:
                    first[u] = d
            for u in sorted(first):
                d0 = first[u]
                if t.existing_people[u]:
                    continue
                chans = np.unique(self.fa_chan[(self.fa_user == u) & (self.fa_day == d0)])
                k = (self.fi_day == d0) & ((self.fi_user == u) | (self.fi_other == u))
                other = np.where(self.fi_user[k] == u, self.fi_other[k], self.fi_user[k])
                other = np.unique(other[t.existing_people[other]]) if len(other) else np.zeros(0, np.int64)
                out[u] = NewMember(d0, chans.astype(np.int64), other.astype(np.int64))
            self._new_members = out
        return self._new_members

    # ----- labels -------------------------------------------------------------
    def labels(self, source: str) -> dict[int, set]:
        """subject -> set of positive items (all of them, not only candidates)."""
        t = self.t
        out: dict[int, set] = {}
        if source == "channel_browser":
            act = set(np.flatnonzero(t.active_users_365).tolist())
            member = t.B[None]
            for u, c in zip(self.fa_user.tolist(), self.fa_chan.tolist()):
                if u in act and t.existing_channels[c] and member[u, c] == 0:
                    out.setdefault(u, set()).add(c)
        elif source == "composer_dm":
            P = t.P[None]
            for a, b in zip(self.fi_user.tolist(), self.fi_other.tolist()):
                for u, v in ((a, b), (b, a)):
                    if t.alive_people[u] and t.existing_people[v] and P[u, v] == 0:
                        out.setdefault(u, set()).add(v)
        elif source == "invite":
            end = self.T + LABEL_DAYS
            for n, nm in self.new_members().items():
                d0, known = nm.day, set(nm.partners.tolist())
                pos = set()
                k = (self.fi_day > d0) & ((self.fi_user == n) | (self.fi_other == n))
                for a, b in zip(self.fi_user[k].tolist(), self.fi_other[k].tolist()):
                    v = b if a == n else a
                    if t.existing_people[v]:
                        pos.add(v)
                later = self.fa_day > d0
                chans = np.unique(self.fa_chan[later & (self.fa_user == n)])
                if len(chans):
                    k = later & np.isin(self.fa_chan, chans)
                    for v in np.unique(self.fa_user[k]).tolist():
                        if t.existing_people[v]:
                            pos.add(v)
                pos -= known
                if pos:
                    out[n] = pos
        elif source == "leave":
            future = set(zip(self.fa_user.tolist(), self.fa_chan.tolist()))
            for u in np.flatnonzero(t.active_users_365).tolist():
                items = t.member_channels(u, 365)
                out[u] = {int(c) for c in items if (u, int(c)) not in future}
        elif source == "archive":
            busy = set(self.fa_chan.tolist())
            out[-1] = {int(c) for c in np.flatnonzero(t.alive_channels) if int(c) not in busy}
        elif source == "send_time":
            for u, h in zip(self.fh_user.tolist(), self.fh_hour.tolist()):
                if t.u_hour_days[365][u] > 0:
                    out.setdefault(u, set()).add(int(h))
        else:
            raise KeyError(source)
        return out

    def evaluable(self, source: str, labels: dict[int, set]) -> list[int]:
        """Subjects that are evaluated: at least one positive (leave and archive:
        also at least one negative among the candidates)."""
        out = []
        for s in self.subjects(source):
            pos = labels.get(s, set())
            if not pos:
                continue
            if source in ("leave", "archive"):
                cands = self.candidates(source, s)
                if len(cands) == len(pos):
                    continue
            out.append(s)
        return out

    # ----- candidates ---------------------------------------------------------
    def candidates(self, source: str, s: int) -> np.ndarray:
        t, k = self.t, self.k
        if source == "channel_browser":
            member = dense_row(t.B[None], s) > 0
            universe = np.flatnonzero(t.existing_channels & ~member)
            g = self._cb_vectors(s)
            parts = [_top_k(t.ch_users[90], universe, k), _top_k(g["cos"], universe, k),
                     _top_k(g["cf_sum"], universe, k), _top_k(g["partners_active"], universe, k)]
            return np.unique(np.concatenate(parts)).astype(np.int64)
        if source == "composer_dm":
            mask = t.alive_people.copy()
            mask[s] = False
            mask[t.partners(s)] = False
            universe = np.flatnonzero(mask)
            g = self._dm_vectors(s)
            parts = [_top_k(t.u_partners[90], universe, k), _top_k(t.u_days[90], universe, k),
                     _top_k(g["cos"], universe, k), _top_k(g["adamic_adar"], universe, k),
                     _top_k(g["common_partners"], universe, k), _top_k(g["ctx_interactions"], universe, k)]
            return np.unique(np.concatenate(parts)).astype(np.int64)
        if source == "invite":
            mask = t.alive_people.copy()
            mask[self.new_members()[s].partners] = False
            universe = np.flatnonzero(mask)
            g = self._invite_vectors(s)
            parts = [_top_k(t.u_partners[90], universe, k), _top_k(g["fd_share_365"], universe, k),
                     _top_k(g["fd_cos_mean"], universe, k), _top_k(g["fd_cf_365"], universe, k),
                     _top_k(g["fdp_interactions"], universe, k)]
            return np.unique(np.concatenate(parts)).astype(np.int64)
        if source == "leave":
            return t.member_channels(s, 365).astype(np.int64)
        if source == "archive":
            return np.flatnonzero(t.alive_channels).astype(np.int64)
        if source == "send_time":
            return np.arange(HOURS, dtype=np.int64)
        raise KeyError(source)

    # ----- per-subject vectors over all items --------------------------------
    def _cb_vectors(self, u: int) -> dict:
        t, e = self.t, self.emb
        M = t.member_channels(u)
        M365 = t.member_channels(u, 365)
        C = t.C
        cos = cosine_rows(e.channels, e.users[u])
        cf_sum = t.sim[M].sum(axis=0) if len(M) else np.zeros(C)
        cf_max = t.sim[M].max(axis=0) if len(M) else np.zeros(C)
        cf_recent = t.sim[M365].sum(axis=0) if len(M365) else np.zeros(C)
        sameday = t.sameday365[M365].sum(axis=0) if len(M365) else np.zeros(C)
        P = t.partners(u)
        pm = np.asarray(t.B[None][P].sum(axis=0)).ravel() if len(P) else np.zeros(C)
        pa = np.asarray(t.B[365][P].sum(axis=0)).ravel() if len(P) else np.zeros(C)
        B365 = t.B[365]
        shared = B365 @ dense_row(B365, u)      # |M365(u) ∩ M365(v)| for every v
        shared[u] = 0.0
        ucf = B365.T @ shared
        if len(M365):
            cond = (t.comembers[M365] / np.maximum(np.diag(t.comembers)[M365], 1)[:, None]).mean(axis=0)
        else:
            cond = np.zeros(C)
        diag = np.diag(t.sameday365)
        inv = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 0.0)
        exp365 = (dense_row(t.uc_days[365], u) * inv) @ t.sameday365
        return {"cos": cos, "cf_sum": cf_sum, "cf_max": cf_max, "cf_recent_sum": cf_recent, "cf_cond_365": cond,
                "sameday": sameday, "exp365": exp365, "partners_members": pm, "partners_active": pa, "ucf": ucf}

    def _dm_vectors(self, u: int) -> dict:
        t, e = self.t, self.emb
        bu = dense_row(t.B[None], u)
        x = t.context_partner(u)
        out = {
            "cos": cosine_rows(e.users, e.users[u]),
            "shared": t.B[None] @ bu,
            "shared_365": t.B[365] @ dense_row(t.B[365], u),
            "adamic_adar": t.B[None] @ (bu * t.aa_weight),
            "common_partners": t.P[None] @ dense_row(t.P[None], u),
            "common_partners_365": t.P[365] @ dense_row(t.P[365], u),
            "days_in_u_channels": t.uc_days[365] @ dense_row(t.B[365], u),
            "share_in_u_channels": t.uc_commits[365] @ (dense_row(t.B[365], u) * t.inv_ch_commits_365),
            "ctx": x,
        }
        if x >= 0:
            out["ctx_interactions"] = dense_row(t.uu_count[None], x)
            out["ctx_cos"] = cosine_rows(e.users, e.users[x])
            out["ctx_shared"] = t.B[None] @ dense_row(t.B[None], x)
        else:
            z = np.zeros(t.U)
            out["ctx_interactions"], out["ctx_cos"], out["ctx_shared"] = z, z, z
        return out

    def _invite_vectors(self, n: int) -> dict:
        t, e = self.t, self.emb
        nm = self.new_members()[n]
        F, I = nm.channels, nm.partners
        U = t.U
        out = {"fd_partners": float(len(I))}
        if len(I):
            out["fdp_interactions"] = np.asarray(t.uu_count[None][I].sum(axis=0)).ravel()
            out["fdp_common_partners"] = t.P[None] @ np.asarray(t.P[None][I].sum(axis=0)).ravel()
            out["fdp_cos_max"] = np.max([cosine_rows(e.users, e.users[x]) for x in I], axis=0)
        else:
            out["fdp_interactions"] = out["fdp_common_partners"] = out["fdp_cos_max"] = np.zeros(U)
        if len(F) == 0:
            z = np.zeros(U)
            out.update({"fd_days_365": z, "fd_member_count": z, "fd_active_365_count": z, "fd_share_365": z,
                        "fd_share_all": z, "fd_cos_mean": z, "fd_cf_365": z, "fd_channels": 0.0})
            return out

        def share(w):
            tot = t.ch_commits[w][F]
            inv = np.where(tot > 0, 1.0 / np.where(tot > 0, tot, 1), 0.0)
            return np.asarray(t.uc_commits_csc[w][:, F] @ inv).ravel()

        cos = np.zeros(U)
        for c in F:
            cos += cosine_rows(e.users, e.channels[c])
        return out | {
            "fd_member_count": np.asarray(t.B_csc[None][:, F].sum(axis=1)).ravel(),
            "fd_active_365_count": np.asarray(t.B_csc[365][:, F].sum(axis=1)).ravel(),
            "fd_share_365": share(365),
            "fd_share_all": share(None),
            "fd_cos_mean": cos / len(F),
            "fd_cf_365": t.B[365] @ t.sim[F].sum(axis=0),
            "fd_days_365": np.asarray(t.uc_days[365].tocsc()[:, F].sum(axis=1)).ravel(),
            "fd_channels": float(len(F)),
        }

    # ----- features -------------------------------------------------------------
    def features(self, source: str, s: int, items) -> np.ndarray:
        """Feature matrix [len(items), F] in FEATURES[source] order."""
        t, T = self.t, self.T
        items = np.asarray(items, dtype=np.int64)
        n = len(items)
        cols: dict[str, np.ndarray] = {}
        if source == "channel_browser":
            g = self._cb_vectors(s)
            c = items
            cols = {
                "ch_members_log": _log(t.ch_users[None][c]),
                "ch_active_users_90_log": _log(t.ch_users[90][c]),
                "ch_active_users_365_log": _log(t.ch_users[365][c]),
                "ch_new_members_90_log": _log(t.ch_new_members[90][c]),
                "ch_commits_30_log": _log(t.ch_commits[30][c]),
                "ch_days_since_last_log": ld_since(T, t.ch_last[c]),
                "ch_age_log": np.where(t.ch_first[c] > 0, ld(T - t.ch_first[c]), 0.0),
                "cos_user_channel": g["cos"][c],
                "cf_sum": g["cf_sum"][c],
                "cf_max": g["cf_max"][c],
                "cf_recent_sum": g["cf_recent_sum"][c],
                "sameday_365_log": _log(g["sameday"][c]),
                "partners_members_log": _log(g["partners_members"][c]),
                "partners_active_365_log": _log(g["partners_active"][c]),
                "ucf_365_log": _log(g["ucf"][c]),
                "ch_new_members_365_log": _log(t.ch_new_members[365][c]),
                "cf_cond_365": g["cf_cond_365"][c],
                "expected_days_365_log": _log(g["exp365"][c]),
                "u_active_days_365_log": np.full(n, _log(t.u_days[365][s])),
                "u_channels_log": np.full(n, _log(t.u_channels[None][s])),
                "u_days_since_last_log": np.full(n, ld_since(T, t.u_last[s : s + 1])[0]),
            }
        elif source in ("composer_dm", "invite"):
            v = items
            last = np.maximum(t.u_last[v], t.u_ilast[v])
            cols = {
                "v_partners_log": _log(t.u_partners[None][v]),
                "v_partners_90_log": _log(t.u_partners[90][v]),
                "v_partners_365_log": _log(t.u_partners[365][v]),
                "v_active_days_365_log": _log(t.u_days[365][v]),
                "v_interactions_365_log": _log(t.u_interactions[365][v]),
                "v_active_days_90_log": _log(t.u_days[90][v]),
                "v_days_since_last_log": ld_since(T, last),
                "v_new_partners_90_log": _log(t.u_new_partners[90][v]),
                "v_new_partners_365_log": _log(t.u_new_partners[365][v]),
                "v_out_365_log": _log(t.u_out[365][v]),
                "v_newcomer_partners_365_log": _log(t.u_newcomer_partners_365[v]),
                "v_in_365_log": _log(t.u_in[365][v]),
            }
            if source == "composer_dm":
                g = self._dm_vectors(s)
                cols.update({
                    "shared_channels_log": _log(g["shared"][v]),
                    "shared_channels_365_log": _log(g["shared_365"][v]),
                    "adamic_adar": g["adamic_adar"][v],
                    "cos_user_user": g["cos"][v],
                    "common_partners_log": _log(g["common_partners"][v]),
                    "common_partners_365_log": _log(g["common_partners_365"][v]),
                    "v_days_in_u_channels_365_log": _log(g["days_in_u_channels"][v]),
                    "v_share_in_u_channels_365": g["share_in_u_channels"][v],
                    "ctx_interactions_log": _log(g["ctx_interactions"][v]),
                    "ctx_cos": g["ctx_cos"][v],
                    "ctx_shared_channels_log": _log(g["ctx_shared"][v]),
                    "u_partners_log": np.full(n, _log(t.u_partners[None][s])),
                    "role_match": (1 - t.u_out_share[s]) * t.u_out_share[v] + t.u_out_share[s] * (1 - t.u_out_share[v]),
                    "u_active_days_365_log": np.full(n, _log(t.u_days[365][s])),
                })
            else:
                g = self._invite_vectors(s)
                cols.update({k: (np.full(n, g[k]) if k == "fd_channels" else g[k][v])
                             for k in ("fd_member_count", "fd_active_365_count", "fd_share_365", "fd_share_all",
                                       "fd_cos_mean", "fd_cf_365", "fd_channels")})
                cols["fd_days_365_log"] = _log(g["fd_days_365"][v])
                cols["fdp_interactions_log"] = _log(g["fdp_interactions"][v])
                cols["fdp_common_partners_log"] = _log(g["fdp_common_partners"][v])
                cols["fdp_cos_max"] = g["fdp_cos_max"][v]
                cols["fd_partners"] = np.full(n, g["fd_partners"])
        elif source == "leave":
            u, c = s, items
            row = lambda m: dense_row(m, u)[c]  # noqa: E731
            P = t.partners(u)
            pa = np.asarray(t.B[365][P].sum(axis=0)).ravel()[c] if len(P) else np.zeros(n)
            first, last = row(t.uc_first), row(t.uc_last)
            tot = t.u_commits[365][u]
            cols = {
                "uc_days_30_log": _log(row(t.uc_days[30])),
                "uc_days_90_log": _log(row(t.uc_days[90])),
                "uc_days_365_log": _log(row(t.uc_days[365])),
                "uc_days_all_log": _log(row(t.uc_days[None])),
                "uc_commits_365_log": _log(row(t.uc_commits[365])),
                "uc_days_since_last_log": ld_since(T, last),
                "uc_tenure_log": np.where(first > 0, ld(T - first), 0.0),
                "uc_share_365": row(t.uc_commits[365]) / tot if tot > 0 else np.zeros(n),
                "ch_active_users_90_log": _log(t.ch_users[90][c]),
                "ch_active_users_365_log": _log(t.ch_users[365][c]),
                "ch_days_since_last_log": ld_since(T, t.ch_last[c]),
                "ch_members_log": _log(t.ch_users[None][c]),
                "u_active_days_365_log": np.full(n, _log(t.u_days[365][u])),
                "u_channels_365_log": np.full(n, _log(t.u_channels[365][u])),
                "cos_user_channel": cosine_rows(self.emb.channels, self.emb.users[u])[c],
                "partners_active_365_log": _log(pa),
            }
        elif source == "archive":
            c = items
            cols = {
                "ch_active_users_30_log": _log(t.ch_users[30][c]),
                "ch_active_users_90_log": _log(t.ch_users[90][c]),
                "ch_active_users_365_log": _log(t.ch_users[365][c]),
                "ch_members_log": _log(t.ch_users[None][c]),
                "ch_commits_90_log": _log(t.ch_commits[90][c]),
                "ch_commits_365_log": _log(t.ch_commits[365][c]),
                "ch_active_days_365_log": _log(t.ch_days[365][c]),
                "ch_days_since_last_log": ld_since(T, t.ch_last[c]),
                "ch_age_log": np.where(t.ch_first[c] > 0, ld(T - t.ch_first[c]), 0.0),
                "ch_new_members_90_log": _log(t.ch_new_members[90][c]),
                "ch_new_members_365_log": _log(t.ch_new_members[365][c]),
            }
        elif source == "send_time":
            u, h = s, items

            def share(w):
                row = t.uh_commits[w][u]
                tot = row.sum()
                return row / tot if tot > 0 else np.zeros(HOURS)

            def team(w):
                row = t.team_h_commits[w]
                tot = row.sum()
                return row / tot if tot > 0 else np.zeros(HOURS)

            s365 = share(365)
            neigh = (np.roll(s365, 1) + np.roll(s365, -1)) / 2.0   # (share[h-1] + share[h+1]) / 2
            cols = {
                "uh_share_365": s365[h],
                "uh_share_90": share(90)[h],
                "uh_share_all": share(None)[h],
                "uh_neighbors_share_365": neigh[h],
                "uh_days_365_log": _log(t.uh_days[365][u][h]),
                "uh_days_since_last_log": ld_since(T, t.uh_last[u][h]),
                "team_h_share_90": team(90)[h],
                "team_h_share_365": team(365)[h],
                "team_h_share_all": team(None)[h],
                "u_hour_days_365_log": np.full(n, _log(t.u_hour_days[365][u])),
            }
        else:
            raise KeyError(source)
        names = feature_names(source)
        missing = set(names) ^ set(cols)
        assert not missing, f"{source}: feature mismatch {missing}"
        if n == 0:
            return np.zeros((0, len(names)))
        return np.column_stack([np.asarray(cols[k], dtype=np.float64).reshape(n) for k in names])

    def context_of(self, source: str, s: int) -> dict:
        """What besides the tables a server needs to know about the subject."""
        if source == "composer_dm":
            x = self.t.context_partner(s)
            return {"context_partner": self.ds.user_ids[x] if x >= 0 else None}
        if source == "invite":
            nm = self.new_members()[s]
            return {"first_day": iso_of(nm.day), "first_day_channels": [self.ds.channel_ids[c] for c in nm.channels],
                    "first_day_partners": [self.ds.user_ids[x] for x in nm.partners]}
        return {}


@dataclass
class NewMember:
    day: int                # d0, the first day with activity
    channels: np.ndarray    # first-day channels
    partners: np.ndarray    # first-day partners (existing people)


@dataclass
class Group:
    subject: int
    items: np.ndarray
    X: np.ndarray
    y: np.ndarray
    n_pos: int              # all positives, also those outside the candidates


def build_groups(cut: Cut, source: str, max_subjects: int | None = None, seed: int = 0) -> tuple[list[Group], dict]:
    """One Group per evaluated subject. Returns (groups, stats)."""
    labels = cut.labels(source)
    subjects = cut.evaluable(source, labels)
    stats = {"subjects_with_positives": len(subjects)}
    if max_subjects is not None and len(subjects) > max_subjects:
        rs = np.random.RandomState(seed)
        subjects = sorted(rs.choice(subjects, max_subjects, replace=False).tolist())
    groups = []
    in_cands = 0
    total = 0
    for s in subjects:
        items = cut.candidates(source, s)
        pos = labels[s]
        y = np.array([1.0 if int(i) in pos else 0.0 for i in items])
        X = cut.features(source, s, items)
        groups.append(Group(int(s), items, X, y, len(pos)))
        in_cands += int(y.sum())
        total += len(pos)
    stats.update({"subjects": len(groups), "positives": total, "positives_in_candidates": in_cands,
                  "rows": int(sum(len(g.items) for g in groups))})
    return groups, stats
