"""Thread policy: how many CPU threads torch and BLAS may use during fit, transform, predict.

torch's default (one intra-op thread per physical core) oversubscribes shared machines: on
2 busy cores the same decoding took 498 s instead of 42 s, because OpenMP threads spin
against other processes. Here every public method of the estimators runs inside
:func:`thread_budget`, which

* counts the CPUs this process may really use: its affinity mask
  (``os.sched_getaffinity``), the cgroup CPU quota (``cpu.max``), and the limits the user
  set (``OMP_NUM_THREADS``, ``torch.set_num_threads``, ``threadpoolctl`` limits of torch's
  OpenMP or of the BLAS libraries);
* leaves out the CPUs that other processes keep busy right now (the number of runnable
  tasks in ``/proc/loadavg``, read a few times over a few milliseconds);
* uses one thread inside joblib/loky or multiprocessing workers, where the parent already
  runs one process per CPU;
* sets torch's intra-op threads and the BLAS threads of the scikit-learn parts
  (``threadpoolctl``) to that budget, and restores both afterwards, so the caller's process
  is left as found.

Override with :func:`set_config` / :func:`config_context` (``n_threads``, following
scikit-learn's ``n_jobs`` conventions) or the ``SKLEARN_TCSSL_N_THREADS`` environment
variable, which also reaches worker processes.
"""

import contextlib
import functools
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["available_cpus", "config_context", "get_config", "resolve_n_threads", "set_config"]

ENV_VAR = "SKLEARN_TCSSL_N_THREADS"
_DEFAULTS = {"n_threads": None}
_local = threading.local()


# ------------------------------------------------------------------ config
def _config():
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config():
    """Return the package configuration (a copy).

    Returns
    -------
    config : dict
        ``{"n_threads": ...}``; see :func:`set_config`.

    Examples
    --------
    >>> import sklearn_tcssl
    >>> sklearn_tcssl.get_config()["n_threads"] is None
    True
    """
    return dict(_config())


def set_config(n_threads=None):
    """Set how many CPU threads torch and BLAS use inside the estimators' methods.

    Parameters
    ----------
    n_threads : int or None, default=None
        ``None``: automatic (the CPUs this process may use and that no other process keeps
        busy; 1 inside joblib/multiprocessing workers; ``SKLEARN_TCSSL_N_THREADS`` when set).
        A positive int: exactly that many threads. ``-1``: every CPU this process may use
        (affinity and cgroup quota), busy or not; ``-2`` all but one, and so on, as
        scikit-learn's ``n_jobs``. ``0`` is not allowed. For bit-for-bit identical refits,
        fix a positive value: results can differ in the last digits across thread counts.

    Examples
    --------
    >>> import sklearn_tcssl
    >>> sklearn_tcssl.set_config(n_threads=1)
    >>> sklearn_tcssl.get_config()["n_threads"]
    1
    >>> sklearn_tcssl.set_config(n_threads=None)
    """
    _config()["n_threads"] = _check_n_threads(n_threads, "n_threads")


@contextlib.contextmanager
def config_context(*, n_threads=None):
    """Temporarily set the configuration (see :func:`set_config`).

    Parameters
    ----------
    n_threads : int or None, default=None
        Threads for the duration of the ``with`` block.

    Yields
    ------
    None

    Examples
    --------
    >>> import sklearn_tcssl
    >>> with sklearn_tcssl.config_context(n_threads=1):
    ...     sklearn_tcssl.get_config()["n_threads"]
    1
    """
    old = get_config()
    set_config(n_threads=n_threads)
    try:
        yield
    finally:
        set_config(**old)


def _check_n_threads(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise ValueError(
            f"{name}={value!r} is not allowed: pass None (automatic), a positive number of "
            "threads, or a negative int as scikit-learn's n_jobs (-1: every available CPU)."
        )
    return int(value)


# ------------------------------------------------------------------ CPUs
def _affinity_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def _cgroup_quota(root=Path("/sys/fs/cgroup")):
    """CPUs allowed by a cgroup v2 ``cpu.max`` (or v1 cfs) quota; None without a quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(1, int(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return max(1, quota // period)
    except (OSError, ValueError):
        pass
    return None


def available_cpus():
    """CPUs this process may use: affinity mask, capped by a cgroup CPU quota.

    Returns
    -------
    n_cpus : int
        At least 1.

    Examples
    --------
    >>> from sklearn_tcssl._utils.threads import available_cpus
    >>> available_cpus() >= 1
    True
    """
    quota = _cgroup_quota()
    n_cpus = _affinity_cpus()
    return max(1, min(n_cpus, quota) if quota is not None else n_cpus)


def _env_limit():
    """Thread limit from OMP_NUM_THREADS (first level of a nested list), or None."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _blas_limit():
    """Return the lowest thread count of the loaded BLAS libraries (a threadpoolctl limit)."""
    from threadpoolctl import threadpool_info

    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return min(counts) if counts else None


def _busy_elsewhere(samples=5, pause=0.002):
    """CPUs other processes keep busy: the fewest runnable tasks seen, minus this one."""
    seen = []
    for _ in range(samples):
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        seen.append(running - 1)
        time.sleep(pause)
    return max(0, min(seen))


def _in_worker():
    """Tell whether this runs inside a joblib/loky, multiprocessing or dask worker."""
    process = multiprocessing.current_process()
    if process.name.startswith("Loky") or process.daemon:
        return True
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            distributed.get_worker()
            return True
        except (ValueError, AttributeError):
            pass
    return False


def resolve_n_threads(n_threads=None):
    """Return the number of threads the policy gives for a requested ``n_threads``.

    Parameters
    ----------
    n_threads : int or None, default=None
        As in :func:`set_config`; ``None`` reads the configuration, then
        ``SKLEARN_TCSSL_N_THREADS``, then decides automatically.

    Returns
    -------
    n : int
        At least 1.
    """
    import torch

    if n_threads is None:
        n_threads = get_config()["n_threads"]
    if n_threads is None and os.environ.get(ENV_VAR):
        try:
            n_threads = int(os.environ[ENV_VAR])
        except ValueError:
            n_threads = os.environ[ENV_VAR]
        n_threads = _check_n_threads(n_threads, ENV_VAR)
    n_threads = _check_n_threads(n_threads, "n_threads")
    if n_threads is not None and n_threads > 0:
        return n_threads
    cpus = available_cpus()
    if n_threads is not None:  # negative: n_jobs convention, all but (|n| - 1) CPUs
        return max(1, cpus + 1 + n_threads)
    if _in_worker():
        return 1
    limits = [cpus, torch.get_num_threads(), cpus - _busy_elsewhere()]
    limits += [n for n in (_env_limit(), _blas_limit()) if n is not None]
    return max(1, min(limits))


# ------------------------------------------------------------------ apply
@contextlib.contextmanager
def thread_budget(n_threads=None):
    """Run a block with torch and BLAS limited to the policy's number of threads.

    Nested uses keep the outer budget (the policy is decided once per public call).
    torch's thread count is restored on exit.

    Parameters
    ----------
    n_threads : int or None, default=None
        See :func:`resolve_n_threads`.

    Yields
    ------
    n : int
        The number of threads in use.
    """
    import torch
    from threadpoolctl import threadpool_limits

    if getattr(_local, "depth", 0) > 0:
        yield torch.get_num_threads()
        return
    before = torch.get_num_threads()
    n = resolve_n_threads(n_threads)
    _local.depth = 1
    try:
        torch.set_num_threads(n)
        with threadpool_limits(limits=n, user_api="blas"):
            yield n
    finally:
        _local.depth = 0
        torch.set_num_threads(before)


def with_thread_budget(method):
    """Decorate a public estimator method so that it runs inside :func:`thread_budget`."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with thread_budget():
            return method(*args, **kwargs)

    return wrapper
