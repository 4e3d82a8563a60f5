#!/usr/bin/python3
"""Parity fixture for the TypeScript feature port (src/recommend/features/).

    export_ts_fixture.py [--data datasets/rails-collab] [--cut YYYY-MM-DD]
                         [--out test/fixtures/recommend] [--seed 0] [--all]

Unlike fixture.py (a slice of the data treated as a whole dataset), this one
works on the WHOLE dataset: the TypeScript test reads the same CSVs, builds
its snapshot at the same cut, and must reproduce, for every case listed here,
the candidate set of ``Cut.candidates`` and the feature matrix of
``Cut.features``. Writes OUT/features-<cut>.json:

* ``cut``, ``dims``, ``feature_names``;
* ``embeddings``: the vectors of ``Cut.emb`` the cases read (alive people,
  every subject, context partner and first-day partner, every channel with a
  vector), as integers = vector * 10^4 (the vectors are rounded to 4 decimals,
  so this is exact and half the size);
* ``cases``: per source a few subjects (the heaviest, some at random, a
  light one, a cold one = a user with no rows before the cut), each with its
  context (as ``Cut.context_of``), candidate ids and the features of every
  candidate (12 significant digits). A composer_dm case also has an explicit
  one-person conversation (another partner than the default context partner),
  computed by substituting that person as the context.

With ``--all``, every subject of every source is a case (no conversation
variants) and the file is features-<cut>-all.json: tens of MB, not for the
repository; run the TypeScript test on it with
RECOMMEND_FEATURES_FIXTURE=<path> npx vitest run --project node test/node/recommend-features.test.ts

Ids are the dataset's (strings); the TypeScript side maps them to platform ids.
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

from data import day_of, default_cuts, iso_of, load_dataset  # noqa: E402
from features import CANDIDATES_PER_GENERATOR, EMBED_DECIMALS, SOURCES, Cut, feature_names, row_indices  # noqa: E402

RANDOM_PER_SOURCE = 2
SCALE = 10 ** EMBED_DECIMALS


def _num(x: float) -> float:
    return float(f"{x:.12g}") + 0.0   # + 0.0: no "-0.0" in the file


def pick_subjects(cut: Cut, source: str, rs: np.random.RandomState) -> list[tuple[str, int]]:
    """(kind, subject) pairs: heaviest, random, light, cold."""
    t = cut.t
    subjects = cut.subjects(source)
    if source == "archive":
        return [("team", -1)]
    if source == "invite":
        # new members with the most first-day channels, with first-day partners, and without either
        nm = cut.new_members()
        by_f = sorted(subjects, key=lambda n: (-len(nm[n].channels), n))
        with_i = [n for n in subjects if len(nm[n].partners)]
        bare = [n for n in subjects if len(nm[n].partners) == 0 and len(nm[n].channels) <= 1]
        out = [("heavy", by_f[0])]
        if with_i:
            out.append(("partners", sorted(with_i, key=lambda n: (-len(nm[n].partners), n))[0]))
        rest = [n for n in subjects if n not in {s for _, s in out}]
        out += [("random", int(n)) for n in rs.choice(rest, min(RANDOM_PER_SOURCE, len(rest)), replace=False)]
        if bare:
            out.append(("light", bare[0]))
        return out
    weight = {
        "channel_browser": lambda u: t.u_channels[None][u],
        "leave": lambda u: t.u_channels[365][u],
        "composer_dm": lambda u: t.u_partners[None][u] + t.u_channels[None][u],
        "send_time": lambda u: t.u_hour_days[365][u],
    }[source]
    ordered = sorted(subjects, key=lambda u: (-weight(u), u))
    out = [("heavy", ordered[0])]
    rest = ordered[1:-1]
    out += [("random", int(u)) for u in rs.choice(rest, min(RANDOM_PER_SOURCE, len(rest)), replace=False)]
    out.append(("light", ordered[-1]))
    # cold: a person in the dataset without any row before the cut
    known = t.existing_people | (t.u_hour_days[None] > 0)
    cold = np.flatnonzero(~known)
    if len(cold):
        out.append(("cold", int(cold[0])))
    return out


def case(cut: Cut, source: str, kind: str, s: int, context: dict | None = None) -> dict:
    ds = cut.ds
    items = cut.candidates(source, s)
    X = cut.features(source, s, items)
    item_id = (lambda c: ds.channel_ids[int(c)]) if source in ("channel_browser", "leave", "archive") else \
        (lambda v: ds.user_ids[int(v)]) if source in ("composer_dm", "invite") else (lambda h: str(int(h)))
    cold = kind == "cold"
    return {
        "source": source,
        "kind": kind,
        "subject": None if source == "archive" else ds.user_ids[s],
        "context": context if context is not None else ({} if cold else cut.context_of(source, s)),
        "candidates": [item_id(i) for i in items],
        "features": [[_num(v) for v in row] for row in X],
    }


def build(ds, T: int, seed: int, everyone: bool = False) -> dict:
    cut = Cut(ds, T)
    t, e = cut.t, cut.emb
    rs = np.random.RandomState(seed)
    cases = []
    need_users = set(np.flatnonzero(t.alive_people).tolist())
    for source in SOURCES:
        picked = [("all", s) for s in cut.subjects(source)] if everyone else pick_subjects(cut, source, rs)
        for kind, s in picked:
            cases.append(case(cut, source, kind, s))
            if s >= 0:
                need_users.add(s)
            if source == "composer_dm" and s >= 0:
                x = t.context_partner(s)
                if x >= 0:
                    need_users.add(x)
                # an explicit conversation with another partner than the default context
                others = [int(p) for p in row_indices(t.P[None], s) if int(p) != x]
                if kind in ("heavy", "random") and others:
                    x2 = others[len(others) // 2]
                    need_users.add(x2)
                    default = t.context_partner
                    t.context_partner = lambda _u, x2=x2: x2
                    try:
                        cases.append(case(cut, source, f"{kind}+conversation", s,
                                          {"conversation": [ds.user_ids[x2]]}))
                    finally:
                        t.context_partner = default
            if source == "invite":
                need_users.update(int(x) for x in cut.new_members()[s].partners)

    def ints(v):
        return [int(round(float(x) * SCALE)) for x in v]

    return {
        "dataset": ds.name,
        "cut": iso_of(T),
        "dims": int(e.dims),
        "candidates_per_generator": CANDIDATES_PER_GENERATOR,
        "note": "made by training/export_ts_fixture.py from training/features.py on the whole dataset; "
                "features are rounded to 12 significant digits; embeddings are vector * 10^4 and hold only "
                "the vectors the cases read",
        "feature_names": {s: feature_names(s) for s in SOURCES},
        "embeddings": {
            "scale": SCALE,
            "users": {ds.user_ids[i]: ints(e.users[i]) for i in sorted(need_users) if e.has_user[i]},
            "channels": {ds.channel_ids[i]: ints(e.channels[i]) for i in np.flatnonzero(e.has_channel)},
        },
        "cases": cases,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(HERE)
    p.add_argument("--data", default=os.path.join(root, "datasets", "rails-collab"))
    p.add_argument("--cut", help="YYYY-MM-DD (default: the latest default cut)")
    p.add_argument("--out", default=os.path.join(root, "test", "fixtures", "recommend"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--all", action="store_true", help="every subject of every source (a large file)")
    args = p.parse_args(argv)
    ds = load_dataset(args.data)
    T = day_of(args.cut) if args.cut else default_cuts(ds, 1)[-1]
    fx = build(ds, T, args.seed, args.all)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"features-{fx['cut']}{'-all' if args.all else ''}.json")
    with open(path, "w") as f:
        json.dump(fx, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    by_source: dict[str, int] = {}
    for c in fx["cases"]:
        by_source[c["source"]] = by_source.get(c["source"], 0) + 1
    print(f"wrote {path}: {os.path.getsize(path)} bytes, cases {by_source}, "
          f"{len(fx['embeddings']['users'])} user vectors", file=sys.stderr)


if __name__ == "__main__":
    main()
