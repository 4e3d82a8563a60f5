#!/usr/bin/python3
"""Cross-language feature fixture.

    fixture.py --data DIR --out OUT [--users 40] [--new-members 8] [--cut YYYY-MM-DD] [--seed 0]

Takes a small slice of a dataset (some existing users, some new members, the
rows that touch only them), treats the slice as the whole dataset, and writes
OUT/fixture.json:

* ``rows``: the slice's input rows, in the CSV column names (channels, activity,
  interactions, hours). Rows from day >= cut are included on purpose: an
  importer must ignore them for features (only the invite context reads the
  new member's first day, and that context is given explicitly).
* ``cut``; ``embeddings``: the slice's embedding vectors (features use only
  their cosines; an importer takes these vectors as given rather than
  recomputing the SVD).
* ``cases``: per source, a few subjects with their context, their full
  candidate list and, for some candidates, the feature vector in manifest
  order (``features``) and by name, per FEATURES.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from data import LABEL_DAYS, day_of, default_cuts, from_rows, iso_of, load_rows  # noqa: E402
from features import SOURCES, Cut, feature_names  # noqa: E402

FIXTURE_DIMS = 8
SUBJECTS_PER_SOURCE = 4
ITEMS_PER_SUBJECT = 5


def select_slice(rows: dict, T: int, n_users: int, n_new: int, seed: int) -> dict:
    """Rows of a deterministic sample of users (day < T + 365 only)."""
    end = T + LABEL_DAYS
    act = [r for r in rows["activity"] if day_of(r["day"]) < end]
    per_user: dict[str, list] = {}
    for r in act:
        per_user.setdefault(r["user_id"], []).append(r)
    first = {u: min(day_of(r["day"]) for r in rs) for u, rs in per_user.items()}
    recent = {u for u, rs in per_user.items() if any(T - 365 <= day_of(r["day"]) < T for r in rs)}
    eligible = {u for u in recent if first[u] < T and 5 <= len(per_user[u]) <= 400}
    graph: dict[str, set] = {}
    for r in rows["interactions"]:
        a, b = r["user_id"], r["other_user_id"]
        if day_of(r["day"]) < end and a != b:
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set()).add(a)
    rs = np.random.RandomState(seed)
    # breadth-first from random seeds over interaction partners, so that the
    # slice has interactions (composer context, partners) and not only activity
    pool = sorted(eligible)
    connected = sorted(u for u in pool if graph.get(u, set()) & eligible)
    chosen: list[str] = []
    queue: list[str] = []
    while len(chosen) < min(n_users, len(pool)):
        if not queue:
            rest = [u for u in (connected or pool) if u not in chosen] or [u for u in pool if u not in chosen]
            queue.append(rest[rs.randint(len(rest))])
        u = queue.pop(0)
        if u in chosen:
            continue
        chosen.append(u)
        queue.extend(sorted((graph.get(u, set()) & eligible) - set(chosen)))
    chosen = sorted(chosen)
    chosen_set = set(chosen)
    # new members who interact with a chosen user (so invite has something to rank)
    linked = set()
    for r in rows["interactions"]:
        if day_of(r["day"]) < end:
            if r["user_id"] in chosen_set:
                linked.add(r["other_user_id"])
            if r["other_user_id"] in chosen_set:
                linked.add(r["user_id"])
    pre_t_people = {r["user_id"] for r in rows["interactions"] if day_of(r["day"]) < T} | \
                   {r["other_user_id"] for r in rows["interactions"] if day_of(r["day"]) < T}
    new = sorted(u for u in per_user if T <= first[u] < end and u not in pre_t_people and u in linked
                 and len(per_user[u]) <= 100)
    if len(new) > n_new:
        new = sorted(rs.choice(new, n_new, replace=False).tolist())
    users = chosen_set | set(new)
    out_act = [r for r in act if r["user_id"] in users]
    chans = {r["channel_id"] for r in out_act}
    return {
        "channels": [r for r in rows["channels"] if r["channel_id"] in chans],
        "activity": out_act,
        "interactions": [r for r in rows["interactions"] if day_of(r["day"]) < end
                         and r["user_id"] in users and r["other_user_id"] in users],
        "hours": [r for r in rows["hours"] if day_of(r["day"]) < end and r["user_id"] in users],
    }


def _typed(rows: dict) -> dict:
    ints = {"commits", "files", "count", "local_hour"}
    return {k: [{c: (int(v) if c in ints else v) for c, v in r.items()} for r in rs] for k, rs in rows.items()}


def build_fixture(name: str, slice_rows: dict, T: int, seed: int = 0) -> dict:
    ds = from_rows(name, slice_rows)
    cut = Cut(ds, T, dims=FIXTURE_DIMS)
    e = cut.emb
    rs = np.random.RandomState(seed)
    cases = []
    for src in SOURCES:
        labels = cut.labels(src)
        subjects = cut.subjects(src)
        evaluable = cut.evaluable(src, labels)
        others = [s for s in subjects if s not in set(evaluable) and len(cut.candidates(src, s))]
        picked = evaluable[:SUBJECTS_PER_SOURCE]
        picked += others[: max(0, SUBJECTS_PER_SOURCE - len(picked))]
        for s in picked:
            cands = cut.candidates(src, s)
            if len(cands) == 0:
                continue
            pos = labels.get(s, set())
            chosen = [c for c in cands if int(c) in pos][:2]
            rest = [c for c in cands if int(c) not in pos]
            if rest:
                k = min(ITEMS_PER_SUBJECT - len(chosen), len(rest))
                chosen += rs.choice(rest, k, replace=False).tolist()
            chosen = np.array(sorted(int(c) for c in chosen), dtype=np.int64)
            X = cut.features(src, s, chosen)
            item_id = _item_id(src, ds)
            cases.append({
                "source": src,
                "subject": None if src == "archive" else ds.user_ids[s],
                "context": cut.context_of(src, s),
                "candidates": [item_id(c) for c in cands],
                "items": [{"item": item_id(c), "label": int(int(c) in pos),
                           "features": [float(v) for v in X[i]],
                           "by_name": dict(zip(feature_names(src), (float(v) for v in X[i])))}
                          for i, c in enumerate(chosen)],
            })
    return {
        "dataset": name,
        "cut": iso_of(T),
        "label_days": LABEL_DAYS,
        "note": "features read only rows with day < cut; rows from day >= cut are included to test that. "
                "Embedding vectors are given; features use cosines of exactly these vectors.",
        "feature_names": {s: feature_names(s) for s in SOURCES},
        "rows": _typed(slice_rows),
        "embeddings": {
            "dims": int(e.dims),
            "users": {ds.user_ids[i]: [float(x) + 0.0 for x in e.users[i]] for i in np.flatnonzero(e.has_user)},
            "channels": {ds.channel_ids[i]: [float(x) + 0.0 for x in e.channels[i]]
                         for i in np.flatnonzero(e.has_channel)},
        },
        "cases": cases,
    }


def _item_id(src: str, ds):
    if src in ("channel_browser", "leave", "archive"):
        return lambda c: ds.channel_ids[int(c)]
    if src in ("composer_dm", "invite"):
        return lambda v: ds.user_ids[int(v)]
    return lambda h: int(h)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--users", type=int, default=40, help="existing users in the slice")
    p.add_argument("--new-members", type=int, default=8)
    p.add_argument("--cut", help="YYYY-MM-DD (default: the latest default cut)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rows = load_rows(args.data)
    name = os.path.basename(os.path.normpath(args.data))
    if args.cut:
        T = day_of(args.cut)
    else:
        T = default_cuts(from_rows(name, rows), 1)[-1]
    slice_rows = select_slice(rows, T, args.users, args.new_members, args.seed)
    fx = build_fixture(name, slice_rows, T, args.seed)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "fixture.json")
    with open(path, "w") as f:
        json.dump(fx, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    n = {k: len(v) for k, v in fx["rows"].items()}
    print(f"wrote {path}: cut {fx['cut']}, rows {n}, {len(fx['cases'])} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
