"""Thread policy: how many CPU threads torch and BLAS use in fit, transform and predict.

The count is static (it never follows the machine's load), because torch's results differ
in the last digits between thread counts: the same data and ``random_state`` give
bit-identical results under any load. :func:`thread_budget` takes the CPUs this process may
use (:func:`joblib.cpu_count`) within the user's limits (``OMP_NUM_THREADS``, torch,
threadpoolctl), 1 inside joblib/multiprocessing/dask workers, and restores torch's count on
exit. Contended machines stay fast through OpenMP's passive wait policy
(:func:`prefer_passive_openmp`) instead. :func:`set_config` and :func:`config_context`
override the count with scikit-learn's ``n_jobs`` conventions.
"""

import contextlib
import functools
import multiprocessing
import numbers
import os
import sys
import threading
import warnings

ENV_VAR = "SKLEARN_TCSSL_N_THREADS"
_global_config = {"n_threads": None}
_local = threading.local()
_exported = {"value": None}  # what set_config wrote to ENV_VAR, to take back on None


def prefer_passive_openmp():
    """Let idle OpenMP threads sleep rather than spin, if torch is not loaded yet.

    OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads it; a value the user set is kept.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# ------------------------------------------------------------------ config
def get_config():
    """Return the configuration this thread sees (a copy): set_config, then config_context.

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
    return {**_global_config, **getattr(_local, "override", {})}


def set_config(n_threads=None):
    """Set how many CPU threads torch and BLAS use inside the estimators' methods.

    Parameters
    ----------
    n_threads : int or None, default=None
        ``None``: automatic (``SKLEARN_TCSSL_N_THREADS`` when set, else the CPUs this
        process may use within the limits of ``OMP_NUM_THREADS``, torch and threadpoolctl;
        1 inside workers), the same count under any load. A positive int: that many
        threads, capped with a warning at the available CPUs. ``-1``: every available CPU,
        ``-2`` all but one... as scikit-learn's ``n_jobs``; ``0`` is not allowed.

    Notes
    -----
    The setting is process-wide: it reaches joblib's worker threads, and worker processes
    started afterwards through ``SKLEARN_TCSSL_N_THREADS``. :func:`config_context` changes
    the current thread only. Results can differ in the last digits between thread counts.

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
        Threads for the ``with`` block, in this thread only (as
        :func:`sklearn.config_context`).

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


# ------------------------------------------------------------------ CPUs
def available_cpus():
    """Return the CPUs this process may use (:func:`joblib.cpu_count`, at least 1)."""
    import joblib

    return joblib.cpu_count()


def _env_limit():
    """Thread limit from OMP_NUM_THREADS (first level of a nested list), or None."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


@functools.lru_cache(maxsize=1)
def _controller(n_modules):
    """Return a threadpoolctl controller, rebuilt when ``len(sys.modules)`` changed."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_limit():
    """Return the lowest thread count of the loaded BLAS libraries, or None."""
    blas = _controller(len(sys.modules)).select(user_api="blas").lib_controllers
    return min((lib.num_threads for lib in blas), default=None)


def _in_worker():
    """Tell whether this runs inside a joblib/loky, multiprocessing or dask worker."""
    process = multiprocessing.current_process()
    if process.name.startswith("Loky") or process.daemon:
        return True
    distributed = sys.modules.get("distributed")
    with contextlib.suppress(ValueError, AttributeError):  # get_worker raises outside workers
        return distributed is not None and distributed.get_worker() is not None
    return False


def resolve_n_threads(n_threads=None):
    """Return the policy's thread count (at least 1) for ``n_threads`` (see :func:`set_config`).

    ``None`` reads the configuration, then ``SKLEARN_TCSSL_N_THREADS``, then the limits.
    """
    import torch

    name = "n_threads"
    if n_threads is None:
        n_threads = get_config()["n_threads"]
    if n_threads is None and os.environ.get(ENV_VAR, "").strip():
        name, n_threads = ENV_VAR, os.environ[ENV_VAR].strip()
        with contextlib.suppress(ValueError):
            n_threads = int(n_threads)
    n_threads = _check_n_threads(n_threads, name)
    cpus = available_cpus()
    if n_threads is not None and n_threads > cpus:
        warnings.warn(
            f"{name}={n_threads} asks for more threads than the {cpus} CPUs this process may "
            f"use; using {cpus}. More threads than CPUs only slow torch down.",
            UserWarning,
            stacklevel=3,
        )
        return cpus
    if n_threads is not None:  # negative: n_jobs convention, all but (|n| - 1) CPUs
        return n_threads if n_threads > 0 else max(1, cpus + 1 + n_threads)
    if _in_worker():
        return 1
    limits = [cpus, torch.get_num_threads()]
    limits += [n for n in (_env_limit(), _blas_limit()) if n is not None]
    return max(1, min(limits))


# ------------------------------------------------------------------ apply
@contextlib.contextmanager
def thread_budget(n_threads=None):
    """Run a block with torch and BLAS at :func:`resolve_n_threads` threads; yield the count.

    A nested budget keeps the outer count; torch's count is restored on exit.
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
        with _controller(len(sys.modules)).limit(limits=n, user_api="blas"):
            yield n
    finally:
        _local.depth = 0
        torch.set_num_threads(before)


def with_thread_budget(method):
    """Decorate a public estimator method so that it runs inside :func:`thread_budget`."""
    return thread_budget()(method)
