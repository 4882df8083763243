"""One fit at a time per checkpoint directory: a lock file that names its owner.

Two fits writing checkpoints into one folder would overwrite and prune each other's
checkpoints. While a fit trains, it holds ``<checkpoint_dir>/.lock``, a file holding its
process id. On POSIX systems the lock is an ``fcntl.flock`` on that file: the system releases
it when the process ends, however it ends (even SIGKILL), so a lock left by a dead process
never blocks anyone. Elsewhere the file is created with ``O_EXCL`` and a lock whose process no
longer runs is taken over. A second fit started on the same folder is refused at once with
:class:`CheckpointInUseError`, before it trains: neither run loses any training.
"""

import contextlib
import os
from pathlib import Path

from sklearn_tcssl._utils.exceptions import CheckpointInUseError
from sklearn_tcssl._utils.processes import is_other_live_process

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".lock"


@contextlib.contextmanager
def checkpoint_dir_lock(dirname, *, owner):
    """Hold the lock of ``dirname`` for the duration of the ``with`` block.

    Parameters
    ----------
    dirname : str or pathlib.Path
        An existing checkpoint directory.
    owner : str
        Name used in error messages.

    Yields
    ------
    path : pathlib.Path
        The lock file.

    Raises
    ------
    CheckpointInUseError
        If another running process holds the lock.
    """
    path = Path(dirname) / LOCK_NAME
    fd = _acquire(path, dirname, owner)
    try:
        yield path
    finally:
        _release(path, fd)


def _refuse(dirname, owner, pid):
    who = f"process {pid}" if pid else "another process"
    return CheckpointInUseError(
        f"{owner}: checkpoint_dir={str(dirname)!r} is in use by another fit ({who}), which "
        "writes its checkpoints there; two fits sharing one folder would overwrite each "
        "other's checkpoints. Give each fit its own checkpoint_dir, or wait until that fit "
        "ends and rerun this one to resume from its checkpoints."
    )


def _read_pid(path):
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _acquire(path, dirname, owner):
    if fcntl is None:
        return _acquire_exclusive(path, dirname, owner)
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


def _release(path, fd):
    try:
        path.unlink(missing_ok=True)  # while still locked: nobody holds a lock on a stale name
    finally:
        os.close(fd)
