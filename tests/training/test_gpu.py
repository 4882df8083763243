"""The GPU path: precision, pinned memory, DataLoader workers, torch.compile.

Tests marked ``gpu`` need CUDA and are skipped by the default run; the others check on the CPU
that the same settings are harmless there.
"""

import numpy as np
import pytest
import torch
from _helpers import smooth_sequences

from sklearn_tcssl import TemporalContrastiveEmbedder
from sklearn_tcssl._training.net import compute_options, resolve_precision
from sklearn_tcssl.io._registry import uncompiled
from sklearn_tcssl.nn.windows import TripletWindowDataset, window_loader

FAST = {"n_components": 8, "max_epochs": 2, "batch_size": 8, "random_state": 0}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _forward_dtypes(embedder):
    """Record the dtype of the encoder's first layer output during training."""
    seen = []
    embedder.net_.module_.spatial.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    return seen


def test_cpu_defaults_are_float32_unpinned():
    options = compute_options(
        device=torch.device("cpu"), precision="auto", num_workers=0, compile=False
    )
    assert options["precision"] == "32"
    assert not options["iterator_train__pin_memory"]
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    embedder = TemporalContrastiveEmbedder(**FAST).fit(smooth_sequences(16, 12, 10))
    assert embedder.net_.precision == "32"
    assert embedder.net_.compile is False


def test_bf16_autocast_on_cpu_trains_and_embeds_float32():
    sequences = smooth_sequences(16, 12, 10)
    embedder = TemporalContrastiveEmbedder(precision="bf16", **FAST).fit(sequences)
    assert embedder.net_.precision == "bf16"
    seen = _forward_dtypes(embedder)
    Z = embedder.transform(sequences)
    assert seen == [torch.bfloat16]
    assert Z.dtype == np.float32
    assert np.isfinite(Z).all()
    assert np.isfinite(embedder.history_[:, "train_loss"]).all()
    reference = TemporalContrastiveEmbedder(precision="32", **FAST).fit(sequences)
    np.testing.assert_allclose(Z, reference.transform(sequences), atol=0.5)


def _loader_offsets(seed, num_workers):
    sequence = torch.arange(60, dtype=torch.float32)[:, None]  # value = time index
    dataset = TripletWindowDataset([sequence] * 40, segment_length=2)
    torch.manual_seed(seed)
    loader = window_loader(dataset, 10, shuffle=True, num_workers=num_workers)
    return [batch[:, 0, 0, 0].tolist() for batch, _ in loader]  # window starts per batch


def test_workers_get_windows_drawn_in_the_main_process():
    batches = _loader_offsets(0, num_workers=2)
    # the sampler draws every window in the main process: workers only gather, so the
    # batches do not depend on the number of workers and differ from batch to batch
    assert batches == _loader_offsets(0, num_workers=0)
    assert batches[0] != batches[1]
    assert _loader_offsets(1, num_workers=2) != batches


def test_embedder_with_workers_is_reproducible():
    sequences = smooth_sequences(16, 12, 10)
    params = {**FAST, "num_workers": 2}
    first = TemporalContrastiveEmbedder(**params).fit(sequences)
    second = TemporalContrastiveEmbedder(**params).fit(sequences)
    assert first.net_.get_params()["iterator_train__num_workers"] == 2
    np.testing.assert_array_equal(first.transform(sequences), second.transform(sequences))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"precision": "fp16"}, r"precision='fp16' is not allowed\. .* a str among \{'"),
        ({"num_workers": -1}, r"num_workers=-1 is not allowed\. .* int in the range \[0, inf\)"),
        ({"compile": "yes"}, r"compile='yes' is not allowed\. .* an instance of 'bool'"),
    ],
)
def test_compute_parameter_errors(params, match):
    with pytest.raises(ValueError, match=match):
        TemporalContrastiveEmbedder(**FAST, **params).fit(smooth_sequences(4, 12, 5))


@pytest.mark.slow
def test_compile_on_cpu_saves_inner_state():
    sequences = smooth_sequences(16, 12, 10)
    embedder = TemporalContrastiveEmbedder(compile=True, **FAST).fit(sequences)
    module = embedder.net_.module_
    assert any(key.startswith("_orig_mod.") for key in module.state_dict())
    state = uncompiled(module).state_dict()
    assert not any(key.startswith("_orig_mod.") for key in state)
    reference = TemporalContrastiveEmbedder(**FAST).fit(sequences)
    assert state.keys() == reference.net_.module_.state_dict().keys()
    np.testing.assert_allclose(
        embedder.transform(sequences), reference.transform(sequences), atol=1e-4
    )


# ------------------------------------------------------------- on a GPU
@pytest.mark.gpu
@needs_cuda
def test_cuda_auto_precision_pinned_workers():
    sequences = smooth_sequences(64, 20, 50)
    embedder = TemporalContrastiveEmbedder(num_workers=2, device="cuda", **FAST).fit(sequences)
    params = embedder.net_.get_params()
    assert params["iterator_train__pin_memory"] is True
    expected = "bf16" if torch.cuda.is_bf16_supported() else "32"
    assert embedder.net_.precision == expected
    seen = _forward_dtypes(embedder)
    Z = embedder.transform(sequences)
    assert seen == [torch.bfloat16 if expected == "bf16" else torch.float32]
    assert Z.dtype == np.float32
    assert np.isfinite(Z).all()
    assert embedder.device_.type == "cuda"


@pytest.mark.gpu
@needs_cuda
def test_cuda_float32_matches_cpu_closely():
    sequences = smooth_sequences(32, 20, 30)
    gpu = TemporalContrastiveEmbedder(device="cuda", precision="32", **FAST).fit(sequences)
    cpu = TemporalContrastiveEmbedder(device="cpu", **FAST).fit(sequences)
    np.testing.assert_allclose(gpu.transform(sequences), cpu.transform(sequences), atol=1e-2)


@pytest.mark.gpu
@needs_cuda
def test_cuda_compile():
    sequences = smooth_sequences(32, 20, 30)
    embedder = TemporalContrastiveEmbedder(device="cuda", compile=True, **FAST).fit(sequences)
    state = uncompiled(embedder.net_.module_).state_dict()
    assert not any(key.startswith("_orig_mod.") for key in state)
    assert np.isfinite(embedder.transform(sequences)).all()


@pytest.mark.gpu
@needs_cuda
def test_cuda_volumes(tmp_path):
    from _helpers import VOLUME_FAST, mixed_volume_images

    images = mixed_volume_images(tmp_path, n_each=2)
    embedder = TemporalContrastiveEmbedder(device="cuda", num_workers=2, **VOLUME_FAST)
    Z = embedder.fit(images).transform(images)
    assert Z.shape == (4, 8)
    assert np.isfinite(Z).all()
