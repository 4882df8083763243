"""Exceptions raised by sklearn-tcssl."""

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class TCSSLError(Exception):
    """Base class of every exception raised on purpose by sklearn-tcssl."""


class NotFittedError(TCSSLError, _SklearnNotFittedError):
    """Raised when a method that needs a fitted estimator is called before ``fit``."""


class IncompatibleModelError(TCSSLError, ValueError):
    """Raised when a saved model does not match the data or this package version."""


class TrainingDivergedError(TCSSLError, FloatingPointError):
    """Raised when the training loss becomes NaN or infinite."""


class DamagedFileError(TCSSLError, ValueError):
    """Raised when an input file is truncated or corrupted; the message names the file."""


class CheckpointInUseError(TCSSLError, RuntimeError):
    """Raised when another running fit holds the lock of the ``checkpoint_dir`` folder."""


class AlignmentWarning(UserWarning):
    """Warned when aligning does not pay, or when an aligner's training did not learn.

    Aligning does not pay: it does worse than not aligning on held-out time points. Did not
    learn: the loss ends at that of uniform guessing, or the embeddings explode.
    """


class InsufficientMemoryError(TCSSLError, MemoryError, ValueError):
    """Raised, before any allocation, when a request needs more memory than the machine has."""
