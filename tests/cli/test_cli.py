import json
import subprocess
import sys
from pathlib import Path

import pytest

from sklearn_tcssl.cli import build_parser, main


def test_help_mentions_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "decode" in out


def test_decode_help_explains_networks(capsys):
    with pytest.raises(SystemExit):
        main(["decode", "--help"])
    out = capsys.readouterr().out
    assert "visual" in out and "--cv" in out and "z-scoring every voxel over the run" in out


def test_unknown_command_exit_code():
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["fly"])
    assert exit_info.value.code == 2


def test_decode_missing_folder_is_a_clean_error(tmp_path, capsys):
    code = main(["decode", str(tmp_path / "nope"), "--task", "x", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("tcssl decode: error:")
    assert "Traceback" not in err


def test_demo_small_run(tmp_path, capsys):
    code = main(
        ["demo", "--out", str(tmp_path), "--n-subjects", "4", "--folds", "2", "--max-epochs", "2"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "classical" in out and "TCSSL" in out and "±" in out
    assert "tcssl demo done in" in out and "pretraining: epoch 2/2" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["decoder"] for r in summary["results"]] == [
        "classical (block mean + shrinkage LDA)",
        "classical (block mean + logistic)",
        "TCSSL embedder + shrinkage LDA",
        "TCSSL embedder + logistic",
    ]
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    assert (tmp_path / "scores.csv").exists()


def test_console_script_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_tcssl.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "tcssl" in result.stdout


def _write_bids_tree(root, *, name, int16=False):
    """Write the simulator's tiny raw dataset as BIDS under ``root``; return the simulation."""
    import nibabel as nib
    import numpy as np

    from sklearn_tcssl.datasets import make_task_fmri

    sim = make_task_fmri(
        4, n_runs=1, n_tasks=2, n_blocks=3, voxel_size=10.0, preprocessed=False, random_state=0
    )
    root.mkdir()
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": name, "BIDSVersion": "1.8.0"})
    )
    (root / "task-blocks_bold.json").write_text(json.dumps({"RepetitionTime": sim.t_r}))
    for run_img, events, subject in zip(sim.runs, sim.events, sim.run_groups):
        func = root / f"sub-{subject + 1:02d}" / "func"
        func.mkdir(parents=True, exist_ok=True)
        stem = f"sub-{subject + 1:02d}_task-blocks"
        if int16:  # scanner-like integer runs
            data = np.round(np.asarray(run_img.dataobj)).astype(np.int16)
            run_img = nib.Nifti1Image(data, run_img.affine)
        nib.save(run_img, func / f"{stem}_bold.nii.gz")
        events.to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
    return sim


@pytest.fixture(scope="module")
def bids_tree(tmp_path_factory):
    """A tiny raw BIDS dataset written from the simulator, and its brain mask file."""
    import nibabel as nib

    root = tmp_path_factory.mktemp("bids") / "ds"
    sim = _write_bids_tree(root, name="sim")
    mask = root.parent / "mask.nii.gz"
    nib.save(sim.mask_img, mask)
    return root, mask


def test_pretrain_then_decode_with_the_frozen_model(bids_tree, tmp_path, capsys):
    root, mask = bids_tree
    model = tmp_path / "encoder.safetensors"
    common = ["--task", "blocks", "--mask", str(mask), "--max-epochs", "2"]
    code = main(["pretrain", str(root), *common, "--out", str(model), "--segment-length", "2"])
    assert code == 0, capsys.readouterr().err
    assert model.stat().st_size > 0
    out = tmp_path / "out"
    code = main(
        [
            "decode",
            str(root),
            *common,
            "--folds",
            "2",
            "--pretrained",
            str(model),
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert {r["decoder"] for r in summary["results"]} == {
        "classical (block mean + shrinkage LDA)",
        "classical (block mean + logistic)",
        "TCSSL embedder + shrinkage LDA",
        "TCSSL embedder + logistic",
    }
    assert "frozen pretrained encoder" in capsys.readouterr().out


def test_decode_pretrained_with_another_mask_is_a_clean_error(bids_tree, tmp_path, capsys):
    import nibabel as nib
    import numpy as np

    root, mask = bids_tree
    model = tmp_path / "encoder.safetensors"
    common = ["--task", "blocks", "--max-epochs", "1"]
    assert (
        main(
            [
                "pretrain",
                str(root),
                *common,
                "--mask",
                str(mask),
                "--out",
                str(model),
                "--segment-length",
                "2",
            ]
        )
        == 0
    )
    img = nib.load(mask)
    data = np.asarray(img.dataobj).copy()
    data[tuple(np.argwhere(data)[0])] = 0  # one voxel fewer
    other = tmp_path / "other_mask.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), other)
    code = main(
        [
            "decode",
            str(root),
            *common,
            "--mask",
            str(other),
            "--folds",
            "2",
            "--pretrained",
            str(model),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "feature" in capsys.readouterr().err


# ------------------------------------------------ newcomer's path: fast answers, checks first
def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from sklearn_tcssl.cli import main\n"
        "try:\n    main(['decode', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'skorch', 'nilearn', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_ctrl_c_exits_130(monkeypatch, tmp_path, capsys):
    import sklearn_tcssl.cli._main as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_demo", interrupted)
    assert main(["demo", "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    assert main(["demo", "--out", str(existing)]) == 2
    captured = capsys.readouterr()
    assert "existing file" in captured.err and "simulating" not in captured.out
    assert existing.read_text() == "keep me"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc (Linux)")
def test_out_in_a_read_only_place_is_refused(capsys):
    assert main(["demo", "--out", "/proc/tcssl_demo_out"]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_pretrain_out_folder_is_refused(bids_tree, tmp_path, capsys):
    root, mask = bids_tree
    code = main(["pretrain", str(root), "--task", "blocks", "--out", str(tmp_path)])
    assert code == 2
    assert "is a folder" in capsys.readouterr().err


def test_mask_on_another_grid_is_refused_in_seconds(bids_tree, tmp_path, capsys):
    import time

    import nibabel as nib
    import numpy as np

    root, mask = bids_tree
    img = nib.load(mask)
    other = tmp_path / "mask_2mm.nii.gz"
    data = np.ones((30, 36, 30), dtype=np.uint8)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), other)
    assert img.shape != data.shape
    start = time.perf_counter()
    args = ["decode", str(root), "--task", "blocks", "--mask", str(other)]
    code = main([*args, "--out", str(tmp_path)])
    assert code == 2
    captured = capsys.readouterr()
    assert "another grid" in captured.err and "resample" in captured.err
    assert "reading task" not in captured.out  # refused before the blocks are read
    assert time.perf_counter() - start < 10


def test_missing_atlas_is_refused_before_reading(bids_tree, tmp_path, monkeypatch, capsys):
    from sklearn_tcssl.networks import AtlasUnavailableError, _atlas

    def offline(data_dir, verbose):
        raise AtlasUnavailableError("no network here")

    monkeypatch.setattr(_atlas, "fetch_atlas", offline)
    root, _ = bids_tree
    args = ["decode", str(root), "--task", "blocks", "--network", "visual"]
    code = main([*args, "--out", str(tmp_path)])
    assert code == 2
    captured = capsys.readouterr()
    assert "--atlas" in captured.err and "reading task" not in captured.out


@pytest.fixture(scope="module")
def raw_int16_bids(tmp_path_factory):
    """The same tiny dataset, with int16 scanner-like runs and no mask file."""
    root = tmp_path_factory.mktemp("raw") / "ds"
    sim = _write_bids_tree(root, name="raw", int16=True)
    return root, sim.mask_img


def test_decode_raw_int16_runs_without_mask(raw_int16_bids, tmp_path, capsys):
    root, _ = raw_int16_bids
    out = tmp_path / "out"
    args = ["decode", str(root), "--task", "blocks", "--folds", "2", "--max-epochs", "1"]
    code = main([*args, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "brain mask: " in printed and "\x1b" not in printed  # no ANSI codes off a terminal
    assert json.loads((out / "summary.json").read_text())["results"]


def test_brain_mask_of_raw_runs_and_its_error(raw_int16_bids, tmp_path):
    import nibabel as nib
    import numpy as np

    from sklearn_tcssl.cli._checks import compute_brain_mask

    root, truth = raw_int16_bids
    runs = sorted(str(p) for p in root.glob("sub-*/func/*_bold.nii.gz"))
    mask = np.asarray(compute_brain_mask(runs).dataobj) > 0
    np.testing.assert_array_equal(mask, np.asarray(truth.dataobj) > 0)
    flat = tmp_path / "flat_bold.nii.gz"
    nib.save(nib.Nifti1Image(np.full((6, 6, 6, 5), 7.0, np.float32), np.eye(4)), flat)
    with pytest.raises(ValueError, match="could not compute a brain mask") as info:
        compute_brain_mask([flat])
    assert "z-scored" not in str(info.value) and "--mask" in str(info.value)
    coarse = tmp_path / "coarse_bold.nii.gz"  # every voxel varies: no background to find
    noise = np.random.default_rng(0).normal(100, 1, size=(6, 6, 6, 5)).astype(np.float32)
    nib.save(nib.Nifti1Image(noise, np.eye(4)), coarse)
    with pytest.raises(ValueError, match="all 216 voxels of the grid vary in time, so brain"):
        compute_brain_mask([coarse])


def test_version_and_defaults_in_help(capsys):
    from sklearn_tcssl import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"tcssl {__version__}"
    with pytest.raises(SystemExit):
        main(["decode", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ["(default: 5.0)", "(default: subject)", "(default: 5,", "(default: 50)"]:
        assert text in out


def test_folds_with_leave_one_run_out_is_refused(tmp_path, capsys):
    args = ["decode", str(tmp_path), "--task", "x", "--cv", "run", "--folds", "3"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    assert "--folds 3 applies to --cv subject only" in capsys.readouterr().err


def test_small_mask_names_the_minimum_and_how_to_lower_it(bids_tree, tmp_path):
    import nibabel as nib
    import numpy as np

    from sklearn_tcssl.cli._checks import load_mask

    root, mask = bids_tree
    run = next(root.glob("sub-01/func/*_bold.nii.gz"))
    grid = nib.load(mask)
    roi = np.zeros(grid.shape[:3], np.uint8)
    roi.flat[:12] = 1
    nib.save(nib.Nifti1Image(roi, grid.affine), tmp_path / "roi.nii.gz")
    with pytest.raises(ValueError, match=r"12 voxels, fewer than the 50.*--min-mask-voxels 12"):
        load_mask(tmp_path / "roi.nii.gz", run)
    assert load_mask(tmp_path / "roi.nii.gz", run, min_voxels=12).get_fdata().sum() == 12


def test_networks_outside_the_brain_are_refused_before_reading(bids_tree, tmp_path, capsys):
    import shutil

    import nibabel as nib
    from _helpers import YEO_ATLAS

    if not YEO_ATLAS.exists():
        pytest.skip("the Yeo atlas of ../shared/data is absent")
    root, _ = bids_tree
    moved = tmp_path / "ds"
    shutil.copytree(root, moved)
    for path in moved.glob("sub-*/func/*_bold.nii.gz"):  # 30 mm off MNI152
        img = nib.load(path)
        affine = img.affine.copy()
        affine[:3, 3] += 30
        nib.save(nib.Nifti1Image(img.get_fdata(), affine, img.header), path)
    args = ["decode", str(moved), "--task", "blocks", "--network", "visual"]
    assert main([*args, "--atlas", str(YEO_ATLAS), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert "'visual': 6 of 110 voxels (5%)" in captured.err and "MNI152" in captured.err
    assert "reading task" not in captured.out


def test_quiet_prints_only_the_results(tmp_path, capsys):
    args = ["demo", "--out", str(tmp_path), "--n-subjects", "4", "--folds", "2"]
    assert main([*args, "--max-epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "fold 1/2" not in out and "epoch" not in out and "±" in out


@pytest.fixture
def npy_runs(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"sub-{i:02d}_run-1.npy")
        np.save(paths[-1], rng.standard_normal((30, 8)).astype(np.float32))
    return [str(p) for p in paths]


def test_pretrain_on_npy_runs_trains_from_memory_maps(npy_runs, tmp_path, capsys):
    import nibabel as nib
    import numpy as np

    from sklearn_tcssl.io import load, read_card

    mask = tmp_path / "mask.nii.gz"
    data = np.zeros((4, 4, 4), np.uint8)
    data.flat[:8] = 1
    nib.save(nib.Nifti1Image(data, np.eye(4)), mask)
    model = tmp_path / "encoder.safetensors"
    args = ["pretrain", *npy_runs, "--out", str(model), "--mask", str(mask)]
    code = main([*args, "--max-epochs", "1", "--segment-length", "2"])
    assert code == 0, capsys.readouterr().err
    assert "3 .npy run(s)" in capsys.readouterr().out
    assert read_card(model)["input"]["input_info"] == {"npy_runs": 3}
    assert np.isfinite(load(model).transform([np.load(npy_runs[0])])).all()


def test_pretrain_bids_with_masked_runs_on_disk_is_the_same_model(bids_tree, tmp_path, capsys):
    import numpy as np

    from sklearn_tcssl.io import load

    root, mask = bids_tree
    common = ["pretrain", str(root), "--task", "blocks", "--mask", str(mask)]
    common += ["--max-epochs", "1", "--segment-length", "2"]
    models = [tmp_path / "in_memory.safetensors", tmp_path / "from_disk.safetensors"]
    assert main([*common, "--out", str(models[0])]) == 0, capsys.readouterr().err
    folder = tmp_path / "masked"
    assert main([*common, "--out", str(models[1]), "--masked-runs", str(folder)]) == 0
    assert "pretraining from disk" in capsys.readouterr().out
    runs = sorted(folder.glob("*.npy"))
    assert [p.name for p in runs][0] == "sub-01_task-blocks_bold.npy" and len(runs) == 4
    X = [np.load(runs[0])]
    np.testing.assert_array_equal(load(models[1]).transform(X), load(models[0]).transform(X))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--task", "rest"], "--task applies to a BIDS folder only"),
        (["--derivatives"], "--derivatives applies to a BIDS folder only"),
        (["--masked-runs", "{tmp}/m"], "--masked-runs applies to a BIDS folder only"),
        (["--mask", "{tmp}/nope.nii.gz"], "--mask {tmp}/nope.nii.gz does not exist"),
    ],
)
def test_pretrain_npy_options_that_do_not_apply_are_refused(
    npy_runs, tmp_path, capsys, extra, message
):
    extra = [e.format(tmp=tmp_path) for e in extra]
    code = main(["pretrain", *npy_runs, "--out", str(tmp_path / "m.safetensors"), *extra])
    assert code == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_unreadable_mask_is_a_usage_error(npy_runs, tmp_path, capsys):
    mask = tmp_path / "mask.nii.gz"
    mask.write_bytes(b"not an image")
    code = main(
        ["pretrain", *npy_runs, "--out", str(tmp_path / "m.safetensors"), "--mask", str(mask)]
    )
    assert code == 2
    assert f"--mask={str(mask)!r} cannot be read as a NIfTI image" in capsys.readouterr().err


def test_pretrain_npy_run_of_another_dtype_is_a_clean_error(npy_runs, tmp_path, capsys):
    import numpy as np

    np.save(npy_runs[1], np.zeros((30, 8)))
    code = main(["pretrain", *npy_runs, "--out", str(tmp_path / "m.safetensors")])
    assert code == 2
    err = capsys.readouterr().err
    assert npy_runs[1] in err and "must be C-ordered float32" in err


def test_pretrain_mixed_or_taskless_inputs_are_refused(bids_tree, npy_runs, tmp_path, capsys):
    root, _ = bids_tree
    out = ["--out", str(tmp_path / "m.safetensors")]
    assert main(["pretrain", npy_runs[0], str(root), *out]) == 2
    assert "not a .npy file" in capsys.readouterr().err
    assert main(["pretrain", str(root), *out]) == 2
    assert "--task is required with a BIDS folder" in capsys.readouterr().err


def test_refused_decode_leaves_no_output_folder(tmp_path, capsys):
    out = tmp_path / "nested" / "results"
    code = main(["decode", str(tmp_path / "no_such_bids"), "--task", "x", "--out", str(out)])
    assert code == 2
    assert not out.exists() and not (tmp_path / "nested").exists()


def test_out_under_an_existing_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    assert main(["demo", "--out", str(blocker / "results")]) == 2
    assert "is an existing file" in capsys.readouterr().err and blocker.read_text() == "keep me"


@pytest.fixture(scope="module")
def rare_class_bids(tmp_path_factory):
    """The tiny dataset with one block of task1 in sub-01 and sub-02 only, and an atlas file.

    Leaving one of them out leaves a single task1 block for training: too few for LDA.
    """
    import nibabel as nib
    import pandas as pd

    root = tmp_path_factory.mktemp("rare") / "ds"
    sim = _write_bids_tree(root, name="rare")
    for i, path in enumerate(sorted(root.glob("sub-*/func/*_events.tsv"))):
        events = pd.read_csv(path, sep="\t")
        rare = events.index[events["trial_type"] == "task1"]
        events.drop(rare[1:] if i < 2 else rare).to_csv(path, sep="\t", index=False)
    atlas = root.parent / "atlas.nii.gz"
    nib.save(sim.networks_img, atlas)
    return root, atlas


@pytest.mark.parametrize("network", [[], ["--network", "visual"]])
def test_decode_leaves_lda_out_when_a_fold_has_too_few_blocks(
    rare_class_bids, network, tmp_path, capsys
):
    """Both paths: the same notice and decoders, and scores.csv starts with the network."""
    import pandas as pd

    root, atlas = rare_class_bids
    args = ["decode", str(root), "--task", "blocks", "--folds", "4", "--max-epochs", "1"]
    atlas_args = ["--atlas", str(atlas)] if network else []
    code = main([*args, *network, *atlas_args, "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert "shrinkage LDA left out: a training fold has a class with fewer than 2 blocks" in (
        capsys.readouterr().out
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["decoder"] for r in summary["results"]] == [
        "classical (block mean + logistic)",
        "TCSSL embedder + logistic",
    ]
    columns = ["network", "decoder", "fold", "accuracy", "fit_time", "n_train", "n_test"]
    assert list(pd.read_csv(tmp_path / "out" / "scores.csv").columns) == columns
