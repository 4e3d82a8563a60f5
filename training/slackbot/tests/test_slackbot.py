"""Tests of the Slack bot's classifier pipeline (training/slackbot/).

Run: /usr/bin/python3 -m unittest discover -s training/slackbot/tests -v
(npm test runs them through test/node/training-slackbot.test.ts.)
"""

from __future__ import annotations

import filecmp
import json
import os
import sys
import tempfile
import unittest

import numpy as np
import onnx
import onnx.numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))

import build_dataset  # noqa: E402
import train  # noqa: E402
from text import tokenize  # noqa: E402

DATA = os.path.join(ROOT, "datasets", "debian-packages", "descriptions.csv")
SHIPPED = os.path.join(ROOT, "models", "slackbot")


class TokenizeTest(unittest.TestCase):
    def test_rule(self):
        self.assertEqual(tokenize("Ünïcode PostgreSQL-14 a b c++ x86_64"), ["code", "postgresql", "14", "x86", "64"])
        self.assertEqual(tokenize(""), [])
        self.assertEqual(tokenize("WHO KNOWS?"), ["who", "knows"])


class BuildDatasetTest(unittest.TestCase):
    def test_groups_sections_dedupes_and_splits(self):
        stanzas = []
        for i in range(30):
            section = ["python", "contrib/games", "net", "libs"][i % 4]
            stanzas.append(f"Package: p{i}\nSection: {section}\nDescription: thing number {i % 25}\n long text\n")
        stanzas.append("Package: p0\nSection: games\nDescription: a duplicate package name\n")
        rows = build_dataset.build("\n".join(stanzas).splitlines(keepends=True))
        teams = {r["team"] for r in rows}
        self.assertEqual(teams, {"python", "games", "networking"})
        texts = [r["text"].lower() for r in rows]
        self.assertEqual(len(texts), len(set(texts)))
        self.assertTrue(all(r["split"] in ("train", "test") for r in rows))
        self.assertNotIn("a duplicate package name", texts)


class TrainTest(unittest.TestCase):
    def test_export_matches_sklearn_and_is_deterministic(self):
        result = train.train(DATA)
        self.assertGreater(result["accuracy"], 2 * result["baseline"])
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            train.write(result, DATA, a, None)
            train.write(train.train(DATA), DATA, b, None)
            for name in ("model.onnx", "manifest.json", "parity.json"):
                self.assertTrue(filecmp.cmp(os.path.join(a, name), os.path.join(b, name), shallow=False), name)
            model = onnx.load(os.path.join(a, "model.onnx"))
            onnx.checker.check_model(model)
            manifest = json.load(open(os.path.join(a, "manifest.json"), encoding="utf-8"))
            parity = json.load(open(os.path.join(a, "parity.json"), encoding="utf-8"))
            self.assertEqual(len(manifest["teams"]), len(result["teams"]))
            for row in parity["rows"]:
                self.assertEqual(row["tokens"], tokenize(row["text"]))
                self.assertAlmostEqual(sum(row["probabilities"]), 1.0, places=6)

    def test_graph_arithmetic_matches_predict_proba(self):
        result = train.train(DATA)
        clf = result["clf"]
        texts = [r["text"] for r in result["test_rows"][:200]] + ["", "zzzz qqqq"]
        counts = train.counts_matrix([tokenize(t) for t in texts], result["index"])
        expected = clf.predict_proba(train.tfidf(counts, result["idf"]))
        got = train.graph_forward(counts.toarray(), result["idf"], clf.coef_, clf.intercept_)
        self.assertLess(float(np.abs(got - expected).max()), 1e-6)

    def test_shipped_model_is_this_csv_trained(self):
        """models/slackbot/ is what `npm run train:slackbot` writes from the vendored CSV.

        The manifest (vocabulary, teams) must be byte-identical. The numbers may
        differ in their last float32 digit from one machine's BLAS to another's
        (seen: 0.728755223 vs 0.728755222), so the graph's initializers and the
        parity probabilities are compared to 1e-6, far below anything that
        changes an answer; the same machine still writes identical bytes (above).
        """
        with tempfile.TemporaryDirectory() as out:
            train.write(train.train(DATA), DATA, out, None)
            stale = "models/slackbot/{} is stale: run npm run train:slackbot"
            self.assertTrue(
                filecmp.cmp(os.path.join(out, "manifest.json"), os.path.join(SHIPPED, "manifest.json"), shallow=False),
                stale.format("manifest.json"),
            )
            fresh, shipped = (onnx.load(os.path.join(d, "model.onnx")) for d in (out, SHIPPED))
            self.assertEqual(
                [(n.op_type, list(n.input), list(n.output)) for n in fresh.graph.node],
                [(n.op_type, list(n.input), list(n.output)) for n in shipped.graph.node],
                stale.format("model.onnx"),
            )
            shipped_inits = {i.name: onnx.numpy_helper.to_array(i) for i in shipped.graph.initializer}
            for init in fresh.graph.initializer:
                got = onnx.numpy_helper.to_array(init)
                want = shipped_inits.get(init.name)
                self.assertIsNotNone(want, stale.format("model.onnx"))
                self.assertEqual(got.shape, want.shape, stale.format("model.onnx"))
                self.assertTrue(np.allclose(got, want, rtol=1e-6, atol=1e-6), stale.format(f"model.onnx ({init.name})"))
            fresh_rows, shipped_rows = (
                json.load(open(os.path.join(d, "parity.json"), encoding="utf-8"))["rows"] for d in (out, SHIPPED)
            )
            self.assertEqual(len(fresh_rows), len(shipped_rows), stale.format("parity.json"))
            for a, b in zip(fresh_rows, shipped_rows):
                self.assertEqual((a["text"], a["tokens"]), (b["text"], b["tokens"]), stale.format("parity.json"))
                self.assertTrue(np.allclose(a["probabilities"], b["probabilities"], atol=1e-6), stale.format("parity.json"))

if __name__ == "__main__":
    unittest.main()
