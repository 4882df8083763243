"""Thread policy: how many CPU threads torch and BLAS may use during fit, transform, predict.

The policy is static, so that the same data, parameters and ``random_state`` give
bit-identical results whatever else runs on the machine (torch's results differ in the last
digits between thread counts, so the count must not follow the load). Every public method
of the estimators runs inside :func:`thread_budget`, which

* counts the CPUs this process may use (:func:`joblib.cpu_count`: affinity mask, cgroup
  quota, ``LOKY_MAX_CPU_COUNT``) and the limits the user set (``OMP_NUM_THREADS``,
  ``torch.set_num_threads``, ``threadpoolctl`` limits of the BLAS libraries);
* uses one thread inside joblib/loky, multiprocessing or dask workers, where the parent
  already runs one process per CPU;
* sets torch's intra-op threads and the BLAS threads of the scikit-learn parts to that
  budget and restores both afterwards, so the caller's process is left as found.

Contended machines stay fast by a reproducible means instead: importing the package before
torch sets OpenMP's passive wait policy (:func:`prefer_passive_openmp`), so idle OpenMP
threads sleep instead of spinning against other processes (a fit with 2 threads beside
2 CPU-bound processes on 2 cores: 59.8 s spinning, 11.0 s passive, 6.1 s quiet either way,
same bits).

Override with :func:`set_config` (process-wide: reaches worker threads, and worker
processes through ``SKLEARN_TCSSL_N_THREADS``) or :func:`config_context` (this thread only),
following scikit-learn's ``n_jobs`` conventions.
"""

import contextlib
import functools
import multiprocessing
import numbers
import os
import sys
import threading
import warnings

__all__ = [
    "available_cpus",
    "config_context",
    "get_config",
    "prefer_passive_openmp",
    "resolve_n_threads",
    "set_config",
]

ENV_VAR = "SKLEARN_TCSSL_N_THREADS"
_global_config = {"n_threads": None}
_local = threading.local()
_exported = {"value": None}  # what set_config wrote to ENV_VAR, to take back on None


def prefer_passive_openmp():
    """Ask OpenMP to let idle threads sleep rather than spin, if torch is not loaded yet.

    OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads it; a value the user set is
    kept. Called when :mod:`sklearn_tcssl` is imported. The environment variable also
    reaches child processes.

    Returns
    -------
    applied : bool
        Whether the passive policy is in effect for torch's OpenMP (it is not when torch
        was imported before this package without ``OMP_WAIT_POLICY=PASSIVE``).
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"


# ------------------------------------------------------------------ config
def _config():
    """Return the configuration this thread sees: process-wide, then config_context."""
    return {**_global_config, **getattr(_local, "override", {})}


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
        ``None``: automatic (``SKLEARN_TCSSL_N_THREADS`` when set; otherwise the CPUs this
        process may use, within the limits set by ``OMP_NUM_THREADS``, torch or
        threadpoolctl; 1 inside joblib/multiprocessing workers). The same machine and
        environment always give the same count, so refits are bit-identical under any
        load. A positive int: exactly that many threads, capped with a warning at the
        CPUs available. ``-1``: every CPU this process may use; ``-2`` all but one, and so
        on, as scikit-learn's ``n_jobs``. ``0`` is not allowed. Results can differ in the
        last digits between thread counts.

    Notes
    -----
    The setting is process-wide: it reaches the worker threads of joblib's threading
    backend, and worker processes started afterwards through ``SKLEARN_TCSSL_N_THREADS``.
    :func:`config_context` changes the current thread only.

    Examples
    --------
    >>> import sklearn_tcssl
    >>> sklearn_tcssl.set_config(n_threads=1)
    >>> sklearn_tcssl.get_config()["n_threads"]
    1
    >>> sklearn_tcssl.set_config(n_threads=None)
    """
    n_threads = _check_n_threads(n_threads, "n_threads")
    _global_config["n_threads"] = n_threads
    if n_threads is not None:
        os.environ[ENV_VAR] = _exported["value"] = str(n_threads)
    elif _exported["value"] is not None and os.environ.get(ENV_VAR) == _exported["value"]:
        del os.environ[ENV_VAR]
        _exported["value"] = None


@contextlib.contextmanager
def config_context(*, n_threads=None):
    """Temporarily set the configuration of the current thread (see :func:`set_config`).

    Parameters
    ----------
    n_threads : int or None, default=None
        Threads for the duration of the ``with`` block, in this thread only (like
        :func:`sklearn.config_context`); use :func:`set_config` to reach worker threads
        and processes.

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
    old = getattr(_local, "override", {})
    _local.override = {**old, "n_threads": _check_n_threads(n_threads, "n_threads")}
    try:
        yield
    finally:
        _local.override = old


def _check_n_threads(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value == 0:
        raise ValueError(
            f"{name}={value!r} is not allowed: pass None (automatic), a positive number of "
            "threads, or a negative int as scikit-learn's n_jobs (-1: every available CPU)."
        )
    return int(value)


def _cap(n_threads, cpus, name):
    if n_threads <= cpus:
        return n_threads
    warnings.warn(
        f"{name}={n_threads} asks for more threads than the {cpus} CPUs this process may "
        f"use; using {cpus}. More threads than CPUs only slow torch down.",
        UserWarning,
        stacklevel=4,
    )
    return cpus


# ------------------------------------------------------------------ CPUs
def available_cpus():
    """CPUs this process may use: :func:`joblib.cpu_count` (affinity, cgroup quota).

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
    import joblib

    return max(1, joblib.cpu_count())


def _env_limit():
    """Thread limit from OMP_NUM_THREADS (first level of a nested list), or None."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


_controllers = {}


def _controller():
    """Return a threadpoolctl controller, rebuilt only after new modules were imported.

    Building one inspects every loaded library (milliseconds); libraries are loaded by
    imports, so the number of imported modules tells when a new one may have appeared.
    """
    from threadpoolctl import ThreadpoolController

    key = len(sys.modules)
    if key not in _controllers:
        _controllers.clear()
        _controllers[key] = ThreadpoolController()
    return _controllers[key]


def _blas_limit():
    """Return the lowest thread count of the loaded BLAS libraries (a threadpoolctl limit)."""
    counts = [lib.num_threads for lib in _controller().lib_controllers if lib.user_api == "blas"]
    return min(counts) if counts else None


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


def _requested(n_threads):
    """Return the explicit request (argument, configuration, environment) or None."""
    if n_threads is None:
        n_threads = _config()["n_threads"]
    if n_threads is not None:
        return _check_n_threads(n_threads, "n_threads"), "n_threads"
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None, None
    try:
        value = int(raw)
    except ValueError:
        value = raw
    return _check_n_threads(value, ENV_VAR), ENV_VAR


def resolve_n_threads(n_threads=None):
    """Return the number of threads the policy gives for a requested ``n_threads``.

    Parameters
    ----------
    n_threads : int or None, default=None
        As in :func:`set_config`; ``None`` reads the configuration, then
        ``SKLEARN_TCSSL_N_THREADS``, then decides from static limits.

    Returns
    -------
    n : int
        At least 1.
    """
    import torch

    n_threads, name = _requested(n_threads)
    cpus = available_cpus()
    if n_threads is not None and n_threads > 0:
        return _cap(n_threads, cpus, name)
    if n_threads is not None:  # negative: n_jobs convention, all but (|n| - 1) CPUs
        return max(1, cpus + 1 + n_threads)
    if _in_worker():
        return 1
    limits = [cpus, torch.get_num_threads()]
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

    if getattr(_local, "depth", 0) > 0:
        yield torch.get_num_threads()
        return
    before = torch.get_num_threads()
    n = resolve_n_threads(n_threads)
    _local.depth = 1
    try:
        torch.set_num_threads(n)
        with _controller().limit(limits=n, user_api="blas"):
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
