"""The model card's schema and the architecture derived from tensor shapes (_card.py)."""

import pytest

from sklearn_tcssl import IncompatibleModelError
from sklearn_tcssl.io._card import ENCODER_FIELDS, derive_architecture, validate_card
from sklearn_tcssl.nn.encoders import TimeSeriesEncoder
from sklearn_tcssl.nn.volume import VolumeEncoder


def _shapes(module):
    return {f"encoder.{k}": tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (
            TimeSeriesEncoder(7, 5, kernel_size=5, n_blocks=2, projection_dim=6),
            {"n_features": 7, "n_components": 5, "kernel_size": 5, "n_blocks": 2},
        ),
        (
            VolumeEncoder((6, 7, 5), 5, channels=3, pool_size=2, n_blocks=0),
            {"channels": 3, "pool_size": 2, "n_components": 5, "n_blocks": 0},
        ),
    ],
)
def test_architecture_is_derived_from_tensor_shapes(module, expected):
    derived = derive_architecture(_shapes(module), type(module).__name__, where="f")
    assert {k: derived[k] for k in expected} == expected
    assert set(derived) - {"n_components", "kernel_size", "n_blocks", "projection_dim"} <= set(
        ENCODER_FIELDS[type(module).__name__]
    )


def _card(**architecture):
    base = {"name": "VolumeEncoder", "n_components": 5, "kernel_size": 3, "n_blocks": 1}
    return {
        "format_version": 1,
        "estimator": "TemporalContrastiveEmbedder",
        "params": {},
        "architecture": {**base, "projection_dim": 4, **architecture},
        "n_features_in": 210,
        "univariate": False,
    }


def test_volume_encoder_fields_are_checked():
    validate_card(_card(grid_shape=[6, 7, 5], channels=3, pool_size=2), where="f")
    with pytest.raises(IncompatibleModelError, match=r"'architecture\.grid_shape' is \[6, 0, 5\]"):
        validate_card(_card(grid_shape=[6, 0, 5], channels=3, pool_size=2), where="f")
    with pytest.raises(IncompatibleModelError, match=r"no field 'architecture\.channels'"):
        validate_card(_card(grid_shape=[6, 7, 5], pool_size=2), where="f")
