"""skorch callbacks shared by the estimators."""

import time

from skorch.callbacks import Callback, PassthroughScoring

from sklearn_tcssl._utils.progress import NORMAL, VERBOSE, Reporter, is_terminal


class StepCounter(Callback):
    """Record the cumulative number of optimizer steps in the history as ``n_steps``.

    The count is read from the history itself (training batches of this epoch plus the
    previous epoch's total), so it stays right when training resumes from a checkpoint.
    """

    def on_epoch_end(self, net, **kwargs):
        """Record the running total for this epoch."""
        history = net.history
        batches = history[-1].get("batches", [])
        steps = sum(1 for batch in batches if "train_batch_size" in batch)
        previous = history[-2].get("n_steps", 0) if len(history) > 1 else 0
        history.record("n_steps", int(previous) + steps)


def pretext_scoring(*, on_train):
    """Return the callback that averages the batches' pretext accuracy over an epoch.

    Parameters
    ----------
    on_train : bool
        ``train_pretext_acc`` (True) or ``valid_pretext_acc`` (False).

    Returns
    -------
    callback : skorch.callbacks.PassthroughScoring
    """
    name = "train_pretext_acc" if on_train else "valid_pretext_acc"
    return PassthroughScoring(name=name, lower_is_better=False, on_train=on_train)


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
        elif is_terminal(reporter.out):
            reporter.line(text, transient=True)
            if done >= total:
                reporter.end_transient()
        elif done == total or done % max(1, total // 5) == 0:
            reporter.line(text)
