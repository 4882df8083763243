"""
Aligning people with unlabeled movie runs (Sherlock)
====================================================

When people watch the same movie, time point ``t`` of every run is the same moment of the
stimulus, so unlabeled runs can *align* people: each person gets a map from their voxels
into a space shared by everyone. A decoder trained on some people then transfers to others
far better than on raw voxels, where the same voxel means different things in different
brains.

This example has three parts:

1. a live run on simulated time-locked data
   (:func:`~sklearn_tcssl.datasets.make_time_locked_fmri`): the shared response model
   (:class:`~sklearn_tcssl.SharedResponseAligner`, the classical reference) and
   subject-aligned temporal contrast
   (:class:`~sklearn_tcssl.TemporalContrastiveAligner`) fitted on an unlabeled first scan,
   then scenes of a second scan decoded across people;
2. one row of the real-data table reproduced live from the public API on the Sherlock data
   (17 people, 481 voxels of posterior medial cortex, 23 scenes; under a minute), when the
   data file is present (it is not downloaded: the part says so and is skipped otherwise);
3. the measured results of the whole benchmark (``benchmarks/sherlock.py``, stored with
   the package sources), plotted as accuracy against the number of labelled people.
"""

# %%
# Part 1: simulated people watching the same movie
# ------------------------------------------------
# Scan 1 (unlabeled) aligns the people; the decoder is trained on the scenes of scan 2 of
# some people and tested on the others (subject-wise ``GroupKFold``). The aligners see no
# label, so fitting them on every person's *unlabeled* scan 1 leaks no label into the
# decoder; for the strict protocol (aligner refitted on the training people of each fold,
# the test person mapped from their own scan 1 with ``add_subjects``), see the user guide.
from pathlib import Path

from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_tcssl import SharedResponseAligner, TemporalContrastiveAligner
from sklearn_tcssl.baselines import BlockMeanPattern
from sklearn_tcssl.datasets import make_time_locked_fmri

data = make_time_locked_fmri(
    8, n_timepoints=300, n_features=80, n_components=10, n_scenes=12, noise=2.0, random_state=0
)
cv = GroupKFold(4)


def decode(blocks):
    """Block mean + shrinkage LDA, cross-validated across people."""
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    pipe = make_pipeline(BlockMeanPattern(), lda)
    return cross_val_score(pipe, blocks, data.y, groups=data.groups, cv=cv).mean()


srm = SharedResponseAligner(10, random_state=0).fit(data.runs)
tc = TemporalContrastiveAligner(10, segment_length=5, max_epochs=30, random_state=0)
tc.fit(data.runs)
results = {
    "raw voxels": decode(data.blocks),
    "SRM aligned": decode(srm.transform(data.blocks, subjects=data.groups)),
    "TC aligner": decode(tc.transform(data.blocks, subjects=data.groups)),
}
for name, accuracy in results.items():
    print(f"{name:12s} {accuracy:.3f}   (chance {1 / 12:.3f})")
print(f"TC aligner: {tc.history_[-1, 'n_steps']} optimizer steps in {tc.fit_time_:.1f} s")

# %%
# The contrastive aligner starts from the SRM's maps (``init="srm"``), so it begins exactly
# where the SRM ends; the question is whether the temporal-contrastive training then adds
# anything. Parts 2 and 3 answer it on real data.
#
# Part 2: one row of the real-data table, live
# --------------------------------------------
# The Sherlock file (``sherlock_pmc_movie.npz``; the raw data are OpenNeuro ds001132, CC0)
# is read from a local copy: set ``SHERLOCK_PMC`` to its path, or keep it in
# ``shared/data/sherlock/`` beside the project. Scan 1 (946 TRs, no labels) fits the
# aligner on all 17 people; :func:`~sklearn_tcssl.datasets.scene_blocks` cuts the 23 scenes
# of scan 2 out of every person's run; a decoder is then scored leave-one-person-out
# (the "k = 16" column of the table).
#
# The aligner gives two different features, and they are two different rows of the table:
#
# * ``transform`` maps every time point into the shared space; with ``freeze_maps=True`` the
#   maps *are* the SRM's, so the block mean of ``transform`` gives **exactly the SRM
#   numbers** (0.514 with logistic regression, 0.563 with shrinkage LDA);
# * ``embed`` passes each block through the trained temporal encoder: one vector per block.
#   This is the "ours" row (0.519 and 0.586).
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_tcssl.datasets import load_sherlock_pmc, scene_blocks


def _sherlock_file():
    """The local Sherlock file: ``$SHERLOCK_PMC``, or shared/data/sherlock above here."""
    if os.environ.get("SHERLOCK_PMC"):
        return Path(os.environ["SHERLOCK_PMC"])
    here = Path(globals().get("__file__", "plot_sherlock_alignment.py")).resolve().parent
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "data" / "sherlock" / "sherlock_pmc_movie.npz"
        if candidate.is_file():
            return candidate
    return None


def leave_one_person_out(features, y, groups, readout):
    """Mean accuracy over the 17 leave-one-person-out folds."""
    with threadpool_limits(1):  # small problems: more BLAS threads only slow them down
        scores = cross_val_score(readout, features, y, groups=groups, cv=LeaveOneGroupOut())
    return scores.mean()


sherlock = _sherlock_file()
if sherlock is None or not sherlock.is_file():
    print(
        "SKIPPED: the Sherlock file is absent (set SHERLOCK_PMC to sherlock_pmc_movie.npz); "
        "part 3 shows the stored results."
    )
else:
    start = time.perf_counter()
    movie = load_sherlock_pmc(sherlock)
    scan1, scan2 = movie.scans
    cut = scene_blocks(scan2, movie.scenes[1])  # 17 people x 23 scenes
    ours = TemporalContrastiveAligner(50, freeze_maps=True, max_epochs=50, random_state=0)
    ours.fit(list(scan1))  # subjects 0..16, one unlabeled run each
    readouts = {
        "logistic regression": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000)
        ),
        "shrinkage LDA": lambda: LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
    }
    shared = ours.transform(cut.blocks, subjects=cut.groups)
    features = {
        "transform + block mean (= SRM)": np.stack([s.mean(axis=0) for s in shared]),
        "embed (ours)": ours.embed(cut.blocks, subjects=cut.groups),
    }
    for feature_name, X in features.items():
        for readout_name, readout in readouts.items():
            accuracy = leave_one_person_out(X, cut.y, cut.groups, readout())
            print(f"{feature_name:32s} + {readout_name:20s} {accuracy:.3f}")
    print(f"chance {1 / 23:.3f}; {time.perf_counter() - start:.0f} s in all")

# %%
# Part 3: the whole benchmark, measured on the real Sherlock data
# ---------------------------------------------------------------
# ``python benchmarks/sherlock.py --out benchmarks/results/sherlock.json`` regenerates the
# file read here (it needs the Sherlock file; see ``benchmarks/sherlock.py``). Every row was
# scored on the same splits of people: k = 1, 2, 4 labelled people (8 random draws each) and
# leave-one-person-out (k = 16). Chance is 1/23.
import json

import matplotlib.pyplot as plt
import pandas as pd


def _results_file():
    here = Path(globals().get("__file__", "plot_sherlock_alignment.py")).resolve().parent
    for folder in (here, *here.parents):
        candidate = folder / "benchmarks" / "results" / "sherlock.json"
        if candidate.is_file():
            return candidate
    return None


path = _results_file()
if path is None:
    print("benchmarks/results/sherlock.json not found: run benchmarks/sherlock.py first.")
else:
    rows = pd.DataFrame(json.loads(path.read_text()))
    shown = [
        "block mean + LR",
        "block mean + shrinkage LDA",
        "SRM (k=50) + LR",
        "SRM (k=50) + LDA",
        "TC aligner, SRM maps frozen, pretrained + LR",
        "TC aligner, SRM maps frozen, pretrained + LDA",
        "TC aligner, random init, pretrained + LR",
        "embedder pretrained on scan 1 (within-subject), frozen + LR",
    ]
    rows = rows[rows["method"].isin(shown)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in shown:
        part = rows[rows["method"] == method].sort_values("k")
        if len(part):
            ax.errorbar(
                part["k"], part["mean"], yerr=part["sd"], marker="o", capsize=3, label=method
            )
    ax.axhline(1 / 23, color="gray", linestyle="--", linewidth=1, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 16], labels=["1", "2", "4", "16 (LOO)"])
    ax.set_xlabel("labelled people")
    ax.set_ylabel("scene accuracy (mean ± sd)")
    ax.set_title("Sherlock, 23 scenes of scan 2, scan 1 unlabeled")
    ax.legend(fontsize="x-small", loc="upper left")
    fig.tight_layout()
    table = rows.pivot_table(index="method", columns="k", values="mean").loc[
        [m for m in shown if m in set(rows["method"])]
    ]
    print(table.round(3).to_string())
