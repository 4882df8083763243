"""The optimizer step (fused AdamW) and the per-epoch logging without per-batch syncs."""

from unittest import mock

import numpy as np
import pytest
import torch

from sklearn_tcssl import TemporalContrastiveEmbedder
from sklearn_tcssl._training.net import fused_adamw_supported, optimizer_options

FAST = {"n_components": 6, "max_epochs": 3, "batch_size": 8, "random_state": 0}


def _steps(**options):
    torch.manual_seed(0)
    layer = torch.nn.Linear(300, 40)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-2, weight_decay=1e-4, **options)
    x = torch.randn(64, 300)
    for _ in range(20):
        optimizer.zero_grad()
        layer(x).square().mean().backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in layer.parameters()])


@pytest.mark.skipif(not fused_adamw_supported("cpu"), reason="no fused AdamW on this CPU")
def test_fused_adamw_agrees_with_the_default_step_and_is_reproducible():
    assert optimizer_options(torch.device("cpu")) == {"optimizer__fused": True}
    fused = _steps(fused=True)
    torch.testing.assert_close(fused, _steps(), rtol=1e-5, atol=1e-6)
    assert torch.equal(fused, _steps(fused=True))


def test_embedder_uses_the_fused_step_and_refits_identically():
    X = np.random.default_rng(0).normal(size=(16, 30, 5)).astype(np.float32)
    first = TemporalContrastiveEmbedder(**FAST).fit(X)
    group = first.net_.optimizer_.param_groups[0]
    assert group["fused"] == fused_adamw_supported("cpu")
    again = TemporalContrastiveEmbedder(**FAST).fit(X)
    assert np.array_equal(first.transform(X), again.transform(X))


def test_pretext_accuracy_is_read_once_per_epoch_not_per_batch():
    X = np.random.default_rng(0).normal(size=(16, 30, 5)).astype(np.float32)
    reads = {"n": 0}
    item = torch.Tensor.item

    def counted(self):
        reads["n"] += 1
        return item(self)

    with mock.patch.object(torch.Tensor, "item", counted):
        embedder = TemporalContrastiveEmbedder(**FAST).fit(X)
    n_batches = sum(len(row["batches"]) for row in embedder.history_)
    assert n_batches == 18  # 16 x (30 // 9) = 48 windows: 6 batches of 8, 3 epochs
    # skorch reads each batch's loss; the accuracy adds no read per batch
    assert reads["n"] <= n_batches + 2 * len(embedder.history_)
    accuracy = embedder.history_[:, "train_pretext_acc"]
    assert len(accuracy) == 3 and all(0 <= a <= 1 for a in accuracy)
