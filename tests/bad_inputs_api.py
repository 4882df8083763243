"""Rows of the bad-input table for the estimators, the masker, loaders, model files and the CLI.

Collected with the other ``bad_inputs_*`` modules by ``tests/bad_inputs_table.py``, which the
tests (``tests/test_bad_inputs.py``) and the docs page (``docs/_ext/tcssl_bad_inputs.py``) both
read. Each row of :data:`ROWS` is ``(id, call(tmp_path), error, regex[, what])``: ``call``
triggers the bad input, which must raise ``error`` with a message matching ``regex`` that
names the parameter or value at fault and the fix. Each row of :data:`ACCEPTED` is
``(id, input, documented behaviour, check(tmp_path))``.
"""

import contextlib
import gzip
import io
import json
import pickle
import warnings
from pathlib import Path
from unittest import mock

import nibabel as nib
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from _helpers import smooth_sequences
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_tcssl import (
    IncompatibleModelError,
    NetworkMasker,
    NotFittedError,
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
    TrainingDivergedError,
    load,
    save,
)
from sklearn_tcssl.cli import main as cli_main
from sklearn_tcssl.datasets import extract_blocks, load_bids_blocks, make_task_fmri
from sklearn_tcssl.networks import NetworkMaskError
from sklearn_tcssl.nn.losses import TemporalContrastiveLoss

FAST = {"n_components": 4, "max_epochs": 2, "batch_size": 4, "random_state": 0}
EMBEDDER = "TemporalContrastiveEmbedder"


# ----------------------------------------------------------------------------- helpers
def _X(n=6, length=12, n_features=5):
    return smooth_sequences(n, length, n_features)


def _fit(X, y=None, **params):
    return TemporalContrastiveEmbedder(**{**FAST, **params}).fit(X, y)


def _with(value, index=(1, 0, 0), n=6):
    X = _X(n)
    X[index[0]][index[1], index[2]] = value
    return X


def _fitted():
    return _fit(_X())


def _nan_weights():
    embedder = _fitted()
    with torch.no_grad():
        embedder.net_.module_.spatial.weight[0, 0] = float("nan")
    return embedder.transform(_X())


def _diverging_loss():
    calls = {"n": 0}
    forward = TemporalContrastiveLoss.forward

    def forward_then_nan(self, *args):
        calls["n"] += 1
        loss = forward(self, *args)
        return loss * float("nan") if calls["n"] == 3 else loss

    with mock.patch.object(TemporalContrastiveLoss, "forward", forward_then_nan):
        _fit(_X(), max_epochs=3, batch_size=3)  # 2 batches per epoch: fails at epoch 2, batch 1


def _other_checkpoint_run(tmp_path):
    _fit(_X(), checkpoint_dir=tmp_path)
    _fit(_X(), checkpoint_dir=tmp_path, lr=0.01)


AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _atlas(fill=None):
    labels = np.zeros((8, 8, 8), dtype=np.int8)
    labels[:4], labels[4:] = 1, 7
    if fill is not None:
        labels[:] = fill
    return nib.Nifti1Image(labels, np.eye(4))


def _run(shape=(4, 4, 4, 10), affine=AFFINE, value=None):
    data = np.random.default_rng(0).random(shape).astype(np.float32)
    if value is not None:
        data[:] = value
    return nib.Nifti1Image(data, affine)


def _masker(networks="visual", **params):
    return NetworkMasker(networks, **{"atlas": _atlas(), **params})


def _corrupt_nifti(tmp_path):
    path = tmp_path / "corrupt_bold.nii.gz"
    path.write_bytes(gzip.compress(b"not a nifti header" * 5))
    return path


def _events():
    return pd.DataFrame(
        {"onset": [10.0, 40.0], "duration": [16.0, 16.0], "trial_type": ["faces", "houses"]}
    )


def _bids_without_events(tmp_path):
    root = tmp_path / "ds"
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.8"}))
    (root / "task-objects_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    nib.save(_run((3, 3, 3, 60)), func / "sub-01_task-objects_run-1_bold.nii.gz")
    return root


def _group_cv_without_groups():
    X, y = _X(8), np.array([0, 1] * 4)
    from sklearn.linear_model import LogisticRegression

    pipe = make_pipeline(TemporalContrastiveEmbedder(**FAST), LogisticRegression())
    cross_val_score(pipe, X, y, cv=GroupKFold(2))


# -- classifier, model files and CLI
def _fit_clf(X=None, y=None, **params):
    X = _X(8) if X is None else X
    y = np.array([0, 1] * 4) if y is None else y
    return TemporalContrastiveClassifier(**{**FAST, **params}).fit(X, y)


def _nan_weights_predict():
    clf = _fit_clf()
    with torch.no_grad():
        clf.net_.module_.encoder.spatial.weight[0, 0] = float("nan")
    return clf.predict(_X(8))


def _saved_model(tmp_path, name="model.safetensors"):
    path = tmp_path / name
    save(_fitted(), path)
    return path


def _rewritten_model(tmp_path, *, card=None, drop=None):
    """A saved model with its card edited (``card(dict)``) or tensors dropped."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = _saved_model(tmp_path)
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    if drop is not None:
        tensors = {k: v for k, v in tensors.items() if drop not in k}
    if card is not None:
        content = json.loads(metadata["tcssl_card"])
        card(content)
        metadata = {"tcssl_card": json.dumps(content)}
    out = tmp_path / "edited.safetensors"
    save_file(tensors, str(out), metadata=metadata)
    return out


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _load_pickle_payload(tmp_path):
    path, marker = tmp_path / "model.safetensors", tmp_path / "code-ran"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    try:
        load(path)
    finally:
        assert not marker.exists(), "loading a model file executed code"


def _torch_save_file(tmp_path):
    path = tmp_path / "model.safetensors"
    torch.save(_fitted().net_.module_.state_dict(), path)
    return path


def _truncated_model(tmp_path):
    path = _saved_model(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


class CLIError(Exception):
    """A non-zero exit of ``tcssl``; the message is ``exit <code>: <stderr>``."""


def _cli(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli_main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
    if code:
        raise CLIError(f"exit {code}: {err.getvalue().strip()}")


# --------------------------------------------------------------------------------- rows
ROWS = [
    # -- TemporalContrastiveEmbedder: data
    (
        "embedder-nan-voxel",
        lambda tmp: _fit(_with(np.nan)),
        ValueError,
        r"X\[1\] contains NaN or infinity \(1 NaN, 0 inf values\)\. Remove or impute them",
    ),
    (
        "embedder-inf-voxel",
        lambda tmp: _fit(_with(np.inf)),
        ValueError,
        r"X\[1\] contains NaN or infinity \(0 NaN, 1 inf values\).*np\.nan_to_num",
    ),
    (
        "embedder-huge-values",
        lambda tmp: _fit(_with(1e30)),
        ValueError,
        r"X\[1\] has values up to 1e\+30, beyond 1e\+15.*Rescale the data",
    ),
    (
        "embedder-float16-overflow",
        lambda tmp: _fit([x.astype(np.float16) * np.float16(6e4) for x in _X()]),
        ValueError,
        r"X\[\d\] contains NaN or infinity \(0 NaN, \d+ inf values\)",
        "float16 data that overflowed to inf before reaching the package",
    ),
    (
        "embedder-shorter-than-3-segments",
        lambda tmp: _fit(_X(length=12), segment_length=5),
        ValueError,
        r"segment_length=5 needs sequences of at least 15 time points \(3 segments\); the "
        r"shortest sequence \(X\[0\]\) has 12\. Lower segment_length to 4 or less",
    ),
    (
        "embedder-ragged-feature-counts",
        lambda tmp: _fit([np.zeros((12, 5)), np.zeros((12, 6))]),
        ValueError,
        r"X\[1\] has 6 features per time point, but \w+ X\[0\] has 5\. .*same mask",
    ),
    (
        "embedder-ragged-rows",
        lambda tmp: _fit([[[1.0, 2.0], [3.0]]]),
        ValueError,
        r"X\[0\] is ragged .* rectangular \(n_timepoints, n_features\) array",
    ),
    (
        "embedder-3d-item",
        lambda tmp: _fit([np.zeros((12, 5, 2))]),
        ValueError,
        r"X\[0\] has 3 dimension\(s\) \(shape \(12, 5, 2\)\); each sequence must be 2D",
        "a 3D array (e.g. an image's data) as one sequence",
    ),
    (
        "embedder-4d-array",
        lambda tmp: _fit(np.zeros((4, 4, 4, 12))),
        ValueError,
        r"X has 4 dimension\(s\) \(shape \(4, 4, 4, 12\)\)\. \w+ expects a list of 2D arrays",
        "a 4D image's data array instead of masked sequences",
    ),
    (
        "embedder-1d-array",
        lambda tmp: _fit(np.zeros(12)),
        ValueError,
        r"X has 1 dimension\(s\) .*Reshape your data",
    ),
    (
        "embedder-empty-list",
        lambda tmp: _fit([]),
        ValueError,
        rf"{EMBEDDER} got an empty list X; pass at least one sequence",
    ),
    (
        "embedder-empty-3d-array",
        lambda tmp: _fit(np.zeros((0, 12, 5))),
        ValueError,
        r"got X with 0 samples; pass at least one",
    ),
    (
        "embedder-zero-features",
        lambda tmp: _fit([np.zeros((12, 0))]),
        ValueError,
        r"X\[0\] has 0 features per time point; .* empty mask .*n_voxels_",
        "sequences with no feature (what an empty mask gives)",
    ),
    (
        "embedder-text-data",
        lambda tmp: _fit([np.array([["a", "b"]] * 12)]),
        ValueError,
        r"X\[0\] has dtype <U1 that cannot be converted to float; pass numeric arrays",
    ),
    (
        "embedder-complex-data",
        lambda tmp: _fit([np.ones((12, 5)) * 1j]),
        ValueError,
        r"X\[0\] has complex values; pass real-valued data",
    ),
    (
        "embedder-sparse-data",
        lambda tmp: _fit([sp.csr_matrix(np.ones((12, 5)))]),
        TypeError,
        r"X\[0\] is a sparse matrix.*X\.toarray\(\)",
    ),
    (
        "embedder-image-path-instead-of-array",
        lambda tmp: _fit(["sub-01_task-x_bold.txt"]),
        TypeError,
        r"X\[0\] is a str, not an array.*put a masker \(e\.g\. NetworkMasker",
    ),
    (
        "embedder-y-wrong-length",
        lambda tmp: _fit(_X(6), y=[0, 1, 0]),
        ValueError,
        r"fit got y with 3 labels for 6 sequences in X.*one label per sequence",
    ),
    (
        "embedder-transform-other-features",
        lambda tmp: _fitted().transform([x[:, :4] for x in _X()]),
        ValueError,
        r"X\[0\] has 4 features per time point, but \w+ was fitted with 5.*same mask",
    ),
    (
        "embedder-transform-before-fit",
        lambda tmp: TemporalContrastiveEmbedder().transform(_X()),
        NotFittedError,
        rf"This {EMBEDDER} instance is not fitted yet.*fit",
    ),
    (
        "group-cv-without-groups",
        lambda tmp: _group_cv_without_groups(),
        ValueError,
        r"The 'groups' parameter should not be None",
        "GroupKFold in cross_val_score without groups= (scikit-learn's message)",
    ),
    # -- TemporalContrastiveEmbedder: parameters, device, numerics, checkpoints
    (
        "embedder-unknown-negatives",
        lambda tmp: _fit(_X(), negatives="all"),
        ValueError,
        r"negatives='all' is not allowed\. The 'negatives' parameter .* must be a str among "
        r"\{'(pair|batch)', '(pair|batch)'\}",
    ),
    (
        "embedder-zero-components",
        lambda tmp: _fit(_X(), n_components=0),
        ValueError,
        r"n_components=0 is not allowed\. .* must be an int in the range \[1, inf\)",
    ),
    (
        "embedder-negative-lr",
        lambda tmp: _fit(_X(), lr=-1.0),
        ValueError,
        r"lr=-1\.0 is not allowed\. .* range \(0\.0, 10\.0\]\. Got -1\.0 instead\. Fix: pass a "
        r"finite learning rate",
    ),
    (
        "embedder-checkpoint-every-0",
        lambda tmp: _fit(_X(), checkpoint_dir=tmp, checkpoint_every=0),
        ValueError,
        r"checkpoint_every=0 is not allowed\. .* must be an int in the range \[1, inf\)",
    ),
    (
        "embedder-standardize-string",
        lambda tmp: _fit(_X(), standardize="no"),
        ValueError,
        r"standardize='no' is not allowed\. .*'bool'.*'pretrained'.*Fix: pass True",
        "standardize='no' (a string, not False)",
    ),
    (
        "embedder-verbose-string",
        lambda tmp: _fit(_X(), verbose="x"),
        ValueError,
        r"verbose='x' is not allowed\. .*Fix: pass 0 \(silent\) or 1",
    ),
    (
        "embedder-temperature-inf",
        lambda tmp: _fit(_X(), temperature=float("inf")),
        ValueError,
        r"temperature=inf is not allowed\. .*\[0\.001, 100\.0\].*Fix: pass 0\.1",
    ),
    (
        "embedder-temperature-tiny",
        lambda tmp: _fit(_X(), temperature=1e-30),
        ValueError,
        r"temperature=1e-30 is not allowed\. .*\[0\.001, 100\.0\]",
    ),
    (
        "embedder-lr-inf",
        lambda tmp: _fit(_X(), lr=float("inf")),
        ValueError,
        r"lr=inf is not allowed\. .*Fix: pass a finite learning rate",
    ),
    (
        "embedder-lr-nan",
        lambda tmp: _fit(_X(), lr=float("nan")),
        ValueError,
        r"lr=nan is not allowed",
    ),
    (
        "embedder-even-kernel-size",
        lambda tmp: _fit(_X(), kernel_size=4),
        ValueError,
        r"kernel_size=4 must be odd .*use 5",
    ),
    (
        "embedder-meta-device",
        lambda tmp: _fit(_X(), device="meta"),
        ValueError,
        r"device='meta' cannot train a model \(allowed device types: cpu, cuda, mps\)",
    ),
    (
        "embedder-mps-unavailable",
        lambda tmp: _fit(_X(), device="mps"),
        ValueError,
        r"device='mps' was requested but torch's MPS backend .* Use device='auto' or 'cpu'",
    ),
    (
        "embedder-huge-n-components",
        lambda tmp: _fit(_X(), n_components=10**7),
        ValueError,
        r"n_components=10000000 \(.* encoder parameters\) for training needs about .* bytes "
        r"\(.* GiB\), more than this machine's .* GiB of memory\. Lower n_components",
    ),
    (
        "embedder-tiny-target-voxel-size",
        lambda tmp: _fit([_run()], input="volumes", target_voxel_size=1e-4),
        ValueError,
        r"target_voxel_size=0\.0001 gives a grid of .* voxels; a training batch needs about "
        r".* bytes .*Raise target_voxel_size",
    ),
    (
        "embedder-score-zero-draws",
        lambda tmp: _fitted().score(_X(), n_draws=0),
        ValueError,
        r"score: n_draws=0 is not allowed; pass an integer >= 1",
    ),
    (
        "classifier-standardize-string",
        lambda tmp: TemporalContrastiveClassifier(standardize="yes", **FAST).fit(_X(), [0, 1] * 3),
        ValueError,
        r"TemporalContrastiveClassifier: standardize='yes' is not allowed",
    ),
    (
        "classifier-freeze-encoder-string",
        lambda tmp: TemporalContrastiveClassifier(freeze_encoder="no", **FAST).fit(
            _X(), [0, 1] * 3
        ),
        ValueError,
        r"freeze_encoder='no' is not allowed\. .* must be an instance of 'bool'",
    ),
    (
        "embedder-unknown-device",
        lambda tmp: _fit(_X(), device="tpu9"),
        ValueError,
        r"device='tpu9' is not a device torch knows; use 'auto'",
    ),
    (
        "embedder-cuda-without-gpu",
        lambda tmp: _fit(_X(), device="cuda"),
        ValueError,
        r"device='cuda' was requested but torch sees no CUDA GPU .*Use device='auto' or 'cpu'",
    ),
    (
        "embedder-non-finite-loss",
        lambda tmp: _diverging_loss(),
        TrainingDivergedError,
        r"loss became nan at epoch 2, batch 1\. Training was stopped so that no NaN "
        r"embedding is produced\. Try a lower lr",
    ),
    (
        "embedder-nan-weights-at-transform",
        lambda tmp: _nan_weights(),
        TrainingDivergedError,
        r"transform produced non-finite outputs for 6 of 6 sequences \(first: X\[0\]\): "
        r"the encoder's weights \['spatial\.weight'\].*refit with a lower lr",
    ),
    (
        "embedder-checkpoint-of-another-run",
        _other_checkpoint_run,
        IncompatibleModelError,
        r"checkpoint_dir='.*' holds checkpoints of another training run \(differs in: lr "
        r"0\.001 -> 0\.01\).*new or empty checkpoint_dir",
    ),
    # -- NetworkMasker
    (
        "masker-unknown-network",
        lambda tmp: _masker("vision").fit([_run()]),
        NetworkMaskError,
        r"networks='vision': 'vision' is not a Yeo 7-network name\. Allowed names are "
        r"'visual'.*Fix the spelling",
    ),
    (
        "masker-network-not-a-name",
        lambda tmp: _masker(3).fit([_run()]),
        NetworkMaskError,
        r"networks=3 must be a network name or a list of names.*networks='visual'",
    ),
    (
        "masker-no-network",
        lambda tmp: _masker([]).fit([_run()]),
        NetworkMaskError,
        r"networks=\[\] is empty; pass at least one of 'visual'",
    ),
    (
        "masker-3d-image",
        lambda tmp: _masker().fit([_run((4, 4, 4))]),
        NetworkMaskError,
        r"imgs\[0\] has shape \(4, 4, 4\) \(3D\); NetworkMasker expects 4D images .*"
        r"concat_imgs",
    ),
    (
        "masker-5d-image",
        lambda tmp: _masker().fit([_run((4, 4, 4, 10, 2))]),
        NetworkMaskError,
        r"imgs\[0\] has shape \(4, 4, 4, 10, 2\) \(5D\); NetworkMasker expects 4D images",
    ),
    (
        "masker-empty-list",
        lambda tmp: _masker().fit([]),
        NetworkMaskError,
        r"NetworkMasker got imgs=\[\]; pass a list of 4D images or paths",
    ),
    (
        "masker-missing-file",
        lambda tmp: _masker().fit([tmp / "missing_bold.nii.gz"]),
        NetworkMaskError,
        r"imgs\[0\]='.*missing_bold\.nii\.gz' cannot be read as a Nifti image .*No such file.*"
        r"Pass an existing \.nii/\.nii\.gz path",
    ),
    (
        "masker-corrupted-nifti",
        lambda tmp: _masker().fit([_corrupt_nifti(tmp)]),
        NetworkMaskError,
        r"imgs\[0\]='.*corrupt_bold\.nii\.gz' cannot be read as a Nifti image.*Pass an existing",
    ),
    (
        "masker-all-zero-mask",
        lambda tmp: _masker(mask_img=nib.Nifti1Image(np.zeros((4, 4, 4), np.int8), AFFINE)).fit(
            [_run()]
        ),
        NetworkMaskError,
        r"'visual' has 256 voxels in the atlas but none in the images' field of view "
        r"intersected with mask_img.*check mask_img",
    ),
    (
        "masker-empty-atlas",
        lambda tmp: _masker(atlas=_atlas(fill=0)).fit([_run()]),
        NetworkMaskError,
        r"the atlas has no voxel labelled 1 \('visual'\); its labels are all 0 .*Pass the "
        r"Yeo 7-network volume",
    ),
    (
        "masker-atlas-not-labels",
        lambda tmp: _masker(atlas=_atlas(fill=9)).fit([_run()]),
        NetworkMaskError,
        r"atlas=<Nifti1Image> is not a Yeo 7-network label volume: expected integer labels "
        r"0\.\.7 .*found values such as \[9\]",
    ),
    (
        "masker-missing-atlas-file",
        lambda tmp: _masker(atlas=str(tmp / "yeo.nii.gz")).fit([_run()]),
        NetworkMaskError,
        r"atlas='.*yeo\.nii\.gz' cannot be loaded as a Nifti image.*Pass an existing",
    ),
    (
        "masker-different-affines",
        lambda tmp: _masker().fit([_run(), _run(affine=np.diag([3.0, 3.0, 3.0, 1.0]))]),
        NetworkMaskError,
        r"imgs\[1\] has grid shape \(4, 4, 4\) and affine \[\[3\.0.*but NetworkMasker was "
        r"fitted on .*different affines cannot be mixed: resample them",
        "images with different affines in one batch (fit or transform)",
    ),
    (
        "masker-transform-other-grid",
        lambda tmp: _masker().fit([_run()]).transform([_run((5, 4, 4, 10))]),
        NetworkMaskError,
        r"imgs\[0\] has grid shape \(5, 4, 4\).*fitted on grid shape \(4, 4, 4\)",
    ),
    (
        "masker-transform-before-fit",
        lambda tmp: _masker().transform([_run()]),
        NotFittedError,
        r"This NetworkMasker instance is not fitted yet\. Call 'fit'",
    ),
    # -- datasets
    (
        "extract-blocks-3d-image",
        lambda tmp: extract_blocks(_run((3, 3, 3)), _events(), 2.0),
        ValueError,
        r"img must be a 4D image \(x, y, z, time\); got shape \(3, 3, 3\)\. Pass a whole run",
    ),
    (
        "extract-blocks-zero-t_r",
        lambda tmp: extract_blocks(_run((3, 3, 3, 60)), _events(), 0),
        ValueError,
        r"t_r=0 is not allowed\. .*Pass the time between two volumes in seconds",
    ),
    (
        "extract-blocks-events-without-trial_type",
        lambda tmp: extract_blocks(_run((3, 3, 3, 60)), _events().drop(columns="trial_type"), 2),
        ValueError,
        r"events lacks the column\(s\) \['trial_type'\].*needs 'onset' and 'duration'",
    ),
    (
        "extract-blocks-missing-events-file",
        lambda tmp: extract_blocks(_run((3, 3, 3, 60)), tmp / "events.tsv", 2.0),
        FileNotFoundError,
        r"events='.*events\.tsv' does not exist",
    ),
    (
        "extract-blocks-missing-image",
        lambda tmp: extract_blocks(tmp / "missing_bold.nii.gz", _events(), 2.0),
        FileNotFoundError,
        r"img='.*missing_bold\.nii\.gz' does not exist\. Pass the path of an existing 4D run",
    ),
    (
        "extract-blocks-corrupted-nifti",
        lambda tmp: extract_blocks(_corrupt_nifti(tmp), _events(), 2.0),
        ValueError,
        r"img='.*corrupt_bold\.nii\.gz' cannot be read as a NIfTI image .*re-export",
    ),
    (
        "bids-without-events",
        lambda tmp: load_bids_blocks(_bids_without_events(tmp), "objects"),
        FileNotFoundError,
        r"No events file for sub-01_task-objects_run-1_bold\.nii\.gz: expected "
        r"'.*sub-01_task-objects_run-1_events\.tsv'",
    ),
    (
        "bids-missing-folder",
        lambda tmp: load_bids_blocks(tmp / "nowhere", "objects"),
        FileNotFoundError,
        r"bids_root='.*nowhere' is not a folder\. Pass the root of a BIDS dataset",
    ),
    (
        "bids-unknown-task",
        lambda tmp: load_bids_blocks(_bids_without_events(tmp), "motor"),
        ValueError,
        r"task='motor'.*tasks found: \['objects'\]",
    ),
    (
        "simulate-zero-subjects",
        lambda tmp: make_task_fmri(n_subjects=0),
        ValueError,
        r"n_subjects=0 is not allowed\. .*of make_task_fmri"
        r" must be an int in the range \[1, inf\)",
    ),
    (
        "simulate-unknown-network",
        lambda tmp: make_task_fmri(
            n_subjects=1, n_tasks=2, task_networks={"task0": ["vision"], "task1": ["visual"]}
        ),
        ValueError,
        r"'vision'.*visual",
    ),
    # -- TemporalContrastiveClassifier
    (
        "classifier-y-wrong-length",
        lambda tmp: _fit_clf(y=np.array([0, 1, 0])),
        ValueError,
        r"fit got y with 3 labels for 8 sequences in X .*one label per sequence",
    ),
    (
        "classifier-one-class",
        lambda tmp: _fit_clf(y=np.zeros(8)),
        ValueError,
        r"needs at least 2 classes in y; got 1 class.*several conditions",
    ),
    (
        "classifier-no-y",
        lambda tmp: TemporalContrastiveClassifier(**FAST).fit(_X(8), None),
        ValueError,
        r"TemporalContrastiveClassifier requires y to be passed, but the target y is None",
    ),
    (
        "classifier-init-from-missing-file",
        lambda tmp: _fit_clf(init_from=tmp / "pretrained.safetensors"),
        FileNotFoundError,
        r"Model file '.*pretrained\.safetensors': not found; pass a \.safetensors file",
    ),
    (
        "classifier-init-from-other-features",
        lambda tmp: _fit_clf(init_from=_fit(_X(6, 12, 7))),
        IncompatibleModelError,
        r"init_from expects 7 features per time point .*but X has 5\. Mask your images with "
        r"the pretrained model's mask",
    ),
    (
        "classifier-init-from-unfitted",
        lambda tmp: _fit_clf(init_from=TemporalContrastiveEmbedder()),
        ValueError,
        r"init_from=TemporalContrastiveEmbedder\(.*\) is not fitted\. Fit it first.*"
        r"FrozenEstimator",
    ),
    (
        "classifier-nan-weights-at-predict",
        lambda tmp: _nan_weights_predict(),
        TrainingDivergedError,
        r"TemporalContrastiveClassifier\.predict produced non-finite outputs for 8 of 8 "
        r"sequences.*weights",
    ),
    # -- model files (sklearn_tcssl.load)
    (
        "model-missing-file",
        lambda tmp: load(tmp / "model.safetensors"),
        FileNotFoundError,
        r"Model file '.*model\.safetensors': not found; pass a \.safetensors file",
    ),
    (
        "model-folder",
        lambda tmp: load(tmp),
        FileNotFoundError,
        r"Model file '.*': a folder; pass a \.safetensors file",
    ),
    (
        "model-pickle-payload",
        _load_pickle_payload,
        IncompatibleModelError,
        r"is not a safetensors model file \(it may be a pickle or torch\.save file\)\. "
        r"sklearn-tcssl never unpickles model files",
        "a pickle with a code payload named .safetensors (the payload must not run)",
    ),
    (
        "model-torch-save-file",
        lambda tmp: load(_torch_save_file(tmp)),
        IncompatibleModelError,
        r"is not a safetensors model file .*never unpickles",
    ),
    (
        "model-incompatible-version",
        lambda tmp: load(_rewritten_model(tmp, card=lambda c: c.update(format_version=99))),
        IncompatibleModelError,
        r"has model format_version=99, written by sklearn-tcssl .*reads format versions 1 to "
        r"1\. It is newer\. Upgrade sklearn-tcssl",
        "a model file from a newer, incompatible format version",
    ),
    (
        "model-other-estimator",
        lambda tmp: load(_rewritten_model(tmp, card=lambda c: c.update(estimator="Decoder"))),
        IncompatibleModelError,
        r"holds a 'Decoder'; this sklearn-tcssl loads \[.*'TemporalContrastiveClassifier'",
    ),
    (
        "model-card-of-another-format",
        lambda tmp: load(_rewritten_model(tmp, card=lambda c: c.clear())),
        IncompatibleModelError,
        r"the card's format is not 'sklearn-tcssl-model'",
    ),
    (
        "model-truncated",
        lambda tmp: load(_truncated_model(tmp)),
        IncompatibleModelError,
        r"is truncated: its header announces \d+ bytes but the file has \d+\. .*copy the "
        r"file again",
        "an interrupted download (file cut in half)",
    ),
    (
        "model-missing-tensors",
        lambda tmp: load(_rewritten_model(tmp, drop="spatial")),
        IncompatibleModelError,
        r"(?s)tensors do not match its card \(missing \['encoder\.spatial.*damaged or was edited",
    ),
    (
        "model-other-features",
        lambda tmp: load(_saved_model(tmp)).transform([x[:, :3] for x in _X()]),
        ValueError,
        r"X\[0\] has 3 features per time point, but \w+ was fitted with 5",
    ),
    # -- tcssl command line
    (
        "cli-missing-bids-folder",
        lambda tmp: _cli("decode", tmp / "nowhere", "--task", "objects"),
        CLIError,
        r"exit 2: tcssl decode: error: bids_root='.*nowhere' is not a folder",
    ),
    (
        "cli-bids-without-events",
        lambda tmp: _cli("decode", _bids_without_events(tmp), "--task", "objects"),
        CLIError,
        r"exit 2: tcssl decode: error: No events file for sub-01_task-objects_run-1_bold",
    ),
    (
        "cli-unknown-network",
        lambda tmp: _cli("decode", tmp, "--task", "objects", "--network", "vision"),
        CLIError,
        r"exit 2: .*--network vision: .*'vision' is not a Yeo 7-network name",
    ),
    (
        "cli-one-fold",
        lambda tmp: _cli("decode", tmp, "--task", "objects", "--folds", "1"),
        CLIError,
        r"exit 2: .*--folds 1: cross-validation needs at least 2 folds",
    ),
    (
        "cli-missing-atlas",
        lambda tmp: _cli("decode", tmp, "--task", "objects", "--atlas", tmp / "yeo.nii.gz"),
        CLIError,
        r"exit 2: .*--atlas .*yeo\.nii\.gz does not exist\. Pass a local copy",
    ),
    (
        "cli-negative-max-epochs",
        lambda tmp: _cli("demo", "--max-epochs", "-1", "--out", tmp),
        CLIError,
        r"exit 2: tcssl demo: error: --max-epochs -1: pass 0 or more",
    ),
    (
        "cli-fewer-subjects-than-folds",
        lambda tmp: _cli("demo", "--n-subjects", "3", "--out", tmp),
        CLIError,
        r"exit 2: .*--n-subjects 3 is fewer than --folds 5.*lower --folds",
    ),
    (
        "cli-unknown-command",
        lambda tmp: _cli("train"),
        CLIError,
        r"(?s)exit 2: usage: tcssl.*invalid choice: 'train' \(choose from",
    ),
]


# ----------------------------------------------------------------- accepted on purpose
def _accepted_inputs(case_id):
    X = _X(6, 12, 5)
    if case_id == "constant-voxels":
        for x in X:
            x[:, 0] = 3.0
        return X, None
    if case_id == "all-zero-data":
        return [np.zeros_like(x) for x in X], None
    dtype = {"integer-data": np.int16, "float16-data": np.float16, "float64-data": np.float64}
    converted = [(x * 100).astype(dtype[case_id]) for x in X]
    return converted, [c.astype(np.float32) for c in converted]


def _check_accepted(case_id):
    """Fit on the input: finite float32 output, no warning, the same as on float32 data."""
    X, as_float32 = _accepted_inputs(case_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or conversion warning either
        embedder = TemporalContrastiveEmbedder(**FAST)
        Z = embedder.fit_transform(X)
    assert Z.dtype == np.float32 and Z.shape == (6, 4 + X[0].shape[1])  # + mean pattern
    assert np.isfinite(Z).all()
    assert np.isfinite(embedder.mean_).all() and np.isfinite(embedder.scale_).all()
    if as_float32 is not None:
        np.testing.assert_array_equal(Z, TemporalContrastiveEmbedder(**FAST).fit_transform(X))
        reference = TemporalContrastiveEmbedder(**FAST).fit(as_float32)
        np.testing.assert_allclose(Z, reference.transform(as_float32), rtol=1e-5, atol=1e-6)


def _accepted(case_id, what, behaviour):
    return (case_id, what, behaviour, lambda tmp: _check_accepted(case_id))


#: (id, input, documented behaviour, check(tmp_path)).
ACCEPTED = [
    _accepted(
        "constant-voxels", "a voxel constant over all time points", "only centred; finite output"
    ),
    _accepted("all-zero-data", "every voxel zero (e.g. an empty run)", "finite output, no NaN"),
    _accepted(
        "integer-data", "int16 arrays (raw scanner units)", "converted to float32, same result"
    ),
    _accepted(
        "float16-data", "float16 arrays", "converted to float32 without warning, same result"
    ),
    _accepted("float64-data", "float64 arrays", "converted to float32, same result"),
]
