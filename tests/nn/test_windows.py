import numpy as np
import pytest
import torch

from sklearn_tcssl.nn.windows import (
    TripletWindowDataset,
    WindowSampler,
    window_loader,
    windows_per_sequence,
)


def _batch(dataset, draws):
    return dataset[torch.as_tensor(draws)]


def test_windows_are_contiguous_segments():
    sequence = torch.arange(20, dtype=torch.float32)[:, None].repeat(1, 3)  # value = time index
    dataset = TripletWindowDataset([sequence], segment_length=4)
    windows, targets = _batch(dataset, [[0, 5]])
    assert windows.shape == (1, 3, 4, 3)
    assert targets.tolist() == [0.0]
    assert torch.equal(windows[0, ..., 0].flatten(), torch.arange(5, 17, dtype=torch.float32))


def test_offsets_cover_the_sequence_and_change_between_epochs():
    sampler = WindowSampler([30], window=9, batch_size=1)
    starts = {int(sampler.draw()[0, 1]) for _ in range(300)}
    assert starts == set(range(30 - 9 + 1))


def test_seeded_sampler_repeats_its_epoch_and_a_generator_continues():
    lengths = [25, 40, 9]
    fixed = WindowSampler(lengths, 6, 4, seed=3)
    assert list(fixed) == list(fixed)
    running = WindowSampler(lengths, 6, 4, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(running.draw(), running.draw())


def test_global_seed_fixes_the_draws():
    sampler = WindowSampler([25, 40], 6, 4)
    torch.manual_seed(0)
    first = sampler.draw()
    torch.manual_seed(0)
    assert torch.equal(first, sampler.draw())


def test_exact_length_sequence_has_one_window():
    sequence = torch.randn(9, 2)
    sampler = WindowSampler([9], 9, batch_size=4)
    (draws,) = list(sampler)
    windows, _ = TripletWindowDataset([sequence], 3)[draws]
    assert torch.equal(windows.reshape(9, 2), sequence)


def test_too_short_sequence_raises():
    with pytest.raises(ValueError, match="Sequence 1 has 5 time points"):
        TripletWindowDataset([torch.randn(9, 2), torch.randn(5, 2)], 2)


def test_windows_cover_long_sequences():
    sequences = [torch.zeros(946, 4), torch.zeros(9, 4), torch.zeros(20, 4)]
    dataset = TripletWindowDataset(sequences, segment_length=3)
    assert list(windows_per_sequence([946, 9, 20], 9)) == [105, 1, 2]
    assert len(dataset) == 108
    sampler = dataset.sampler(32)
    owners = [s for draws in sampler for s, _ in draws]
    assert np.bincount(owners).tolist() == [105, 1, 2]
    assert len(sampler) == 4 and len(dataset.sampler(32, drop_last=True)) == 3


def test_one_gather_equals_stacked_slices_and_standardises_in_place():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 30, 4)).astype(np.float32)
    mean, scale = X.mean(axis=(0, 1)), X.std(axis=(0, 1))

    class Scale:  # any object with apply_ works
        def apply_(self, batch):
            return batch.sub_(torch.from_numpy(mean)).div_(torch.from_numpy(scale))

    tensors = [torch.from_numpy(x) for x in X]
    flat = TripletWindowDataset(
        tensors, 3, standardizer=Scale(), flat=torch.from_numpy(X.reshape(-1, 4))
    )
    stacked = TripletWindowDataset(tensors, 3, standardizer=Scale())
    draws = torch.tensor([[0, 0], [4, 21], [2, 7]])
    a, b = flat[draws][0], stacked[draws][0]
    assert torch.equal(a, b)
    expected = (X[4, 21:30] - mean) / scale
    np.testing.assert_array_equal(a[1].reshape(9, 4).numpy(), expected)
    assert np.array_equal(tensors[0].numpy(), X[0])  # the data is never written


def test_loader_draws_in_the_main_process_whatever_the_workers():
    sequence = torch.arange(60, dtype=torch.float32)[:, None]
    dataset = TripletWindowDataset([sequence] * 8, segment_length=2)

    def starts(num_workers):
        torch.manual_seed(0)
        loader = window_loader(dataset, 5, shuffle=True, num_workers=num_workers)
        return [batch[:, 0, 0, 0].tolist() for batch, _ in loader]

    assert starts(0) == starts(2)


def test_subset_keeps_the_chosen_sequences():
    sequences = [torch.full((12, 2), float(i)) for i in range(4)]
    dataset = TripletWindowDataset(sequences, 2)
    part = dataset.subset([1, 3])
    assert [float(s[0, 0]) for s in part.sequences] == [1.0, 3.0]
    assert part.lengths.tolist() == [12, 12]


def test_embedder_history_counts_steps():
    from sklearn_tcssl import TemporalContrastiveEmbedder

    X = np.random.default_rng(0).normal(size=(8, 60, 6)).astype("float32")
    embedder = TemporalContrastiveEmbedder(
        n_components=4, segment_length=5, max_epochs=3, batch_size=8, random_state=0
    ).fit(X)
    # 8 runs x (60 // 15) = 32 windows an epoch, 4 steps of 8
    assert embedder.history_[:, "n_steps"] == [4, 8, 12]


def test_batches_are_not_capped_by_the_number_of_long_runs():
    from sklearn_tcssl import TemporalContrastiveEmbedder

    X = np.random.default_rng(0).normal(size=(2, 300, 6)).astype("float32")
    embedder = TemporalContrastiveEmbedder(
        n_components=4, segment_length=5, max_epochs=1, batch_size=16, random_state=0
    ).fit(X)
    # 2 runs x (300 // 15) = 40 windows -> 2 full batches of 16 (not 20 batches of 2 runs)
    assert embedder.net_.batch_size == 16
    assert embedder.history_[:, "n_steps"] == [2]


def test_reused_buffers_give_the_same_batches_and_alternate():
    sequences = [torch.randn(40, 3) for _ in range(6)]
    dataset = TripletWindowDataset(sequences, 2)

    def batches(reuse):
        torch.manual_seed(0)
        loader = window_loader(dataset, 4, shuffle=True, reuse_buffers=reuse)
        return [(batch.clone(), batch.data_ptr()) for batch, _ in loader]

    fresh, reused = batches(False), batches(True)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(fresh, reused))
    pointers = [pointer for _, pointer in reused]
    assert len(pointers) == 9 and len(set(pointers)) == 2  # 36 windows: two buffers in turn
    assert pointers[0] == pointers[2] != pointers[1]
    assert dataset[torch.tensor([[0, 0]])][0].data_ptr() not in pointers  # indexing: fresh


def test_reused_buffers_stay_out_of_pickles():
    import pickle

    dataset = TripletWindowDataset([torch.randn(40, 3)] * 2, 2)
    dataset.reused_buffer(8)
    assert "_buffers" not in vars(pickle.loads(pickle.dumps(dataset)))


@pytest.mark.parametrize("cross_subject", [True, False])
def test_time_locked_item_is_its_index_subject_and_draws_the_rest(cross_subject):
    from sklearn_tcssl.nn.windows import TimeLockedWindowDataset

    runs = [100 * s + torch.arange(12.0)[:, None] for s in range(3)]  # value = 100 s + time
    dataset = TimeLockedWindowDataset(
        runs, 2, cross_subject=cross_subject, generator=torch.Generator().manual_seed(0)
    )
    assert len(dataset) == 3 * 2  # 12 // (3 * 2) items per subject
    for i in range(len(dataset)):
        a = i // 2
        for _ in range(10):
            item, _ = dataset[i]
            owners = item["subjects"].tolist()
            begin, middle, end = (int(w[0, 0]) % 100 for w in item["windows"])
            assert owners[2] == a and end == begin + 2 * 2
            if cross_subject:  # the positive: b at the end's time
                assert owners[0] == owners[1] != a and middle == end
            else:
                assert owners == [a, a, a] and middle == begin + 2
