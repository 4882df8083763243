"""skorch callbacks shared by the estimators."""

import math
import time

from skorch.callbacks import Callback

from sklearn_tcssl._utils.exceptions import TrainingDivergedError
from sklearn_tcssl._utils.progress import NORMAL, VERBOSE, Reporter, is_terminal


class StepCounter(Callback):
    """Record the cumulative number of optimizer steps as ``n_steps`` in the history.

    Counted from the history itself, so it stays right when training resumes.
    """

    def on_epoch_end(self, net, **kwargs):
        """Record the running total for this epoch."""
        history = net.history
        batches = history[-1].get("batches", [])
        steps = sum(1 for batch in batches if "train_batch_size" in batch)
        previous = history[-2].get("n_steps", 0) if len(history) > 1 else 0
        history.record("n_steps", int(previous) + steps)


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
        elif is_terminal(reporter.out):
            reporter.line(text, transient=True)
            if done >= total:
                reporter.end_transient()
        elif done == total or done % max(1, total // 5) == 0:
            reporter.line(text)


class PretextMonitor(Callback):
    """Record the epoch's pretext accuracy and stop a fit whose loss is not finite.

    The net sums each batch's correct windows on the device (``net.pretext_sums_``); the
    epoch's ``train_pretext_acc`` and ``valid_pretext_acc`` are read once, at its end.
    """

    def on_epoch_begin(self, net, **kwargs):
        """Start the epoch's sums."""
        net.pretext_sums_ = {}

    def on_batch_end(self, net, training=False, **kwargs):
        """Raise :class:`~sklearn_tcssl.TrainingDivergedError` on a non-finite batch loss."""
        key = "train_loss" if training else "valid_loss"
        value = net.history[-1, "batches", -1].get(key)
        if value is not None and not math.isfinite(value):
            raise TrainingDivergedError(net.divergence_message(value))

    def on_epoch_end(self, net, **kwargs):
        """Record the epoch's pretext accuracy (one host read per split)."""
        for training, (correct, count) in getattr(net, "pretext_sums_", {}).items():
            name = "train_pretext_acc" if training else "valid_pretext_acc"
            net.history.record(name, float(correct) / count if count else float("nan"))
