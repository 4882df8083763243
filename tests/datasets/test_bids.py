import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sklearn_tcssl.datasets import extract_blocks, load_bids_blocks

T_R = 2.0
N_SCANS = 60
SHAPE = (4, 5, 3)


def _run_img(seed=0, n_scans=N_SCANS, offset=100.0):
    """A small 4D run: noise around ``offset`` plus a linear drift, TR in the header."""
    rng = np.random.default_rng(seed)
    data = offset + rng.normal(size=SHAPE + (n_scans,)) + 0.05 * np.arange(n_scans)
    data = data.astype(np.float32)
    img = nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0]))
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((3.0, 3.0, 3.0, T_R))
    return img


def _events():
    return pd.DataFrame(
        {
            "onset": [10.0, 40.0, 70.0],
            "duration": [16.0, 16.0, 16.0],
            "trial_type": ["faces", "houses", "faces"],
        }
    )


def test_extract_blocks_counts_labels_and_shapes():
    blocks, labels = extract_blocks(_run_img(), _events(), T_R)
    assert len(blocks) == 3
    assert list(labels) == ["faces", "houses", "faces"]
    for block in blocks:
        assert isinstance(block, nib.Nifti1Image)
        assert block.shape == SHAPE + (8,)
        assert block.get_data_dtype() == np.float32


def test_extract_blocks_hrf_delay_shift():
    # voxel (0, 0, 0) holds the volume index, untouched without cleaning
    img = _run_img()
    data = np.asarray(img.dataobj).copy()
    data[0, 0, 0] = np.arange(N_SCANS)
    img = nib.Nifti1Image(data, img.affine)
    kw = {"standardize": False, "detrend": False, "return_frames": True}
    blocks, _, frames = extract_blocks(img, _events(), T_R, hrf_delay=0.0, **kw)
    np.testing.assert_array_equal(frames[:, 0], [5, 20, 35])
    np.testing.assert_array_equal(np.asarray(blocks[0].dataobj)[0, 0, 0], np.arange(5, 13))
    blocks, _, frames = extract_blocks(img, _events(), T_R, hrf_delay=5.0, **kw)
    # (10 + 5) / 2 = 7.5 rounds half up to 8, for every block alike
    np.testing.assert_array_equal(frames, [[8, 16], [23, 31], [38, 46]])
    np.testing.assert_array_equal(np.asarray(blocks[1].dataobj)[0, 0, 0], np.arange(23, 31))


def test_extract_blocks_zscores_over_the_run_not_per_block():
    img = _run_img()
    blocks, _ = extract_blocks(img, _events(), T_R)
    run = np.concatenate([np.asarray(b.dataobj) for b in blocks], axis=3)
    assert abs(run.mean()) < 0.5  # centred: the raw data sit around 100
    # each block's own mean pattern is not zeroed, unlike per-block z-scoring
    means = np.stack([np.asarray(b.dataobj).mean(axis=3) for b in blocks])
    assert np.abs(means).max() > 0.1
    # whole-run cleaning is what the blocks come from
    _, _, frames = extract_blocks(img, _events(), T_R, return_frames=True)
    raw = np.asarray(img.dataobj).reshape(-1, N_SCANS).T
    from nilearn.signal import clean

    full = clean(raw, detrend=True, standardize="zscore_sample", filter=False)
    start, stop = frames[1]
    np.testing.assert_allclose(
        np.asarray(blocks[1].dataobj).reshape(-1, stop - start).T, full[start:stop], atol=1e-4
    )


def test_extract_blocks_without_cleaning_keeps_scale():
    blocks, _ = extract_blocks(_run_img(), _events(), T_R, standardize=False, detrend=False)
    assert np.asarray(blocks[0].dataobj).mean() > 90


def test_extract_blocks_blocks_do_not_share_input_memory():
    img = _run_img()
    before = np.asarray(img.dataobj).copy()
    blocks, _ = extract_blocks(img, _events(), T_R, standardize=False, detrend=False)
    blocks[0].dataobj[...] = 0
    np.testing.assert_array_equal(np.asarray(img.dataobj), before)


def test_extract_blocks_from_paths_and_trial_types(tmp_path):
    img_path = tmp_path / "run.nii.gz"
    nib.save(_run_img(), img_path)
    events_path = tmp_path / "events.tsv"
    events = pd.concat(
        [_events(), pd.DataFrame({"onset": [100.0], "duration": [10.0], "trial_type": ["rest"]})]
    )
    events.to_csv(events_path, sep="\t", index=False)
    blocks, labels = extract_blocks(img_path, events_path, T_R, trial_types=["faces", "houses"])
    assert list(labels) == ["faces", "houses", "faces"]


def test_extract_blocks_with_mask_and_high_pass():
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[:2] = 1
    mask_img = nib.Nifti1Image(mask, np.diag([3.0, 3.0, 3.0, 1.0]))
    blocks, _ = extract_blocks(_run_img(), _events(), T_R, mask_img=mask_img, high_pass=0.01)
    data = np.asarray(blocks[0].dataobj)
    assert np.all(data[2:] == 0)
    assert np.abs(data[:2]).max() > 0


def test_extract_blocks_clips_and_drops_short_blocks():
    events = pd.DataFrame(
        {"onset": [10.0, 100.0, 112.0], "duration": [16.0, 16.0, 0.5], "trial_type": list("abc")}
    )
    with pytest.warns(UserWarning) as record:
        blocks, labels = extract_blocks(_run_img(), events, T_R, min_duration=4.0)
    messages = " ".join(str(w.message) for w in record)
    assert "clipped" in messages and "Dropped" in messages
    assert list(labels) == ["a", "b"]
    assert blocks[1].shape[3] == N_SCANS - 53  # (100 + 5) / 2 -> 53, clipped to the run


def test_extract_blocks_does_not_warn_on_clean_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        blocks, _ = extract_blocks(_run_img(), _events(), T_R)
    assert len(blocks) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"t_r": 0},
            r"t_r=0 is not allowed\. .*of extract_blocks"
            r" must be a float in the range \(0\.0, 100\.0\]",
        ),
        ({"t_r": -2.0}, "t_r=-2.0"),
        ({"hrf_delay": -1.0}, "hrf_delay=-1.0"),
        (
            {"events": _events().drop(columns="trial_type")},
            r"lacks the column\(s\) \['trial_type'\]",
        ),
        ({"events": _events().iloc[:0]}, "No events"),
        ({"trial_types": ["cars"]}, r"trial_types=\['cars'\] \(of type str\) matches none"),
        ({"events": _events().assign(onset=[10.0, 40.0, 300.0])}, "starts at volume 153"),
        ({"img": nib.Nifti1Image(np.zeros(SHAPE, np.float32), np.eye(4))}, "must be a 4D image"),
        ({"standardize": 3}, "standardize=3"),
        (
            {"mask_img": nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4))},
            "not on the run's grid",
        ),
    ],
)
def test_extract_blocks_errors(kwargs, match):
    args = {"img": _run_img(), "events": _events(), "t_r": T_R}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        extract_blocks(args.pop("img"), args.pop("events"), args.pop("t_r"), **args)


def test_extract_blocks_missing_events_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        extract_blocks(_run_img(), tmp_path / "nope.tsv", T_R)


# ------------------------------------------------------------------------------ BIDS tree
def _write_bids(root, *, derivatives=False, sidecar="top", drop_events=None):
    """Two subjects x two runs of task 'objects' (plus a 'rest' task for sub-01)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "tiny", "BIDSVersion": "1.8.0"})
    )
    if sidecar == "top":
        (root / "task-objects_bold.json").write_text(json.dumps({"RepetitionTime": T_R}))
    for s, sub in enumerate(["01", "02"]):
        func = root / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        for run in (1, 2):
            stem = f"sub-{sub}_task-objects_run-{run}"
            img = _run_img(seed=10 * s + run)
            if sidecar != "header":
                img.header.set_xyzt_units("mm", "unknown")
            nib.save(img, func / f"{stem}_bold.nii.gz")
            if sidecar == "run":
                (func / f"{stem}_bold.json").write_text(json.dumps({"RepetitionTime": T_R}))
            if drop_events != stem:
                _events().to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
            if derivatives:
                dfunc = root / "derivatives" / "fmriprep" / f"sub-{sub}" / "func"
                dfunc.mkdir(parents=True, exist_ok=True)
                for space in ("MNI152NLin2009cAsym", "T1w"):
                    name = f"{stem}_space-{space}_desc-preproc_bold"
                    nib.save(_run_img(seed=99), dfunc / f"{name}.nii.gz")
                    (dfunc / f"{name}.json").write_text(json.dumps({"RepetitionTime": T_R}))
    nib.save(_run_img(), root / "sub-01" / "func" / "sub-01_task-rest_bold.nii.gz")
    return root


@pytest.mark.parametrize("sidecar", ["top", "run", "header"])
def test_load_bids_blocks_raw(tmp_path, sidecar):
    root = _write_bids(tmp_path / "ds", sidecar=sidecar)
    data = load_bids_blocks(root, "objects")
    assert len(data.imgs) == 12
    assert data.imgs[0].shape == SHAPE + (8,)
    assert list(data.y[:3]) == ["faces", "houses", "faces"]
    assert list(np.unique(data.groups)) == ["sub-01", "sub-02"]
    assert list(np.unique(data.runs)) == [
        "sub-01_run-1",
        "sub-01_run-2",
        "sub-02_run-1",
        "sub-02_run-2",
    ]
    np.testing.assert_array_equal(data.block_runs, data.runs)
    assert len(data.run_imgs) == 4 and all(str(p).endswith("_bold.nii.gz") for p in data.run_imgs)
    assert list(data.run_groups) == ["sub-01", "sub-01", "sub-02", "sub-02"]
    assert len(data.events) == 4
    assert data.t_r == T_R


def test_load_bids_blocks_subjects_and_t_r_override(tmp_path):
    root = _write_bids(tmp_path / "ds", sidecar="none")
    data = load_bids_blocks(root, "task-objects", subjects=["sub-02"], t_r=T_R)
    assert set(data.groups) == {"sub-02"} and len(data.imgs) == 6


def test_load_bids_blocks_derivatives(tmp_path):
    root = _write_bids(tmp_path / "ds", derivatives=True)
    data = load_bids_blocks(root, "objects", derivatives=True, space="MNI152NLin2009cAsym")
    assert len(data.imgs) == 12
    assert all("derivatives" in p and "desc-preproc" in p for p in data.run_imgs)
    same = load_bids_blocks(
        root, "objects", derivatives="derivatives/fmriprep", space="MNI152NLin2009cAsym"
    )
    np.testing.assert_array_equal(same.y, data.y)
    numpy_true = load_bids_blocks(
        root, "objects", derivatives=np.True_, space="MNI152NLin2009cAsym"
    )
    assert numpy_true.run_imgs == data.run_imgs
    with pytest.raises(ValueError, match="Several BOLD files.*Pass space="):
        load_bids_blocks(root, "objects", derivatives=True)


def test_load_bids_blocks_missing_events(tmp_path):
    root = _write_bids(tmp_path / "ds", drop_events="sub-02_task-objects_run-2")
    with pytest.raises(FileNotFoundError, match="sub-02_task-objects_run-2_events.tsv"):
        load_bids_blocks(root, "objects")


def test_load_bids_blocks_inherited_events(tmp_path):
    root = _write_bids(tmp_path / "ds", drop_events="sub-02_task-objects_run-2")
    _events().to_csv(root / "task-objects_events.tsv", sep="\t", index=False)
    assert len(load_bids_blocks(root, "objects").imgs) == 12


def test_load_bids_blocks_unknown_task(tmp_path):
    root = _write_bids(tmp_path / "ds")
    with pytest.raises(ValueError, match=r"task='motor'.*tasks found: \['objects', 'rest'\]"):
        load_bids_blocks(root, "motor")


def test_load_bids_blocks_unknown_t_r(tmp_path):
    root = _write_bids(tmp_path / "ds", sidecar="none")
    with pytest.raises(ValueError, match="Repetition time unknown.*pass t_r="):
        load_bids_blocks(root, "objects")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"bids_root": "missing"}, FileNotFoundError, "is not a folder"),
        ({"derivatives": True}, FileNotFoundError, "derivatives=True but"),
        ({"space": "T1w"}, ValueError, "only applies to derivatives"),
    ],
)
def test_load_bids_blocks_errors(tmp_path, kwargs, error, match):
    root = _write_bids(tmp_path / "ds")
    args = {"bids_root": root, "task": "objects"}
    args.update(kwargs)
    if args["bids_root"] == "missing":
        args["bids_root"] = tmp_path / "missing"
    with pytest.raises(error, match=match):
        load_bids_blocks(args.pop("bids_root"), args.pop("task"), **args)


def test_extract_blocks_accepts_numpy_scalars():
    plain = extract_blocks(_run_img(), _events(), T_R, hrf_delay=4.0, return_frames=True)
    numpy = extract_blocks(
        _run_img(), _events(), np.float32(T_R), hrf_delay=np.int64(4), return_frames=True
    )
    np.testing.assert_array_equal(plain[2], numpy[2])
    np.testing.assert_array_equal(plain[0][0].get_fdata(), numpy[0][0].get_fdata())


def test_events_with_some_missing_durations_drop_those_rows(tmp_path):
    events = _events()
    events.loc[0, "duration"] = np.nan
    with pytest.warns(UserWarning, match=r"Dropped 1 event\(s\) whose duration is n/a"):
        blocks, labels = extract_blocks(_run_img(), events, T_R)
    assert len(blocks) == len(_events()) - 1


def test_byte_order_marks_are_tolerated(tmp_path):
    events = tmp_path / "events.tsv"
    events.write_bytes(b"\xef\xbb\xbfonset\tduration\ttrial_type\n10\t16\tfaces\n40\t16\thouses\n")
    blocks, labels = extract_blocks(_run_img(), events, T_R)
    assert list(labels) == ["faces", "houses"]
