"""
Our aligners against fmralign, brainiak and CEBRA (Sherlock)
=============================================================

The measured results of ``benchmarks/alignment.py`` on the real Sherlock data (17 people,
481 voxels of posterior medial cortex), read from the JSON file stored with the package
sources: every method is fitted on the unlabeled scan 1 of everyone, then scored on scan 2
with the field's standard **time-segment matching** (windows of 9 TRs, leave-one-person-out;
chance about 0.001) and with the **scene decoding** of ``benchmarks/sherlock.py`` (23
scenes, a shrinkage LDA readout trained on 16 people and tested on the held-out one; chance
1/23). The :ref:`alignment-benchmark` page gives the protocol and reads the numbers.

Running this example needs neither the data nor the peers: it only reads the stored rows.
"""

# %%
# Read the rows
# -------------
# ``python benchmarks/alignment.py --full --out benchmarks/results/alignment.json``
# regenerates the file (it needs the Sherlock file and ``pip install -e ".[peers]"``).
import json
from pathlib import Path

import matplotlib.pyplot as plt


def _results_file():
    start = Path(globals().get("__file__", Path.cwd() / "x.py")).resolve().parent
    for folder in (start, *start.parents):
        candidate = folder / "benchmarks" / "results" / "alignment.json"
        if candidate.is_file():
            return candidate
    return None


def _family(method):
    if method.startswith("ours"):
        return "#C44E52"
    if method.startswith("no alignment"):
        return "0.5"
    if method.startswith("diagnostic"):
        return "#DD8452"
    return "#4C72B0"


path = _results_file()
rows = [] if path is None else json.loads(path.read_text())
if not rows:
    print("benchmarks/results/alignment.json not found: run benchmarks/alignment.py first.")

# %%
# Plot both tasks
# ---------------
# One bar per method (mean over the 17 held-out people, error bar: their standard
# deviation); red: this package, blue: the peers, gray: no alignment, orange: the
# diagnostic rows (our SRM in brainiak's basis, brainiak's in ours). A method that did not
# run here is listed with its error instead of a bar.
if rows:
    tasks = [
        ("segment_matching", "", "time-segment matching (9 TRs)"),
        ("scenes", " + LDA", "scene decoding (block mean or embed, LDA)"),
    ]
    methods = [r["method"] for r in rows if r["task"] == "segment_matching"]
    cell = {(r["task"], r["method"]): r for r in rows}
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.32 * len(methods) + 1.5), sharey=True)
    for ax, (task, suffix, title) in zip(axes, tasks):
        for i, method in enumerate(methods):
            r = cell.get((task, method + suffix))
            if r is None or r.get("error"):
                ax.text(0.0, i, " not run (see the table)", va="center", fontsize=7)
                continue
            ax.barh(i, r["mean"], xerr=r["sd"], color=_family(method), capsize=2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("accuracy (mean ± sd over people)")
        ax.grid(axis="x", alpha=0.3)
    axes[1].axvline(1 / 23, color="gray", linestyle="--", linewidth=1)
    axes[0].set_yticks(range(len(methods)), labels=methods, fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()

# %%
# The numbers
# -----------
for r in rows:
    value = f"failed: {r['error']}" if r.get("error") else f"{r['mean']:.3f} ± {r['sd']:.3f}"
    print(f"{r['task']:17s} {r['method']:66s} {value}")
