"""Rows of the bad-input table for the aligners (SRM and temporal-contrastive).

Collected by ``tests/bad_inputs_table.py`` for the tests (``tests/test_bad_inputs.py``) and
the docs page. Each row of :data:`ROWS` is ``(id, call(tmp_path), error, regex, what)``;
rows whose outcome is a warning turn warnings into errors for that call. Each row of
:data:`ACCEPTED` is ``(id, input, documented behaviour, check(tmp_path))``.
"""

import warnings

import numpy as np
import pandas as pd

from sklearn_tcssl import (
    AlignmentWarning,
    IncompatibleModelError,
    SharedResponseAligner,
    TemporalContrastiveAligner,
    load,
    save,
)

FAST = {"n_components": 3, "segment_length": 3, "max_epochs": 2, "batch_size": 8}


def _runs(n=4, n_timepoints=60, n_features=12, seed=0):
    """Time-locked runs: a shared signal seen through each person's own mixing."""
    rng = np.random.default_rng(seed)
    signal = np.cumsum(rng.normal(size=(n_timepoints, 3)), axis=0)
    return [
        (
            signal @ rng.normal(size=(3, n_features)) + rng.normal(size=(n_timepoints, n_features))
        ).astype(np.float32)
        for _ in range(n)
    ]


def _srm(**params):
    return SharedResponseAligner(**{"n_components": 3, "random_state": 0, **params})


def _tc(**params):
    return TemporalContrastiveAligner(**{**FAST, "random_state": 0, **params})


def _as_errors(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlignmentWarning)
        return call()


def _with(index, change, runs=None):
    runs = _runs() if runs is None else runs
    runs[index] = change(runs[index])
    return runs


def _frames(runs):
    return [pd.DataFrame(r, columns=[f"v{j}" for j in range(r.shape[1])]) for r in runs]


def _reordered_columns(tmp_path):
    frames = _frames(_runs())
    aligner = _srm().fit(frames)
    aligner.transform([frames[1][frames[1].columns[::-1]]], subjects=[1])


def _alignment_that_does_not_generalise(tmp_path):
    # the shared signal lies in voxels 0-5 in the fitted part, in voxels 6-11 in the held-out
    # part: the maps learnt on the first project the second out, raw voxels keep it
    rng = np.random.default_rng(0)
    signal, base = rng.normal(size=(80, 6)), np.zeros((80, 12))
    base[:56, :6], base[56:, 6:] = signal[:56], signal[56:]
    runs = [(base + 0.3 * rng.normal(size=base.shape)).astype(np.float32) for _ in range(4)]
    _as_errors(lambda: _srm(n_components=2, validation_fraction=0.3).fit(runs))


def _edited_model(tmp_path, edit):
    from safetensors.numpy import load_file
    from safetensors.numpy import save as save_numpy

    path = save(_tc().fit(_runs()), tmp_path / "aligner.safetensors")
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "np") as handle:
        metadata = handle.metadata()
    edit(tensors, metadata)
    path.write_bytes(save_numpy(tensors, metadata=metadata))
    return load(path)


def _negate_scale(tensors, metadata):
    tensors["scale.1"] = -tensors["scale.1"]


def _even_kernel(tensors, metadata):
    import json

    card = json.loads(metadata["tcssl_card"])
    card["architecture"]["kernel_size"] = 4
    metadata["tcssl_card"] = json.dumps(card)


ROWS = [
    (
        "aligner-n-components-over-time-points",
        lambda tmp: _srm(n_components=30).fit(_runs(n_timepoints=20, n_features=40)),
        ValueError,
        r"n_components=30 is more than the 20 time points .* Use n_components <= 20",
        "an aligner with more components than time points (the extra ones would be arbitrary)",
    ),
    (
        "aligner-huge-n-components",
        lambda tmp: _tc(n_components=10**12).fit(_runs()),
        ValueError,
        r"n_components=1000000000000 is more than the 12 features of X\[0\]",
        "n_components=10**12 (no MemoryError)",
    ),
    (
        "aligner-constant-run",
        lambda tmp: _srm().fit(_with(2, lambda r: np.full_like(r, 3.0))),
        ValueError,
        r"X\[2\] \(subjects\[2\]=2\) is constant over time .* failed or empty scan",
        "a constant run (failed scan) in fit",
    ),
    (
        "aligner-constant-run-added",
        lambda tmp: _srm().fit(_runs()).add_subjects([np.zeros((60, 12))], ["new"]),
        ValueError,
        r"X\[0\] \(subjects\[0\]='new'\) is constant over time",
        "a constant run given to add_subjects",
    ),
    (
        "aligner-lr-too-high",
        lambda tmp: _as_errors(lambda: _tc(lr=10.0, max_epochs=4).fit(_runs())),
        AlignmentWarning,
        r"training did not learn: .*lr=10.0 is too high \(divide it by 10",
        "lr=10 (allowed, but training ends at chance with huge embeddings): a warning",
    ),
    (
        "aligner-does-not-pay",
        _alignment_that_does_not_generalise,
        AlignmentWarning,
        r"held-out last 24 time points.*0\.\d+ after alignment but 1.000 without.*does not pay",
        "runs where aligning does worse than not aligning on held-out time points: a warning",
    ),
    (
        "aligner-dataframe-columns-reordered",
        _reordered_columns,
        ValueError,
        r"X\[0\] \(subjects\[0\]=1\) has columns \['v11', 'v10', 'v9'\].*Reorder it as in fit",
        "a DataFrame whose columns are in another order than in fit",
    ),
    (
        "aligner-nan-subject",
        lambda tmp: _srm().fit(_runs(), subjects=[0, 1, np.nan, 3]),
        ValueError,
        r"subjects\[2\] is nan; every sequence needs a real subject identifier",
        "a NaN subject id",
    ),
    (
        "aligner-none-subject",
        lambda tmp: _srm().fit(_runs(), subjects=["a", None, "c", "d"]),
        ValueError,
        r"subjects\[1\] is None",
        "a missing (None) subject id",
    ),
    (
        "aligner-subject-of-another-type",
        lambda tmp: _srm().fit(_runs(), subjects=["a", "b", {"c": 1}, "d"]),
        TypeError,
        r"subjects\[2\] is a dict .* must be strings or integers",
        "a subject id that is neither a string nor a number",
    ),
    (
        "aligner-subjects-a-string",
        lambda tmp: _srm().fit(_runs(), subjects="abcd"),
        ValueError,
        r"subjects='abcd' is not a list",
        "subjects given as one string",
    ),
    (
        "aligner-repeated-subject",
        lambda tmp: _srm().fit(_runs(), subjects=[0, 1, 1, 3]),
        ValueError,
        r"subjects\[2\]=1 repeats subjects\[1\]; each subject must appear once",
        "a subject with two runs in fit",
    ),
    (
        "aligner-nan-in-a-run",
        lambda tmp: _srm().fit(
            _with(2, lambda r: np.where(np.arange(60)[:, None] == 5, np.nan, r))
        ),
        ValueError,
        r"X\[2\] contains NaN or infinity \(12 NaN",
        "NaN in the third run (named X[2], not X[0])",
    ),
    (
        "aligner-run-of-another-length",
        lambda tmp: _srm().fit(_with(3, lambda r: r[:30])),
        ValueError,
        r"X\[0\] has 60 time points but X\[3\] \(subjects\[3\]=3\) has 30",
        "runs of different lengths (not time-locked)",
    ),
    (
        "aligner-run-without-time-points",
        lambda tmp: _srm().fit(_with(1, lambda r: r[:0])),
        ValueError,
        r"X\[1\] has 0 time point\(s\); a run needs at least 2",
        "an empty run",
    ),
    (
        "aligner-run-1d",
        lambda tmp: _srm().fit(_with(1, lambda r: r[:, 0])),
        ValueError,
        r"X\[1\] has 1 dimension\(s\)",
        "a 1D run",
    ),
    (
        "aligner-unknown-subject",
        lambda tmp: _srm().fit(_runs()).transform(_runs()[:2], subjects=[0, 9]),
        ValueError,
        r"subjects\[1\]=9 has no map.*add_subjects",
        "transform for a subject without a map",
    ),
    (
        "aligner-features-of-another-subject",
        lambda tmp: _srm().fit(_runs()).transform([_runs(n_features=7)[0]], subjects=[1]),
        ValueError,
        r"X\[0\] \(subjects\[0\]=1\) has 7 features, but that subject's map has 12",
        "a sequence with another number of features than its subject's map",
    ),
    (
        "aligner-even-kernel-size",
        lambda tmp: _tc(kernel_size=4).fit(_runs()),
        ValueError,
        r"kernel_size=4 must be odd .* use 5",
        "TemporalContrastiveAligner(kernel_size=4), refused before training",
    ),
    (
        "aligner-cross-subject-one-run",
        lambda tmp: _tc().fit(_runs(n=1)),
        ValueError,
        r"cross_subject=True .* needs the runs of at least 2 subjects; got 1",
        "one run with cross_subject=True",
    ),
    (
        "aligner-score-one-subject",
        lambda tmp: _srm().fit(_runs()).score(_runs()[:1], subjects=[0]),
        ValueError,
        r"segment matching needs the runs of at least 2 people",
        "score on one person's run",
    ),
    (
        "aligner-score-window",
        lambda tmp: _srm().fit(_runs()).score(_runs(), subjects=[0, 1, 2, 3], window=1),
        ValueError,
        r"window=1 is not allowed; pass an integer >= 2",
        "score with window=1",
    ),
    (
        "aligner-score-too-short",
        lambda tmp: _srm().fit(_runs()).score([r[:20] for r in _runs()], subjects=[0, 1, 2, 3]),
        ValueError,
        r"window=9 needs runs of at least 27 time points; these have 20",
        "score on runs shorter than 3 windows",
    ),
    (
        "aligner-validation-fraction",
        lambda tmp: _srm(validation_fraction=0.9).fit(_runs()),
        ValueError,
        r"validation_fraction=0.9 is not allowed",
        "validation_fraction outside (0, 0.5)",
    ),
    (
        "aligner-save-with-mask",
        lambda tmp: save(_srm().fit(_runs()), tmp / "a.safetensors", mask="mask.nii.gz"),
        ValueError,
        r"mask= is not recorded for a SharedResponseAligner",
        "save(aligner, mask=...)",
    ),
    (
        "aligner-model-negated-scale",
        lambda tmp: _edited_model(tmp, _negate_scale),
        IncompatibleModelError,
        r"tensor 'scale.1' has non-finite values or scales <= 0",
        "an aligner model file whose scale tensor was negated",
    ),
    (
        "aligner-model-even-kernel",
        lambda tmp: _edited_model(tmp, _even_kernel),
        IncompatibleModelError,
        r"'architecture.kernel_size' is 4 \(int\); it must be an odd integer",
        "an aligner model file edited to an even kernel_size",
    ),
]


# ------------------------------------------------------------- accepted on purpose
def _accept_numpy_subjects(tmp_path):
    runs = _runs()
    a = _srm().fit(runs, subjects=np.arange(4))
    b = _srm().fit(runs, subjects=[0, 1, 2, 3])
    np.testing.assert_array_equal(
        a.transform(runs[:1], subjects=[np.int64(2)])[0], b.transform(runs[:1], subjects=[2])[0]
    )


def _accept_partly_constant(tmp_path):
    runs = _with(1, lambda r: np.column_stack([r[:, :-1], np.full(len(r), 7.0)]))
    out = _srm().fit(runs).transform(runs, subjects=[0, 1, 2, 3])
    assert all(np.isfinite(o).all() for o in out)


def _accept_same_columns(tmp_path):
    frames = _frames(_runs())
    aligner = _srm().fit(frames)
    np.testing.assert_array_equal(
        aligner.transform(frames[:1], subjects=[0])[0],
        aligner.transform([frames[0].to_numpy()], subjects=[0])[0],
    )


#: (id, input, documented behaviour, check(tmp_path)).
ACCEPTED = [
    (
        "aligner-numpy-subject-ids",
        "numpy integer subject ids (np.arange, np.int64)",
        "the same subjects as the Python integers they hold",
        _accept_numpy_subjects,
    ),
    (
        "aligner-partly-constant-run",
        "a run with one constant voxel (the others vary)",
        "that voxel is only centred; finite output",
        _accept_partly_constant,
    ),
    (
        "aligner-dataframes-same-columns",
        "DataFrames with the columns of fit, or plain arrays, for transform",
        "read by position (names checked when both sides have them); same output",
        _accept_same_columns,
    ),
]
