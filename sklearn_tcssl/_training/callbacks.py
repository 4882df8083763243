"""skorch callbacks shared by the estimators."""

from skorch.callbacks import Callback, PassthroughScoring


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
