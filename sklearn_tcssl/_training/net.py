"""Private skorch network shared by the estimators: the contrastive objective in ``get_loss``."""

import contextlib
import math

import numpy as np
import torch
from skorch import NeuralNet
from torch.utils.data import Dataset, Subset

from sklearn_tcssl._training.interrupt import InterruptibleMixin
from sklearn_tcssl._utils.exceptions import TrainingDivergedError
from sklearn_tcssl.nn.losses import pretext_accuracy
from sklearn_tcssl.nn.windows import windows_per_sequence


class PrecisionMixin:
    """Forward passes of a skorch net under its ``precision``, CUDA batches copied non-blocking.

    The net class defines a ``precision`` parameter (``"32"`` or ``"bf16"``); shared by the
    contrastive net and the classifier's net so that both follow one precision rule.
    """

    def autocast(self):
        """Return the autocast context of the forward pass (a no-op unless ``"bf16"``)."""
        if self.precision != "bf16" or self.device is None:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    def infer(self, x, **fit_params):
        """Forward pass of a batch: non-blocking copy to CUDA, then autocast."""
        if isinstance(x, torch.Tensor) and _is_cuda(self.device):
            x = x.to(self.device, non_blocking=True)
        with self.autocast():
            return super().infer(x, **fit_params)


class TemporalContrastiveNet(InterruptibleMixin, PrecisionMixin, NeuralNet):
    """skorch ``NeuralNet`` whose module maps windows to ``(batch, 3, dim)`` projections.

    Only :meth:`get_loss` is overridden: it splits the projections into beginning, middle and
    end, applies the criterion (a :class:`~sklearn_tcssl.nn.losses.TemporalContrastiveLoss`),
    records the batch's pretext accuracy in the history (``train_pretext_acc`` or
    ``valid_pretext_acc``; a ``PassthroughScoring`` callback averages it per epoch), and stops
    training with :class:`~sklearn_tcssl.TrainingDivergedError` on a non-finite loss. A
    Ctrl-C propagates out of ``fit``
    (:class:`~sklearn_tcssl._training.interrupt.InterruptibleMixin`).

    For speed on GPUs, :meth:`infer` also copies CUDA batches with ``non_blocking=True`` (they
    come from pinned memory when ``iterator_train__pin_memory=True``) and runs the forward pass
    under :meth:`autocast`; the loss is always computed in float32.

    Parameters
    ----------
    module, criterion, **kwargs
        As for :class:`skorch.NeuralNet`.
    precision : {"32", "bf16"}, default="32"
        ``"bf16"`` runs the forward pass under ``torch.autocast(dtype=torch.bfloat16)`` on the
        net's device (weights and optimizer states stay float32; no gradient scaler is needed
        with bfloat16).
    """

    def __init__(self, module, criterion, *, precision="32", **kwargs):
        super().__init__(module, criterion, **kwargs)
        self.precision = precision

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Temporal-contrastive loss of a batch; ``y_true`` is a dummy and is ignored."""
        z_begin, z_middle, z_end = y_pred.float().unbind(dim=1)  # 3 x (B, P), float32
        loss = self.criterion_(z_begin, z_middle, z_end)
        accuracy = pretext_accuracy(z_begin, z_middle, z_end)
        key = "train_pretext_acc" if training else "valid_pretext_acc"
        self.history.record_batch(key, accuracy.item())
        if not torch.isfinite(loss):
            raise TrainingDivergedError(self._divergence_message(loss))
        return loss

    def _divergence_message(self, loss):
        epoch = len(self.history)
        batch = len(self.history[-1, "batches"]) if epoch else 0
        value = "nan" if math.isnan(loss.item()) else loss.item()
        return (
            f"The contrastive loss became {value} at epoch {epoch}, batch {batch}. Training "
            "was stopped so that no NaN embedding is produced. Try a lower lr (e.g. divide it "
            "by 10), a higher temperature, and check that the input has no huge values "
            "(standardize=True rescales each feature)."
        )


class FixedWindowsValidSplit:
    """skorch ``train_split`` holding out whole sequences, their windows drawn once.

    A window dataset gives each sequence several items (windows in proportion to its
    length, :func:`~sklearn_tcssl.nn.windows.windows_per_sequence`); splitting the items
    would put windows of one sequence on both sides. Here a seeded permutation holds out
    ``ceil(cv * n_sequences)`` sequences with all their items. Training windows are drawn
    afresh at each access (the pretext task sees new windows every epoch); validation windows
    come from a generator seeded per item (``seed + index``), so every epoch scores the *same*
    windows and ``valid_loss`` changes only when the model does (a steady signal for
    ``EarlyStopping``).

    Parameters
    ----------
    cv : float
        Fraction of the sequences held out, in (0, 1).
    seed : int
        Seed of the split and of the validation windows.
    """

    def __init__(self, cv, *, seed):
        self.cv = cv
        self.seed = int(seed)

    def __call__(self, dataset, y=None, groups=None):
        """Split ``dataset``; return ``(train, valid)`` subsets, fixed validation windows."""
        owner = item_sequences(dataset)
        n_sequences = int(owner.max()) + 1
        n_valid = int(np.ceil(self.cv * n_sequences))
        held = np.random.RandomState(self.seed).permutation(n_sequences)[:n_valid]
        in_valid = np.isin(owner, held)
        train = Subset(dataset, np.flatnonzero(~in_valid).tolist())
        valid = Subset(dataset, np.flatnonzero(in_valid).tolist())
        return train, FixedWindows(valid, self.seed)


def item_sequences(dataset):
    """Sequence of each item of a window dataset (items of a sequence are consecutive)."""
    lengths = [len(s) for s in dataset.sequences]
    counts = windows_per_sequence(lengths, 3 * dataset.segment_length)
    if int(counts.sum()) != len(dataset):  # one item per sequence
        counts = np.ones(len(lengths), dtype=np.int64)
    return np.repeat(np.arange(len(lengths)), counts)


class FixedWindows(Dataset):
    """Items of a ``Subset`` of window datasets, drawn with a generator seeded per item.

    Parameters
    ----------
    subset : torch.utils.data.Subset
        Subset of a dataset that draws with its ``generator`` attribute (e.g.
        :class:`~sklearn_tcssl.nn.windows.TripletWindowDataset`).
    seed : int
        Base seed; item ``i`` of the underlying dataset uses ``seed + i``.
    """

    def __init__(self, subset, seed):
        self.subset = subset
        self.seed = int(seed)

    def __len__(self):
        return len(self.subset)

    def __getitem__(self, i):
        base, index = self.subset.dataset, int(self.subset.indices[i])
        saved = base.generator
        base.generator = torch.Generator().manual_seed(self.seed + index)
        try:
            return base[index]
        finally:
            base.generator = saved


PRECISIONS = ("auto", "32", "bf16")


def _is_cuda(device):
    return device is not None and torch.device(device).type == "cuda"


def resolve_precision(precision, device):
    """Return ``"32"`` or ``"bf16"`` for the ``precision`` parameter on ``device``.

    ``"auto"`` is ``"bf16"`` on a CUDA device that supports bfloat16 (Ampere and newer) and
    ``"32"`` everywhere else, the CPU included.

    Parameters
    ----------
    precision : {"auto", "32", "bf16"}
        The estimator's parameter (already validated).
    device : torch.device
        The training device.

    Returns
    -------
    precision : {"32", "bf16"}
    """
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "32"


def compute_options(*, device, precision, num_workers, compile):
    """Keyword arguments of :class:`TemporalContrastiveNet` for the compute parameters.

    DataLoader workers for training and validation, pinned host memory on CUDA (harmless and
    off on the CPU), the autocast precision and ``torch.compile``.

    Parameters
    ----------
    device : torch.device
        The training device.
    precision : {"auto", "32", "bf16"}
        Mixed-precision setting.
    num_workers : int
        DataLoader worker processes (0: load in the main process).
    compile : bool
        Whether skorch compiles the module with ``torch.compile``.

    Returns
    -------
    kwargs : dict
    """
    pin = device.type == "cuda"
    return {
        "precision": resolve_precision(precision, device),
        "compile": bool(compile),
        "iterator_train__num_workers": num_workers,
        "iterator_valid__num_workers": num_workers,
        "iterator_train__pin_memory": pin,
        "iterator_valid__pin_memory": pin,
    }


def autocast_of(net):
    """Return the autocast context of a fitted net (a no-op for nets without one)."""
    return getattr(net, "autocast", contextlib.nullcontext)()


def inner_module(module):
    """Return the module, or the original module inside a ``torch.compile`` wrapper.

    Save this one's ``state_dict``: a compiled module prefixes its keys with ``_orig_mod.``.
    """
    return getattr(module, "_orig_mod", module)


def check_monitored_scores(callbacks, *, has_validation, owner):
    """Refuse callbacks that monitor a validation score no fit without validation writes.

    skorch's ``EarlyStopping()`` monitors ``valid_loss`` by default; without a validation
    split that key never exists and skorch fails with a bare ``KeyError: 'valid_loss'``.

    Parameters
    ----------
    callbacks : list of skorch callbacks or (name, callback) tuples, or None
        The estimator's ``callbacks``.
    has_validation : bool
        Whether ``validation_fraction`` is set.
    owner : str
        Estimator name for the message.

    Raises
    ------
    ValueError
        If a callback monitors a ``valid_*`` score and there is no validation split.
    """
    if has_validation:
        return
    for item in callbacks or []:
        callback = item[1] if isinstance(item, (tuple, list)) else item
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("valid_"):
            raise ValueError(
                f"{owner}: callback {type(callback).__name__} monitors {monitor!r}, which "
                "only a validation split writes, but validation_fraction=None. Set "
                "validation_fraction (e.g. 0.2), or monitor 'train_loss' "
                f"({type(callback).__name__}(monitor='train_loss'))."
            )
