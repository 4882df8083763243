"""Crash-safe training checkpoints: atomic writes every N epochs, and resuming from them.

A checkpoint is a folder ``epoch-000012/`` inside the checkpoint directory holding

* ``params.pt``, ``optimizer.pt``, ``history.json``: skorch's ``save_params`` files (module
  weights, AdamW state, per-epoch history);
* ``rng.pt``: torch's CPU random state at the end of the epoch, which draws the window
  offsets and the batch order of every later epoch;
* ``meta.json``: the epoch, the package version and a fingerprint of the run (parameters
  and a digest of the training data).

It is written under a temporary name (``.epoch-000012.tmp-<pid>``), each file flushed to disk,
then renamed in one ``os.rename``: a folder named ``epoch-*`` is always complete, whatever
moment the process is killed. Older checkpoints are pruned after the new one is in place.

Resuming restores all five files, so that, on the CPU, the resumed run continues with the
same weights, optimizer moments, windows and batch order as an uninterrupted run and ends
in the same state. On CUDA, kernels are not bitwise deterministic by default, so a resumed
run is close to, not identical with, an uninterrupted one. Callbacks' own state (e.g. an
``EarlyStopping`` patience counter) is not saved and starts afresh.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import joblib
import numpy as np
import torch
from skorch.callbacks import Callback

from sklearn_tcssl._exceptions import IncompatibleModelError

FORMAT_VERSION = 1
_PREFIX = "epoch-"
_FILES = {
    "f_params": "params.pt",
    "f_optimizer": "optimizer.pt",
    "f_history": "history.json",
}
_RNG = "rng.pt"
_META = "meta.json"


class TrainingCheckpoint(Callback):
    """skorch callback that saves a complete, atomically written checkpoint every N epochs.

    Parameters
    ----------
    dirname : str or pathlib.Path
        Checkpoint directory; created if needed.
    every : int, default=1
        Save after every ``every``-th epoch, and after the last epoch of training.
    keep : int, default=2
        Number of most recent checkpoints kept; older ones are deleted.
    fingerprint : dict or None, default=None
        JSON-serialisable description of the run (e.g. the estimator's parameters). A
        checkpoint is only resumed by a run with the same fingerprint.
    """

    def __init__(self, dirname, every=1, keep=2, fingerprint=None):
        self.dirname = dirname
        self.every = every
        self.keep = keep
        self.fingerprint = fingerprint

    def initialize(self):
        """Reset the record of the last saved epoch."""
        self.last_saved_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        """Save a checkpoint if the epoch number is a multiple of ``every``."""
        if len(net.history) % self.every == 0:
            self.save(net)

    def on_train_end(self, net, **kwargs):
        """Save the last epoch if it was not saved yet."""
        if len(net.history) and self.last_saved_ != len(net.history):
            self.save(net)

    def save(self, net):
        """Write the checkpoint of the current epoch atomically, then prune old ones.

        Parameters
        ----------
        net : skorch.NeuralNet
            The initialised network being trained.

        Returns
        -------
        path : pathlib.Path
            The folder of the new checkpoint.
        """
        root = Path(self.dirname)
        root.mkdir(parents=True, exist_ok=True)
        epoch = len(net.history)
        final = root / f"{_PREFIX}{epoch:06d}"
        tmp = root / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        net.save_params(**{key: tmp / name for key, name in _FILES.items()})
        torch.save(torch.get_rng_state(), tmp / _RNG)
        meta = {"format": FORMAT_VERSION, "epoch": epoch, "fingerprint": self.fingerprint}
        (tmp / _META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        for name in [*_FILES.values(), _RNG, _META]:
            _fsync(tmp / name)
        if final.exists():  # same epoch saved twice (e.g. on_train_end): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync(root)
        self.last_saved_ = epoch
        for old in list_checkpoints(root)[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final


def _fsync(path):
    """Flush a file (or a directory entry) to disk; best effort where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def list_checkpoints(dirname):
    """Return the complete checkpoint folders in ``dirname``, oldest first.

    Parameters
    ----------
    dirname : str or pathlib.Path
        Checkpoint directory; it may not exist.

    Returns
    -------
    paths : list of pathlib.Path
        Folders named ``epoch-NNNNNN`` (temporary, half-written folders are ignored).
    """
    root = Path(dirname)
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX) :].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def data_digest(sequences):
    """SHA-256 of a list of tensors (shapes and bytes): identifies the training data.

    Parameters
    ----------
    sequences : list of torch.Tensor or other sequence objects
        The training sequences. Objects that are not tensors or arrays (e.g. lazily read
        runs) are hashed with :func:`joblib.hash` (their pickled state).

    Returns
    -------
    digest : str
        Hexadecimal digest.
    """
    digest = hashlib.sha256()
    for sequence in sequences:
        if isinstance(sequence, torch.Tensor):
            sequence = sequence.detach().cpu().contiguous().numpy()
        if isinstance(sequence, np.ndarray):
            digest.update(repr((sequence.shape, str(sequence.dtype))).encode())
            digest.update(np.ascontiguousarray(sequence).tobytes())
        else:
            digest.update(joblib.hash(sequence).encode())
    return digest.hexdigest()


def run_fingerprint(params, seed):
    """JSON description of a training run, from the estimator's parameters and seed.

    Numbers, strings, booleans and None are recorded as values (numpy scalars as the Python
    number they hold, so ``temperature=np.float32(0.1)`` and ``np.float32(5.0)`` differ);
    other objects by their type.

    Parameters
    ----------
    params : dict
        Parameters of the estimator (``get_params()``), minus those that do not change
        the result.
    seed : int
        The seed drawn from ``random_state``.

    Returns
    -------
    fingerprint : dict
    """
    fingerprint = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = repr(type(value))
        fingerprint[key] = value
    fingerprint["seed"] = int(seed)
    return fingerprint


def _find_callback(net):
    for item in net.callbacks or []:
        callback = item[1] if isinstance(item, tuple) else item
        if isinstance(callback, TrainingCheckpoint):
            return callback
    return None


def fit_or_resume(net, dataset, *, owner="TemporalContrastiveEmbedder"):
    """Train ``net`` on ``dataset``, resuming from its checkpoint directory if possible.

    Without a :class:`TrainingCheckpoint` among ``net.callbacks`` this is ``net.fit``.
    Otherwise the run's fingerprint is completed with a digest of ``dataset.sequences``;
    if the directory holds a checkpoint of the same run, weights, optimizer, history and
    torch's random state are restored and only the remaining
    ``net.max_epochs - len(history)`` epochs are trained.

    Parameters
    ----------
    net : skorch.NeuralNet
        An uninitialised network.
    dataset : torch.utils.data.Dataset
        Training data; a ``sequences`` attribute (list of tensors) identifies it.
    owner : str, default="TemporalContrastiveEmbedder"
        Name used in error messages.

    Returns
    -------
    net : skorch.NeuralNet
        The trained network.
    """
    callback = _find_callback(net)
    if callback is None:
        return net.fit(dataset, None)
    fingerprint = dict(callback.fingerprint or {})
    fingerprint["data"] = data_digest(getattr(dataset, "sequences", []))
    callback.fingerprint = fingerprint
    net.initialize()
    done = 0
    existing = list_checkpoints(callback.dirname)
    if existing:
        done = _restore(net, existing[-1], fingerprint, callback.dirname, owner)
    if done > net.max_epochs:
        raise ValueError(
            f"{owner}: checkpoint_dir={str(callback.dirname)!r} holds a checkpoint after epoch "
            f"{done}, beyond max_epochs={net.max_epochs}. Raise max_epochs to at least {done}, "
            "or pass a new checkpoint_dir to train afresh."
        )
    callback.last_saved_ = done or None
    return net.partial_fit(dataset, None, epochs=net.max_epochs - done)


def _restore(net, path, fingerprint, dirname, owner):
    """Load the checkpoint in ``path`` into the initialised ``net``; return its epoch."""
    try:
        meta = json.loads((path / _META).read_text())
    except (OSError, ValueError) as exc:
        raise IncompatibleModelError(
            f"{owner}: the checkpoint {str(path)!r} cannot be read ({exc}). Delete it to "
            "resume from the previous one, or pass a new checkpoint_dir."
        ) from exc
    if meta.get("format") != FORMAT_VERSION:
        raise IncompatibleModelError(
            f"{owner}: the checkpoint {str(path)!r} has format {meta.get('format')!r}; this "
            f"version reads format {FORMAT_VERSION}. Pass a new checkpoint_dir to train afresh."
        )
    saved = meta.get("fingerprint") or {}
    if saved != fingerprint:
        keys = sorted(
            k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k)
        )
        changes = ", ".join(
            "the training data"
            if k == "data"
            else f"{k} {saved.get(k)!r} -> {fingerprint.get(k)!r}"
            for k in keys
        )
        raise IncompatibleModelError(
            f"{owner}: checkpoint_dir={str(dirname)!r} holds checkpoints of another training "
            f"run (differs in: {changes}). Resuming needs the same parameters and data; pass "
            "a new or empty checkpoint_dir, or delete the old checkpoints to start afresh."
            + (
                " An integer random_state is needed too: random_state=None draws a new seed "
                "at every fit."
                if "seed" in keys
                else ""
            )
        )
    net.load_params(**{key: path / name for key, name in _FILES.items()})
    torch.set_rng_state(torch.load(path / _RNG, weights_only=True))
    return int(meta["epoch"])
