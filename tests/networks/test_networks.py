import pickle
from pathlib import Path
from urllib.error import URLError

import nibabel as nib
import nilearn.datasets
import numpy as np
import pytest
from _helpers import YEO_ATLAS
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import Bunch

from sklearn_tcssl._utils.exceptions import NotFittedError, TCSSLError
from sklearn_tcssl.networks import (
    YEO7_NETWORKS,
    AtlasUnavailableError,
    NetworkMasker,
    NetworkMaskError,
    network_mask,
    network_names,
)

REAL_ATLAS = YEO_ATLAS

# Synthetic atlas: 20 x 24 x 20 voxels of 4 mm; 7 slabs along y (3 voxels each), a 2-voxel
# background border in x and z and 3 background slices at the front.
ATLAS_SHAPE = (20, 24, 20)
ATLAS_AFFINE = np.array([[4.0, 0, 0, -40], [0, 4.0, 0, -48], [0, 0, 4.0, -40], [0, 0, 0, 1]])
# Data grid: 8 mm voxels shifted by 1 mm (no rounding ties), covering the atlas.
DATA_SHAPE = (10, 12, 10)
DATA_AFFINE = np.array([[8.0, 0, 0, -39], [0, 8.0, 0, -47], [0, 0, 8.0, -39], [0, 0, 0, 1]])


def _atlas_labels():
    labels = np.zeros(ATLAS_SHAPE, dtype=np.float32)
    for label in range(1, 8):
        labels[2:-2, 3 * (label - 1) : 3 * label, 2:-2] = label
    return labels


@pytest.fixture
def atlas_img():
    return nib.Nifti1Image(_atlas_labels()[..., None], ATLAS_AFFINE)  # 4D, one volume


@pytest.fixture
def atlas_path(tmp_path, atlas_img):
    path = tmp_path / "yeo7.nii.gz"
    atlas_img.to_filename(path)
    return path


def _run(n_timepoints=6, seed=0, shape=DATA_SHAPE, affine=DATA_AFFINE):
    data = np.random.default_rng(seed).standard_normal((*shape, n_timepoints))
    return nib.Nifti1Image(data.astype(np.float32), affine)


def _expected_labels(shape=DATA_SHAPE, affine=DATA_AFFINE):
    """Nearest-neighbour atlas label at each data voxel centre, by hand."""
    ijk = np.indices(shape).reshape(3, -1)
    world = affine[:3, :3] @ ijk + affine[:3, 3:]
    idx = np.rint(np.linalg.solve(ATLAS_AFFINE[:3, :3], world - ATLAS_AFFINE[:3, 3:]))
    idx = idx.astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(ATLAS_SHAPE)[:, None]), axis=0)
    out = np.zeros(ijk.shape[1], dtype=int)
    out[inside] = _atlas_labels()[tuple(idx[:, inside])].astype(int)
    return out.reshape(shape)


def test_network_names_match_labels():
    assert network_names() == list(YEO7_NETWORKS)
    assert [YEO7_NETWORKS[n] for n in network_names()] == list(range(1, 8))


@pytest.mark.parametrize("network", list(YEO7_NETWORKS))
def test_network_mask_resampled_nearest(atlas_img, network):
    mask = network_mask(network, atlas_img, target_img=_run())
    assert mask.shape == DATA_SHAPE
    np.testing.assert_allclose(mask.affine, DATA_AFFINE)
    expected = _expected_labels() == YEO7_NETWORKS[network]
    assert expected.any()
    np.testing.assert_array_equal(np.asarray(mask.dataobj).astype(bool), expected)


def test_network_mask_without_target_uses_atlas_grid(atlas_img):
    mask = network_mask(["Visual", "dorsal-attention"], atlas_img)
    assert mask.shape == ATLAS_SHAPE
    labels = _atlas_labels()
    np.testing.assert_array_equal(mask.get_fdata().astype(bool), np.isin(labels, [1, 3]))


def test_fit_attributes_and_counts(atlas_path):
    masker = NetworkMasker(["default", "visual", "visual"], atlas=atlas_path).fit([_run()])
    expected = _expected_labels()
    assert masker.networks_ == ["visual", "default"]
    assert masker.n_voxels_ == {
        "visual": int((expected == 1).sum()),
        "default": int((expected == 7).sum()),
        "total": int(np.isin(expected, [1, 7]).sum()),
    }
    assert masker.mask_img_.shape == DATA_SHAPE
    assert int(masker.mask_img_.get_fdata().sum()) == masker.n_voxels_["total"]
    assert masker.masker_.mask_img_ is not None


def test_whole_brain_is_union_of_networks(atlas_img):
    masker = NetworkMasker("whole_brain", atlas=atlas_img).fit(_run())
    expected = _expected_labels()
    assert masker.networks_ == network_names()
    assert masker.n_voxels_["total"] == int((expected > 0).sum())
    assert masker.n_voxels_["total"] == sum(masker.n_voxels_[n] for n in network_names())


def test_mask_img_is_resampled_and_intersected(atlas_img):
    brain = np.zeros(ATLAS_SHAPE, dtype=np.int8)
    brain[:10] = 1  # left half (x < 0 mm) on the atlas grid
    masker = NetworkMasker(
        "whole_brain", atlas=atlas_img, mask_img=nib.Nifti1Image(brain, ATLAS_AFFINE)
    )
    masker.fit([_run()])
    mask = masker.mask_img_.get_fdata().astype(bool)
    expected = (_expected_labels() > 0) & (np.arange(DATA_SHAPE[0]) < 5)[:, None, None]
    np.testing.assert_array_equal(mask, expected)


def test_transform_shapes_and_dtype(atlas_img, tmp_path):
    paths = []
    for i, n_t in enumerate([5, 7]):
        paths.append(tmp_path / f"run{i}.nii.gz")
        _run(n_t, seed=i).to_filename(paths[-1])
    masker = NetworkMasker("somatomotor", atlas=atlas_img)
    out = masker.fit_transform(paths)
    n_vox = masker.n_voxels_["total"]
    assert [x.shape for x in out] == [(5, n_vox), (7, n_vox)]
    assert all(x.dtype == np.float32 for x in out)
    data = _run(5, seed=0).get_fdata()
    np.testing.assert_allclose(out[0], data[masker.mask_img_.get_fdata() > 0].T, rtol=1e-6)
    single = masker.transform(_run(4))
    assert single.shape == (4, n_vox)


def test_inverse_transform_round_trip(atlas_img):
    masker = NetworkMasker("limbic", atlas=atlas_img).fit([_run()])
    signals = masker.transform([_run(3)])[0]
    img = masker.inverse_transform(signals)
    assert img.shape == (*DATA_SHAPE, 3)
    np.testing.assert_allclose(masker.transform(img), signals)


def _block_means(signals):
    return np.stack([x.mean(axis=0) for x in signals])


def test_pipeline_cross_val_score_with_groups(atlas_img):
    rng = np.random.default_rng(0)
    visual = _expected_labels() == YEO7_NETWORKS["visual"]
    imgs, y, groups = [], [], []
    for run in range(4):
        for block in range(6):
            label = block % 2
            data = rng.standard_normal((*DATA_SHAPE, 5)).astype(np.float32)
            data[visual] += 1.5 * (2 * label - 1)
            imgs.append(nib.Nifti1Image(data, DATA_AFFINE))
            y.append(label)
            groups.append(run)
    pipe = make_pipeline(
        NetworkMasker("visual", atlas=atlas_img),
        FunctionTransformer(_block_means),
        LogisticRegression(),
    )
    scores = cross_val_score(pipe, imgs, np.array(y), groups=groups, cv=GroupKFold(4))
    assert scores.shape == (4,)
    assert scores.mean() > 0.9


def test_clone_and_pickle(atlas_img):
    masker = NetworkMasker(["visual", "default"], atlas=atlas_img, t_r=2.0, verbose=0)
    cloned = clone(masker)
    assert cloned.get_params()["networks"] == ["visual", "default"]
    assert cloned.get_params()["t_r"] == 2.0
    run = _run()
    masker.fit([run])
    restored = pickle.loads(pickle.dumps(masker))
    assert restored.n_voxels_ == masker.n_voxels_
    np.testing.assert_array_equal(restored.transform([run])[0], masker.transform([run])[0])


def test_memory_caches_mask(atlas_img, tmp_path):
    masker = NetworkMasker("visual", atlas=atlas_img, memory=str(tmp_path), memory_level=1)
    first = masker.fit([_run()]).n_voxels_
    assert masker.fit([_run()]).n_voxels_ == first


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("networks", "match"),
    [
        ("visul", r"networks='visul'.*not a Yeo 7-network name.*'visual'.*'whole_brain'"),
        (["visual", "salience"], r"'salience' is not a Yeo 7-network name.*'default'"),
        ([], r"networks=\[\] is empty"),
        (3, r"networks=3 must be a network name or a list"),
    ],
)
def test_invalid_networks(atlas_img, networks, match):
    with pytest.raises(NetworkMaskError, match=match):
        NetworkMasker(networks, atlas=atlas_img).fit([_run()])


def test_errors_are_package_value_errors():
    assert issubclass(NetworkMaskError, TCSSLError)
    assert issubclass(NetworkMaskError, ValueError)
    assert issubclass(AtlasUnavailableError, NetworkMaskError)
    assert issubclass(AtlasUnavailableError, OSError)


def test_network_outside_field_of_view(atlas_img):
    # 4 x 2 x 4 voxels of 8 mm at the back of the atlas: only the first two slabs.
    run = _run(shape=(4, 2, 4), affine=DATA_AFFINE)
    masker = NetworkMasker(["visual", "limbic"], atlas=atlas_img)
    n_atlas = int((_atlas_labels() == 5).sum())
    with pytest.raises(
        NetworkMaskError,
        match=rf"networks=\['visual', 'limbic'\]: 'limbic' has {n_atlas} voxels in the atlas "
        r"but none in the images' field of view"
        r".*Choose another network.*MNI152 space",
    ):
        masker.fit([run])
    assert NetworkMasker("visual", atlas=atlas_img).fit([run]).n_voxels_["visual"] > 0
    # whole_brain only fails when nothing at all is in view
    assert NetworkMasker("whole_brain", atlas=atlas_img).fit([run]).n_voxels_["limbic"] == 0


def test_mask_img_that_excludes_network(atlas_img):
    brain = np.zeros(ATLAS_SHAPE, dtype=np.int8)
    brain[:, :6] = 1  # visual and somatomotor slabs only
    masker = NetworkMasker(
        "default", atlas=atlas_img, mask_img=nib.Nifti1Image(brain, ATLAS_AFFINE)
    )
    with pytest.raises(
        NetworkMaskError,
        match="'default' has 768 voxels in the atlas but none in .* intersected with mask_img",
    ):
        masker.fit([_run()])


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (lambda a: a * 2, r"not a Yeo 7-network label volume.*0\.\.7.*n_networks=17"),
        (lambda a: a + 0.5, r"expected integer labels 0\.\.7"),
        (lambda a: a - 1, r"found values such as \[-1"),
    ],
)
def test_atlas_not_a_label_volume(values, match):
    atlas = nib.Nifti1Image(values(_atlas_labels()), ATLAS_AFFINE)
    with pytest.raises(NetworkMaskError, match=match):
        NetworkMasker("visual", atlas=atlas).fit([_run()])


def test_atlas_with_several_volumes():
    atlas = nib.Nifti1Image(np.stack([_atlas_labels()] * 2, axis=-1), ATLAS_AFFINE)
    with pytest.raises(NetworkMaskError, match=r"atlas has shape \(20, 24, 20, 2\).*single"):
        NetworkMasker("visual", atlas=atlas).fit([_run()])


def test_atlas_path_missing(tmp_path):
    with pytest.raises(NetworkMaskError, match=r"atlas=.*missing\.nii\.gz.*cannot be loaded"):
        NetworkMasker("visual", atlas=tmp_path / "missing.nii.gz").fit([_run()])


def test_images_must_be_4d(atlas_img):
    volume = nib.Nifti1Image(np.zeros(DATA_SHAPE, dtype=np.float32), DATA_AFFINE)
    with pytest.raises(NetworkMaskError, match=r"imgs\[1\] has shape \(10, 12, 10\) \(3D\).*4D"):
        NetworkMasker("visual", atlas=atlas_img).fit([_run(), volume])
    masker = NetworkMasker("visual", atlas=atlas_img).fit([_run()])
    with pytest.raises(NetworkMaskError, match=r"imgs\[0\].*3D"):
        masker.transform([volume])
    with pytest.raises(NetworkMaskError, match=r"imgs=\[\]"):
        masker.transform([])
    with pytest.raises(NetworkMaskError, match=r"imgs\[0\] is a ndarray"):
        masker.transform([np.zeros((2, 2, 2, 2))])


def test_transform_before_fit(atlas_img):
    with pytest.raises(NotFittedError, match="NetworkMasker instance is not fitted"):
        NetworkMasker("visual", atlas=atlas_img).transform([_run()])


# --------------------------------------------------------------------------- default fetcher
def test_default_atlas_uses_fetcher(monkeypatch, atlas_path, tmp_path):
    calls = []

    def fake_fetch(**kwargs):
        calls.append(kwargs)
        return Bunch(maps=str(atlas_path), labels=[f"7Networks_{i}" for i in range(1, 8)])

    monkeypatch.setattr(nilearn.datasets, "fetch_atlas_yeo_2011", fake_fetch)
    masker = NetworkMasker("visual", data_dir=tmp_path).fit([_run()])
    assert masker.n_voxels_["visual"] == int((_expected_labels() == 1).sum())
    assert calls[0]["data_dir"] == tmp_path
    assert calls[0]["n_networks"] == 7
    assert calls[0]["thickness"] == "thick"


@pytest.mark.parametrize("error", [URLError("no route to host"), OSError("offline")])
def test_default_atlas_fetch_failure(monkeypatch, error):
    def failing_fetch(**kwargs):
        raise error

    monkeypatch.setattr(nilearn.datasets, "fetch_atlas_yeo_2011", failing_fetch)
    with pytest.raises(
        AtlasUnavailableError,
        match=r"atlas=None.*could not be fetched.*fetch_atlas_yeo_2011.*pass atlas= a local file",
    ) as info:
        NetworkMasker("visual").fit([_run()])
    # the cause's text is in the message; its traceback is not chained (it would bury it)
    assert str(error) in str(info.value) and info.value.__cause__ is None


def test_failed_fetch_leaves_no_empty_data_folder(monkeypatch, tmp_path):
    data_dir = tmp_path / "nilearn_data"

    def failing_fetch(data_dir, **kwargs):  # as nilearn: the folder first, then the download
        (Path(data_dir) / "yeo_2011").mkdir(parents=True)
        raise URLError("no route to host")

    monkeypatch.setattr(nilearn.datasets, "fetch_atlas_yeo_2011", failing_fetch)
    with pytest.raises(AtlasUnavailableError):
        NetworkMasker("visual", data_dir=data_dir).fit([_run()])
    assert not data_dir.exists()
    kept = tmp_path / "kept"
    (kept / "yeo_2011").mkdir(parents=True)
    (kept / "yeo_2011" / "partial.zip").write_text("x")  # a partial download is kept
    with pytest.raises(AtlasUnavailableError):
        NetworkMasker("visual", data_dir=kept).fit([_run()])
    assert (kept / "yeo_2011" / "partial.zip").is_file()


# --------------------------------------------------------------------------- real atlas
MNI_SHAPE = (24, 29, 24)  # 8 mm voxels over the MNI152 bounding box
MNI_AFFINE = np.array([[8.0, 0, 0, -92], [0, 8.0, 0, -128], [0, 0, 8.0, -74], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def real_masker():
    if not REAL_ATLAS.exists():
        pytest.skip(f"real Yeo 2011 atlas not found at {REAL_ATLAS} (../shared/data is absent)")
    run = _run(3, shape=MNI_SHAPE, affine=MNI_AFFINE)
    return NetworkMasker("whole_brain", atlas=REAL_ATLAS).fit([run]), run


@pytest.mark.parametrize("network", list(YEO7_NETWORKS))
def test_real_atlas_every_network_has_voxels(real_masker, network):
    masker, _ = real_masker
    assert masker.n_voxels_[network] > 20


def test_real_atlas_visual_is_posterior(real_masker):
    masker, run = real_masker
    labels_mask = network_mask("visual", REAL_ATLAS, target_img=run)
    ijk = np.argwhere(labels_mask.get_fdata() > 0)
    y_mm = (MNI_AFFINE[:3, :3] @ ijk.T + MNI_AFFINE[:3, 3:])[1]
    assert y_mm.mean() < -60  # occipital cortex
    assert len(ijk) == masker.n_voxels_["visual"]
    out = masker.transform([run])[0]
    assert out.shape == (3, masker.n_voxels_["total"])


# --------------------------------------------------------------------------- space check
def _mni_brain_run(shift_mm=0.0, n_frames=3):
    """Random 4D run, zero outside the MNI152 brain (as preprocessed runs), origin shifted."""
    from nilearn.datasets import load_mni152_brain_mask

    brain = load_mni152_brain_mask(resolution=4)
    inside = np.asarray(brain.dataobj) != 0
    data = np.random.default_rng(0).normal(size=(*inside.shape, n_frames)) * inside[..., None]
    affine = brain.affine.copy()
    affine[:3, 3] += shift_mm
    return nib.Nifti1Image(data.astype(np.float32), affine)


@pytest.fixture(scope="module")
def _needs_real_atlas():
    if not REAL_ATLAS.exists():
        pytest.skip(f"real Yeo 2011 atlas not found at {REAL_ATLAS} (../shared/data is absent)")


@pytest.mark.usefixtures("_needs_real_atlas")
def test_mni_runs_have_their_networks_inside_the_brain():
    masker = NetworkMasker("visual", atlas=REAL_ATLAS).fit([_mni_brain_run()])
    assert masker.in_brain_["visual"] > 0.95
    assert masker.in_brain_["total"] > 0.95


@pytest.mark.usefixtures("_needs_real_atlas")
def test_runs_in_another_space_are_refused():
    # 80 mm off: the grid still overlaps the atlas, but the networks fall outside the brain
    run = _mni_brain_run(shift_mm=80.0)
    with pytest.raises(NetworkMaskError, match=r"'visual': \d+ of \d+ voxels.*MNI152"):
        NetworkMasker("visual", atlas=REAL_ATLAS).fit([run])
    for shift, message in [
        (80.0, "none in the images' field of view intersected with mask_img"),
        (40.0, r"inside the brain \(mask_img\): 'visual': \d+ of"),
    ]:
        run = _mni_brain_run(shift_mm=shift)
        brain = nib.Nifti1Image((run.get_fdata()[..., 0] != 0).astype(np.int8), run.affine)
        with pytest.raises(NetworkMaskError, match=message + ".*MNI152"):
            network_mask("visual", REAL_ATLAS, target_img=run, mask_img=brain)


@pytest.mark.usefixtures("_needs_real_atlas")
def test_partly_misplaced_runs_warn():
    with pytest.warns(UserWarning, match=r"all selected networks: \d+ of \d+ voxels \(\d+%\)"):
        masker = NetworkMasker("whole_brain", atlas=REAL_ATLAS).fit([_mni_brain_run(40.0)])
    assert 0.2 <= masker.in_brain_["total"] < 0.6


def test_runs_without_background_are_not_judged(atlas_img):
    masker = NetworkMasker("visual", atlas=atlas_img).fit([_run()])  # noise everywhere
    assert masker.in_brain_ == {}
