"""Private skorch network shared by the estimators: the contrastive objective in ``get_loss``."""

import contextlib
import math

import numpy as np
import torch
from skorch import NeuralNet

from sklearn_tcssl._training.callbacks import PretextMonitor
from sklearn_tcssl._training.interrupt import InterruptibleMixin
from sklearn_tcssl.nn.losses import pretext_accuracy


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

    :meth:`get_loss` splits the projections into beginning, middle and end and applies the
    criterion (a :class:`~sklearn_tcssl.nn.losses.TemporalContrastiveLoss`); a default
    callback (:class:`~sklearn_tcssl._training.callbacks.PretextMonitor`) records the
    epoch's pretext accuracy (``train_pretext_acc`` or ``valid_pretext_acc``) and stops
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

    def get_default_callbacks(self):
        """Return skorch's defaults with :class:`PretextMonitor` before the printed log."""
        defaults = list(super().get_default_callbacks())
        at = next((i for i, (name, _) in enumerate(defaults) if name == "print_log"), None)
        defaults.insert(len(defaults) if at is None else at, ("pretext", PretextMonitor()))
        return defaults

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Temporal-contrastive loss of a batch; ``y_true`` is a dummy and is ignored.

        The batch's pretext accuracy is added to a running sum on the device (no host
        synchronisation); :class:`PretextMonitor` turns it into the epoch's
        ``train_pretext_acc`` / ``valid_pretext_acc`` and stops a diverging fit.
        """
        z_begin, z_middle, z_end = y_pred.float().unbind(dim=1)  # 3 x (B, P), float32
        loss = self.criterion_(z_begin, z_middle, z_end)
        with torch.no_grad():
            correct = pretext_accuracy(z_begin, z_middle, z_end) * len(z_end)
        sums = vars(self).setdefault("pretext_sums_", {})
        total, count = sums.get(bool(training), (0.0, 0))
        sums[bool(training)] = (total + correct, count + len(z_end))
        return loss

    def divergence_message(self, value):
        """Say where the loss became ``value`` (non-finite) and what to try."""
        epoch = len(self.history)
        batch = len(self.history[-1, "batches"]) if epoch else 0
        shown = "nan" if math.isnan(value) else value
        return (
            f"The contrastive loss became {shown} at epoch {epoch}, batch {batch}. Training "
            "was stopped so that no NaN embedding is produced. Try a lower lr (e.g. divide it "
            "by 10), a higher temperature, and check that the input has no huge values "
            "(standardize=True rescales each feature)."
        )


class SequenceValidSplit:
    """skorch ``train_split`` holding out whole sequences, their windows fixed across epochs.

    A window dataset gives each sequence several windows per epoch (in proportion to its
    length); splitting windows would put parts of one sequence on both sides. Here a seeded
    permutation holds out ``ceil(cv * n_sequences)`` sequences
    (:meth:`~sklearn_tcssl.nn.windows.TripletWindowDataset.subset`). Training windows are
    drawn afresh every epoch; the validation loader's sampler is seeded (``seed``, passed as
    ``iterator_valid__seed``), so every epoch scores the *same* windows and ``valid_loss``
    changes only when the model does (a steady signal for ``EarlyStopping``).

    Parameters
    ----------
    cv : float
        Fraction of the sequences held out, in (0, 1).
    seed : int
        Seed of the split.
    """

    def __init__(self, cv, *, seed):
        self.cv = cv
        self.seed = int(seed)

    def __call__(self, dataset, y=None, groups=None):
        """Split ``dataset`` by sequence; return ``(train, valid)`` window datasets."""
        n_sequences = len(dataset.sequences)
        n_valid = int(np.ceil(self.cv * n_sequences))
        order = np.random.RandomState(self.seed).permutation(n_sequences)
        held = np.sort(order[:n_valid])
        return dataset.subset(np.setdiff1d(np.arange(n_sequences), held)), dataset.subset(held)


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
    off on the CPU), the autocast precision, ``torch.compile`` and the fused AdamW step
    (:func:`optimizer_options`).

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
        **optimizer_options(device),
    }


_FUSED = {}


def fused_adamw_supported(device):
    """Whether ``torch.optim.AdamW(fused=True)`` runs on ``device``'s type (tried once)."""
    kind = torch.device(device).type
    if kind not in _FUSED:
        try:
            weight = torch.zeros(1, device=kind, requires_grad=True)
            weight.grad = torch.zeros_like(weight)
            torch.optim.AdamW([weight], fused=True).step()
            _FUSED[kind] = True
        except (RuntimeError, TypeError, ValueError):
            _FUSED[kind] = False
    return _FUSED[kind]


def optimizer_options(device):
    """Return the skorch arguments of the AdamW step: fused where torch supports it.

    The fused step (one kernel for every parameter) is several times faster than the default
    on large layers (50,000 inputs: 8.6 ms against 38 ms on a CPU) and agrees with it within
    float32 rounding; ``foreach`` is the fallback elsewhere. Either is deterministic for a
    given device and thread count.

    Parameters
    ----------
    device : torch.device
        The training device.

    Returns
    -------
    kwargs : dict
        ``{"optimizer__fused": True}`` or ``{"optimizer__foreach": True}``.
    """
    if fused_adamw_supported(device):
        return {"optimizer__fused": True}
    return {"optimizer__foreach": True}


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
