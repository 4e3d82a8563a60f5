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


if __name__ == "__main__":
    unittest.main()
