"""A small synthetic dataset in the rails-collab format, for tests."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

START = dt.date(2018, 1, 1)


def rows(n_users: int = 60, n_channels: int = 24, days: int = 5 * 365, seed: int = 3) -> dict:
    """Users in 3 groups that favour 8 channels each; some join late, some leave."""
    rs = np.random.RandomState(seed)
    start_day = rs.randint(0, days - 200, n_users)
    start_day[: n_users // 3] = rs.randint(0, 200, n_users // 3)          # old-timers
    stop_day = np.minimum(days, start_day + rs.randint(150, days, n_users))
    group = np.arange(n_users) % 3
    ch_end = np.where(rs.rand(n_channels) < 0.35, rs.randint(days // 4, days, n_channels), days + 1)
    ch_end[[0, 8, 16]] = days + 1                       # one channel per group never goes quiet
    act, inter, hours = {}, [], {}
    ch_first = {}
    for u in range(n_users):
        rate = rs.uniform(0.02, 0.15)
        home = rs.randint(0, 24)
        for d in range(start_day[u], stop_day[u]):
            if rs.rand() > rate:
                continue
            day = (START + dt.timedelta(days=int(d))).isoformat()
            k = 1 + rs.poisson(0.5)
            for _ in range(k):
                c = group[u] * 8 + rs.randint(0, 8) if rs.rand() < 0.8 else rs.randint(0, n_channels)
                if d >= ch_end[c]:
                    c = group[u] * 8
                key = (day, u + 1, c + 1)
                a = act.setdefault(key, [0, 0])
                a[0] += 1
                a[1] += 1 + rs.poisson(1)
                ch_first[c + 1] = min(ch_first.get(c + 1, day), day)
            h = (home + rs.randint(-2, 3)) % 24
            hours[(day, u + 1, h)] = hours.get((day, u + 1, h), 0) + k
            if rs.rand() < 0.2:
                v = rs.randint(0, n_users)
                if v != u and start_day[v] <= d < stop_day[v]:
                    inter.append({"day": day, "user_id": str(v + 1), "other_user_id": str(u + 1),
                                  "kind": "merged_pr", "count": "1"})
    return {
        "channels": [{"channel_id": str(c), "name": f"dir/{c}", "first_day": f} for c, f in sorted(ch_first.items())],
        "activity": [{"day": d, "user_id": str(u), "channel_id": str(c), "commits": str(a[0]), "files": str(a[1])}
                     for (d, u, c), a in sorted(act.items())],
        "interactions": sorted(inter, key=lambda r: r["day"]),
        "hours": [{"day": d, "user_id": str(u), "local_hour": str(h), "commits": str(n)}
                  for (d, u, h), n in sorted(hours.items())],
    }


COLUMNS = {
    "channels": ["channel_id", "name", "first_day"],
    "activity": ["day", "user_id", "channel_id", "commits", "files"],
    "interactions": ["day", "user_id", "other_user_id", "kind", "count"],
    "hours": ["day", "user_id", "local_hour", "commits"],
}


def write_dir(path: str, data: dict) -> str:
    os.makedirs(path, exist_ok=True)
    for name, cols in COLUMNS.items():
        with gzip.open(os.path.join(path, f"{name}.csv.gz"), "wt", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in data[name]:
                w.writerow({c: r[c] for c in cols})
    return path
