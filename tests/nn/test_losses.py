import math

import pytest
import torch

from sklearn_tcssl.nn.losses import (
    TemporalContrastiveLoss,
    pretext_accuracy,
    temporal_contrastive_logits,
    temporal_contrastive_loss,
)

# Two windows in 2D, chosen so that cosine similarities are easy to compute by hand.
ZB = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # beginnings
ZM = torch.tensor([[1.0, 1.0], [0.0, 2.0]])  # middles
ZE = torch.tensor([[2.0, 0.0], [0.0, 1.0]])  # ends (anchors)
R = 1 / math.sqrt(2)


def _ce(logits, target):
    return -logits[target] + math.log(sum(math.exp(v) for v in logits))


def test_pair_loss_matches_hand_computation():
    t = 0.5
    # anchor 0: cos(e0, m0) = 1/sqrt2, cos(e0, b0) = 0; anchor 1: cos(e1, m1) = 1, cos(e1, b1) = 0
    expected = (_ce([R / t, 0.0], 0) + _ce([1 / t, 0.0], 0)) / 2
    loss = temporal_contrastive_loss(ZB, ZM, ZE, temperature=t, negatives="pair")
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_batch_loss_matches_hand_computation():
    t = 0.5
    # candidates [m0, m1, b0, b1]; cosines of e0 = [R, 0, 0, 1]; of e1 = [R, 1, 1, 0]
    row0 = [R / t, 0.0, 0.0, 1 / t]
    row1 = [R / t, 1 / t, 1 / t, 0.0]
    expected = (_ce(row0, 0) + _ce(row1, 1)) / 2
    loss = temporal_contrastive_loss(ZB, ZM, ZE, temperature=t, negatives="batch")
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    logits = temporal_contrastive_logits(ZB, ZM, ZE, temperature=t, negatives="batch")
    assert logits.shape == (2, 4)


def test_module_form_equals_function():
    module = TemporalContrastiveLoss(temperature=0.2, negatives="pair")
    expected = temporal_contrastive_loss(ZB, ZM, ZE, temperature=0.2, negatives="pair")
    assert module(ZB, ZM, ZE).item() == pytest.approx(expected.item())


def test_pretext_accuracy_by_hand():
    # anchor 0 is closer to its middle (R > 0); anchor 1 too (1 > 0)
    assert pretext_accuracy(ZB, ZM, ZE).item() == 1.0
    # swapping beginning and middle makes every anchor wrong
    assert pretext_accuracy(ZM, ZB, ZE).item() == 0.0


def test_loss_is_scale_invariant_and_finite_on_zeros():
    loss = temporal_contrastive_loss(ZB, ZM, ZE)
    assert temporal_contrastive_loss(3 * ZB, 3 * ZM, 3 * ZE).item() == pytest.approx(loss.item())
    zeros = torch.zeros(2, 2)
    assert torch.isfinite(temporal_contrastive_loss(zeros, zeros, zeros))


def test_unknown_negatives():
    with pytest.raises(ValueError, match="negatives='all'"):
        temporal_contrastive_loss(ZB, ZM, ZE, negatives="all")


def test_gradient_pulls_end_toward_middle():
    ze = ZE.clone().requires_grad_(True)
    loss = temporal_contrastive_loss(ZB, ZM, ze, negatives="pair")
    loss.backward()
    stepped = ze - 0.1 * ze.grad
    after = temporal_contrastive_loss(ZB, ZM, stepped, negatives="pair")
    assert after.item() < loss.item()
