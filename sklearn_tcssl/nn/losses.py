"""The beginning/middle/end temporal-contrastive loss of Shi et al. (2023).

Each window is cut into a beginning, a middle and an end segment; the end (anchor) must be
closer in cosine similarity to the middle, its neighbour in time, than to the beginning. The
``"batch"`` form also teaches the encoder to tell sequences apart (what a downstream decoder
needs); ``"pair"`` is the paper's form.
"""

import torch
from torch import nn
from torch.nn import functional as F

from sklearn_tcssl._utils.docs import fill_doc

NEGATIVES = ("pair", "batch")


@fill_doc
def temporal_contrastive_logits(
    z_begin, z_middle, z_end, *, temperature=0.1, negatives="batch", gather=None
):
    """Compute the logits of the contrastive task.

    The target of row ``i`` is column 0 for ``"pair"`` and column ``i`` for ``"batch"``
    (``offset + i`` with ``gather``).

    Parameters
    ----------
    %(loss_inputs)s

    Returns
    -------
    logits : torch.Tensor
        ``(batch, 2)`` (positive, negative) for ``"pair"``; ``(batch, 2 * n)`` for
        ``"batch"``: the middles, then the beginnings, of the ``n`` windows of the batch.
    """
    return _logits_and_targets(z_begin, z_middle, z_end, temperature, negatives, gather)[0]


def _logits_and_targets(z_begin, z_middle, z_end, temperature, negatives, gather):
    zb, zm, ze = (F.normalize(z, dim=-1, eps=1e-8) for z in (z_begin, z_middle, z_end))
    if negatives == "pair":
        logits = torch.stack([(ze * zm).sum(-1), (ze * zb).sum(-1)], dim=1)  # (B, 2)
        return logits / temperature, torch.zeros(len(ze), dtype=torch.long, device=ze.device)
    if negatives == "batch":
        offset = 0
        if gather is not None:  # candidates of every process: (N, D), N = world * B
            (zm, offset), (zb, _) = gather(zm), gather(zb)
        logits = ze @ torch.cat([zm, zb], dim=0).T  # (B, 2N)
        return logits / temperature, torch.arange(offset, offset + len(ze), device=ze.device)
    raise ValueError(f"negatives={negatives!r} is not supported; use one of {NEGATIVES}.")


@fill_doc
def temporal_contrastive_loss(
    z_begin, z_middle, z_end, *, temperature=0.1, negatives="batch", gather=None
):
    """Mean cross-entropy of :func:`temporal_contrastive_logits` against their targets.

    Parameters
    ----------
    %(loss_inputs)s

    Returns
    -------
    loss : torch.Tensor
        Scalar loss.
    """
    logits, targets = _logits_and_targets(z_begin, z_middle, z_end, temperature, negatives, gather)
    return F.cross_entropy(logits, targets)


def pretext_accuracy(z_begin, z_middle, z_end):
    """Fraction of windows whose end is closer to the middle than to the beginning.

    Parameters
    ----------
    z_begin, z_middle, z_end : torch.Tensor of shape (batch, dim)
        Embeddings or projections of the three segments.

    Returns
    -------
    accuracy : torch.Tensor
        Scalar in [0, 1]; 0.5 is chance.
    """
    cos = temporal_contrastive_logits(z_begin, z_middle, z_end, temperature=1, negatives="pair")
    return (cos[:, 0] > cos[:, 1]).float().mean()


@fill_doc
class TemporalContrastiveLoss(nn.Module):
    """Module form of :func:`temporal_contrastive_loss`, used as the skorch criterion.

    Parameters
    ----------
    %(loss_options)s
    """

    def __init__(self, temperature=0.1, negatives="batch", gather=None):
        super().__init__()
        self.temperature = temperature
        self.negatives = negatives
        self.gather = gather

    @fill_doc
    def forward(self, z_begin, z_middle, z_end):
        """Return the loss of a batch of windows.

        Parameters
        ----------
        %(segment_projections)s

        Returns
        -------
        loss : torch.Tensor
            Scalar loss.
        """
        return temporal_contrastive_loss(
            z_begin,
            z_middle,
            z_end,
            temperature=self.temperature,
            negatives=self.negatives,
            gather=self.gather,
        )
