"""In-batch negatives across processes, fixed validation windows, cross_validate in reports."""

import numpy as np
import pytest
import torch
from _helpers import smooth_sequences

from sklearn_tcssl import TemporalContrastiveEmbedder
from sklearn_tcssl._training.accelerate import AcceleratorGather, gather_with_local_grad
from sklearn_tcssl._training.net import SequenceValidSplit
from sklearn_tcssl.nn.losses import temporal_contrastive_logits, temporal_contrastive_loss
from sklearn_tcssl.nn.windows import TripletWindowDataset, window_loader


class FakeAccelerator:
    """Process ``rank`` of ``world`` whose ``gather`` returns every process's rows."""

    def __init__(self, rank, shards):
        self.process_index, self.num_processes, self.shards = rank, len(shards), shards

    def gather(self, z):
        assert not z.requires_grad
        shards = [s.detach() for s in self.shards]
        shards[self.process_index] = z
        return torch.cat(shards)


def _projections(n, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, dim, generator=g) for _ in range(3)]


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_gathered_batch_loss_equals_the_one_device_loss(rank):
    world, per_process = 3, 4
    zb, zm, ze = _projections(world * per_process)
    rows = slice(rank * per_process, (rank + 1) * per_process)
    # one device: the whole batch; its loss for this process's anchors
    full = temporal_contrastive_logits(zb, zm, ze, temperature=0.2)
    target = torch.arange(world * per_process)
    expected = torch.nn.functional.cross_entropy(full[rows], target[rows])
    # this process: its own rows, candidates gathered from the (fake) others
    local = [z[rows].clone().requires_grad_(True) for z in (zb, zm, ze)]
    calls = iter([zm.split(per_process), zb.split(per_process)])  # the loss gathers m, then b

    def gather(z):
        shards = [_n(s) for s in next(calls)]
        return AcceleratorGather(FakeAccelerator(rank, shards))(z)

    loss = temporal_contrastive_loss(*local, temperature=0.2, gather=gather)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(z.grad is not None and torch.isfinite(z.grad).all() for z in local)


def _n(z):
    return torch.nn.functional.normalize(z, dim=-1, eps=1e-8)


def test_gather_keeps_gradients_on_local_rows_only():
    z = torch.randn(2, 3, requires_grad=True)
    others = torch.randn(4, 3)
    z_all, offset = gather_with_local_grad(
        z, lambda t: torch.cat([others[:2], t, others[2:]]), rank=1
    )
    assert offset == 2 and z_all.shape == (6, 3)
    z_all.sum().backward()
    assert torch.equal(z.grad, torch.ones(2, 3))


def test_one_process_gather_is_the_identity():
    z = torch.randn(4, 3)
    single = FakeAccelerator(0, [z])
    assert AcceleratorGather(single)(z) == (z, 0)


def test_validation_holds_out_whole_sequences_with_fixed_windows():
    tensors = [torch.full((30, 4), float(i)) for i in range(10)]
    dataset = TripletWindowDataset(tensors, 3)
    train, valid = SequenceValidSplit(0.3, seed=1)(dataset)
    held = {float(s[0, 0]) for s in valid.sequences}
    assert len(held) == 3  # ceil(0.3 * 10) whole sequences, none on both sides
    assert not held & {float(s[0, 0]) for s in train.sequences}
    assert len(valid) + len(train) == len(dataset)
    first = [draws for draws in window_loader(valid, 4, seed=1).batch_sampler]
    again = [draws for draws in window_loader(valid, 4, seed=1).batch_sampler]
    assert first == again


def test_valid_loss_is_steady_when_the_model_does_not_move():
    X = smooth_sequences(20, 30, 5)
    embedder = TemporalContrastiveEmbedder(
        n_components=4,
        max_epochs=3,
        batch_size=4,
        lr=1e-12,
        weight_decay=0.0,
        validation_fraction=0.3,
        random_state=0,
    ).fit(X)
    valid = embedder.history_[:, "valid_loss"]
    np.testing.assert_allclose(valid, valid[0], rtol=1e-5)
    assert len(set(np.round(embedder.history_[:, "train_loss"], 6))) > 1  # fresh windows
