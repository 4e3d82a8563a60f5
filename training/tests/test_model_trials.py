"""model_trials.py: a --quick run on the committed fixture's rows, EASE against per-item ridge regressions,
and the transition scorer against a brute-force count from its written definition."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import tempfile
import unittest

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)   # synth_data, also when run as training.tests.test_model_trials

import model_trials as MT  # noqa: E402
import synth_data  # noqa: E402
from data import default_cuts, load_dataset  # noqa: E402
from features import Cut  # noqa: E402

FIXTURE = os.path.join(HERE, "..", "fixtures", "rails-collab", "fixture.json")


class ModelTrialsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        with open(FIXTURE) as f:
            rows = json.load(f)["rows"]
        cls.data = synth_data.write_dir(os.path.join(cls.tmp.name, "rails-slice"), rows)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_quick_run_writes_a_complete_report(self):
        out = os.path.join(self.tmp.name, "model-trials.md")
        MT.main(["--data", self.data, "--out", out, "--quick", "--quiet", "--threads", "1"])
        with open(out) as f:
            text = f.read()
        self.assertIn("QUICK", text)
        for src in MT.SOURCES:
            self.assertIn(f"## {src}", text)
            for v in MT.variants(src):
                self.assertIn(f"| {v['name']} |", text)

    def test_quick_needs_its_own_out(self):
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            MT.main(["--data", self.data, "--quick", "--quiet"])

    def test_ease_is_a_ridge_regression_per_item(self):
        # EASE's column j is the ridge regression of item j on the other items (B_jj = 0 constraint)
        rs = np.random.RandomState(1)
        X = (rs.rand(40, 7) < 0.35).astype(float)
        lam = 3.0
        W = MT.ease_weights(sp.csr_matrix(X), lam)
        for j in range(X.shape[1]):
            o = [k for k in range(X.shape[1]) if k != j]
            A = X[:, o]
            w = np.linalg.solve(A.T @ A + lam * np.eye(len(o)), A.T @ X[:, j])
            self.assertAlmostEqual(W[j, j], 0.0)
            np.testing.assert_allclose(W[o, j], w, atol=1e-10)

    def test_rank_normalisation_matches_rankdata(self):
        from scipy.stats import rankdata

        X = np.random.RandomState(2).randint(0, 4, (25, 3)).astype(float)
        Z = MT.normalise(X, 3, "rank")[:, 3:]
        np.testing.assert_allclose(Z, rankdata(X, axis=0) / 25)

    def test_transitions_match_their_definition(self):
        ds = load_dataset(self.data)
        T = default_cuts(ds)[-1]
        cut = Cut(ds, T)
        t = cut.t
        joins = MT.make_joins(ds)
        # brute force: first day per (person, channel) from the raw rows before T
        first = {}
        for d, u, c in zip(ds.a_day.tolist(), ds.a_user.tolist(), ds.a_chan.tolist()):
            if d < T and ((u, c) not in first or d < first[(u, c)]):
                first[(u, c)] = d
        by_person = {}
        for (u, c), d in first.items():
            by_person.setdefault(u, []).append((c, d))
        N = np.zeros((t.C, t.C))
        for evs in by_person.values():
            for a, da in evs:
                for b, db in evs:
                    if a != b and 0 <= db - da <= MT.TRANS_WINDOW:
                        N[a, b] += 1
        starts = np.zeros(t.C)
        for (u, c) in first:
            starts[c] += 1
        Ptr = joins["channel_browser"].transition(T).toarray()
        np.testing.assert_allclose(Ptr, N / (starts[:, None] + MT.TRANS_SMOOTH), atol=1e-12)
        self.assertGreater(N.sum(), 0)
        # the scorer column for the busiest person: sum_A exp(-(T - first(u, A)) / tau) P(c | A)
        u = int(np.argmax([len(by_person.get(i, [])) for i in range(t.U)]))
        items = np.arange(t.C)
        from features import Group

        g = Group(u, items, np.zeros((t.C, 1)), np.zeros(t.C), 0)
        E = MT.CutScorers(cut, joins).channel_browser([g])[0]
        cols = MT.extra_cols("channel_browser")
        for tau in MT.FAMILIES["channel_browser"]["trans"][1]:
            want = sum(math.exp(-(T - d) / tau) * Ptr[a] for a, d in by_person[u])
            np.testing.assert_allclose(E[:, cols.index(f"trans@{tau:g}")], want, atol=1e-10)


if __name__ == "__main__":
    unittest.main()
