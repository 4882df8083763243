"""
Decoding a BIDS dataset
=======================

:func:`~sklearn_tcssl.datasets.load_bids_blocks` reads a task from a BIDS dataset, raw or
preprocessed (fMRIPrep derivatives), cleans each run as a whole (detrend and z-score each
voxel over the run) and cuts one 4D image per task block, shifted by the haemodynamic
delay. The result plugs straight into the decoders.

To run offline, this example first writes a tiny BIDS dataset from the simulator to a
temporary folder: raw-looking runs in scanner units with their ``events.tsv`` files. To
use your own data, skip that step and point ``bids_root`` at your dataset (see the end).
"""

# %%
# Write a tiny BIDS dataset
# -------------------------
# 4 subjects x 2 runs of a 4-task block design, in scanner units with slow drifts
# (``preprocessed=False``), as a raw BIDS tree: ``dataset_description.json``, a
# ``task-<label>_bold.json`` sidecar with the repetition time, and per run a
# ``*_bold.nii.gz`` image and its ``*_events.tsv``.
import json
import tempfile
from pathlib import Path

import nibabel as nib

from sklearn_tcssl.datasets import make_task_fmri

sim = make_task_fmri(n_subjects=4, n_runs=2, preprocessed=False, random_state=0)
bids_root = Path(tempfile.mkdtemp()) / "ds_sim"
bids_root.mkdir()
(bids_root / "dataset_description.json").write_text(
    json.dumps({"Name": "simulated block design", "BIDSVersion": "1.8.0"})
)
(bids_root / "task-blocks_bold.json").write_text(json.dumps({"RepetitionTime": sim.t_r}))
for k, (run_img, events, subject) in enumerate(zip(sim.runs, sim.events, sim.run_groups)):
    func = bids_root / f"sub-{subject + 1:02d}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    stem = f"sub-{subject + 1:02d}_task-blocks_run-{k % 2 + 1}"
    nib.save(run_img, func / f"{stem}_bold.nii.gz")
    events.to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
print(sorted(str(p.relative_to(bids_root)) for p in bids_root.rglob("*"))[:8])

# %%
# Load the blocks
# ---------------
# The repetition time comes from the JSON sidecar; each run is detrended and z-scored
# per voxel over the whole run, then cut into blocks starting 5 s after each onset.
from sklearn_tcssl.datasets import load_bids_blocks

data = load_bids_blocks(bids_root, task="blocks", hrf_delay=5.0)
print(data.description)
print(f"{len(data.imgs)} blocks; subjects {sorted(set(data.groups.tolist()))}; t_r = {data.t_r} s")
print(data.events[0].head())

# %%
# A brain mask from the raw runs
# ------------------------------
# The blocks are z-scored per voxel, so inside and outside the brain look alike and a mask
# cannot be computed from them (nilearn's automatic mask keeps only a few voxels). Compute
# it from the *raw* runs (``data.run_imgs``) instead. The simulated runs are exactly zero
# outside the brain, so the background mask finds it; for real scans use
# :func:`nilearn.masking.compute_multi_epi_mask` on the same runs, or the brain mask of
# your preprocessing (fMRIPrep's ``*_desc-brain_mask.nii.gz``). No label is used.
from nilearn.masking import compute_multi_background_mask

# (opening=False: the simulated cortex is a thin shell that an opening would erase)
brain_mask = compute_multi_background_mask(data.run_imgs, opening=False)
print(f"brain mask: {int(brain_mask.get_fdata().sum())} voxels")

# %%
# Decode: classical decoders and our pipeline, same subject-wise folds
# --------------------------------------------------------------------
# Shrinkage LDA on block means is the strongest classical reference; our pipeline gets the
# same readout beside logistic regression (``reference_decoders`` / ``tcssl_decoders``).
# Without an atlas (raw data are not in MNI space), every decoder uses a
# :class:`~nilearn.maskers.MultiNiftiMasker` with that mask and ``standardize=None`` (the
# runs are already z-scored).
from nilearn.maskers import MultiNiftiMasker
from sklearn.model_selection import GroupKFold

from sklearn_tcssl.report import (
    compare_decoders,
    plot_network_report,
    reference_decoders,
    summarize,
    tcssl_decoders,
)

masker = MultiNiftiMasker(mask_img=brain_mask, standardize=None, reports=False)
decoders = {
    **reference_decoders(masker),
    **tcssl_decoders(masker, n_components=16, max_epochs=5, random_state=0),
}
scores = compare_decoders(
    data.imgs, data.y, data.groups, decoders=decoders, cv=GroupKFold(n_splits=4)
)
print(summarize(scores).round(2))
ax = plot_network_report(scores, chance=0.25, title="BIDS dataset (simulated)")
ax.figure.tight_layout()

# %%
# With your own dataset
# ---------------------
# Point ``bids_root`` at a BIDS folder and name the task. With only 3 training subjects
# per fold, all the decoders above are far below what 12 subjects give (see the user guide).
# For per-network decoding, the
# images must be in MNI space: use preprocessed derivatives, and a local copy of the Yeo
# atlas if there is no network access::
#
#     data = load_bids_blocks("/data/ds000105", task="objectviewing",
#                             derivatives=True, space="MNI152NLin2009cAsym")
#     scores = network_decoding_report(
#         data.imgs, data.y, data.groups, networks="all",
#         atlas="Yeo2011_7Networks_MNI152_FreeSurferConformed1mm_LiberalMask.nii.gz",
#     )
#
# With one subject, cross-validate across runs instead of subjects
# (``groups=data.runs`` with ``LeaveOneGroupOut()``). ``trial_types=`` keeps only some
# conditions (e.g. to drop ``"rest"`` rows), and ``high_pass=0.008`` adds a cosine drift
# filter to the run-wise cleaning. The command line does the same:
# ``tcssl decode /data/ds000105 --task objectviewing --derivatives
# --space MNI152NLin2009cAsym --network all --atlas Yeo2011_...nii.gz``.
