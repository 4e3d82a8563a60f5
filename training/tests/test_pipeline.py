"""End to end: train.py --data on a small synthetic dataset."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import synth_data  # noqa: E402
import train  # noqa: E402
from features import SOURCES  # noqa: E402

MODELS = ("popularity", "recent_popularity", "hand_tuned", "lr", "xgboost")


class PipelineTest(unittest.TestCase):
    def test_quick_run_writes_every_artifact(self):
        with tempfile.TemporaryDirectory() as tmp:
            data = synth_data.write_dir(os.path.join(tmp, "synth-team"), synth_data.rows(n_users=80))
            out, reg, rep = os.path.join(tmp, "out"), os.path.join(tmp, "models"), os.path.join(tmp, "report")
            train.main(["--data", data, "--out", out, "--quick", "--train-cuts", "2", "--register", reg, "--quiet",
                        "--report-dir", rep])
            with open(os.path.join(out, "metrics.json")) as f:
                m = json.load(f)
            self.assertEqual(m["dataset"], "synth-team")
            self.assertEqual(len(m["cuts"]), 3)
            self.assertEqual(set(m["sources"]), set(SOURCES))
            for src in SOURCES:
                self.assertEqual(set(m["sources"][src]), set(MODELS))
                for r in m["sources"][src].values():
                    self.assertEqual(set(r), {"ndcg10", "recall10", "users"})
                    self.assertIsInstance(r["users"], int)
                    self.assertTrue(0.0 <= r["ndcg10"] <= 1.0)
            with open(os.path.join(out, "metrics_by_cut.json")) as f:
                by_cut = json.load(f)
            self.assertEqual(len(by_cut["cuts"]), 3)
            # archive: at most one ranking (the team's channel list) per cut
            per_cut = [c["sources"]["archive"]["models"]["lr"]["users"] for c in by_cut["cuts"]]
            self.assertTrue(all(n in (0, 1) for n in per_cut), per_cut)
            self.assertEqual(m["sources"]["archive"]["lr"]["users"], sum(per_cut))
            self.assertGreaterEqual(sum(per_cut), 1)
            with open(os.path.join(out, "embeddings.json")) as f:
                emb = json.load(f)
            self.assertEqual(emb["cut"], m["cuts"][-1])
            self.assertEqual(len(next(iter(emb["users"].values()))), emb["dims"])
            for f in ("report.md", "ndcg10_by_source.png", "ndcg10_by_cut.png", "metrics.json"):
                self.assertTrue(os.path.exists(os.path.join(rep, f)), f)
            # the promotion gate decides what is registered (test_gate.py); its decisions are in gate.json
            with open(os.path.join(reg, "gate.json")) as f:
                gate = json.load(f)
            self.assertEqual(set(gate["sources"]), set(SOURCES))
            for got, want in zip(m["spread"]["channel_browser"]["lr"]["per_cut"],
                                 [c["sources"]["channel_browser"]["models"]["lr"]["ndcg10"] for c in by_cut["cuts"]],
                                 strict=True):
                self.assertAlmostEqual(got, want, places=6)
            registered = [s for s in SOURCES if os.path.exists(os.path.join(reg, s, "model.onnx"))]
            self.assertEqual(registered, [s for s in SOURCES if gate["sources"][s]["decision"] == "register"])
            self.assertEqual(os.path.exists(os.path.join(reg, "embeddings", "synth-team.json")), bool(registered))
            for s in registered:
                with open(os.path.join(reg, s, "manifest.json")) as f:
                    man = json.load(f)
                self.assertEqual(man["source"], s)
                self.assertIn(man["kind"], ("lr", "xgboost"))

    def test_candidates_per_generator_option(self):
        """--candidates-per-generator K caps every generator at K items; recorded in the protocol and stats."""
        with tempfile.TemporaryDirectory() as tmp:
            data = synth_data.write_dir(os.path.join(tmp, "synth-team"), synth_data.rows(n_users=80))
            rows = {}
            for k in (2, 50):
                out = os.path.join(tmp, f"out{k}")
                train.main(["--data", data, "--out", out, "--quick", "--train-cuts", "2", "--quiet", "--threads", "1",
                            "--sources", "channel_browser,composer_dm", "--candidates-per-generator", str(k)])
                with open(os.path.join(out, "metrics_by_cut.json")) as f:
                    by_cut = json.load(f)
                self.assertEqual(by_cut["protocol"]["candidates_per_generator"], k)
                with open(os.path.join(out, "models", "channel_browser", "lr", "manifest.json")) as f:
                    self.assertEqual(json.load(f)["metrics"]["candidates_per_generator"], k)
                for c in by_cut["cuts"]:
                    for src, generators in (("channel_browser", 4), ("composer_dm", 6)):
                        st = c["sources"][src]["stats"]
                        self.assertLessEqual(st["rows_per_ranking_max"], generators * k)
                        self.assertLessEqual(st["rows_per_ranking_median"], st["rows_per_ranking_max"])
                        rows[(k, c["cut"], src)] = st["rows"]
            # a wider K never shrinks a ranking
            narrow = {key[1:]: n for key, n in rows.items() if key[0] == 2}
            wide = {key[1:]: n for key, n in rows.items() if key[0] == 50}
            for key, n in narrow.items():
                self.assertLessEqual(n, wide[key])
            self.assertLess(sum(narrow.values()), sum(wide.values()))

    def test_candidates_per_generator_must_be_positive(self):
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            train.main(["--data", "unused", "--out", os.path.join(tempfile.gettempdir(), "unused-out"), "--quiet",
                        "--candidates-per-generator", "0"])


if __name__ == "__main__":
    unittest.main()
