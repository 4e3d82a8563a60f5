"""Windows, labels, leakage and embeddings of training/features.py."""

from __future__ import annotations

import math
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import synth_data  # noqa: E402
from data import LABEL_DAYS, day_of, default_cuts, from_rows, iso_of, parse_cuts  # noqa: E402
from features import (FEATURES, MISSING_DAYS_LOG, SOURCES, Cut, Tables, build_embedding, feature_names,  # noqa: E402
                      HAND_TUNED, BASELINES)

T_ISO = "2024-01-01"
T = day_of(T_ISO)


def d(offset: int) -> str:
    return iso_of(T + offset)


def act(day, user, chan, commits=1):
    return {"day": day, "user_id": str(user), "channel_id": str(chan), "commits": str(commits), "files": "1"}


def inter(day, a, b, count=1):
    return {"day": day, "user_id": str(a), "other_user_id": str(b), "kind": "merged_pr", "count": str(count)}


def hour(day, user, h, commits=1):
    return {"day": day, "user_id": str(user), "local_hour": str(h), "commits": str(commits)}


def tiny():
    a = [act(d(o), 1, 1) for o in (-366, -365, -91, -90, -31, -30, -1, 0, 364, 365)]
    a += [act(d(-10), 2, 2), act(d(5), 2, 1), act(d(-400), 3, 2), act(d(-20), 4, 3), act(d(-20), 4, 1)]
    # new member 10: first day T+3 in channel 1, helped by 1 that day; later works with 2 and shares channel 1 with 4
    a += [act(d(3), 10, 1), act(d(30), 10, 1), act(d(20), 4, 1), act(d(2), 3, 1)]
    i = [inter(d(-1), 1, 2), inter(d(0), 1, 3), inter(d(365), 1, 4), inter(d(3), 1, 10), inter(d(10), 2, 10),
         inter(d(40), 3, 10)]
    h = [hour(d(-1), 1, 23), hour(d(-2), 1, 1), hour(d(-3), 1, 1), hour(d(0), 1, 5), hour(d(-20), 4, 12)]
    ch = [{"channel_id": str(c), "name": f"x/{c}", "first_day": d(-400)} for c in (1, 2, 3)]
    return from_rows("tiny", {"channels": ch, "activity": a, "interactions": i, "hours": h})


class WindowTest(unittest.TestCase):
    def setUp(self):
        self.ds = tiny()
        self.t = Tables(self.ds, T)
        self.u = {k: self.ds.user_index[str(k)] for k in (1, 2, 3, 4, 10)}
        self.c = {k: self.ds.channel_index[str(k)] for k in (1, 2, 3)}

    def test_windows_are_left_closed_right_open(self):
        u, c = self.u[1], self.c[1]
        # days before T: -366 -365 -91 -90 -31 -30 -1; day 0 and later are labels
        self.assertEqual(self.t.uc_days[30][u, c], 2)      # -30, -1
        self.assertEqual(self.t.uc_days[90][u, c], 4)      # -90, -31, -30, -1
        self.assertEqual(self.t.uc_days[365][u, c], 6)     # -365 ... -1
        self.assertEqual(self.t.uc_days[None][u, c], 7)
        self.assertEqual(self.t.uc_last[u, c], T - 1)
        self.assertEqual(self.t.uc_first[u, c], T - 366)
        self.assertEqual(self.t.ch_last[c], T - 1)         # user 4's day -20, user 1's day -1

    def test_nothing_from_day_T_or_later(self):
        t = self.t
        self.assertEqual(t.u_last.max(), T - 1)
        self.assertEqual(t.u_ilast.max(), T - 1)
        self.assertEqual(t.uh_last.max(), T - 1)
        u1, u3 = self.u[1], self.u[3]
        self.assertEqual(t.uu_count[None][u1, u3], 0)       # their interaction is on day T
        self.assertEqual(t.uu_count[None][u1, self.u[2]], 1)
        self.assertEqual(t.uu_count[None][self.u[2], u1], 1)  # undirected
        self.assertEqual(t.uh_commits[None][u1, 5], 0)      # hour row on day T
        self.assertFalse(t.existing_people[self.u[10]])

    def test_new_members_in_window(self):
        later = Tables(self.ds, T + 31)        # W30 = [T+1, T+31), W90 = [T-59, T+31)
        self.assertEqual(later.ch_new_members[30][self.c[1]], 3)   # 3 (T+2), 10 (T+3), 2 (T+5)
        self.assertEqual(later.ch_new_members[90][self.c[1]], 4)   # and 4 (T-20)
        self.assertEqual(later.ch_new_members[None][self.c[1]], 5)  # and 1 (T-366)

    def test_day_distances(self):
        cut = Cut(self.ds, T, dims=2)
        c1 = self.c[1]
        X = cut.features("archive", -1, [c1])[0]
        names = feature_names("archive")
        self.assertAlmostEqual(X[names.index("ch_days_since_last_log")], math.log1p(1))
        self.assertAlmostEqual(X[names.index("ch_age_log")], math.log1p(366))
        # never-active hour of a user: the missing default
        X = cut.features("send_time", self.u[1], np.arange(24))
        names = feature_names("send_time")
        self.assertAlmostEqual(X[12, names.index("uh_days_since_last_log")], MISSING_DAYS_LOG)
        self.assertAlmostEqual(X[23, names.index("uh_days_since_last_log")], math.log1p(1))

    def test_send_time_neighbours_are_circular(self):
        cut = Cut(self.ds, T, dims=2)
        names = feature_names("send_time")
        X = cut.features("send_time", self.u[1], np.arange(24))
        share = X[:, names.index("uh_share_365")]
        self.assertAlmostEqual(share[23], 1 / 3)
        self.assertAlmostEqual(share[1], 2 / 3)
        neigh = X[:, names.index("uh_neighbors_share_365")]
        self.assertAlmostEqual(neigh[0], (1 / 3 + 2 / 3) / 2)   # hours 23 and 1
        self.assertAlmostEqual(neigh[22], (0 + 1 / 3) / 2)


class LabelTest(unittest.TestCase):
    def setUp(self):
        self.ds = tiny()
        self.cut = Cut(self.ds, T, dims=2)
        self.u = lambda k: self.ds.user_index[str(k)]
        self.c = lambda k: self.ds.channel_index[str(k)]

    def test_channel_browser(self):
        lab = self.cut.labels("channel_browser")
        self.assertEqual(lab.get(self.u(2)), {self.c(1)})        # joined on T+5
        self.assertNotIn(self.u(1), lab)                         # already a member
        self.assertNotIn(self.u(10), lab)                        # not active before T

    def test_composer_dm(self):
        lab = self.cut.labels("composer_dm")
        self.assertEqual(lab.get(self.u(1)), {self.u(3)})        # day T counts, T+365 does not
        self.assertNotIn(self.u(3), lab)                         # 3 was not active in the 365 days before T

    def test_leave_and_archive(self):
        lab = self.cut.labels("leave")
        self.assertEqual(lab[self.u(1)], set())                  # active at T in channel 1
        self.assertEqual(lab[self.u(4)], {self.c(3)})            # quiet in 3, active in 1 at T+20
        self.assertEqual(lab[self.u(2)], {self.c(2)})
        self.assertEqual(self.cut.labels("archive")[-1], {self.c(2), self.c(3)})
        self.assertEqual(self.cut.evaluable("leave", lab), [self.u(4)])   # needs a positive and a negative

    def test_invite(self):
        nm = self.cut.new_members()
        self.assertEqual(list(nm), [self.u(10)])
        m = nm[self.u(10)]
        self.assertEqual(m.day, T + 3)
        self.assertEqual(m.channels.tolist(), [self.c(1)])
        self.assertEqual(m.partners.tolist(), [self.u(1)])
        lab = self.cut.labels("invite")[self.u(10)]
        # 2: interaction on T+10; 3: interaction on T+40; 4: channel 1 on T+20 while 10 is there on T+30.
        # 1 (channel 1 on T+364) is the first-day partner: context, never a label or candidate.
        # 3's activity on T+2, before the first day, would not count as shared activity.
        self.assertEqual(lab, {self.u(2), self.u(3), self.u(4)})
        self.assertNotIn(self.u(1), self.cut.candidates("invite", self.u(10)).tolist())

    def test_send_time(self):
        lab = self.cut.labels("send_time")
        self.assertEqual(lab[self.u(1)], {5})


class LeakageTest(unittest.TestCase):
    """Features at T are identical when every row from day >= T is deleted
    (keeping only the new members' first-day rows, the invite context)."""

    def test_future_rows_do_not_change_features(self):
        full_rows = synth_data.rows()
        ds = from_rows("synth", full_rows)
        T = default_cuts(ds, 1)[-1] - 200
        cut = Cut(ds, T, dims=8)
        keep_days = {}
        for u, m in cut.new_members().items():
            keep_days[ds.user_ids[u]] = m.day
        Tiso = iso_of(T)

        def keep(r, users):
            if r["day"] < Tiso:
                return True
            return any(day_of(r["day"]) == keep_days.get(r[k]) for k in users)

        past_rows = {
            "channels": full_rows["channels"],
            "activity": [r for r in full_rows["activity"] if keep(r, ["user_id"])],
            "interactions": [r for r in full_rows["interactions"] if keep(r, ["user_id", "other_user_id"])],
            "hours": [r for r in full_rows["hours"] if r["day"] < Tiso],
        }
        self.assertLess(len(past_rows["activity"]), len(full_rows["activity"]))
        ds_past = from_rows("synth", past_rows)
        past = Cut(ds_past, T, dims=8)
        uid = lambda ds_, i: ds_.user_ids[i]                     # noqa: E731
        to_past_u = lambda i: ds_past.user_index[ds.user_ids[i]]  # noqa: E731
        for i in np.flatnonzero(cut.emb.has_user):
            np.testing.assert_array_equal(cut.emb.users[i], past.emb.users[to_past_u(i)])
        checked = 0
        for src in SOURCES:
            if src in ("channel_browser", "leave", "archive"):
                ids, pids = ds.channel_ids, ds_past.channel_ids
            elif src == "send_time":
                ids = pids = list(range(24))
            else:
                ids, pids = ds.user_ids, ds_past.user_ids
            for s in cut.subjects(src)[:6]:
                ps = -1 if s == -1 else to_past_u(s)
                self.assertEqual(uid(ds, s) if s >= 0 else None, uid(ds_past, ps) if ps >= 0 else None)
                items = cut.candidates(src, s)
                pitems = past.candidates(src, ps)
                self.assertEqual([ids[i] for i in items], [pids[i] for i in pitems], src)
                np.testing.assert_allclose(cut.features(src, s, items), past.features(src, ps, pitems), err_msg=src)
                checked += len(items)
        self.assertGreater(checked, 100)


class CutsAndSpecTest(unittest.TestCase):
    def test_default_cuts_leave_a_year_of_labels(self):
        ds = from_rows("synth", synth_data.rows(n_users=10, days=4 * 365))
        lo, hi = ds.day_range()
        cuts = default_cuts(ds, 3)
        self.assertEqual(cuts[-1] + LABEL_DAYS, hi + 1)
        self.assertEqual(np.diff(cuts).tolist(), [365, 365])
        self.assertEqual(parse_cuts("2021-01-01, 2019-01-01"), [day_of("2019-01-01"), day_of("2021-01-01")])

    def test_every_feature_is_specified_in_features_md(self):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "FEATURES.md")
        with open(path) as f:
            spec = f.read()
        for src in SOURCES:
            self.assertIn(f"`{src}`", spec)
            for name, _ in FEATURES[src]:
                self.assertIn(f"`{name}`", spec, f"{src}.{name} missing from FEATURES.md")
            for name in HAND_TUNED[src]:
                self.assertIn(name, feature_names(src))
            for name, _ in BASELINES[src].values():
                self.assertIn(name, feature_names(src))

    def test_embedding_is_deterministic_unit_and_rounded(self):
        ds = from_rows("synth", synth_data.rows())
        T = default_cuts(ds, 1)[-1]
        t = Tables(ds, T)
        a, b = build_embedding(t, 8), build_embedding(t, 8)
        np.testing.assert_array_equal(a.users, b.users)
        norms = np.linalg.norm(a.users[a.has_user], axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-3)
        np.testing.assert_array_equal(a.channels, np.round(a.channels, 4))


if __name__ == "__main__":
    unittest.main()
