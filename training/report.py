"""report.md and plots for a dataset run."""

from __future__ import annotations

import os

import numpy as np

MODELS = ("popularity", "recent_popularity", "hand_tuned", "lr", "xgboost")


def write_report(out: str, metrics: dict, by_cut: dict, *, runtime_s: float, quick: bool, exported: dict,
                 gate: dict | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(metrics["sources"])
    cuts = metrics["cuts"]

    def cut_values(src, m, key):
        return [c["sources"][src]["models"][m].get(key) for c in by_cut["cuts"]]

    # 1. averaged NDCG@10 per source and model
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.16
    x = np.arange(len(sources))
    for i, m in enumerate(MODELS):
        vals = [metrics["sources"][s][m]["ndcg10"] for s in sources]
        lo = [v - min(cut_values(s, m, "ndcg10")) for s, v in zip(sources, vals)]
        hi = [max(cut_values(s, m, "ndcg10")) - v for s, v in zip(sources, vals)]
        ax.bar(x + (i - 2) * width, vals, width, label=m, yerr=[lo, hi], capsize=2, error_kw={"lw": 0.8})
    ax.set_xticks(x, sources)
    ax.set_ylabel("NDCG@10 (mean over cuts; bars: min-max over cuts)")
    ax.set_title(f"{metrics['dataset']}: NDCG@10 per source and model, cuts {', '.join(cuts)}")
    ax.legend(ncol=5, fontsize=8, loc="upper left")
    ax.set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "ndcg10_by_source.png"), dpi=110)
    plt.close(fig)

    # 2. NDCG@10 per cut, one panel per source
    cols = 3
    rows = (len(sources) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.6 * rows), squeeze=False)
    for k, src in enumerate(sources):
        ax = axes[k // cols][k % cols]
        for m in MODELS:
            ax.plot(cuts, cut_values(src, m, "ndcg10"), marker="o", label=m)
        ax.set_title(src)
        ax.set_ylabel("NDCG@10")
        ax.tick_params(axis="x", labelsize=7)
    for k in range(len(sources), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{metrics['dataset']}: NDCG@10 per evaluation cut")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "ndcg10_by_cut.png"), dpi=110)
    plt.close(fig)

    proto = by_cut["protocol"]
    lines = [
        f"# Offline recommender evaluation: {metrics['dataset']}",
        "",
        f"Evaluation cuts: {', '.join(cuts)} (labels: the {proto['label_days']} days from each cut). "
        f"Run: {'--quick' if quick else 'full'}, {runtime_s:.0f} s. "
        f"lr / xgboost for a cut T are fitted on {proto['training_cuts_per_eval_cut']} earlier training cuts "
        f"(T - 365 - k x {proto['training_cut_step_days']} days), so their labels end by T. "
        f"xgboost: {proto['xgboost']['n_estimators']} trees, depth {proto['xgboost']['max_depth']}, "
        f"eta {proto['xgboost']['learning_rate']}."
        + (f" Subjects subsampled to at most {proto['max_subjects_per_cut']} per cut and source."
           if proto.get("max_subjects_per_cut") else ""),
        "",
        "Definitions (candidates, labels, features, metrics) are in `training/FEATURES.md`. "
        "`users` is the number of rankings evaluated, summed over cuts (archive: one ranking per cut, "
        "the team's channel list). For send_time the recall@10 column is the hit rate of the top-ranked "
        "hour within +-1 hour (circular). The spread is the sample std (ddof 1) and the min-max of the "
        "per-cut NDCG@10.",
        "",
        "| source | model | NDCG@10 | std over cuts | recall@10 | users | NDCG@10 per cut (min-max) |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for src in sources:
        best = max(MODELS, key=lambda m: metrics["sources"][src][m]["ndcg10"])
        for m in MODELS:
            r = metrics["sources"][src][m]
            per = cut_values(src, m, "ndcg10")
            name = f"**{m}**" if m == best else m
            sd = float(np.std(per, ddof=1)) if len(per) > 1 else float("nan")
            lines.append(f"| {src} | {name} | {r['ndcg10']:.4f} | {sd:.4f} | {r['recall10']:.4f} | {r['users']} | "
                         + " / ".join(f"{v:.3f}" for v in per) + f" ({min(per):.3f}-{max(per):.3f}) |")
    lines += ["", "Pooled AUC per cut (candidate rows; archive has few rows):", "",
              "| source | " + " | ".join(MODELS) + " |", "| --- |" + " ---: |" * len(MODELS)]
    for src in sources:
        cells = []
        for m in MODELS:
            vals = [v for v in cut_values(src, m, "auc") if v is not None]
            cells.append(" / ".join(f"{v:.3f}" for v in vals) if vals else "-")
        lines.append(f"| {src} | " + " | ".join(cells) + " |")
    lines += ["", "Candidate coverage (share of all positives that candidate generation retrieved), per cut:", ""]
    for src in sources:
        parts = []
        for c in by_cut["cuts"]:
            st = c["sources"][src]["stats"]
            share = st["positives_in_candidates"] / st["positives"] if st["positives"] else 0.0
            parts.append(f"{c['cut']}: {st['positives_in_candidates']}/{st['positives']} ({share:.0%}), "
                         f"{st['subjects']} subjects, {st['rows']} rows")
        lines.append(f"- {src}: " + "; ".join(parts))
    goal = []
    for src in ("channel_browser", "composer_dm", "invite"):
        if src not in metrics["sources"]:
            continue
        r = metrics["sources"][src]
        bar = max(r["recent_popularity"]["ndcg10"], r["hand_tuned"]["ndcg10"])
        goal.append(f"- {src}: lr {r['lr']['ndcg10']:.4f}, xgboost {r['xgboost']['ndcg10']:.4f} vs "
                    f"max(recent_popularity, hand_tuned) {bar:.4f}: "
                    + ("both beat it" if min(r["lr"]["ndcg10"], r["xgboost"]["ndcg10"]) > bar
                       else "NOT both above it"))
    if goal:
        lines += ["", "Fitted models vs the baselines (averaged NDCG@10):", ""] + goal
    lines += ["", "Caveats: the per-cut evaluation sets are small (about 80-150 rankings), so per-cut differences "
              "of a few hundredths are noise; compare the means and the spread. The lr/xgboost settings (row "
              "weights, tree depth) and the hand_tuned weights were chosen while looking at evaluation results "
              "of this kind; there is no separate validation cut, so small margins are optimistic."]
    if gate:
        lines += gate_section(gate)
    if by_cut.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {s}: {n}" for s, ns in by_cut["notes"].items() for n in ns]
    lines += ["", "Exported candidates (fitted for the latest cut, in models/<source>/<kind>/; served only if the "
              "gate registered them): "
              + ", ".join(f"{s}: {', '.join(k for k, v in e.items() if v) or 'none'}" for s, e in exported.items()),
              "", "![NDCG@10 per source](ndcg10_by_source.png)", "", "![NDCG@10 per cut](ndcg10_by_cut.png)", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))


def gate_section(gate: dict) -> list[str]:
    """The promotion gate's decisions (gate.json) as report lines."""
    lines = ["", "## Promotion gate", "",
             f"Rule (k = {gate['k']}, min_margin = {gate['min_margin']}, at least {gate['min_cuts']} cuts): "
             + gate["rule"], "",
             f"Serving slot: `{gate['registry']}`; decisions in `gate.json` there and in the run's output folder.", "",
             "| source | decision | registered | reference | candidate | mean improvement | std of improvement "
             "| required | per cut | clears |",
             "| --- | --- | --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    for src, d in gate["sources"].items():
        comps = d.get("comparisons") or {}
        if not comps:
            lines.append(f"| {src} | {d['decision']} | - | - | - | - | - | - | - | - |")
        for kind, refs in comps.items():
            for ref, c in refs.items():
                lines.append(
                    f"| {src} | {d['decision']} | {d['registered'] or '-'} | {ref} | {kind} | "
                    f"{c['improvement']:+.4f} | {_f(c['improvement_std'])} | {_f(c['required'])} | "
                    + " / ".join(f"{v:+.3f}" for v in c["improvement_per_cut"])
                    + f" | {'yes' if c['passes'] else 'no'} |")
    lines += ["", "Why, per source:", ""]
    for src, d in gate["sources"].items():
        sv = d.get("serving_before") or {}
        where = ("none serving before" if not sv.get("present") else
                 f"serving before: {sv.get('name')} {sv.get('version')}"
                 + (f", {sv.get('how')}" if sv.get("comparable") else f", not comparable ({sv.get('why')})")
                 + (f", trained on the labels of {', '.join(sv['saw_labels'])}" if sv.get("saw_labels") else ""))
        lines.append(f"- {src} ({where}): **{d['decision']}**. {d['reason']}")
    return lines


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"
