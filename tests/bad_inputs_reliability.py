"""Rows of the bad-input table about reliability (Ctrl-C, checkpoints, damaged and hostile files).

Collected by ``tests/bad_inputs_table.py`` for the tests (``tests/test_bad_inputs.py``) and
the docs page. Each row of :data:`ROWS` is ``(id, call(tmp_path), error, regex, what)``;
rows whose expected outcome is a warning (a damaged checkpoint or cache entry is
recovered from) turn warnings into errors for that call. Each row of :data:`ACCEPTED` is
``(id, input, documented behaviour, check(tmp_path))``.
"""

import json
import signal
import struct
import warnings
from pathlib import Path
from unittest import mock

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from _helpers import smooth_sequences
from skorch.callbacks import Callback

from sklearn_tcssl import (
    DamagedFileError,
    IncompatibleModelError,
    NetworkMasker,
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
    load,
    save,
)
from sklearn_tcssl.datasets import (
    extract_blocks,
    load_bids_blocks,
    make_network_atlas,
    make_task_fmri,
)

FAST = {"n_components": 4, "max_epochs": 3, "batch_size": 4, "random_state": 0}
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
FIX = r"The file is damaged or was edited; save the model again"


# ------------------------------------------------------------------ data and estimators
def _X(n=8):
    return smooth_sequences(n, 12, 5)


def _fit(X=None, **params):
    return TemporalContrastiveEmbedder(**{**FAST, **params}).fit(_X() if X is None else X)


def _fit_clf(**params):
    y = np.array([0, 1] * 4)
    return TemporalContrastiveClassifier(**{**FAST, **params}).fit(_X(), y)


class _CtrlC(Callback):
    """Sends SIGINT (what Ctrl-C does) after the first batch of epoch 2."""

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == 2:
            signal.raise_signal(signal.SIGINT)


def _as_errors(call):
    """Run ``call`` with UserWarnings raised as errors (rows whose outcome is a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return call()


# ------------------------------------------------------------------------- checkpoints
def _damaged_checkpoint(tmp_path, name, damage):
    TemporalContrastiveEmbedder(**FAST, checkpoint_dir=tmp_path).fit(_X())
    path = tmp_path / "epoch-000003" / name
    damage(path)
    call = TemporalContrastiveEmbedder(**{**FAST, "max_epochs": 4}, checkpoint_dir=tmp_path)
    _as_errors(lambda: call.fit(_X()))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _read_only_checkpoint_dir(tmp_path):
    def refuse(self, data):
        raise PermissionError(13, "Permission denied", str(self))

    with mock.patch.object(Path, "write_bytes", refuse):  # root ignores chmod: simulate it
        _fit(checkpoint_dir=tmp_path / "read-only")


def _file_as_checkpoint_dir(tmp_path):
    path = tmp_path / "checkpoints.txt"
    path.write_text("not a folder")
    _fit(checkpoint_dir=path)


# ------------------------------------------------------------------------------ images
def _run(shape=(4, 4, 4, 12), *, value=None, at=(0, 0, 0, 0)):
    data = np.random.default_rng(0).random(shape).astype(np.float32) + 1.0
    if value is not None:
        data[at] = value
    return nib.Nifti1Image(data, AFFINE)


def _saved_run(tmp_path, name="bold.nii.gz", **kwargs):
    path = tmp_path / name
    nib.save(_run(**kwargs), path)
    return path


def _truncated_run(tmp_path, name="bold.nii.gz", shape=(4, 4, 4, 12)):
    path = _saved_run(tmp_path, name, shape=shape)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.6)])
    return path


def _bad_crc_run(tmp_path, name="bold.nii.gz", shape=(4, 4, 4, 12)):
    """A .nii.gz whose data decompress to wrong bytes: the gzip CRC no longer matches."""
    path = _saved_run(tmp_path, name, shape=shape)
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # the CRC-32 of the trailer, as if the data had changed
    path.write_bytes(bytes(raw))
    return path


def _not_nifti(tmp_path):
    path = _saved_run(tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    return path


def _atlas():
    labels = np.zeros((8, 8, 8), dtype=np.int8)
    labels[:4], labels[4:] = 1, 7
    return nib.Nifti1Image(labels, np.eye(4))


def _bad_crc_atlas(tmp_path):
    path = tmp_path / "atlas.nii.gz"
    labels = np.random.default_rng(0).integers(0, 8, size=(24, 24, 24)).astype(np.int8)
    nib.save(nib.Nifti1Image(labels, np.eye(4)), path)  # large enough to sniff its header
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def _masker():
    return NetworkMasker("visual", atlas=_atlas()).fit([_run()])


def _damaged_cache(tmp_path):
    path = _saved_run(tmp_path, "bold.nii")
    cache = tmp_path / "cache"
    _fit([path], input="volumes", cache_dir=cache, max_epochs=1)
    for entry in cache.glob("*.npy"):
        _truncate(entry)
    _as_errors(lambda: _fit([path], input="volumes", cache_dir=cache, max_epochs=1))


# ----------------------------------------------------------------------------- events
def _events(**columns):
    table = {"onset": [10.0, 40.0], "duration": [16.0, 16.0], "trial_type": ["faces", "houses"]}
    return pd.DataFrame({**table, **columns})


def _blocks(events=None, t_r=2.0, img=None, **kwargs):
    img = _run((3, 3, 3, 60)) if img is None else img
    return extract_blocks(img, _events() if events is None else events, t_r, **kwargs)


def _events_file(tmp_path, text):
    path = tmp_path / "events.tsv"
    path.write_text(text)
    return path


def _bids(tmp_path, *, sidecar='{"RepetitionTime": 2.0}', events=None, damage=None):
    root = tmp_path / "ds"
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.8"}')
    (root / "task-objects_bold.json").write_text(sidecar)
    bold = func / "sub-01_task-objects_run-1_bold.nii.gz"
    nib.save(_run((3, 3, 3, 60)), bold)
    if damage is not None:
        damage(bold)
    if events is None:
        events = "onset\tduration\ttrial_type\n10\t16\tfaces\n40\t16\thouses\n"
    (func / "sub-01_task-objects_run-1_events.tsv").write_text(events)
    return root


# ------------------------------------------------------------------------- model files
def _saved(tmp_path, estimator=None):
    path = tmp_path / "model.safetensors"
    save(_fit() if estimator is None else estimator, path)
    return path


def _edited_model(tmp_path, *, card=None, tensors=None, estimator=None):
    """A saved model with its card edited (``card(dict)``) or tensors (``tensors(dict)``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = _saved(tmp_path, estimator)
    with safe_open(str(path), "pt") as handle:
        content = json.loads(handle.metadata()["tcssl_card"])
    weights = load_file(str(path))
    if card is not None:
        card(content)
    if tensors is not None:
        tensors(weights)
    out = tmp_path / "edited.safetensors"
    save_file(weights, str(out), metadata={"tcssl_card": json.dumps(content)})
    return load(out)


def _tensor_index_edit(tmp_path):
    """Announce a 30000 x 5 spatial weight in the header, without the bytes for it."""
    path = _saved(tmp_path)
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["encoder.spatial.weight"]["shape"] = [30000, 5]
    new = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])
    return load(path)


def _set(path, value):
    """Card editor: set a dotted field to ``value`` (or delete it when value is ...)."""

    def edit(card):
        *parents, key = path.split(".")
        node = card
        for parent in parents:
            node = node[parent]
        if value is ...:
            del node[key]
        else:
            node[key] = value

    return edit


def _replace_tensor(name, value):
    return lambda weights: weights.__setitem__(name, value)


# --------------------------------------------------------------------------------- rows
ROWS = [
    # -- Ctrl-C
    (
        "ctrl-c-embedder",
        lambda tmp: _fit(callbacks=[_CtrlC()]),
        KeyboardInterrupt,
        "",
        "Ctrl-C (SIGINT) during an epoch of the embedder's fit: propagates",
    ),
    (
        "ctrl-c-classifier",
        lambda tmp: _fit_clf(callbacks=[_CtrlC()]),
        KeyboardInterrupt,
        "",
        "Ctrl-C during an epoch of the classifier's fit: propagates",
    ),
    (
        "ctrl-c-with-checkpoints",
        lambda tmp: _fit(callbacks=[_CtrlC()], checkpoint_dir=tmp),
        KeyboardInterrupt,
        "",
        "Ctrl-C with checkpoint_dir: propagates; only complete epochs are on disk",
    ),
    # -- checkpoints
    (
        "checkpoint-dir-is-a-file",
        _file_as_checkpoint_dir,
        ValueError,
        r"checkpoint_dir='.*checkpoints\.txt' is a file, not a folder\. Pass checkpoint_dir=",
        "checkpoint_dir names an existing file (refused before the first epoch)",
    ),
    (
        "checkpoint-dir-read-only",
        _read_only_checkpoint_dir,
        ValueError,
        r"checkpoint_dir='.*read-only' cannot be written \(PermissionError: Permission denied\)"
        r"\. Pass checkpoint_dir= a folder you can write to",
        "checkpoint_dir in a read-only place (refused before the first epoch)",
    ),
    (
        "checkpoint-truncated-params",
        lambda tmp: _damaged_checkpoint(tmp, "params.safetensors", _truncate),
        UserWarning,
        r"checkpoint file '.*epoch-000003.params\.safetensors' is damaged or missing .*renamed "
        r"'epoch-000003\.damaged'; resuming from the previous intact checkpoint",
        "latest checkpoint's params.safetensors truncated: warning, resumes from the previous one",
    ),
    (
        "checkpoint-bad-history",
        lambda tmp: _damaged_checkpoint(tmp, "history.json", lambda p: p.write_text("[{")),
        UserWarning,
        r"history\.json' is damaged or missing \(JSONDecodeError",
        "latest checkpoint's history.json not JSON: warning, previous checkpoint used",
    ),
    (
        "checkpoint-truncated-rng",
        lambda tmp: _damaged_checkpoint(tmp, "rng.pt", _truncate),
        UserWarning,
        r"rng\.pt' is damaged or missing",
        "latest checkpoint's rng.pt truncated: warning, previous checkpoint used",
    ),
    (
        "checkpoint-missing-optimizer",
        lambda tmp: _damaged_checkpoint(tmp, "optimizer.pt", Path.unlink),
        UserWarning,
        r"optimizer\.pt' is damaged or missing",
        "latest checkpoint's optimizer.pt deleted: warning, previous checkpoint used",
    ),
    (
        "checkpoint-bad-meta",
        lambda tmp: _damaged_checkpoint(tmp, "meta.json", lambda p: p.write_text('{"x": 1}')),
        UserWarning,
        r"meta\.json' is damaged or missing \(ValueError: not a checkpoint description",
        "latest checkpoint's meta.json without an epoch: warning, previous checkpoint used",
    ),
    # -- damaged image files
    (
        "extract-blocks-truncated-gz",
        lambda tmp: _blocks(img=_truncated_run(tmp, shape=(3, 3, 3, 60))),
        DamagedFileError,
        r"The image file '.*bold\.nii\.gz' is damaged: the gzip stream ends early \(the file is "
        r"truncated\)\. Copy or download it again",
        "a .nii.gz run cut short (interrupted copy)",
    ),
    (
        "extract-blocks-gzip-crc",
        lambda tmp: _blocks(img=_bad_crc_run(tmp, shape=(3, 3, 3, 60))),
        DamagedFileError,
        r"'.*bold\.nii\.gz' is damaged: the gzip data is corrupted \(CRC check failed",
        "a .nii.gz whose data no longer match the gzip CRC (nibabel alone reads wrong values)",
    ),
    (
        "extract-blocks-truncated-nii",
        lambda tmp: _blocks(img=_truncated_run(tmp, "bold.nii", shape=(3, 3, 3, 60))),
        DamagedFileError,
        r"'.*bold\.nii' is damaged: its header announces \d+ bytes of image data but it holds "
        r"\d+ \(the file is truncated\)",
        "an uncompressed .nii run cut short",
    ),
    (
        "volumes-truncated-gz",
        lambda tmp: _fit([_truncated_run(tmp)], input="volumes"),
        DamagedFileError,
        r"'.*bold\.nii\.gz' is damaged: the gzip stream ends early",
        "input='volumes': a truncated .nii.gz (was a raw EOFError)",
    ),
    (
        "volumes-gzip-crc",
        lambda tmp: _fit([_bad_crc_run(tmp)], input="volumes"),
        DamagedFileError,
        r"'.*bold\.nii\.gz' is damaged: the gzip data is corrupted",
        "input='volumes': a .nii.gz failing its CRC",
    ),
    (
        "volumes-not-nifti",
        lambda tmp: _fit([_not_nifti(tmp)], input="volumes"),
        DamagedFileError,
        r"X\[0\]='.*bold\.nii\.gz' cannot be read as a NIfTI image \(.*\)\. The file is "
        r"damaged or not NIfTI",
        "input='volumes': a .nii.gz cut to its first 100 bytes (was a raw ImageFileError)",
    ),
    (
        "network-masker-corrupted-atlas",
        lambda tmp: NetworkMasker("visual", atlas=_bad_crc_atlas(tmp)).fit([_run()]),
        DamagedFileError,
        r"'.*atlas\.nii\.gz' is damaged: the gzip data is corrupted",
        "an atlas .nii.gz failing its CRC (labels would be wrong)",
    ),
    (
        "network-masker-truncated-gz",
        lambda tmp: _masker().transform([_truncated_run(tmp)]),
        DamagedFileError,
        r"'.*bold\.nii\.gz' is damaged: the gzip stream ends early",
        "NetworkMasker.transform of a truncated .nii.gz",
    ),
    (
        "bids-truncated-run",
        lambda tmp: load_bids_blocks(_bids(tmp, damage=_truncate), "objects"),
        DamagedFileError,
        r"'.*sub-01_task-objects_run-1_bold\.nii\.gz' is damaged: the gzip stream ends early",
        "load_bids_blocks with a truncated BOLD run",
    ),
    (
        "volume-cache-truncated",
        _damaged_cache,
        UserWarning,
        r"The cache entry '.*\.npy' is damaged \(.*\); it is rebuilt",
        "input='volumes', cache_dir: a truncated cache entry is rebuilt with a warning",
    ),
    # -- model files are data
    (
        "model-card-missing-field",
        lambda tmp: _edited_model(tmp, card=_set("n_features_in", ...)),
        IncompatibleModelError,
        rf"the model card has no field 'n_features_in' \(an integer >= 1\)\. {FIX}",
    ),
    (
        "model-card-mistyped-field",
        lambda tmp: _edited_model(tmp, card=_set("n_features_in", "5")),
        IncompatibleModelError,
        r"the model card's field 'n_features_in' is '5' \(str\); it must be an integer >= 1",
    ),
    (
        "model-card-bool-as-size",
        lambda tmp: _edited_model(tmp, card=_set("architecture.n_blocks", True)),
        IncompatibleModelError,
        r"field 'architecture\.n_blocks' is True \(bool\); it must be an integer >= 0",
    ),
    (
        "model-card-missing-architecture",
        lambda tmp: _edited_model(tmp, card=_set("architecture", ...)),
        IncompatibleModelError,
        r"the model card has no field 'architecture' \(an object\)",
    ),
    (
        "model-card-huge-n-components",
        lambda tmp: _edited_model(tmp, card=_set("architecture.n_components", 30000)),
        IncompatibleModelError,
        r"the tensor 'encoder\.spatial\.weight' has shape \(4, 5\) \(F32\); the card implies a "
        r"float tensor of shape \(30000, 5\)",
        "a card asking n_components=30000 in a small file (refused before allocating)",
    ),
    (
        "model-tensor-index-outside-file",
        _tensor_index_edit,
        IncompatibleModelError,
        r"its tensor index does not describe the bytes of the file \(safetensors: .*offset",
        "a header announcing a 30000 x 5 tensor whose bytes are not in the file",
    ),
    (
        "model-mean-too-short",
        lambda tmp: _edited_model(
            tmp, tensors=_replace_tensor("standardization.mean", torch.zeros(1))
        ),
        IncompatibleModelError,
        r"the tensor 'standardization\.mean' has shape \(1,\) \(F32\); the card implies a "
        r"float tensor of shape \(5,\)",
        "a mean of length 1 for 5 features",
    ),
    (
        "model-card-params-not-object",
        lambda tmp: _edited_model(tmp, card=_set("params", [])),
        IncompatibleModelError,
        r"field 'params' is \[\] \(list\); it must be an object",
    ),
    (
        "model-card-param-object-value",
        lambda tmp: _edited_model(tmp, card=_set("params.lr", {"value": 1})),
        IncompatibleModelError,
        r"field 'params\.lr' is a dict; it must be a string, a number, true/false or null",
    ),
    (
        "model-card-unknown-architecture-field",
        lambda tmp: _edited_model(tmp, card=_set("architecture.activation", "relu")),
        IncompatibleModelError,
        r"the model card's architecture has unknown field\(s\) \['activation'\]",
    ),
    (
        "model-card-bad-classes-dtype",
        lambda tmp: _edited_model(
            tmp, card=_set("classes_dtype", "V100000000"), estimator=_fit_clf()
        ),
        IncompatibleModelError,
        r"field 'classes_dtype' is 'V100000000' \(str\); it must be 'object' or a numpy dtype",
    ),
    (
        "model-card-classes-vs-head",
        lambda tmp: _edited_model(tmp, card=_set("classes", [0, 1, 2]), estimator=_fit_clf()),
        IncompatibleModelError,
        r"the tensor 'head\.weight' has shape \(2, 4\) \(F32\); the card implies a float "
        r"tensor of shape \(3, 4\)",
    ),
    (
        "model-card-feature-names-length",
        lambda tmp: _edited_model(tmp, card=_set("feature_names_in", ["a", "b"])),
        IncompatibleModelError,
        r"'feature_names_in' has 2 names for n_features_in=5",
    ),
    (
        "model-card-param-n-components",
        lambda tmp: _edited_model(tmp, card=_set("params.n_components", 30000)),
        IncompatibleModelError,
        r"field 'params\.n_components' is 30000, but the encoder in the file has width 4",
        "params.n_components=30000 in the card (transform would allocate for it)",
    ),
    (
        "model-card-mistyped-mask",
        lambda tmp: _edited_model(tmp, card=_set("input.mask_sha256", 5)),
        IncompatibleModelError,
        r"field 'input\.mask_sha256' is 5 \(int\); it must be a string",
    ),
    # -- NaN and inf on every path
    (
        "volumes-nan-in-memory-image",
        lambda tmp: _fit([_run(value=np.nan)], input="volumes"),
        ValueError,
        r"The image X\[0\] contains NaN or infinite voxel values \(1 NaN, 0 inf\)\. Fix the "
        r"preprocessing, or replace them",
    ),
    (
        "volumes-inf-in-file",
        lambda tmp: _fit([_saved_run(tmp, "bold.nii", value=np.inf)], input="volumes"),
        ValueError,
        r"The image '.*bold\.nii' \(frames 0 to 11\) contains NaN or infinite voxel values "
        r"\(0 NaN, 1 inf\)",
    ),
    (
        "network-masker-nan-voxel",
        lambda tmp: _masker().transform([_run(value=np.nan)]),
        ValueError,
        r"The image imgs\[0\] contains NaN or infinite voxel values \(1 NaN, 0 inf\)",
        "a NaN voxel inside the network mask (nilearn would turn it into 0)",
    ),
    (
        "network-masker-nan-file",
        lambda tmp: _masker().transform([_saved_run(tmp, value=np.nan)]),
        ValueError,
        r"The image imgs\[0\] \('.*bold\.nii\.gz'\) contains NaN",
    ),
    (
        "extract-blocks-nan-voxel",
        lambda tmp: _blocks(img=_run((3, 3, 3, 60), value=np.nan)),
        ValueError,
        r"The image img=\(in memory\) contains NaN or infinite voxel values \(1 NaN",
        "a NaN voxel in a run (the default mask would drop it silently)",
    ),
    (
        "extract-blocks-inf-inside-mask",
        lambda tmp: _blocks(
            img=_run((3, 3, 3, 60), value=np.inf),
            mask_img=nib.Nifti1Image(np.ones((3, 3, 3), np.uint8), AFFINE),
        ),
        ValueError,
        r"img=\(in memory\) \(inside mask_img\) contains NaN or infinite voxel values \(0 NaN, "
        r"1 inf\)",
    ),
    # -- BIDS and events
    (
        "extract-blocks-nan-onset",
        lambda tmp: _blocks(_events(onset=[10.0, np.nan])),
        ValueError,
        r"events: invalid 'onset' in row 1 \(trial_type='houses'\): nan\. Every block needs a "
        r"finite onset",
        "an n/a onset (was 'starts at volume -9223372036854775808')",
    ),
    (
        "extract-blocks-inf-onset",
        lambda tmp: _blocks(_events(onset=[np.inf, 10.0])),
        ValueError,
        r"events: invalid 'onset' in row 0 \(trial_type='faces'\): inf",
    ),
    (
        "extract-blocks-text-onset",
        lambda tmp: _blocks(_events(onset=["10", "ten"])),
        ValueError,
        r"events: column 'onset' holds 'ten' in row 1, not a number of seconds",
    ),
    (
        "extract-blocks-negative-duration",
        lambda tmp: _blocks(_events(duration=[-16.0, 16.0])),
        ValueError,
        r"invalid 'duration' in row 0 \(trial_type='faces'\): -16\. Durations are seconds",
    ),
    (
        "extract-blocks-all-nan-durations",
        lambda tmp: _blocks(_events_file(tmp, "onset\tduration\ttrial_type\n10\tn/a\ta\n")),
        ValueError,
        r"events='.*events\.tsv': column 'duration' is n/a in every one of the 1 events kept"
        r".*Fill in each block's duration",
        "an events.tsv whose durations are all n/a (was 'shorter than min_duration=None')",
    ),
    (
        "extract-blocks-empty-events-file",
        lambda tmp: _blocks(_events_file(tmp, "")),
        ValueError,
        r"events='.*events\.tsv' is empty\. A BIDS events\.tsv starts with the header row",
        "an empty events.tsv (was pandas' EmptyDataError)",
    ),
    (
        "extract-blocks-hrf-delay-nan",
        lambda tmp: _blocks(hrf_delay=np.nan),
        ValueError,
        r"hrf_delay=nan is not allowed\. .*of extract_blocks must be a float in the range "
        r"\[0\.0, 60\.0\]\..* Pass a delay in seconds",
    ),
    (
        "extract-blocks-t_r-in-ms",
        lambda tmp: _blocks(t_r=2000),
        ValueError,
        r"t_r=2000 is not allowed\. .*\(0\.0, 100\.0\]\. .*in milliseconds must be divided by "
        r"1000",
    ),
    (
        "extract-blocks-standardize-no",
        lambda tmp: _blocks(standardize="no"),
        ValueError,
        r"standardize='no' is not allowed\. .*of extract_blocks must be .*'psc'",
        "standardize='no' (a string that is not a strategy)",
    ),
    (
        "extract-blocks-min-duration-nan",
        lambda tmp: _blocks(min_duration=float("nan")),
        ValueError,
        r"min_duration=nan is not allowed\. .*of extract_blocks must be None or a float",
    ),
    (
        "bids-repetition-time-in-ms",
        lambda tmp: load_bids_blocks(_bids(tmp, sidecar='{"RepetitionTime": 2000}'), "objects"),
        ValueError,
        r"RepetitionTime=2000 in '.*task-objects_bold\.json' is not a valid repetition time: "
        r"2000 s is longer than 100 s, so it is probably in milliseconds\. .*write 2\.",
        "RepetitionTime in milliseconds in the sidecar",
    ),
    (
        "bids-invalid-sidecar-json",
        lambda tmp: load_bids_blocks(_bids(tmp, sidecar="{RepetitionTime: 2}"), "objects"),
        ValueError,
        r"The JSON sidecar '.*task-objects_bold\.json' is not valid JSON \(Expecting property "
        r"name enclosed in double quotes at line 1, column 2\)",
        "a sidecar that is not JSON (was a raw JSONDecodeError without the file name)",
    ),
    (
        "bids-sidecar-not-an-object",
        lambda tmp: load_bids_blocks(_bids(tmp, sidecar="[2.0]"), "objects"),
        ValueError,
        r"The JSON sidecar '.*task-objects_bold\.json' holds a list, not a JSON object",
    ),
    (
        "bids-empty-events-file",
        lambda tmp: load_bids_blocks(_bids(tmp, events=""), "objects"),
        ValueError,
        r"events='.*sub-01_task-objects_run-1_events\.tsv' is empty",
    ),
    (
        "bids-hrf-delay-inf",
        lambda tmp: load_bids_blocks(_bids(tmp), "objects", hrf_delay=float("inf")),
        ValueError,
        r"hrf_delay=inf is not allowed\. .*of load_bids_blocks"
        r" must be a float in the range \[0\.0, 60\.0\]",
    ),
    # -- dataset parameters (scikit-learn's validate_params)
    (
        "simulate-nan-effect-size",
        lambda tmp: make_task_fmri(1, effect_size=np.float64("nan")),
        ValueError,
        r"effect_size=np\.float64\(nan\) is not allowed\. .*of make_task_fmri"
        r" must be a float in the "
        r"range \[0\.0, 100\.0\]",
    ),
    (
        "simulate-inf-t_r",
        lambda tmp: make_task_fmri(1, t_r=float("inf")),
        ValueError,
        r"t_r=inf is not allowed\. .*of make_task_fmri"
        r" must be a float in the range \(0\.0, 100\.0\]",
    ),
    (
        "simulate-tiny-voxel-size",
        lambda tmp: make_task_fmri(1, voxel_size=0.1),
        ValueError,
        r"voxel_size=0\.1 is not allowed\. .*\[2\.0, 30\.0\]\..* Finer grids need far more memory",
        "voxel_size=0.1 (a grid that cannot fit in memory)",
    ),
    (
        "simulate-too-large",
        lambda tmp: make_task_fmri(np.int64(10**6)),
        MemoryError,
        r"make_task_fmri: .* needs about .* GiB\), more than this machine's .* Lower n_subjects",
        "a dataset far larger than memory: refused up front with the estimate",
    ),
    (
        "network-atlas-zero-voxel-size",
        lambda tmp: make_network_atlas(0),
        ValueError,
        r"voxel_size=0 is not allowed\. .*of make_network_atlas"
        r" must be a float in the range \[2\.0, "
        r"30\.0\]",
    ),
    (
        "simulate-n-tasks-float",
        lambda tmp: make_task_fmri(1, n_tasks=2.5),
        ValueError,
        r"n_tasks=2\.5 is not allowed\. .*of make_task_fmri"
        r" must be an int in the range \[2, inf\)",
    ),
]


# ------------------------------------------------------------------ accepted on purpose
class _StopAtEpochEnd(Callback):
    """Raises KeyboardInterrupt in on_epoch_end without a SIGINT: skorch's early stop."""

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


def _accept_early_stop(tmp_path):
    assert len(_fit(callbacks=[_StopAtEpochEnd()]).history_) == 2


def _accept_some_missing_durations(tmp_path):
    events = _events(duration=[16.0, np.nan])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blocks, labels = _blocks(events)
    assert list(labels) == ["faces"]
    assert any("duration is n/a" in str(w.message) for w in caught)


def _accept_nan_outside_mask(tmp_path):
    mask = np.ones((3, 3, 3), np.uint8)
    mask[0, 0, 0] = 0
    blocks, _ = _blocks(
        img=_run((3, 3, 3, 60), value=np.nan), mask_img=nib.Nifti1Image(mask, AFFINE)
    )
    assert all(np.isfinite(b.get_fdata()).all() for b in blocks)


def _accept_all_checkpoints_damaged(tmp_path):
    TemporalContrastiveEmbedder(**FAST, checkpoint_dir=tmp_path).fit(_X())
    for folder in tmp_path.glob("epoch-*"):
        _truncate(folder / "params.safetensors")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = TemporalContrastiveEmbedder(**FAST, checkpoint_dir=tmp_path).fit(_X())
    assert len(fitted.history_) == FAST["max_epochs"]
    assert sum("damaged" in str(w.message) for w in caught) == 2


def _accept_bool_as_integer(tmp_path):
    small = {"n_runs": 1, "n_tasks": 2, "n_blocks": 1, "voxel_size": 12.0, "random_state": 0}
    a, b = make_task_fmri(True, **small), make_task_fmri(1, **small)
    np.testing.assert_array_equal(a.imgs[0].get_fdata(), b.imgs[0].get_fdata())


#: (id, input, documented behaviour, check(tmp_path)).
ACCEPTED = [
    (
        "keyboard-interrupt-at-epoch-end",
        "a callback raising KeyboardInterrupt in on_epoch_end, without Ctrl-C",
        "an early stop, as in skorch (EarlyStopping does this); fit returns",
        _accept_early_stop,
    ),
    (
        "some-durations-n/a",
        "events with some durations n/a",
        "those events are dropped with a warning naming the events",
        _accept_some_missing_durations,
    ),
    (
        "nan-outside-mask-img",
        "NaN voxels outside the mask_img given to extract_blocks",
        "set to 0 with every voxel outside the mask; inside the mask NaN is an error",
        _accept_nan_outside_mask,
    ),
    (
        "every-checkpoint-damaged",
        "every checkpoint in checkpoint_dir damaged",
        "a warning per checkpoint (renamed epoch-N.damaged), then training from epoch 0",
        _accept_all_checkpoints_damaged,
    ),
    (
        "bool-as-integer",
        "True for an integer parameter of make_task_fmri",
        "read as 1, as scikit-learn's validate_params does",
        _accept_bool_as_integer,
    ),
]
