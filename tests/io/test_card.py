"""The model card's schema, and the tensors its architecture implies (_card.py)."""

import pytest

from sklearn_tcssl import IncompatibleModelError
from sklearn_tcssl.io._card import ENCODER_FIELDS, check_card, validate_card
from sklearn_tcssl.io._registry import encoder_config
from sklearn_tcssl.nn.encoders import TimeSeriesEncoder
from sklearn_tcssl.nn.volume import VolumeEncoder


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


@pytest.mark.parametrize(
    ("module", "n_features"),
    [
        (TimeSeriesEncoder(7, 5, kernel_size=5, n_blocks=2, projection_dim=6), 7),
        (VolumeEncoder((6, 7, 5), 5, channels=3, pool_size=2, n_blocks=1), 210),
    ],
)
def test_every_architecture_size_must_agree_with_the_tensors(module, n_features):
    card = {**_card(), "architecture": encoder_config(module), "n_features_in": n_features}
    header = {
        f"encoder.{k}": {"dtype": "F32", "shape": list(v.shape)}
        for k, v in module.state_dict().items()
    }
    for name in ("standardization.mean", "standardization.scale"):
        header[name] = {"dtype": "F64", "shape": [n_features]}
    check_card(card, header, where="f")
    sizes = ["n_components", "kernel_size", "n_blocks", "projection_dim"]
    for key in sizes + sorted(set(ENCODER_FIELDS[type(module).__name__]) - {"grid_shape"}):
        architecture = {**card["architecture"], key: card["architecture"][key] + 1}
        with pytest.raises(IncompatibleModelError, match="card"):
            check_card({**card, "architecture": architecture}, header, where="f")


def test_volume_encoder_fields_are_checked():
    validate_card(_card(grid_shape=[6, 7, 5], channels=3, pool_size=2), where="f")
    with pytest.raises(IncompatibleModelError, match=r"'architecture\.grid_shape' is \[6, 0, 5\]"):
        validate_card(_card(grid_shape=[6, 0, 5], channels=3, pool_size=2), where="f")
    with pytest.raises(IncompatibleModelError, match=r"no field 'architecture\.channels'"):
        validate_card(_card(grid_shape=[6, 7, 5], pool_size=2), where="f")


def test_unknown_encoder_is_refused_by_name():
    with pytest.raises(IncompatibleModelError, match=r"encoder is 'GraphEncoder'.*Upgrade"):
        validate_card(_card(name="GraphEncoder"), where="f")


def test_sizes_beyond_what_torch_can_build_are_refused():
    module = VolumeEncoder((6, 7, 5), 5, channels=3, pool_size=2, n_blocks=1)
    card = {**_card(), "architecture": {**encoder_config(module), "channels": 2**40}}
    header = {"encoder.spatial.linear.weight": {"dtype": "F32", "shape": [5, 24]}}
    with pytest.raises(IncompatibleModelError, match=r"builds no VolumeEncoder"):
        check_card(card, header, where="f")
