import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from _helpers import YEO_ATLAS
from nilearn.maskers import MultiNiftiMasker
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.svm import LinearSVC

from sklearn_tcssl.datasets import make_network_atlas, make_task_fmri
from sklearn_tcssl.networks import YEO7_NETWORKS

YEO_PATH = YEO_ATLAS

SMALL = {"n_subjects": 3, "n_runs": 2, "n_tasks": 3, "n_blocks": 1, "block_duration": 6}


@pytest.fixture(scope="module")
def small():
    return make_task_fmri(**SMALL, random_state=0)


def test_bunch_fields_shapes_and_types(small):
    n_runs = 3 * 2
    n_blocks = n_runs * 3 * 1
    assert len(small.imgs) == n_blocks
    assert all(isinstance(img, nib.Nifti1Image) for img in small.imgs)
    assert {img.shape for img in small.imgs} == {(25, 31, 24, 6)}
    assert small.imgs[0].get_data_dtype() == np.float32
    assert small.y.shape == small.groups.shape == small.block_runs.shape == (n_blocks,)
    assert set(small.y) == {"task0", "task1", "task2"}
    np.testing.assert_array_equal(np.unique(small.groups), [0, 1, 2])
    np.testing.assert_array_equal(np.unique(small.block_runs), np.arange(n_runs))
    assert len(small.runs) == len(small.run_groups) == len(small.events) == n_runs
    assert small.run_imgs is small.runs
    n_scans = 8 + 3 * (6 + 8)
    assert all(run.shape == (25, 31, 24, n_scans) for run in small.runs)
    np.testing.assert_array_equal(small.run_groups, [0, 0, 1, 1, 2, 2])
    for events in small.events:
        assert isinstance(events, pd.DataFrame)
        assert list(events.columns) == ["onset", "duration", "trial_type"]
        assert sorted(events.trial_type) == ["task0", "task1", "task2"]
        assert (events.duration == 12.0).all()
    # blocks of a run follow its events, in onset order
    first_run = small.y[small.block_runs == 0]
    np.testing.assert_array_equal(first_run, small.events[0].trial_type)
    assert small.t_r == 2.0
    assert set(small.task_networks) == {"task0", "task1", "task2"}
    assert small.network_names == list(YEO7_NETWORKS)
    assert isinstance(small.description, str)


def test_networks_image_and_mask(small):
    labels = np.asarray(small.networks_img.dataobj)
    assert labels.shape == (25, 31, 24)
    counts = np.bincount(labels.ravel(), minlength=8)
    assert set(np.unique(labels)) == set(range(8))
    assert (counts[1:] > 200).all()  # every network has a few hundred voxels
    mask = np.asarray(small.mask_img.dataobj) > 0
    np.testing.assert_array_equal(mask, labels > 0)
    assert 2000 < mask.sum() < 6000
    # visual is posterior, limbic inferior
    xyz = nib.affines.apply_affine(small.networks_img.affine, np.argwhere(labels > 0))
    net = labels[labels > 0]
    assert xyz[net == 1, 1].mean() < xyz[:, 1].mean() - 30
    assert xyz[net == 5, 2].mean() < xyz[:, 2].mean() - 20


def test_task_networks_default(small):
    for task, nets in small.task_networks.items():
        assert "visual" in nets, task
        assert "limbic" not in nets, task


def test_cleaned_runs_and_blocks(small):
    mask = np.asarray(small.mask_img.dataobj) > 0
    run = np.asarray(small.runs[0].dataobj)[mask]
    np.testing.assert_allclose(run.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(run.std(axis=1, ddof=1), 1, atol=1e-3)
    assert np.all(np.asarray(small.runs[0].dataobj)[~mask] == 0)
    # block means are not zero: z-scored over the run, not per block
    block = np.asarray(small.imgs[0].dataobj)[mask]
    assert np.abs(block.mean(axis=1)).mean() > 0.1


def test_block_cut_with_hrf_delay(small):
    events = small.events[0]
    run = np.asarray(small.runs[0].dataobj)
    start = int(np.floor((events.onset.iloc[0] + 5.0) / 2.0 + 0.5))
    np.testing.assert_array_equal(np.asarray(small.imgs[0].dataobj), run[..., start : start + 6])


def test_deterministic_with_seed(small):
    again = make_task_fmri(**SMALL, random_state=0)
    np.testing.assert_array_equal(again.y, small.y)
    for a, b in zip(again.imgs, small.imgs, strict=True):
        np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))


def test_different_seeds_differ(small):
    other = make_task_fmri(**SMALL, random_state=1)
    assert not np.allclose(np.asarray(other.runs[0].dataobj), np.asarray(small.runs[0].dataobj))


def test_unpreprocessed_is_in_scanner_units():
    data = make_task_fmri(**SMALL, preprocessed=False, random_state=0)
    mask = np.asarray(data.mask_img.dataobj) > 0
    run = np.asarray(data.runs[0].dataobj)[mask]
    assert 100 < np.median(run) < 3000
    assert run.mean(axis=1).std() > 50  # voxel-wise baselines
    block = np.asarray(data.imgs[0].dataobj)[mask]
    assert block.mean() > 100  # blocks are not z-scored


def _block_means(data):
    masker = MultiNiftiMasker(mask_img=data.mask_img, standardize=None, reports=False)
    X = np.stack([s.mean(axis=0) for s in masker.fit_transform(data.imgs)])
    labels = np.asarray(data.networks_img.dataobj)[np.asarray(data.mask_img.dataobj) > 0]
    return X, labels


def test_classical_decoder_above_chance_and_limbic_near_chance():
    data = make_task_fmri(
        n_subjects=6, n_runs=2, n_blocks=2, block_duration=8, effect_size=0.4, random_state=0
    )
    X, labels = _block_means(data)

    def score(columns):
        cv = GroupKFold(3)
        return cross_val_score(LinearSVC(), X[:, columns], data.y, groups=data.groups, cv=cv)

    whole = score(slice(None)).mean()
    visual = score(labels == YEO7_NETWORKS["visual"]).mean()
    limbic = score(labels == YEO7_NETWORKS["limbic"]).mean()
    assert whole > 0.6, whole  # chance 0.25
    assert visual > 0.55, visual
    assert limbic < 0.4, limbic


def test_no_warning_on_default_generation():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_task_fmri(n_subjects=1, n_runs=1, n_blocks=1, random_state=0)


def test_custom_task_networks():
    data = make_task_fmri(
        n_subjects=1,
        n_runs=1,
        n_tasks=2,
        n_blocks=1,
        task_networks={"task0": ["limbic"], "task1": "default"},
        random_state=0,
    )
    assert data.task_networks == {"task0": ("limbic",), "task1": ("default",)}


@pytest.mark.parametrize("voxel_size", [5.0, 8.0])
def test_make_network_atlas_voxel_size(voxel_size):
    atlas = make_network_atlas(voxel_size)
    assert atlas.maps.header.get_zooms()[:3] == (voxel_size,) * 3
    assert set(np.unique(np.asarray(atlas.maps.dataobj))) == set(range(8))
    assert atlas.labels == YEO7_NETWORKS
    assert atlas.names[0] == "visual" and atlas.names[4] == "limbic"


@pytest.mark.skipif(not YEO_PATH.is_file(), reason=f"Yeo 2011 atlas not found at {YEO_PATH}")
def test_real_yeo_atlas():
    data = make_task_fmri(n_subjects=1, n_runs=1, n_blocks=1, atlas=YEO_PATH, random_state=0)
    labels = np.asarray(data.networks_img.dataobj)
    assert set(np.unique(labels)) == set(range(8))
    assert data.networks_img.shape == (25, 31, 24)
    assert 3000 < (labels > 0).sum() < 8000
    # resampled in MNI space: the visual network is posterior
    xyz = nib.affines.apply_affine(data.networks_img.affine, np.argwhere(labels == 1))
    assert xyz[:, 1].mean() < -50
    assert len(data.imgs) == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_subjects": 0}, "n_subjects=0 is not allowed"),
        ({"n_tasks": 1}, "n_tasks=1 is not allowed"),
        ({"n_blocks": 1.5}, "n_blocks=1.5"),
        ({"t_r": 0.0}, "t_r=0.0 is not allowed"),
        ({"voxel_size": -1}, "voxel_size=-1"),
        ({"noise_ar": 1.0}, "noise_ar=1.0"),
        ({"effect_size": -0.1}, "effect_size=-0.1"),
        ({"subject_variability": 1.5}, r"subject_variability=1.5 .* \[0\.0, 1\.0\]"),
        ({"rest_duration": 1}, "rest_duration=1 volumes.*shorter than hrf_delay"),
        ({"task_networks": {"task0": ["visual"]}}, "one key per task"),
        (
            {"n_tasks": 2, "task_networks": {"task0": ["vision"], "task1": []}},
            r"unknown network\(s\) \['vision'\]",
        ),
        ({"atlas": nib.Nifti1Image(np.full((5, 5, 5), 9.0), np.eye(4))}, "labels 0..7"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_task_fmri(**{"n_subjects": 1, "n_runs": 1, **kwargs})


def test_numpy_scalars_are_accepted_like_python_numbers():
    plain = make_task_fmri(1, n_runs=1, n_tasks=2, n_blocks=1, voxel_size=10.0, random_state=0)
    grid = make_task_fmri(
        np.int64(1),
        n_runs=np.int32(1),
        n_tasks=np.int64(2),
        n_blocks=np.int64(1),
        voxel_size=np.float32(10.0),
        t_r=np.float64(2.0),
        hrf_delay=np.int64(5),
        random_state=0,
    )
    np.testing.assert_array_equal(plain.imgs[0].get_fdata(), grid.imgs[0].get_fdata())
    assert make_network_atlas(np.float64(12.0)).maps.shape == make_network_atlas(12.0).maps.shape


# Seeded outputs pinned: a change means every seeded dataset, and every number measured on one
# in the docs and benchmarks, changed. Update these values only for a deliberate change.
PINNED = {
    "cleaned": (
        {"n_subjects": 3, "n_runs": 2, "n_tasks": 3, "n_blocks": 2, "block_duration": 6},
        {"voxel_size": 10.0, "random_state": 0},
        [12.34472994, -258.2827621, 4380.439121, 4.494267066, 5298.193288, -22.61781146],
        "task1 task2 task0 task0 task2 task1",
    ),
    "scanner-units": (
        {"n_subjects": 2, "n_runs": 1, "n_tasks": 2, "n_blocks": 2},
        {
            "voxel_size": 12.0,
            "preprocessed": False,
            "random_state": 1,
            "task_networks": {"task0": ["visual"], "task1": ["default", "limbic"]},
        },
        [2214.740401, -2286.175856, 5307021364, -12246.87597, 5381983264, -13866.12311],
        "task0 task1 task1 task0 task1 task0",
    ),
}


def _fingerprint(data):
    """Projections of the first and last runs and blocks; any change of the draws moves them."""
    values = []
    for k, img in enumerate((data.runs[0], data.runs[-1], data.imgs[0], data.imgs[-1])):
        a = np.asarray(img.dataobj, dtype=np.float64).ravel()
        values += ([] if k < 2 else [float(a @ a)]) + [float(a @ np.sin(np.arange(a.size)))]
    return values


@pytest.mark.parametrize("name", list(PINNED))
def test_seeded_output_is_pinned(name):
    design, rest, expected, first_labels = PINNED[name]
    data = make_task_fmri(**design, **rest)
    np.testing.assert_allclose(_fingerprint(data), expected, rtol=1e-6, atol=0.05)
    assert " ".join(data.y[:6]) == first_labels
