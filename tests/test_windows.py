import pytest
import torch

from sklearn_tcssl.nn.windows import TripletWindowDataset


def test_windows_are_contiguous_segments():
    sequence = torch.arange(20, dtype=torch.float32)[:, None].repeat(1, 3)  # value = time index
    dataset = TripletWindowDataset([sequence], segment_length=4)
    window, target = dataset[0]
    assert window.shape == (3, 4, 3)
    assert target == 0
    times = window[..., 0].flatten()
    assert torch.equal(times, torch.arange(times[0], times[0] + 12))


def test_offsets_cover_the_sequence_and_change_between_draws():
    sequence = torch.arange(30, dtype=torch.float32)[:, None]
    dataset = TripletWindowDataset([sequence], segment_length=3)
    starts = {int(dataset[0][0][0, 0, 0]) for _ in range(300)}
    assert starts == set(range(30 - 9 + 1))


def test_seeded_generator_is_reproducible():
    sequences = [torch.randn(25, 2) for _ in range(5)]
    draw = [
        TripletWindowDataset(sequences, 2, generator=torch.Generator().manual_seed(3))[i][0]
        for i in range(5)
    ]
    again = [
        TripletWindowDataset(sequences, 2, generator=torch.Generator().manual_seed(3))[i][0]
        for i in range(5)
    ]
    assert all(torch.equal(a, b) for a, b in zip(draw, again))


def test_exact_length_sequence_has_one_window():
    sequence = torch.randn(9, 2)
    window, _ = TripletWindowDataset([sequence], 3)[0]
    assert torch.equal(window.reshape(9, 2), sequence)


def test_too_short_sequence_raises():
    with pytest.raises(ValueError, match="Sequence 1 has 5 time points"):
        TripletWindowDataset([torch.randn(9, 2), torch.randn(5, 2)], 2)


def test_windows_cover_long_sequences():
    import torch

    from sklearn_tcssl.nn.windows import TripletWindowDataset, windows_per_sequence

    sequences = [torch.zeros(946, 4), torch.zeros(9, 4), torch.zeros(20, 4)]
    dataset = TripletWindowDataset(sequences, segment_length=3)
    assert list(windows_per_sequence([946, 9, 20], 9)) == [105, 1, 2]
    assert len(dataset) == 108
    assert dataset[107][0].shape == (3, 3, 4)


def test_embedder_history_counts_steps():
    import numpy as np

    from sklearn_tcssl import TemporalContrastiveEmbedder

    X = np.random.default_rng(0).normal(size=(8, 60, 6)).astype("float32")
    embedder = TemporalContrastiveEmbedder(
        n_components=4, segment_length=5, max_epochs=3, batch_size=8, random_state=0
    ).fit(X)
    # 8 runs x (60 // 15) = 32 windows an epoch, 4 steps of 8
    assert embedder.history_[:, "n_steps"] == [4, 8, 12]


def test_batches_are_not_capped_by_the_number_of_long_runs():
    import numpy as np

    from sklearn_tcssl import TemporalContrastiveEmbedder

    X = np.random.default_rng(0).normal(size=(2, 300, 6)).astype("float32")
    embedder = TemporalContrastiveEmbedder(
        n_components=4, segment_length=5, max_epochs=1, batch_size=16, random_state=0
    ).fit(X)
    # 2 runs x (300 // 15) = 40 windows -> 2 full batches of 16 (not 20 batches of 2 runs)
    assert embedder.net_.batch_size == 16
    assert embedder.history_[:, "n_steps"] == [2]
