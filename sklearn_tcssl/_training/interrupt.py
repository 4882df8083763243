"""Ctrl-C and SIGTERM stop training: re-raise the ``KeyboardInterrupt`` that skorch swallows.

skorch's ``partial_fit`` catches ``KeyboardInterrupt`` and returns normally (its early stop,
also raised by ``EarlyStopping`` from ``on_epoch_end``). :class:`InterruptibleMixin` treats one
raised while an epoch runs, or after a real SIGINT, as an interrupt: ``on_train_end`` still
runs (with ``net.interrupted_`` set, so no checkpoint saves the half epoch), then it
propagates out of ``fit``. One raised by an ``on_epoch_end`` callback without a SIGINT ends
training normally, as in skorch. SIGTERM stops the epoch the same way, then raises
:class:`~sklearn_tcssl._utils.processes.Terminated` (exit status 143) with a message naming
the last complete epoch; a SIGTERM handler of the user's is chained, never replaced.
"""

import contextlib
import signal
import threading

from sklearn_tcssl._training.checkpoint import _find_callback
from sklearn_tcssl._utils.processes import Terminated, replaceable


class _SigtermInterrupt(KeyboardInterrupt):
    """Raised by the SIGTERM handler inside training, so that skorch stops as for Ctrl-C."""


class InterruptibleMixin:
    """Mixin for a skorch ``NeuralNet`` whose ``fit``/``partial_fit`` stop on Ctrl-C and SIGTERM.

    Attributes
    ----------
    interrupted_ : KeyboardInterrupt or None
        The interrupt that stopped the last training call, while ``on_train_end`` runs.
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
            if getattr(self, "_signals_seen_", None) or self._stage_ != "on_epoch_end":
                self.interrupted_ = exc
            raise  # skorch's partial_fit catches it and runs on_train_end

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Run skorch's ``partial_fit``; then re-raise Ctrl-C, or exit on SIGTERM."""
        self.interrupted_ = None
        with _signal_watch() as seen:
            self._signals_seen_ = seen  # read by fit_loop
            super().partial_fit(X, y, classes=classes, **fit_params)
        interrupt, self.interrupted_ = self.interrupted_, None
        if isinstance(interrupt, _SigtermInterrupt):
            raise Terminated(_stopped_message(self)).report() from None
        if interrupt is not None:
            raise interrupt
        return self


def _stopped_message(net):
    running = len(net.history)
    message = f"Training stopped by SIGTERM during epoch {running}"
    checkpoint = _find_callback(net)
    if checkpoint is None:
        return f"{message}; nothing was saved (pass checkpoint_dir= to keep complete epochs)."
    saved = getattr(checkpoint, "last_saved_", None)
    kept = f"epoch {saved}" if saved else "no complete epoch yet"
    return (
        f"{message}; checkpoint_dir={str(checkpoint.dirname)!r} keeps {kept}. Run the same "
        "fit again to resume from it."
    )


@contextlib.contextmanager
def _signal_watch():
    """Yield the set of the signals (SIGINT, SIGTERM) that arrive while the block runs.

    Watched in the main thread only, and not when ignored. SIGINT's previous handler still
    runs; SIGTERM raises an interrupt, or calls the user's own SIGTERM handler.
    """
    seen, previous = set(), {}

    def on_signal(signum, frame):
        seen.add(signum)
        if signum == signal.SIGTERM and replaceable(previous[signum]):
            raise _SigtermInterrupt("SIGTERM")
        previous[signum](signum, frame)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            old = signal.getsignal(signum)
            if old not in (None, signal.SIG_IGN) and (callable(old) or signum == signal.SIGTERM):
                previous[signum] = signal.signal(signum, on_signal)
    try:
        yield seen
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
