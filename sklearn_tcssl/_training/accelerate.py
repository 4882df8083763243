"""Multi-GPU / multi-node pretraining through skorch's ``AccelerateMixin`` (optional extra).

With ``TemporalContrastiveEmbedder(accelerator=...)``, started by ``accelerate launch`` (see
``docs/scale_out.rst``), the embedder trains an :class:`AcceleratedTemporalContrastiveNet`:
the accelerator places devices (``device=None``), shards the batches over processes, wraps
the module in ``DistributedDataParallel`` and applies its own mixed precision; the
estimator's ``precision`` and ``device`` are then unused. ``clone`` deep-copies parameters:
accelerate 0.21 and later return the accelerator itself from ``copy.deepcopy``, so clones
share it (older releases are refused). The ``"batch"`` loss gathers every process's
candidates (:class:`AcceleratorGather`), as on one device.
"""

import copy

import torch
from skorch.hf import AccelerateMixin

from sklearn_tcssl._training.net import TemporalContrastiveNet


class AcceleratedTemporalContrastiveNet(AccelerateMixin, TemporalContrastiveNet):
    """:class:`~sklearn_tcssl._training.net.TemporalContrastiveNet` trained through Accelerate."""

    def _initialize_accelerator(self):
        """Prepare as skorch does, leaving the loss (no trainable parameters) out of DDP."""
        criteria = self._criteria
        self._criteria = [name for name in criteria if _trainable(getattr(self, name + "_"))]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria


def _trainable(module):
    return isinstance(module, torch.nn.Module) and any(
        p.requires_grad for p in module.parameters()
    )


def gather_with_local_grad(z, all_gather, rank):
    """Stack every process's ``z`` (batch, dim), keeping this process's rows differentiable.

    ``all_gather`` concatenates a tensor of every process in process order (e.g.
    ``accelerator.gather``). Returns ``(z_all, offset)``: rows ``offset:offset + batch`` of
    ``z_all`` are ``z`` itself, ``offset = rank * batch``.
    """
    gathered = all_gather(z.detach().contiguous())  # (W * B, D), no gradient
    n = z.shape[0]
    offset = rank * n
    return torch.cat([gathered[:offset], z, gathered[offset + n :]]), offset


class AcceleratorGather:
    """The ``gather`` of :class:`~sklearn_tcssl.nn.losses.TemporalContrastiveLoss` for Accelerate.

    ``accelerator`` provides ``gather``, ``process_index`` and ``num_processes``.
    """

    def __init__(self, accelerator):
        self.accelerator = accelerator

    def __call__(self, z):
        """Gather ``z`` of every process; return ``(z_all, offset)``."""
        if self.accelerator.num_processes == 1:
            return z, 0
        return gather_with_local_grad(z, self.accelerator.gather, self.accelerator.process_index)


def accelerated_net_kwargs(accelerator, compute_kwargs):
    """Return the net class and its keyword arguments for training through ``accelerator``.

    ``compute_kwargs`` come from :func:`~sklearn_tcssl._training.net.compute_options`; the
    accelerator replaces their precision and pinned-memory settings.
    """
    try:
        import accelerate  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "accelerator=... needs the 'accelerate' package, which is not installed. Install "
            "it with: pip install 'sklearn-tcssl[accelerate]' (or pip install accelerate)."
        ) from exc
    if copy.deepcopy(accelerator) is not accelerator:  # accelerate before 0.21
        raise ValueError(
            f"accelerator={type(accelerator).__name__}(...) is copied by deepcopy, so "
            "scikit-learn's clone (cross_val_score, GridSearchCV) would give every fold an "
            "accelerator that has lost its gradient state. Upgrade accelerate: pip install "
            "'accelerate>=0.30' (its Accelerator returns itself from deepcopy)."
        )
    kwargs = {k: v for k, v in compute_kwargs.items() if "pin_memory" not in k}
    kwargs.update(precision="32", accelerator=accelerator, device=None)
    kwargs["criterion__gather"] = AcceleratorGather(accelerator)  # in-batch negatives
    return AcceleratedTemporalContrastiveNet, kwargs
