"""Crash-safe training checkpoints: atomic writes every N epochs, resuming, one fit per folder.

A checkpoint is a folder ``epoch-000012/`` in the checkpoint directory: skorch's
``save_params`` files (``params.safetensors``; ``optimizer.pt``, read with
``torch.load(weights_only=True)`` as safetensors cannot hold the AdamW state;
``history.json``), ``rng.pt`` (torch's CPU random state, which draws the windows and batch
order of later epochs) and ``meta.json`` (the epoch and a fingerprint of the run: parameters
and a digest of the data). It is written as ``.epoch-000012.tmp-<pid>``, flushed, then renamed:
a folder named ``epoch-*`` is always complete. Older ones are pruned after the new one is in
place; temporary folders of dead writers are deleted before training.

Resuming checks every file of the newest checkpoint before loading any; a damaged one is
renamed ``epoch-NNNNNN.damaged`` with a warning and the previous one is used. On the CPU a
resumed run ends in the state of an uninterrupted one (on CUDA, close to it); callbacks' own
state (e.g. ``EarlyStopping``'s patience) starts afresh.

A fit holds ``<checkpoint_dir>/.lock`` (its process id) while it trains: a second fit on the
folder is refused with :class:`~sklearn_tcssl.CheckpointInUseError` before it trains. On POSIX
the lock is an ``fcntl.flock``, released by the system however the process ends; elsewhere the
file is created with ``O_EXCL`` and a lock whose process is dead is taken over.
"""

import contextlib
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch
from skorch.callbacks import Callback

from sklearn_tcssl._utils.exceptions import CheckpointInUseError, IncompatibleModelError
from sklearn_tcssl._utils.processes import is_other_live_process

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

FORMAT_VERSION = 2  # 1: weights in params.pt (still resumed)
LOCK_NAME = ".lock"
_PREFIX = "epoch-"
_PARAMS = {1: "params.pt", 2: "params.safetensors"}  # by format
_FILES = {
    "f_optimizer": "optimizer.pt",
    "f_history": "history.json",
}
_RNG = "rng.pt"
_META = "meta.json"


class TrainingCheckpoint(Callback):
    """skorch callback that saves a complete, atomically written checkpoint every N epochs.

    It saves in the folder ``dirname`` (created if needed) after every ``every``-th epoch and
    the last one, and keeps the ``keep`` most recent checkpoints. ``fingerprint`` (JSON)
    describes the run: only a run with the same fingerprint resumes.
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
        """Save the last epoch if it was not saved yet (never a half epoch after Ctrl-C)."""
        if getattr(net, "interrupted_", None) is not None:
            return
        if len(net.history) and self.last_saved_ != len(net.history):
            self.save(net)

    def save(self, net):
        """Write the checkpoint of ``net``'s current epoch, then prune old ones; return it."""
        root = Path(self.dirname)
        root.mkdir(parents=True, exist_ok=True)
        epoch = len(net.history)
        final = root / f"{_PREFIX}{epoch:06d}"
        tmp = root / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        net.save_params(f_params=tmp / _PARAMS[FORMAT_VERSION], use_safetensors=True)
        net.save_params(**{key: tmp / name for key, name in _FILES.items()})
        torch.save(torch.get_rng_state(), tmp / _RNG)
        meta = {"format": FORMAT_VERSION, "epoch": epoch, "fingerprint": self.fingerprint}
        (tmp / _META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        for file in tmp.iterdir():
            _fsync(file)
        if final.exists():  # same epoch saved twice (e.g. on_train_end): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync(root)
        self.last_saved_ = epoch
        for old in list_checkpoints(root)[: -self.keep]:
            # renamed first: an interrupt during the deletion never leaves a partial epoch-*
            doomed = root / f".{old.name}.tmp-{os.getpid()}"
            os.rename(old, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        return final


def _fsync(path):
    """Flush a file (or a directory entry) to disk; best effort where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def list_checkpoints(dirname):
    """Return the complete ``epoch-NNNNNN`` folders in ``dirname`` (if any), oldest first."""
    found = [
        p
        for p in Path(dirname).glob(f"{_PREFIX}*")
        if p.is_dir() and p.name[len(_PREFIX) :].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def data_digest(sequences):
    """SHA-256 (hex) of the shapes and bytes of a list of tensors or arrays: the training data.

    An object with an ``array`` attribute (rows read from a memory-mapped file) is hashed as
    that array; other objects (e.g. lazily read runs) with :func:`joblib.hash`.
    """
    digest = hashlib.sha256()
    for sequence in sequences:
        sequence = getattr(sequence, "array", sequence)
        if isinstance(sequence, torch.Tensor):
            sequence = sequence.detach().cpu().contiguous().numpy()
        if isinstance(sequence, np.ndarray):
            digest.update(repr((sequence.shape, str(sequence.dtype))).encode())
            digest.update(np.ascontiguousarray(sequence))  # its buffer: no copy of a memmap
        else:
            digest.update(joblib.hash(sequence).encode())
    return digest.hexdigest()


def run_fingerprint(params, seed):
    """JSON description of a run from its parameters and the seed drawn from ``random_state``.

    JSON scalars are kept by value (numpy scalars as Python numbers), other objects by type.
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


def fit_or_resume(net, dataset, *, owner="TemporalContrastiveEmbedder", y=None):
    """Train ``net`` on ``dataset``, resuming from its checkpoint directory if possible.

    Without a :class:`TrainingCheckpoint` among the callbacks of the uninitialised ``net`` this
    is ``net.fit(dataset, y)``. Otherwise the directory (checked by the estimator with
    :func:`check_checkpoint_dir`) is locked, the fingerprint is completed with a digest of
    ``dataset.sequences``, the newest intact checkpoint of the same run is restored and only
    the remaining epochs are trained. ``owner`` names the estimator in error messages.
    Returns the trained ``net``.
    """
    callback = _find_callback(net)
    if callback is None:
        return net.fit(dataset, y)
    with checkpoint_dir_lock(callback.dirname, owner=owner):
        remove_stale_temporaries(callback.dirname)
        fingerprint = dict(callback.fingerprint or {})
        fingerprint["data"] = data_digest(getattr(dataset, "sequences", []))
        callback.fingerprint = fingerprint
        net.initialize()
        done = _resume_latest_intact(net, callback.dirname, fingerprint, owner)
        if done > net.max_epochs:
            raise ValueError(
                f"{owner}: checkpoint_dir={str(callback.dirname)!r} holds a checkpoint after "
                f"epoch {done}, beyond max_epochs={net.max_epochs}. Raise max_epochs to at least "
                f"{done}, or pass a new checkpoint_dir to train afresh."
            )
        callback.last_saved_ = done or None
        return net.partial_fit(dataset, y, epochs=net.max_epochs - done)


def check_checkpoint_dir(dirname, *, owner):
    """Create ``dirname`` if needed; refuse a file, an unwritable or a locked folder.

    Raises ``ValueError`` (file, cannot be created or written) or ``CheckpointInUseError``.
    """
    root = Path(dirname)
    fix = "Pass checkpoint_dir= a folder you can write to (it is created if missing)."
    if root.exists() and not root.is_dir():
        raise ValueError(f"{owner}: checkpoint_dir={str(root)!r} is a file, not a folder. {fix}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(
            f"{owner}: checkpoint_dir={str(root)!r} cannot be written "
            f"({type(exc).__name__}: {exc.strerror or exc}). {fix}"
        ) from exc
    with checkpoint_dir_lock(root, owner=owner):  # refused now if another fit holds it
        pass


def remove_stale_temporaries(dirname):
    """Delete the ``.epoch-*.tmp-PID`` folders of writers that no longer run."""
    for path in Path(dirname).glob(f".{_PREFIX}*.tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and pid.isdigit() and not is_other_live_process(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _resume_latest_intact(net, dirname, fingerprint, owner):
    """Restore the newest intact checkpoint (damaged ones renamed); return its epoch or 0."""
    for path in reversed(list_checkpoints(dirname)):
        try:
            epoch, rng, params = _verify(path, fingerprint, dirname, owner)
        except DamagedCheckpointError as exc:
            damaged = path.with_name(path.name + ".damaged")
            shutil.rmtree(damaged, ignore_errors=True)
            os.rename(path, damaged)
            warnings.warn(
                f"{owner}: {exc} The checkpoint was renamed {damaged.name!r}; resuming from "
                "the previous intact checkpoint, if any (else training starts afresh).",
                UserWarning,
                stacklevel=4,
            )
            continue
        try:
            safetensors = params.endswith(".safetensors")
            net.load_params(f_params=path / params, use_safetensors=safetensors)
            net.load_params(**{key: path / name for key, name in _FILES.items()})
        except (RuntimeError, ValueError, KeyError) as exc:  # tensors of another architecture
            raise IncompatibleModelError(
                f"{owner}: the checkpoint {str(path)!r} does not fit this model ({exc}). Delete "
                "it, or pass a new checkpoint_dir to train afresh."
            ) from exc
        torch.set_rng_state(rng)
        return epoch
    return 0


class DamagedCheckpointError(IncompatibleModelError):
    """A checkpoint file is missing, truncated or not what it should be."""


def _read_checked(path, name, reader):
    """Read ``path / name`` with ``reader``; any failure is a DamagedCheckpointError."""
    try:
        return reader(path / name)
    except Exception as exc:  # torch, json and OS errors of a damaged file
        raise DamagedCheckpointError(
            f"The checkpoint file {str(path / name)!r} is damaged or missing "
            f"({type(exc).__name__}: {exc})."
        ) from exc


def _read_meta(file):
    meta = json.loads(file.read_text())
    if not isinstance(meta, dict) or not isinstance(meta.get("epoch"), int):
        raise ValueError("not a checkpoint description (no integer 'epoch')")
    return meta


def _read_history(file):
    history = json.loads(file.read_text())
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise ValueError("not a skorch history (a list of epochs)")
    return history


def _read_tensor_file(file):
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(file, device="cpu")
    return torch.load(file, weights_only=True, map_location="cpu")


def _read_rng(file):
    state = _read_tensor_file(file)
    if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8:
        raise ValueError("not a torch random state")
    torch.Generator().set_state(state)  # raises on a wrong size
    return state


def _verify(path, fingerprint, dirname, owner):
    """Read and check every file of a checkpoint; return its epoch, RNG state and params name.

    A damaged file raises DamagedCheckpointError; another format or run, IncompatibleModelError.
    """
    meta = _read_checked(path, _META, _read_meta)
    if meta.get("format") not in _PARAMS:
        raise IncompatibleModelError(
            f"{owner}: the checkpoint {str(path)!r} has format {meta.get('format')!r}; this "
            f"version reads formats {sorted(_PARAMS)}. Pass a new checkpoint_dir to train afresh."
        )
    _check_fingerprint(meta.get("fingerprint") or {}, fingerprint, dirname, owner)
    history = _read_checked(path, _FILES["f_history"], _read_history)
    if len(history) != meta["epoch"]:
        raise DamagedCheckpointError(
            f"The checkpoint file {str(path / _FILES['f_history'])!r} holds {len(history)} "
            f"epochs, but {_META} says {meta['epoch']}."
        )
    params = _PARAMS[meta["format"]]
    _read_checked(path, params, _read_tensor_file)
    _read_checked(path, _FILES["f_optimizer"], _read_tensor_file)
    return int(meta["epoch"]), _read_checked(path, _RNG, _read_rng), params


def _check_fingerprint(saved, fingerprint, dirname, owner):
    if saved == fingerprint:
        return
    keys = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
    changes = ", ".join(
        "the training data" if k == "data" else f"{k} {saved.get(k)!r} -> {fingerprint.get(k)!r}"
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


# ------------------------------------------------------------------------------ the lock
@contextlib.contextmanager
def checkpoint_dir_lock(dirname, *, owner):
    """Hold the lock of the existing folder ``dirname`` in the ``with`` block; yield its path.

    Raises ``CheckpointInUseError`` if another running process holds it.
    """
    path = Path(dirname) / LOCK_NAME
    fd = _acquire(path, dirname, owner) if fcntl else _acquire_exclusive(path, dirname, owner)
    try:
        yield path
    finally:
        try:
            path.unlink(missing_ok=True)  # while still locked: no lock is held on a stale name
        finally:
            os.close(fd)


def _refuse(dirname, owner, pid):
    who = f"process {pid}" if pid else "another process"
    return CheckpointInUseError(
        f"{owner}: checkpoint_dir={str(dirname)!r} is in use by another fit ({who}), which "
        "writes its checkpoints there; two fits sharing one folder would overwrite each "
        "other's checkpoints. Give each fit its own checkpoint_dir, or wait until that fit "
        "ends and rerun this one to resume from its checkpoints."
    )


def _read_pid(path):
    with contextlib.suppress(OSError):
        text = path.read_text().strip()
        return int(text) if text.isdigit() else None
    return None


def _acquire(path, dirname, owner):
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _refuse(dirname, owner, _read_pid(path)) from None
        try:  # the holder before us may have deleted the file we opened: lock the new one
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _acquire_exclusive(path, dirname, owner):
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pid = _read_pid(path)
            if pid is None or pid == os.getpid() or is_other_live_process(pid):
                raise _refuse(dirname, owner, pid) from None
            path.unlink(missing_ok=True)  # stale: its process no longer runs
            continue
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd
    raise _refuse(dirname, owner, _read_pid(path))
