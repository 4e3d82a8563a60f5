"""train.py --logs: served-item NDJSON logs -> lr / xgboost, exported and registered."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import train  # noqa: E402
from features import feature_names  # noqa: E402


def write_logs(path: str, seed: int = 5) -> None:
    rs = np.random.RandomState(seed)
    names = feature_names("channel_browser")
    lines = []
    for r in range(400):
        for i in range(10):
            x = {n: float(rs.randn()) for n in names}
            x["cf_max"] = float(rs.rand())
            del x["ch_age_log"]                                   # missing -> manifest default
            p = 1 / (1 + math.exp(-(4 * x["cf_max"] + x["ucf_365_log"] - 4)))
            lines.append({"source": "channel_browser", "request_id": f"r{r}", "item": f"C{i}",
                          "features": x, "model": "hand_tuned", "arm": "control",
                          "clicked": bool(rs.rand() < p)})
    for r in range(30):                                           # unknown source, own feature names
        for i in range(5):
            a = float(rs.randn())
            lines.append({"source": "mystery", "request_id": f"m{r}", "item": str(i),
                          "features": {"a": a, "b": float(rs.randn())}, "clicked": bool(a > 0.5)})
    for r in range(5):                                            # never clicked: nothing to fit
        lines.append({"source": "send_time", "request_id": f"s{r}", "item": 3, "features": {}, "clicked": False})
    with open(path, "w") as f:
        for rec in lines:
            f.write(json.dumps(rec) + "\n")
        f.write("{not json\n")
        f.write(json.dumps({"request_id": "x"}) + "\n")


class LogsTrainerTest(unittest.TestCase):
    def test_train_from_logs(self):
        with tempfile.TemporaryDirectory() as tmp:
            logs = os.path.join(tmp, "logs")
            os.makedirs(logs)
            write_logs(os.path.join(logs, "served-2026-11-24.ndjson"))
            out, reg = os.path.join(tmp, "out"), os.path.join(tmp, "registry")
            train.main(["--logs", logs, "--out", out, "--quick", "--register", reg, "--quiet"])
            with open(os.path.join(out, "logs_metrics.json")) as f:
                m = json.load(f)
            self.assertEqual(m["malformed_lines"], 2)
            cb = m["sources"]["channel_browser"]
            self.assertEqual(cb["rows"], 4000)
            self.assertEqual(cb["train_requests"] + cb["test_requests"], 400)
            for kind in ("lr", "xgboost"):
                self.assertGreater(cb[kind]["auc"], 0.7, kind)
                self.assertGreater(cb[kind]["requests_evaluated"], 20)
                with open(os.path.join(out, "models", "channel_browser", kind, "manifest.json")) as f:
                    man = json.load(f)
                self.assertEqual([x["name"] for x in man["features"]], feature_names("channel_browser"))
                self.assertTrue(os.path.exists(os.path.join(out, "models", "channel_browser", kind, "model.onnx")))
            self.assertEqual(m["sources"]["mystery"]["features"], ["a", "b"])
            self.assertIn("skipped", m["sources"]["send_time"]["lr"])
            self.assertTrue(os.path.exists(os.path.join(reg, "channel_browser", "model.onnx")))
            self.assertTrue(os.path.exists(os.path.join(reg, "channel_browser", "hand_tuned.json")))
            self.assertFalse(os.path.exists(os.path.join(reg, "send_time")))


def write_raw_logs(directory: str, seed: int = 7) -> dict:
    """The platform's raw R2 format: served lines (items[]) and feedback lines, split over objects."""
    rs = np.random.RandomState(seed)
    names = feature_names("channel_browser")
    served, feedback, clicks = [], [], 0
    for r in range(300):
        rid = f"req-{r}"
        items = []
        for i in range(10):
            x = {n: float(rs.randn()) for n in names}
            x["cf_max"] = float(rs.rand())
            # Today's format (features aligned with feature_names) on odd requests, the older dict on even ones.
            features = [x[n] for n in names] if r % 2 else x
            items.append({"item": f"C{i}", "rank": i + 1, "score": 0.5, "features": features})
            feedback.append({"kind": "feedback", "request_id": rid, "team": "T1", "user": f"U{r}",
                             "source": "channel_browser", "arm": "default", "item": f"C{i}",
                             "action": "impression", "ts": 2})
            if rs.rand() < 1 / (1 + math.exp(-(6 * x["cf_max"] - 4))):
                clicks += 1
                feedback.append({"kind": "feedback", "request_id": rid, "team": "T1", "user": f"U{r}",
                                 "source": "channel_browser", "arm": "default", "item": f"C{i}",
                                 "action": "click", "ts": 3})
        served.append({"kind": "served", "request_id": rid, "team": "T1", "user": f"U{r}",
                       "source": "channel_browser", "experiment": "default", "arm": "default",
                       "model": "channel_browser-xgboost", "version": "v1", "fallback": False, "ts": 1,
                       "items": items, **({"feature_names": names} if r % 2 else {})})
    feedback.append({"kind": "feedback", "request_id": "never-served", "team": "T1", "user": "U1",
                     "source": "channel_browser", "arm": "default", "item": "C1", "action": "click", "ts": 3})
    lines = [{"message_id": f"m{n}", **m} for n, m in enumerate(served + feedback)]
    os.makedirs(os.path.join(directory, "rec-logs", "source=channel_browser", "day=2026-11-24"))
    half = len(lines) // 2
    base = os.path.join(directory, "rec-logs", "source=channel_browser", "day=2026-11-24")
    with open(os.path.join(base, "a.ndjson"), "w") as f:
        for rec in lines[:half]:
            f.write(json.dumps(rec) + "\n")
    with open(os.path.join(base, "b.ndjson"), "w") as f:
        for rec in lines[half:]:
            f.write(json.dumps(rec) + "\n")
        f.write(json.dumps(lines[0]) + "\n")                  # a retried batch repeats a message
        f.write(json.dumps({"kind": "served", "request_id": "bad"}) + "\n")   # no items: malformed
        f.write(json.dumps({"kind": "served", "request_id": "short", "source": "channel_browser",
                            "feature_names": ["a", "b"], "items": [{"item": "C1", "features": [1.0]}]}) + "\n")
    return {"clicks": clicks}


class RawLogsTest(unittest.TestCase):
    def test_join_raw(self):
        import logs

        with tempfile.TemporaryDirectory() as tmp:
            truth = write_raw_logs(tmp)
            stats: dict = {}
            rows, bad = logs.read_logs(tmp, stats)
            self.assertEqual(bad, 2)                      # no items; features not aligned with their names
            self.assertEqual(len(rows), 3000)
            odd = next(r for r in rows if r["request_id"] == "req-1")
            self.assertEqual(set(odd["features"]), set(feature_names("channel_browser")))
            self.assertEqual(sum(r["clicked"] for r in rows), truth["clicks"])
            self.assertEqual(stats["duplicate_lines"], 1)
            self.assertEqual(stats["unmatched_feedback"], 1)
            self.assertEqual(rows[0]["model"], "channel_browser-xgboost@v1")
            self.assertEqual({r["source"] for r in rows}, {"channel_browser"})

    def test_train_from_raw_and_joined_mixed(self):
        with tempfile.TemporaryDirectory() as tmp:
            logs_dir = os.path.join(tmp, "logs")
            write_raw_logs(logs_dir)
            write_logs(os.path.join(logs_dir, "joined.ndjson"))
            out = os.path.join(tmp, "out")
            train.main(["--logs", logs_dir, "--out", out, "--quick", "--quiet"])
            with open(os.path.join(out, "logs_metrics.json")) as f:
                m = json.load(f)
            cb = m["sources"]["channel_browser"]
            self.assertEqual(cb["rows"], 4000 + 3000)
            self.assertEqual(cb["train_requests"] + cb["test_requests"], 700)
            self.assertEqual(m["raw"]["raw_served_requests"], 301)  # 300 + the one with misaligned features
            self.assertGreater(cb["lr"]["auc"], 0.7)


if __name__ == "__main__":
    unittest.main()
