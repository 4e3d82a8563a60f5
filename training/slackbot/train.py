"""Train the Slack bot's team classifier: TF-IDF and a linear model, exported to ONNX.

    /usr/bin/python3 training/slackbot/train.py \
        --data datasets/debian-packages/descriptions.csv \
        --out models/slackbot --report training/slackbot/report.md
    (npm run train:slackbot runs exactly this)

Input: a CSV with at least the columns `text`, `team` and `split` (`train` or
`test`; rows with another split are ignored). Deterministic: the same CSV
gives byte-identical model.onnx, manifest.json and parity.json.

The model (what the Worker reads from model.onnx into TypeScript and scores
there, src/slackbot/onnx-tfidf.ts; it takes exactly this chain of seven
nodes and four float32 initializers, so a change here needs the reader
changed too, or the graph runs only in the ONNX build, docs/slack-bot.md):

    counts float32 [N, V]  (term counts over the manifest's vocabulary, text.py's tokens)
      -> Mul(idf) -> Div(Max(ReduceL2(axis 1), 1e-12))        TF-IDF, L2-normalised rows
      -> MatMul(W [V, K]) -> Add(b [K]) -> Softmax(axis 1)     multinomial logistic regression
      -> probabilities float32 [N, K]  (K teams, the manifest's `teams` order)

idf = ln((1 + n) / (1 + df)) + 1 over the training rows (scikit-learn's smooth
idf); the vocabulary is the VOCAB_SIZE most frequent tokens (by document
frequency, ties by token) seen in at least MIN_DF training rows.

Writes to --out: model.onnx, manifest.json (tokenizer, vocabulary, teams,
held-out metrics, dataset hash) and parity.json (texts and the Python
probabilities the Worker must match within 1e-5); to --report: accuracy vs the
majority class and the confusion matrix on the held-out rows.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from scipy import sparse
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from text import TOKENIZER, tokenize  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
VOCAB_SIZE = 4000
MIN_DF = 2
C = 10.0
PARITY_ROWS = 48
PARITY_TOLERANCE = 1e-5
ONNX_OPSET = 17
IR_VERSION = 8
INPUT_NAME = "counts"
OUTPUT_NAME = "probabilities"

# Team display names for the answers; a team missing here is shown by its id.
TEAM_NAMES = {
    "python": "Python",
    "javascript": "JavaScript",
    "web": "Web",
    "database": "Database",
    "networking": "Networking",
    "graphics": "Graphics & Video",
    "sound": "Sound",
    "science": "Science & Math",
    "infrastructure": "Infrastructure",
    "games": "Games",
    "docs": "Docs",
    "devtools": "Developer Tools",
}

# Texts the parity fixture always includes beside held-out rows: questions as
# people ask them, and edge cases of the tokenizer.
EXTRA_TEXTS = [
    "who knows about postgres replication?",
    "Who can help with the nginx reverse proxy config?",
    "<@U0BOT> our OpenGL shaders crash on start",
    "WHO KNOWS ABOUT ALSA / PulseAudio latency??",
    "anyone familiar with numpy and scipy sparse matrices",
    "",
    "?!",
    "x y z 1 2 3",
    "Ünïcödé wörds — and café au lait, naïve façade",
    "kernel module for the e1000e NIC driver; iptables rules",
]


def read_rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("split") in ("train", "test")]


def build_vocabulary(docs: list[list[str]]) -> tuple[list[str], np.ndarray]:
    df: dict[str, int] = {}
    for tokens in docs:
        for t in set(tokens):
            df[t] = df.get(t, 0) + 1
    kept = sorted((t for t, n in df.items() if n >= MIN_DF), key=lambda t: (-df[t], t))[:VOCAB_SIZE]
    n = len(docs)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in kept], dtype=np.float64)
    return kept, idf


def counts_matrix(docs: list[list[str]], index: dict[str, int]) -> sparse.csr_matrix:
    rows, cols, vals = [], [], []
    for i, tokens in enumerate(docs):
        seen: dict[int, int] = {}
        for t in tokens:
            j = index.get(t)
            if j is not None:
                seen[j] = seen.get(j, 0) + 1
        for j, c in sorted(seen.items()):
            rows.append(i)
            cols.append(j)
            vals.append(float(c))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(index)), dtype=np.float64)


def tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    x = sparse.csr_matrix(counts.multiply(idf.reshape(1, -1)))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms = np.maximum(norms, 1e-12)
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ x)


def onnx_model(idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> onnx.ModelProto:
    v, k = coef.shape[1], coef.shape[0]
    inits = [
        numpy_helper.from_array(idf.astype(np.float32).reshape(1, v), "idf"),
        numpy_helper.from_array(np.array([1e-12], dtype=np.float32), "eps"),
        numpy_helper.from_array(np.ascontiguousarray(coef.T).astype(np.float32), "W"),
        numpy_helper.from_array(intercept.astype(np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Mul", [INPUT_NAME, "idf"], ["weighted"]),
        helper.make_node("ReduceL2", ["weighted"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Max", ["norm", "eps"], ["safe_norm"]),
        helper.make_node("Div", ["weighted", "safe_norm"], ["tfidf"]),
        helper.make_node("MatMul", ["tfidf", "W"], ["logits_raw"]),
        helper.make_node("Add", ["logits_raw", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [OUTPUT_NAME], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "slackbot_team_classifier",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", v])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", k])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="edge-collab training/slackbot/train.py",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def graph_forward(counts: np.ndarray, idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """The ONNX graph's arithmetic in float32 numpy (a check of the export without onnxruntime)."""
    w = counts.astype(np.float32) * idf.astype(np.float32).reshape(1, -1)
    norm = np.maximum(np.sqrt((w * w).sum(axis=1, keepdims=True)), np.float32(1e-12))
    logits = (w / norm) @ coef.T.astype(np.float32) + intercept.astype(np.float32)
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def confusion(labels: list[str], truth: list[str], predicted: list[str]) -> list[list[int]]:
    at = {t: i for i, t in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted):
        m[at[t]][at[p]] += 1
    return m


def train(data: str) -> dict:
    rows = read_rows(data)
    train_rows = [r for r in rows if r["split"] == "train"]
    test_rows = [r for r in rows if r["split"] == "test"]
    teams = sorted({r["team"] for r in train_rows})
    team_index = {t: i for i, t in enumerate(teams)}
    train_docs = [tokenize(r["text"]) for r in train_rows]
    vocabulary, idf = build_vocabulary(train_docs)
    index = {t: i for i, t in enumerate(vocabulary)}
    x_train = tfidf(counts_matrix(train_docs, index), idf)
    y_train = np.array([team_index[r["team"]] for r in train_rows])
    clf = LogisticRegression(C=C, max_iter=5000, tol=1e-8)
    clf.fit(x_train, y_train)
    test_docs = [tokenize(r["text"]) for r in test_rows]
    x_test = tfidf(counts_matrix(test_docs, index), idf)
    predicted = [teams[i] for i in clf.predict(x_test)]
    truth = [r["team"] for r in test_rows]
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    majority = max(teams, key=lambda t: (sum(1 for r in train_rows if r["team"] == t), t))
    baseline = sum(t == majority for t in truth) / len(truth)
    return {
        "rows": rows,
        "train_rows": train_rows,
        "test_rows": test_rows,
        "teams": teams,
        "vocabulary": vocabulary,
        "index": index,
        "idf": idf,
        "clf": clf,
        "predicted": predicted,
        "truth": truth,
        "accuracy": accuracy,
        "majority": majority,
        "baseline": baseline,
    }


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read())
    return h.hexdigest()


def parity_texts(test_rows: list[dict]) -> list[str]:
    step = max(1, len(test_rows) // (PARITY_ROWS - len(EXTRA_TEXTS)))
    return EXTRA_TEXTS + [r["text"] for r in test_rows[::step]][: PARITY_ROWS - len(EXTRA_TEXTS)]


def write(result: dict, data: str, out: str, report: str | None) -> dict:
    os.makedirs(out, exist_ok=True)
    teams, vocabulary, idf, clf = result["teams"], result["vocabulary"], result["idf"], result["clf"]
    coef = np.asarray(clf.coef_, dtype=np.float64)
    intercept = np.asarray(clf.intercept_, dtype=np.float64)
    model = onnx_model(idf, coef, intercept)
    with open(os.path.join(out, "model.onnx"), "wb") as fh:
        fh.write(model.SerializeToString())

    texts = parity_texts(result["test_rows"])
    counts = counts_matrix([tokenize(t) for t in texts], result["index"])
    expected = clf.predict_proba(tfidf(counts, idf))
    graph = graph_forward(counts.toarray(), idf, coef, intercept)
    worst = float(np.abs(graph - expected).max())
    if worst > PARITY_TOLERANCE / 10:
        raise RuntimeError(f"exported graph misses scikit-learn by {worst}")
    parity = {
        "tolerance": PARITY_TOLERANCE,
        "rows": [
            {"text": t, "tokens": tokenize(t), "probabilities": [round(float(p), 9) for p in expected[i]]}
            for i, t in enumerate(texts)
        ],
    }
    with open(os.path.join(out, "parity.json"), "w", encoding="utf-8") as fh:
        json.dump(parity, fh, ensure_ascii=False, indent=1)
        fh.write("\n")

    labels = result["teams"]
    matrix = confusion(labels, result["truth"], result["predicted"])
    data_hash = sha256_of(data)
    manifest = {
        "name": "slackbot-teams",
        "version": data_hash[:12],
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "tokenizer": TOKENIZER,
        "teams": [{"id": t, "name": TEAM_NAMES.get(t, t)} for t in teams],
        "vocabulary": vocabulary,
        "metrics": {
            "heldout_rows": len(result["test_rows"]),
            "train_rows": len(result["train_rows"]),
            "accuracy": round(result["accuracy"], 4),
            "majority_class": result["majority"],
            "majority_accuracy": round(result["baseline"], 4),
        },
        "dataset": {"path": os.path.relpath(os.path.abspath(data), REPO), "sha256": data_hash},
        "model": {"kind": "tfidf+logistic_regression", "vocab_size": len(vocabulary), "min_df": MIN_DF, "C": C},
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=1)
        fh.write("\n")

    if report:
        write_report(report, result, matrix, data, data_hash)
    return manifest


def write_report(path: str, result: dict, matrix: list[list[int]], data: str, data_hash: str) -> None:
    labels = result["teams"]
    lines = [
        "# Slack bot team classifier: held-out report",
        "",
        "Written by `npm run train:slackbot` (training/slackbot/train.py); do not edit.",
        "",
        f"- data: `{os.path.relpath(os.path.abspath(data), REPO)}` (sha256 `{data_hash[:16]}…`)",
        f"- rows: {len(result['train_rows'])} train, {len(result['test_rows'])} held out",
        f"- vocabulary: {len(result['vocabulary'])} tokens (min df {MIN_DF}); logistic regression C={C}",
        f"- **held-out accuracy: {result['accuracy']:.4f}**; majority class (`{result['majority']}`):"
        f" {result['baseline']:.4f}",
        "",
        "## Per team",
        "",
        "| team | held out | precision | recall |",
        "| --- | ---: | ---: | ---: |",
    ]
    for i, t in enumerate(labels):
        support = sum(matrix[i])
        predicted = sum(row[i] for row in matrix)
        precision = matrix[i][i] / predicted if predicted else 0.0
        recall = matrix[i][i] / support if support else 0.0
        lines.append(f"| {t} | {support} | {precision:.3f} | {recall:.3f} |")
    lines += ["", "## Confusion matrix (rows: true team, columns: predicted)", ""]
    short = [t[:6] for t in labels]
    lines.append("| true \\ predicted | " + " | ".join(short) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in labels) + " |")
    for i, t in enumerate(labels):
        lines.append(f"| {t} | " + " | ".join(str(v) for v in matrix[i]) + " |")
    lines.append("")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--report")
    args = ap.parse_args(argv)
    result = train(args.data)
    manifest = write(result, args.data, args.out, args.report)
    m = manifest["metrics"]
    print(
        f"held-out accuracy {m['accuracy']:.4f} vs majority class {m['majority_accuracy']:.4f}"
        f" ({m['heldout_rows']} rows, {len(manifest['teams'])} teams, {len(manifest['vocabulary'])} tokens)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
