"""Turn the accepted forms of X into a list of float32 ``(n_timepoints, n_features)`` arrays.

Accepted forms:

* a list (or tuple) of 2D arrays ``(n_timepoints_i, n_features)``, e.g. what
  :class:`nilearn.maskers.MultiNiftiMasker` returns; lengths may differ. Items may be
  memory maps or paths to ``.npy`` files (opened as read-only memory maps); C-ordered
  float32 ones are used in place and read piece by piece, so a corpus larger than memory
  trains from disk;
* a 3D array ``(n_samples, n_timepoints, n_features)``;
* a 2D array ``(n_samples, n_timepoints)``: ``n_samples`` univariate series (the tslearn
  convention). This exists for scikit-learn compatibility; fMRI users pass one of the above.
"""

import mmap
import numbers
import os
import warnings
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from sklearn_tcssl._input.files import memmap_base, open_npy_run
from sklearn_tcssl._input.standardize import CHUNK_BYTES, row_chunks
from sklearn_tcssl._utils.exceptions import InsufficientMemoryError, NotFittedError

SEQUENCE_FORMS = (
    "a list of 2D arrays (n_timepoints, n_features) such as MultiNiftiMasker returns (or of "
    "paths to such arrays saved as float32 .npy files), or a 3D array "
    "(n_samples, n_timepoints, n_features)"
)


def is_memory_mapped(array):
    """Whether ``array``'s memory is a memory-mapped file (``np.load(..., mmap_mode=...)``)."""
    return isinstance(memmap_base(array), (np.memmap, mmap.mmap))


def _as_float_array(value, where):
    if isinstance(value, Iterator):  # numpy would make an object array of it
        raise TypeError(
            f"{where} is a {type(value).__name__} (an iterator, which can be read only "
            f"once), not an array; pass a list of arrays, e.g. list({where.split()[0]})."
        )
    if sp.issparse(value):
        raise TypeError(
            f"{where} is a sparse matrix; sparse input is not supported. Pass dense arrays "
            "(e.g. X.toarray())."
        )
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(
            f"{where} is ragged (its rows have different lengths), so it is not an array. "
            "Each sequence must be a rectangular (n_timepoints, n_features) array; check how "
            "it was built."
        ) from exc
    if array.dtype.kind == "c":
        raise ValueError(f"{where} has complex values; pass real-valued data.")
    if array.dtype.kind not in "biuf":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{where} has dtype {array.dtype} that cannot be converted to float; "
                f"pass numeric arrays ({SEQUENCE_FORMS})."
            ) from exc
    return array


def _check_values(array, where, limit=1e15):
    """Refuse NaN, infinity and values beyond ``limit``, in one pass over bounded blocks.

    A finite float64 sum proves a block finite (only a suspect block is checked element by
    element); ``limit`` guards a float32 standardisation's squares. Extremes are compared as
    Python floats (float16 cannot hold the limit, an integer ``abs()`` can wrap around).
    """
    largest, n_nan, n_inf = 0.0, 0, 0
    for block in row_chunks([array], CHUNK_BYTES):
        if block.dtype.kind == "f" and not np.isfinite(block.sum(dtype=np.float64)):
            nan, inf = int(np.isnan(block).sum()), int(np.isinf(block).sum())
            if nan or inf:
                n_nan, n_inf = n_nan + nan, n_inf + inf
                continue
        if block.size:
            largest = max(largest, abs(float(block.max())), abs(float(block.min())))
    if n_nan or n_inf:
        raise ValueError(
            f"{where} contains NaN or infinity ({n_nan} NaN, {n_inf} inf values). "
            "Remove or impute them first, e.g. mask out voxels outside the brain or use "
            "nilearn.image.clean_img / np.nan_to_num."
        )
    if largest > limit:
        shown = f"{largest:.3g}" if float(f"{largest:.3g}") > limit else repr(largest)
        raise ValueError(
            f"{where} has values up to {shown}, beyond {limit:.0e}; "
            "float32 training would overflow. Rescale the data (e.g. z-score each voxel over "
            "the run) before fitting."
        )


def check_sequences(X, *, estimator_name, n_features=None, min_length=1):
    """Validate X (see the module docstring) as float32 C-contiguous sequences.

    ``n_features`` (from ``fit``; ``None`` accepts any) is the expected count of features
    per time point, ``min_length`` the fewest time points of a sequence; errors name the
    estimator ``estimator_name``.
    """
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{estimator_name} got an empty list X; pass at least one sequence.")
        sequences = [
            check_sequence(item, where=f"X[{i}]", estimator_name=estimator_name)
            for i, item in enumerate(X)
        ]
    else:
        sequences = _array_to_sequences(X, estimator_name)
    _check_sizes(sequences, estimator_name, n_features, min_length)
    return sequences


def check_sequence(item, *, where, estimator_name):
    """Validate one sequence as a float32 C-contiguous 2D array; errors call it ``where``."""
    if isinstance(item, (str, os.PathLike)) and os.fspath(item).endswith(".npy"):
        item = open_npy_run(item, where)  # a read-only float32 memory map
    if isinstance(item, (str, bytes)) or not hasattr(item, "__len__"):
        raise TypeError(
            f"{where} is a {type(item).__name__}, not an array. {estimator_name} expects "
            f"{SEQUENCE_FORMS}; to use images, put a masker (e.g. NetworkMasker or "
            "MultiNiftiMasker) first in the pipeline."
        )
    array = _as_float_array(item, where)
    if array.ndim != 2:
        raise ValueError(
            f"{where} has {array.ndim} dimension(s) (shape {array.shape}); each sequence "
            f"must be 2D (n_timepoints, n_features). {estimator_name} expects "
            f"{SEQUENCE_FORMS}."
        )
    _check_values(array, where)
    return _to_float32(array, where)


def _array_to_sequences(X, estimator_name):
    if isinstance(X, numbers.Number) or X is None:
        raise ValueError(f"{estimator_name} expects {SEQUENCE_FORMS}; got {X!r}.")
    array = _as_float_array(X, "X")
    if array.ndim not in (2, 3):
        hint = "Reshape your data: " if array.ndim < 2 else ""
        raise ValueError(
            f"X has {array.ndim} dimension(s) (shape {array.shape}). {hint}{estimator_name} "
            f"expects {SEQUENCE_FORMS}."
        )
    if len(array) == 0:
        raise ValueError(f"{estimator_name} got X with 0 samples; pass at least one.")
    _check_values(array, "X")
    samples = array if array.ndim == 3 else array[:, :, None]  # rows: univariate series
    return [_to_float32(s, "X") for s in samples]  # 0 time points: refused by _check_sizes


def _to_float32(array, where):
    converted = np.ascontiguousarray(array, dtype=np.float32)
    if not np.shares_memory(converted, array) and is_memory_mapped(array):
        warnings.warn(
            f"{where} is a memory map of {array.dtype} data"
            f"{'' if array.flags.c_contiguous else ' (not C-ordered)'}: it was copied into "
            "memory as C-ordered float32. To train from disk without copies, store the run "
            "as C-ordered float32 (np.save(path, np.ascontiguousarray(run, "
            "dtype=np.float32))) and pass np.load(path, mmap_mode='r') or the path.",
            UserWarning,
            stacklevel=6,
        )
    return converted


def _check_sizes(sequences, estimator_name, n_features, min_length):
    counts = [s.shape[1] for s in sequences]
    if min(counts) == 0:
        raise ValueError(
            f"X[{counts.index(0)}] has 0 features per time point; {estimator_name} needs at "
            "least one. An empty mask gives this: check the masker's mask (e.g. "
            "NetworkMasker.n_voxels_) covers the brain."
        )
    reference = counts[0] if n_features is None else n_features
    for i, count in enumerate(counts):
        if count != reference:
            origin = "was fitted with" if n_features is not None else "X[0] has"
            raise ValueError(
                f"X[{i}] has {count} features per time point, but {estimator_name} {origin} "
                f"{reference}. All sequences must come from the same mask: use one fitted "
                "masker for every image (and the same one at fit and transform)."
            )
    lengths = [len(s) for s in sequences]
    if min(lengths) < min_length:
        i = lengths.index(min(lengths))
        raise ValueError(
            f"X[{i}] has {lengths[i]} time points, but {estimator_name} needs at least "
            f"{min_length} per sequence."
        )


_DEVICE_TYPES = ("cpu", "cuda", "mps")
_DEVICE_HELP = "use 'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'"


def resolve_device(device, *, estimator_name):
    """Return the ``torch.device`` for ``device``; one that cannot train is an error now.

    ``"auto"`` picks CUDA when available and the CPU otherwise.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"{estimator_name}: device={device!r} is not a device torch knows; {_DEVICE_HELP}."
        ) from exc
    if resolved.type not in _DEVICE_TYPES:
        raise ValueError(
            f"{estimator_name}: device={device!r} cannot train a model (allowed device types: "
            f"{', '.join(_DEVICE_TYPES)}); {_DEVICE_HELP}."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"{estimator_name}: device={device!r} was requested but torch's MPS backend "
            "(Apple GPUs) is not available here. Use device='auto' or 'cpu'."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{estimator_name}: device={device!r} was requested but torch sees no CUDA GPU "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}). Use device='auto' "
            "or 'cpu', or install a CUDA build of torch on a machine with a GPU."
        )
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"{estimator_name}: device={device!r} but only {torch.cuda.device_count()} "
            "GPU(s) are visible. Use 'cuda' or an index below that count."
        )
    return resolved


def memory_limit():
    """Bytes this process may use: physical memory or a lower cgroup limit (else 64 GiB).

    A static limit, not the memory free now, so a request is judged the same way each time.
    """
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        limit = 64 * 2**30
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as file:
                limit = min(limit, int(file.read().strip()))
        except (OSError, ValueError):  # absent, or "max"
            continue
    return limit


def check_fits_in_memory(n_bytes, *, owner, what, fix):
    """Raise InsufficientMemoryError, before allocating, for ``n_bytes`` beyond the limit.

    The message reads "``owner``: ``what`` needs about ... ``fix``".
    """
    limit = memory_limit()
    if n_bytes > limit:
        raise InsufficientMemoryError(
            f"{owner}: {what} needs about {n_bytes:.3g} bytes ({n_bytes / 2**30:,.1f} GiB), "
            f"more than this machine's {limit / 2**30:,.1f} GiB of memory. {fix}"
        )


def check_fitted(estimator, attributes):
    """``check_is_fitted``, raising this package's :class:`~sklearn_tcssl.NotFittedError`."""
    try:
        check_is_fitted(estimator, attributes)
    except _SklearnNotFittedError as exc:
        raise NotFittedError(str(exc)) from None


def is_2d_table(X):
    """Whether X is a 2D table (array, DataFrame or list of rows) rather than sequences."""
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and all(_is_row(item) for item in X)
    return getattr(X, "ndim", None) == 2


def _is_row(item):
    if isinstance(item, numbers.Number):
        return True
    if isinstance(item, (str, bytes)) or not hasattr(item, "__len__"):
        return False
    try:
        return np.ndim(item) == 1
    except ValueError:  # ragged nested lists: not a row; check_sequences explains
        return False


def check_estimator_input(estimator, X, *, reset):
    """Validate X as sequences and set (``reset=True``, in ``fit``) or check its sizes.

    A 2D table goes through scikit-learn's ``validate_data`` (rows are univariate series;
    it sets ``n_features_in_`` and ``feature_names_in_``); sequences set ``n_features_in_``
    to their features per time point. With ``reset=False`` the form and the feature count
    must match ``fit``.
    """
    name = type(estimator).__name__
    univariate = is_2d_table(X)
    if not reset and univariate != estimator._univariate_ and getattr(X, "ndim", 2) >= 2:
        form = "a 2D array of univariate series" if estimator._univariate_ else "sequences"
        raise ValueError(f"{name} was fitted on {form} and must be given the same form of X.")
    if univariate:  # scikit-learn's 2D convention: each row is a univariate series
        X = validate_data(estimator, X, reset=reset, dtype=[np.float32, np.float64])
    elif reset and hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    n_features = None if reset else estimator.n_features_per_timepoint_
    sequences = check_sequences(X, estimator_name=name, n_features=n_features)
    if reset:
        estimator._univariate_ = univariate
        estimator.n_features_per_timepoint_ = sequences[0].shape[1]
        if not univariate:
            estimator.n_features_in_ = estimator.n_features_per_timepoint_
    return sequences
