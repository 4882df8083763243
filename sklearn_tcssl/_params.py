"""Small helpers to validate constructor parameters in ``fit`` with clear messages."""

import numbers


def check_int(name, value, *, owner, minimum=1):
    """Raise a ValueError unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"{owner}: {name}={value!r} is not allowed; it must be an integer >= {minimum}."
        )


def check_float(name, value, *, owner, low=0.0, low_inclusive=False, high=None):
    """Raise a ValueError unless ``value`` is a real number in the given range."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and (value >= low if low_inclusive else value > low)
    ok = ok and (high is None or value <= high)
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}"
        if high is not None:
            bound += f" and <= {high}"
        raise ValueError(f"{owner}: {name}={value!r} is not allowed; it must be a number {bound}.")


def check_choice(name, value, choices, *, owner):
    """Raise a ValueError unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(map(repr, choices))
        raise ValueError(f"{owner}: {name}={value!r} is not allowed; use one of {allowed}.")
