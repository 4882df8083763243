"""Private skorch network shared by the estimators: the contrastive objective in ``get_loss``."""

import math

import torch
from skorch import NeuralNet

from sklearn_tcssl._exceptions import TrainingDivergedError
from sklearn_tcssl.nn.losses import pretext_accuracy


class TemporalContrastiveNet(NeuralNet):
    """skorch ``NeuralNet`` whose module maps windows to ``(batch, 3, dim)`` projections.

    Only :meth:`get_loss` is overridden: it splits the projections into beginning, middle and
    end, applies the criterion (a :class:`~sklearn_tcssl.nn.losses.TemporalContrastiveLoss`),
    records the batch's pretext accuracy in the history (``train_pretext_acc`` or
    ``valid_pretext_acc``; a ``PassthroughScoring`` callback averages it per epoch), and stops
    training with :class:`~sklearn_tcssl.TrainingDivergedError` on a non-finite loss.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Temporal-contrastive loss of a batch; ``y_true`` is a dummy and is ignored."""
        z_begin, z_middle, z_end = y_pred.unbind(dim=1)  # 3 x (B, P)
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
