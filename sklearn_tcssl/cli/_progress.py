"""Progress lines for long work: one per step, and per training epoch with an ETA.

Used by the ``tcssl`` command; any script can pass :class:`EpochProgress` in an
estimator's ``callbacks``. Nothing here writes terminal control codes unless the stream is
a terminal. :class:`EpochProgress` (a skorch callback) is built on first use, so that
importing this module does not import torch.
"""

import sys
import time

QUIET, NORMAL, VERBOSE = 0, 1, 2


def _is_terminal(stream):
    return bool(getattr(stream, "isatty", lambda: False)())


class Reporter:
    """Timestamped progress messages at a chosen level of detail.

    Parameters
    ----------
    level : {0, 1, 2}, default=1
        0 (``--quiet``): nothing; 1: one line per step (e.g. per fold) and a few epoch
        lines; 2 (``--verbose``): also one line per training epoch.
    stream : file-like or None, default=None
        Where to write; ``None`` is ``sys.stdout`` at the time of writing.
    """

    def __init__(self, level=NORMAL, stream=None):
        self.level = level
        self.stream = stream

    @property
    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def __call__(self, message):
        """Write ``message`` with a time stamp (level 1 and above)."""
        if self.level >= NORMAL:
            self.line(f"[{time.strftime('%H:%M:%S')}] {message}")

    def line(self, text, *, transient=False):
        """Write a line; ``transient`` lines overwrite each other on a terminal only."""
        out = self._out
        if transient and _is_terminal(out):
            out.write(f"\r\x1b[K{text}")
        else:
            out.write(f"{text}\n")
        out.flush()

    def end_transient(self):
        """Finish a run of transient lines (a newline on a terminal)."""
        if _is_terminal(self._out):
            self._out.write("\r\x1b[K")
            self._out.flush()


def _epoch_progress_class():
    from skorch.callbacks import Callback

    class EpochProgress(Callback):
        """skorch callback: a progress line per training epoch with the loss and an ETA.

        Parameters
        ----------
        reporter : Reporter or None, default=None
            Where and how much to write; ``None`` is ``Reporter(VERBOSE)`` (every epoch).
        label : str, default="pretraining"
            Prefix of each line.

        Notes
        -----
        At level 2 every epoch gets a line. At level 1 the line overwrites itself on a
        terminal; elsewhere (a log file, CI) only about five epochs of each fit are written.
        """

        def __init__(self, reporter=None, label="pretraining"):
            self.reporter = reporter
            self.label = label

        def initialize(self):
            """Reset the clock (called by skorch when the net is initialised)."""
            self.start_ = time.perf_counter()
            return self

        def on_train_begin(self, net, **kwargs):
            """Start the clock for the ETA."""
            self.start_ = time.perf_counter()

        def on_epoch_end(self, net, **kwargs):
            """Write the epoch's line."""
            reporter = self.reporter or Reporter(VERBOSE)
            if reporter.level < NORMAL:
                return
            done, total = len(net.history), net.max_epochs
            elapsed = time.perf_counter() - self.start_
            eta = elapsed / max(done, 1) * max(total - done, 0)
            loss = net.history[-1].get("train_loss", float("nan"))
            text = (
                f"  {self.label}: epoch {done}/{total}, loss {loss:.3f}, "
                f"{elapsed:.0f} s, ETA {eta:.0f} s"
            )
            if reporter.level >= VERBOSE:
                reporter.line(text)
            elif _is_terminal(reporter._out):
                reporter.line(text, transient=True)
                if done >= total:
                    reporter.end_transient()
            elif done == total or done % max(1, total // 5) == 0:
                reporter.line(text)

    EpochProgress.__module__ = __name__
    EpochProgress.__qualname__ = "EpochProgress"
    return EpochProgress


def __getattr__(name):
    if name == "EpochProgress":
        globals()[name] = _epoch_progress_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
