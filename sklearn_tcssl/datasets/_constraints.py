"""Parameter validation of the public dataset functions, the scikit-learn way.

:func:`validate_params` is scikit-learn's decorator (``Interval``, ``StrOptions``...; numpy
scalars pass as numbers) whose error also says ``name=value``, what is allowed and, where
given, how to fix it. The error is scikit-learn's ``InvalidParameterError`` (a ValueError
and a TypeError).
"""

import functools
import inspect
import os
import re

from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils._param_validation import validate_params as _sklearn_validate_params

__all__ = ["check_fits_in_memory", "validate_params"]

_MEMORY_FRACTION = 0.5  # of the memory available now

_MESSAGE = re.compile(
    r"^The '(?P<name>\w+)' parameter of (?P<owner>\S+) must be (?P<allowed>.*)\. Got "
)


def validate_params(constraints, *, hints=None):
    """Decorate a function with scikit-learn's ``validate_params`` and clearer messages.

    Parameters
    ----------
    constraints : dict
        Parameter name to list of scikit-learn constraints.
    hints : dict of str to str or None, default=None
        Parameter name to a sentence on how to fix a bad value.

    Returns
    -------
    decorator : callable
    """
    hints = hints or {}

    def decorator(func):
        validated = _sklearn_validate_params(constraints, prefer_skip_nested_validation=True)(func)
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return validated(*args, **kwargs)
            except InvalidParameterError as exc:
                clear = _clearer(exc, func, signature.bind(*args, **kwargs), hints)
                if clear is None:
                    raise
                raise clear from None

        return wrapper

    return decorator


def _clearer(exc, func, bound, hints):
    """Rewrite scikit-learn's message as ``name=value is not valid: ...``, or None."""
    match = _MESSAGE.match(str(exc))
    if match is None or match["owner"] != func.__qualname__:
        return None  # raised by a nested call: leave it as is
    name = match["name"]
    bound.apply_defaults()
    value = bound.arguments.get(name)
    hint = f" {hints[name]}" if name in hints else ""
    return InvalidParameterError(
        f"{name}={value!r} is not valid: {func.__name__} needs {match['allowed']}.{hint}"
    )


def check_fits_in_memory(needed, *, owner, detail, fix):
    """Raise MemoryError, with the estimate, if ``needed`` bytes exceed half the free memory.

    Parameters
    ----------
    needed : int
        Estimated bytes.
    owner : str
        The function, for the message.
    detail : str
        What the estimate counts, for the message.
    fix : str
        How to ask for less.
    """
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return
    if needed > _MEMORY_FRACTION * available:
        raise MemoryError(
            f"{owner} would need about {needed / 2**30:.1f} GiB ({detail}), more than half "
            f"the {available / 2**30:.1f} GiB of memory available. {fix}"
        )
