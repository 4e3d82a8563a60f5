"""What a training run writes besides the models themselves (onnx_export.py):
JSON documents, each source's ``hand_tuned.json``, and the copy of a source's
better model into a registry (``--register``). Shared by the dataset run
(train.py) and the ``--logs`` run (logs.py).
"""

from __future__ import annotations

import json
import os
import shutil

import models as M
from features import HAND_TUNED, OUTPUT_MEANING, feature_defaults
from progress import log

MODEL_FILES = ("model.onnx", "manifest.json", "parity.json", "linear.json")


def write_json(path, doc) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, allow_nan=False)
        f.write("\n")


def hand_tuned_doc(src: str) -> dict:
    return {"source": src, "kind": "hand_tuned", "score": "sum(weight * feature)",
            "weights": HAND_TUNED[src], "features": feature_defaults(src),
            "output_meaning": "a rank score (not a probability): higher ranks first; "
                              + OUTPUT_MEANING[src].replace("probability that", "more likely that")}


def install(out: str, registry: str, src: str, kind: str) -> None:
    """Make OUT/models/<src>/<kind>/ the served model: replace registry/<src>/'s model files with its
    files and write the source's hand_tuned.json beside them. The dataset run calls this only for a
    model the promotion gate (gate.py) accepted."""
    srcdir = os.path.join(out, "models", src, kind)
    dst = os.path.join(registry, src)
    os.makedirs(dst, exist_ok=True)
    for f in MODEL_FILES + ("hand_tuned.json",):
        if os.path.exists(os.path.join(dst, f)):
            os.remove(os.path.join(dst, f))
    for f in MODEL_FILES:
        if os.path.exists(os.path.join(srcdir, f)):
            shutil.copy2(os.path.join(srcdir, f), os.path.join(dst, f))
    write_json(os.path.join(dst, "hand_tuned.json"), hand_tuned_doc(src))
    log(f"register {src}: {kind} -> {dst}")


def register(out: str, registry: str, metrics: dict, exported: dict, sources) -> None:
    """The --logs run: copy the better of lr / xgboost (test-split NDCG@10; lr on a tie) to
    registry/<source>/ (no promotion gate: logs have no temporal cuts)."""
    for src in sources:
        ok = [k for k in M.KINDS if exported.get(src, {}).get(k)]
        if not ok:
            log(f"register {src}: nothing exported, registry left as is")
            continue
        best = max(ok, key=lambda k: (metrics["sources"][src][k]["ndcg10"], k == "lr"))
        dst = os.path.join(registry, src)
        os.makedirs(dst, exist_ok=True)
        for f in MODEL_FILES + ("hand_tuned.json",):
            if os.path.exists(os.path.join(dst, f)):
                os.remove(os.path.join(dst, f))
        srcdir = os.path.join(out, "models", src, best)
        for f in MODEL_FILES:
            if os.path.exists(os.path.join(srcdir, f)):
                shutil.copy2(os.path.join(srcdir, f), os.path.join(dst, f))
        ht = os.path.join(out, "models", src, "hand_tuned.json")
        if os.path.exists(ht):
            shutil.copy2(ht, os.path.join(dst, "hand_tuned.json"))
        log(f"register {src}: {best} (ndcg10 {metrics['sources'][src][best]['ndcg10']:.4f}) -> {dst}")
