"""A synthetic dataset with a planted signal that the baselines cannot see, for the gate's tests.

Ten "core" channels are the busiest (a fixed crew posts there every few days)
but nobody new ever joins them; everyone else starts out in two other channels
and now and then starts posting in another non-core one. The popularity rules
and the hand-tuned rule rank the busy core channels first (the ten top slots,
none of them ever joined), while a fitted model learns that channels without
new members are not joined (ch_new_members_*), so it beats them clearly.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

START = dt.date(2018, 1, 1)


def rows(n_users: int = 120, n_channels: int = 30, n_core: int = 10, crew: int = 30, days: int = 5 * 365,
         seed: int = 5) -> dict:
    rs = np.random.RandomState(seed)
    start = rs.randint(0, days - 400, n_users)
    start[:crew] = 0
    member: list[list[int]] = []
    for u in range(n_users):
        if u < crew:
            member.append(list(range(n_core)))
        else:
            member.append([int(c) for c in rs.choice(np.arange(n_core, n_channels), 2, replace=False)])
    act: dict[tuple, int] = {}
    inter, hours = [], {}

    def iso(d):
        return (START + dt.timedelta(days=int(d))).isoformat()

    for d in range(days):
        for u in range(n_users):
            if d < start[u]:
                continue
            if u >= crew and rs.rand() < 0.004:
                others = [c for c in range(n_core, n_channels) if c not in member[u]]
                if others:
                    c = others[rs.randint(len(others))]
                    member[u].append(c)
                    act[(d, u, c)] = act.get((d, u, c), 0) + 1
            if rs.rand() < (0.3 if u < crew else 0.06):
                c = member[u][rs.randint(len(member[u]))]
                act[(d, u, c)] = act.get((d, u, c), 0) + 1
                h = (u % 24 + rs.randint(-1, 2)) % 24
                hours[(d, u, h)] = hours.get((d, u, h), 0) + 1
                if rs.rand() < 0.05:
                    v = int(rs.randint(n_users))
                    if v != u and start[v] <= d:
                        inter.append({"day": iso(d), "user_id": str(u + 1), "other_user_id": str(v + 1),
                                      "kind": "merged_pr", "count": "1"})
    first: dict[int, int] = {}
    for (d, _, c) in act:
        first[c] = min(first.get(c, d), d)
    return {
        "channels": [{"channel_id": str(c + 1), "name": f"dir/{c + 1}", "first_day": iso(f)}
                     for c, f in sorted(first.items())],
        "activity": [{"day": iso(d), "user_id": str(u + 1), "channel_id": str(c + 1), "commits": str(n),
                      "files": str(n)} for (d, u, c), n in sorted(act.items())],
        "interactions": inter,
        "hours": [{"day": iso(d), "user_id": str(u + 1), "local_hour": str(h), "commits": str(n)}
                  for (d, u, h), n in sorted(hours.items())],
    }
