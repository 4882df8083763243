"""Ctrl-C that stops training: re-raise the ``KeyboardInterrupt`` that skorch swallows.

skorch's ``NeuralNet.partial_fit`` catches ``KeyboardInterrupt`` and returns normally (its
"stop training early" feature, also used by ``skorch.callbacks.EarlyStopping``, which raises
it from ``on_epoch_end``). :class:`InterruptibleMixin` tells the two apart:

* a ``KeyboardInterrupt`` raised while an epoch runs (a batch, the validation pass), or any
  one that follows a real SIGINT (Ctrl-C) received during training, is an **interrupt**:
  callbacks' ``on_train_end`` still run (with ``net.interrupted_`` set, so that
  :class:`~sklearn_tcssl._training.checkpoint.TrainingCheckpoint` never saves the half epoch), then
  the interrupt propagates out of ``fit``/``partial_fit``;
* one raised by an ``on_epoch_end`` callback without a SIGINT (``EarlyStopping``) ends
  training normally, as in skorch: the epoch is complete.
"""

import contextlib
import signal
import threading


class InterruptibleMixin:
    """Mixin for a skorch ``NeuralNet`` whose ``fit``/``partial_fit`` propagate Ctrl-C.

    Attributes
    ----------
    interrupted_ : KeyboardInterrupt or None
        The interrupt that stopped the last training call (None otherwise); set while
        callbacks' ``on_train_end`` run.

    Private state ends in ``_`` too: skorch treats every other attribute as a parameter.
    """

    def notify(self, method_name, **cb_kwargs):
        """Record the training stage, then call the callbacks (see skorch)."""
        self._stage_ = method_name
        return super().notify(method_name, **cb_kwargs)

    def fit_loop(self, X, y=None, epochs=None, **kwargs):
        """Run skorch's loop; record a ``KeyboardInterrupt`` that is not an early stop."""
        self.interrupted_ = None
        self._stage_ = None
        try:
            return super().fit_loop(X, y, epochs=epochs, **kwargs)
        except KeyboardInterrupt as exc:
            if self._sigint_seen or self._stage_ != "on_epoch_end":
                self.interrupted_ = exc
            raise  # skorch's partial_fit catches it and runs on_train_end

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Run skorch's ``partial_fit``; re-raise a Ctrl-C after ``on_train_end``."""
        self.interrupted_ = None
        with _sigint_watch() as seen:
            self._sigint_watch_ = seen
            try:
                super().partial_fit(X, y, classes=classes, **fit_params)
            finally:
                self._sigint_watch_ = None
        interrupt, self.interrupted_ = self.interrupted_, None
        if interrupt is not None:
            raise interrupt
        return self

    @property
    def _sigint_seen(self):
        watch = getattr(self, "_sigint_watch_", None)
        return bool(watch and watch[0])


@contextlib.contextmanager
def _sigint_watch():
    """Yield a one-item list set to True when SIGINT arrives; the old handler still runs.

    Only the main thread can install signal handlers; elsewhere (and when SIGINT is ignored
    or left to the system default) nothing is installed and the list stays False.
    """
    seen = [False]
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield seen
        return

    def handler(signum, frame):
        seen[0] = True
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)
