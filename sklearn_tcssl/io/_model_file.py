"""Model files: save and load fitted estimators without executing any code.

A model file is **one** ``.safetensors`` file: its tensors are the weights and statistics, and
its header metadata holds, under ``"tcssl_card"``, a JSON *card* describing the model. Nothing
in it is unpickled or executed (``torch.load`` is never called); any safetensors tool reads it,
e.g. ``safetensors.safe_open(path, "np").metadata()["tcssl_card"]``.

The card records the format, the estimator's class and parameters (no callbacks, nor this
machine's paths), the package versions, the input (form, features, the mask identity of
:func:`describe_mask`, ``t_r``, ``input_info``) and, for an embedder or a classifier, the
encoder's architecture and a training summary; :mod:`sklearn_tcssl.io._card` lists every field
read back. The tensors are the encoder's state dict (``encoder.<name>``), a classifier's
``head.*`` and ``standardization.mean`` / ``.scale``; an aligner's are ``shared_response`` and,
per subject, ``maps.<i>``, ``mean.<i>``, ``scale.<i>`` (and the contrastive one's encoder).

Files are written atomically: to ``.<name>.tmp-<pid>-<random>`` beside the destination,
flushed, then renamed; a SIGTERM during the write removes the temporary file and exits with
status 143, and the next save of the same file removes those of dead writers. Reading never
trusts the file: the card and the tensor shapes are checked (:mod:`sklearn_tcssl.io._card`)
before anything is built.
"""

import datetime
import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from sklearn_tcssl._utils.exceptions import IncompatibleModelError
from sklearn_tcssl._utils.processes import is_other_live_process, stop_on_sigterm
from sklearn_tcssl.io._card import ALIGNERS, check_card, model_params
from sklearn_tcssl.io._registry import (
    ESTIMATOR_MODULES,
    encoder_config,
    encoder_of,
    estimator_class,
    is_tcssl_estimator,
    uncompiled,
)

__all__ = ["FORMAT_VERSION", "check_input", "describe_mask", "load", "read_card", "save"]

FORMAT = "sklearn-tcssl-model"
FORMAT_VERSION = 1
CARD_KEY = "tcssl_card"
_MAX_HEADER = 100 * 2**20  # a card and tensor index far beyond any real model


# ----------------------------------------------------------------- mask identity
def describe_mask(mask):
    """Describe a mask (or a fitted masker's mask) so that it can be recognised later.

    Parameters
    ----------
    mask : Niimg-like, str, pathlib.Path or fitted nilearn-style masker
        A 3D mask image (or its path), or a fitted masker with ``mask_img_`` (nilearn
        maskers, :class:`~sklearn_tcssl.NetworkMasker`) or ``labels_img_`` (atlas maskers).

    Returns
    -------
    info : dict
        ``mask_sha256`` (of the boolean mask, or of the label values for an atlas),
        ``mask_shape``, ``affine`` (4 x 4 list), ``voxel_size`` and ``n_voxels``
        (in-mask voxels, or labels for an atlas).
    """
    from nilearn.image import load_img  # nilearn is heavy: import on use

    kind = "mask"
    img = getattr(mask, "mask_img_", None)
    if img is None and getattr(mask, "labels_img_", None) is not None:
        img, kind = mask.labels_img_, "atlas"
    if img is None and hasattr(mask, "fit") and not hasattr(mask, "dataobj"):
        raise ValueError(
            f"mask={mask!r} is a masker that is not fitted (no mask_img_). Fit it first, or "
            "pass its mask image."
        )
    img = load_img(mask if img is None else img)
    data = np.asarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if kind == "atlas":
        values = np.ascontiguousarray(data, dtype=np.int32)
        n_voxels = int(np.unique(values[values != 0]).size)
    else:
        values = np.ascontiguousarray(data != 0, dtype=np.uint8)
        n_voxels = int(values.sum())
    digest = hashlib.sha256(repr(values.shape).encode() + values.tobytes()).hexdigest()
    affine = np.asarray(img.affine, dtype=float)
    return {
        "kind": kind,
        "mask_sha256": digest,
        "mask_shape": list(values.shape),
        "affine": np.round(affine, 6).tolist(),
        "voxel_size": np.round(np.linalg.norm(affine[:3, :3], axis=0), 6).tolist(),
        "n_voxels": n_voxels,
    }


def check_input(estimator, X=None, *, mask=None):
    """Check that data (or the mask that made it) matches what a model expects.

    Parameters
    ----------
    estimator : fitted TemporalContrastiveEmbedder or TemporalContrastiveClassifier
        Typically the result of :func:`load` (its card is in ``model_card_``).
    X : list of arrays or ndarray or None, default=None
        Sequences to check: their features per time point must equal the model's. 4D
        images given to a whole-brain model are resampled onto its grid, so any grid fits.
    mask : Niimg-like, path, fitted masker or None, default=None
        The mask (or fitted masker) that produced X; compared with the recorded mask.

    Raises
    ------
    IncompatibleModelError
        If the number of features or the mask differs from the recorded one.
    """
    name = type(estimator).__name__
    card = getattr(estimator, "model_card_", None) or {}
    recorded = card.get("input", {})
    expected = estimator.n_features_per_timepoint_
    if X is not None and getattr(estimator, "_input_kind_", "sequences") == "sequences":
        first = X[0] if isinstance(X, (list, tuple)) else np.asarray(X)[0]
        n_features = np.shape(first)[-1] if np.ndim(first) == 2 else 1
        if n_features != expected:
            raise IncompatibleModelError(
                f"{name} expects {expected} features per time point ({_mask_text(recorded)}), "
                f"but X has {n_features}. Mask the images with the model's mask (see "
                "model_card_['input']) or pretrain a model on your own mask."
            )
    if mask is not None:
        given = describe_mask(mask)
        if given["n_voxels"] != expected and given["kind"] == "mask":
            raise IncompatibleModelError(
                f"mask has {given['n_voxels']} voxels but {name} expects {expected} features "
                f"({_mask_text(recorded)}). Use the mask the model was trained with."
            )
        if "mask_sha256" in recorded and not _same_mask(recorded, given):
            raise IncompatibleModelError(
                f"The mask given (shape {given['mask_shape']}, voxel size "
                f"{given['voxel_size']}, {given['n_voxels']} voxels, sha256 "
                f"{given['mask_sha256'][:12]}...) differs from the one recorded in the model "
                f"({_mask_text(recorded)}). Resample your data to the model's mask, or "
                "pretrain on your own mask."
            )


def _same_mask(recorded, given):
    return (
        recorded["mask_sha256"] == given["mask_sha256"]
        and list(recorded["mask_shape"]) == list(given["mask_shape"])
        and np.allclose(recorded["affine"], given["affine"], atol=1e-4)
    )


def _mask_text(recorded):
    if "mask_sha256" not in recorded:
        return "no mask recorded"
    return (
        f"recorded mask: shape {recorded['mask_shape']}, voxel size {recorded['voxel_size']}, "
        f"{recorded['n_voxels']} voxels, sha256 {recorded['mask_sha256'][:12]}..."
    )


# ------------------------------------------------------------------------ save
class SaveMixin:
    """Adds ``save(path, **kwargs)`` to an estimator; see :func:`save`."""

    def save(self, path, **kwargs):
        """Save the fitted estimator to a model file; see :func:`sklearn_tcssl.io.save`.

        Parameters
        ----------
        path : str or pathlib.Path
            Destination file.
        **kwargs
            ``mask``, ``t_r``, ``input_info`` of :func:`sklearn_tcssl.io.save`.

        Returns
        -------
        path : pathlib.Path
            The written file.
        """
        return save(self, path, **kwargs)


def save(estimator, path, *, mask=None, t_r=None, input_info=None):
    """Save a fitted estimator to one safetensors file with a JSON card.

    Parameters
    ----------
    estimator : fitted estimator of this package
        The model to save: an embedder, a classifier or an aligner.
    path : str or pathlib.Path
        Destination file (``.safetensors`` is the conventional suffix); replaced atomically.
    mask : Niimg-like, path, fitted masker or None, default=None
        Mask (or fitted masker) that produced the training data; its identity is recorded
        so that users of the file can check their data (see :func:`describe_mask`).
    t_r : float or None, default=None
        Repetition time of the training data, in seconds, if known.
    input_info : dict or None, default=None
        Any further JSON-serialisable description of the expected input (space,
        preprocessing, dataset name...).

    Returns
    -------
    path : pathlib.Path
        The written file.
    """
    from safetensors.torch import save as save_bytes

    from sklearn_tcssl._input.validation import check_fitted

    if not is_tcssl_estimator(estimator):
        raise TypeError(
            f"save() got a {type(estimator).__name__}; only sklearn-tcssl estimators can be "
            f"saved ({', '.join(ESTIMATOR_MODULES)})."
        )
    check_fitted(estimator, getattr(estimator, "_fitted_attribute", "net_"))
    if hasattr(estimator, "_model_file_parts"):  # aligners: per-subject maps and statistics
        card, tensors = _aligner_card_and_tensors(estimator, mask)
    else:
        card, tensors = _encoder_card_and_tensors(estimator, mask)
    if t_r is not None:
        card["input"]["t_r"] = float(t_r)
    if input_info is not None:
        card["input"]["input_info"] = _jsonable(input_info, "input_info")
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    payload = save_bytes(tensors, metadata={CARD_KEY: json.dumps(card)})
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path={str(path)!r} is a folder; give a file name.")
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.tmp-"
    for tmp in path.parent.glob(prefix + "*"):  # left by saves killed outright (SIGKILL)
        pid = tmp.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not is_other_live_process(int(pid)):
            tmp.unlink(missing_ok=True)
    with stop_on_sigterm(f"sklearn_tcssl.io.save({str(path)!r})"):  # removes the partial file
        _write_atomically(path, payload, f"{prefix}{os.getpid()}-")
    return path


def _write_atomically(path, payload, prefix):
    """Write ``payload`` to a temporary file ``prefix*`` beside ``path``, then rename it over."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would keep a shared model private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _aligner_card_and_tensors(estimator, mask):
    if mask is not None:
        raise ValueError(
            f"save(): mask= is not recorded for a {type(estimator).__name__}: each subject has "
            "its own features. Describe the masks in input_info instead (e.g. "
            "input_info={'mask': 'Yeo 7, Default network'})."
        )
    entries, tensors = estimator._model_file_parts()
    card = {**_card_header(estimator), **entries, "input": {"form": "time-locked runs"}}
    return _jsonable(card, "the aligner's subjects"), tensors


def _encoder_card_and_tensors(estimator, mask):
    info = {**estimator._card_input(), "n_features": int(estimator.n_features_per_timepoint_)}
    if mask is not None:
        info.update(describe_mask(mask))
    card = {
        **_card_header(estimator),
        "architecture": encoder_config(encoder_of(estimator)),
        "n_features_in": int(estimator.n_features_per_timepoint_),
        "univariate": bool(estimator._univariate_),
        "input": info,
        "training": _training_summary(estimator),
    }
    if hasattr(estimator, "feature_names_in_"):
        card["feature_names_in"] = [str(n) for n in estimator.feature_names_in_]
    if hasattr(estimator, "classes_"):
        classes = np.asarray(estimator.classes_)
        card["classes"] = _jsonable(classes.tolist(), "classes_")
        card["classes_dtype"] = classes.dtype.str if classes.dtype != object else "object"
    module = uncompiled(estimator.net_.module_)
    prefix = "" if hasattr(module, "encoder") else "encoder."  # classifier: encoder + head
    tensors = {prefix + key: value for key, value in module.state_dict().items()}
    tensors["standardization.mean"] = torch.from_numpy(np.asarray(estimator.mean_))
    tensors["standardization.scale"] = torch.from_numpy(np.asarray(estimator.scale_))
    return card, tensors


def _card_header(estimator):
    import safetensors
    import sklearn
    import skorch

    from sklearn_tcssl._version import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": type(estimator).__name__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "sklearn_tcssl": __version__,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "skorch": skorch.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "params": _params_for_card(estimator),
    }


def _params_for_card(estimator):
    params = {}
    for key, value in estimator.get_params(deep=False).items():
        value = value.item() if isinstance(value, np.generic) else value  # numpy scalars
        if key in ("callbacks", "checkpoint_dir", "cache_dir", "accelerator"):
            value = None  # objects or paths of this machine
        elif key == "init_from" and value is not None:
            value = str(value) if isinstance(value, (str, os.PathLike)) else None
        elif key == "random_state" and not isinstance(value, (int, type(None))):
            value = None
        try:
            json.dumps(value)
        except TypeError:
            continue  # not representable: the loaded estimator keeps the default
        params[key] = value
    return params


def _training_summary(estimator):
    history = getattr(estimator, "history_", None) or []
    if not history and "training" in getattr(estimator, "model_card_", {}):
        return estimator.model_card_["training"]  # loaded, not refitted
    summary = {
        "n_sequences": int(estimator.n_sequences_),
        "n_timepoints": int(estimator.n_timepoints_),
        "epochs": len(history),
        "fit_time_s": round(float(getattr(estimator, "fit_time_", 0.0)), 3),
    }
    last = history[-1] if history else {}
    if "train_loss" in last:
        summary["final_train_loss"] = float(last["train_loss"])
    if "train_pretext_acc" in last:
        summary["final_pretext_accuracy"] = float(last["train_pretext_acc"])
    if getattr(estimator, "init_card_", None) is not None:
        summary["init_from"] = estimator.init_card_
    return summary


def _jsonable(value, name):
    try:
        return json.loads(json.dumps(value))
    except TypeError as exc:
        raise TypeError(
            f"{name} must be JSON-serialisable (dict of str, numbers...): {exc}"
        ) from exc


# ------------------------------------------------------------------------ read
def read_card(path):
    """Read the JSON card of a model file, without loading the weights.

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by :func:`save`.

    Returns
    -------
    card : dict
        The card (see the module docstring).

    Raises
    ------
    IncompatibleModelError
        If the file is not a safetensors model file of this package (e.g. a pickle or a
        ``torch.save`` file), or was written by a newer, incompatible format version.
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not found"
        raise FileNotFoundError(f"Model file {str(path)!r}: {what}; pass a .safetensors file.")
    header, metadata = _read_header(path)
    if CARD_KEY not in metadata:
        raise IncompatibleModelError(
            f"{str(path)!r} is a safetensors file but not an sklearn-tcssl model (no "
            f"{CARD_KEY!r} metadata). Save models with sklearn_tcssl.io.save."
        )
    try:
        card = json.loads(metadata[CARD_KEY])
    except json.JSONDecodeError as exc:
        raise IncompatibleModelError(f"{str(path)!r}: the model card is not valid JSON.") from exc
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise IncompatibleModelError(f"{str(path)!r}: the card's format is not {FORMAT!r}.")
    _check_format_version(card, path)
    check_card(card, header, where=repr(str(path)))
    return card


def _check_format_version(card, path):
    version = card.get("format_version")
    is_int = isinstance(version, int) and not isinstance(version, bool)
    if is_int and 1 <= version <= FORMAT_VERSION:
        return
    versions = card.get("versions")
    written = (versions if isinstance(versions, dict) else {}).get(
        "sklearn_tcssl", "an unknown version"
    )
    start = (
        f"{str(path)!r} has model format_version={version!r}, written by sklearn-tcssl "
        f"{written}; this sklearn-tcssl reads format versions 1 to {FORMAT_VERSION}."
    )
    if is_int and version > FORMAT_VERSION:
        fix = "It is newer. Upgrade sklearn-tcssl (pip install -U sklearn-tcssl) to load it."
    elif is_int:
        fix = (
            "It is older than any format this version reads: load it with the sklearn-tcssl "
            "that wrote it and save it again, or retrain the model."
        )
    else:
        fix = "The card is damaged or was not written by sklearn_tcssl.io.save."
    raise IncompatibleModelError(f"{start} {fix}")


def _read_header(path):
    """Return the tensor index ``{name: {dtype, shape}}`` and the metadata (str to str).

    The first 9 bytes are checked by hand (a length within the file and under ``_MAX_HEADER``,
    then ``{``) to name a pickle, a ``torch.save`` file or a truncated copy; then
    ``safetensors.safe_open`` checks that every tensor's bytes lie in the file.
    """
    from safetensors import safe_open

    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(9)
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if 2 <= n <= _MAX_HEADER and n > size - 8 and head[8:] == b"{":
        raise IncompatibleModelError(
            f"{str(path)!r} is truncated: its header announces {n} bytes but the file "
            f"has {size}. The copy or download was interrupted; copy the file again."
        )
    if not 2 <= n <= min(size - 8, _MAX_HEADER) or head[8:] != b"{":
        raise IncompatibleModelError(
            f"{str(path)!r} is not a safetensors model file (it may be a pickle or torch.save "
            "file). sklearn-tcssl never unpickles model files, as unpickling can run arbitrary "
            "code; ask for a file written by sklearn_tcssl.io.save."
        )
    try:
        with safe_open(str(path), "np") as handle:
            header = {
                name: {"dtype": part.get_dtype(), "shape": part.get_shape()}
                for name in handle.keys()
                for part in [handle.get_slice(name)]
            }
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors' own errors: bad JSON, bytes outside the file...
        raise IncompatibleModelError(
            f"{str(path)!r}: its tensor index does not describe the bytes of the file "
            f"(safetensors: {exc}). The file is damaged or was edited by hand; copy it again, "
            "or save the model again with sklearn_tcssl.io.save."
        ) from None
    return header, metadata


def read_model(path):
    """Return ``(card, tensors)`` of a model file (see :func:`read_card`); CPU torch tensors."""
    from safetensors.torch import load_file

    card = read_card(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise IncompatibleModelError(f"{str(path)!r}: unreadable tensors ({exc}).") from exc
    return card, tensors


def load(path, *, mask=None):
    """Load a model saved with :func:`save` (on the CPU; no code is executed).

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by :func:`save`.
    mask : Niimg-like, path, fitted masker or None, default=None
        If given, checked against the mask recorded in the file (see :func:`check_input`).

    Returns
    -------
    estimator : estimator of this package
        The fitted embedder, classifier or aligner, with the card in ``model_card_``. Its
        weights live on the CPU; it can be used as is or wrapped in
        :class:`sklearn.frozen.FrozenEstimator`, and an encoder can be passed as
        ``init_from`` to a new estimator.

    Raises
    ------
    IncompatibleModelError
        If the file is not a model file, has a newer format, or does not match ``mask``.
    """
    card, tensors = read_model(path)
    name = card["estimator"]  # a string: checked with the card
    cls = estimator_class(name)
    if cls is None:
        raise IncompatibleModelError(
            f"{str(path)!r} holds a {name!r}; this sklearn-tcssl loads "
            f"{sorted(ESTIMATOR_MODULES)}."
        )
    estimator = cls(**model_params(card, cls, where=repr(str(path))))
    estimator._restore_from_model(card, tensors)  # the estimator's own hook
    if mask is not None and name in ALIGNERS:
        raise ValueError(
            f"load(): mask= cannot be checked for a {name}: each subject has its own features."
        )
    if mask is not None:
        check_input(estimator, mask=mask)
    return estimator
