"""Atomic file writes: a temporary file beside the destination, flushed, then renamed.

The temporary file is named ``.<name>.tmp-<pid>-<random>``, so that a later save of the same
file can tell the leftovers of dead writers (killed by SIGKILL or a power cut) from those of a
save still running, and remove them.
"""

import os
import tempfile
from pathlib import Path

from sklearn_tcssl._utils.processes import is_other_live_process


def _temporary_prefix(path, pid):
    return f".{path.name}.tmp-{pid}-"


def write_atomically(path, payload):
    """Write the bytes ``payload`` beside ``path`` (its folder exists), then rename it over."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path, os.getpid()))
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


def remove_stale_temporaries(path):
    """Delete the temporary files of saves of ``path`` by dead processes; return them."""
    removed = []
    start = len(_temporary_prefix(path, "")) - 1  # the prefix ends in "<pid>-"
    for tmp in path.parent.glob(_temporary_prefix(path, "*") + "*"):
        pid = tmp.name[start:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not is_other_live_process(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
