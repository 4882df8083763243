"""Parameter errors that name the value and the fix, for estimators and functions.

scikit-learn's constraints decide what is allowed; its message is kept whole, with who
refused which value before it and how to fix it after it ("TemporalContrastiveEmbedder:
batch_size=0 is not allowed. The 'batch_size' parameter ... Got 0 instead. Fix: pass an
integer >= 1 such as 32."). Estimators decorate ``fit`` with :func:`validates_params`
(above scikit-learn's ``_fit_context``); public functions use :func:`validate_params`.
"""

import functools
import inspect

from sklearn import get_config
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints


def check_params(constraints, params, *, owner, hints=None):
    """Check ``params`` against scikit-learn ``constraints`` (names missing are skipped).

    The first value not allowed raises ``InvalidParameterError`` (a ``ValueError`` and
    ``TypeError``) naming ``owner``, the value and its fix from ``hints``.
    """
    if get_config()["skip_parameter_validation"]:
        return
    for name, allowed in constraints.items():
        if name not in params:
            continue
        try:
            validate_parameter_constraints({name: allowed}, {name: params[name]}, owner)
        except InvalidParameterError as exc:
            hint = (hints or {}).get(name)
            fix = f" Fix: {hint}" if hint else ""
            raise InvalidParameterError(
                f"{owner}: {name}={params[name]!r} is not allowed. {exc}{fix}"
            ) from None


def validates_params(fit):
    """Decorate an estimator's ``fit``: check its parameters with fix hints first.

    Uses the class's ``_parameter_constraints`` and its ``_fix_hints`` dict (optional),
    then calls its ``_check_param_combinations()`` (optional: rules across parameters).
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        check_params(
            self._parameter_constraints,
            self.get_params(deep=False),
            owner=type(self).__name__,
            hints=getattr(self, "_fix_hints", None),
        )
        combinations = getattr(self, "_check_param_combinations", None)
        if combinations is not None:
            combinations()
        return fit(self, *args, **kwargs)

    return wrapper


def validate_params(constraints, *, hints=None):
    """Decorate a public function: check its arguments (defaults included) with fix hints.

    ``constraints`` and ``hints`` are dicts keyed by parameter name, as :func:`check_params`.
    """

    def decorator(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            check_params(constraints, bound.arguments, owner=func.__qualname__, hints=hints)
            return func(*args, **kwargs)

        return wrapper

    return decorator
