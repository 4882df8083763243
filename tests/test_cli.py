import json
import subprocess
import sys

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


@pytest.fixture(scope="module")
def bids_tree(tmp_path_factory):
    """A tiny raw BIDS dataset written from the simulator, and its brain mask file."""
    import nibabel as nib

    from sklearn_tcssl.datasets import make_task_fmri

    sim = make_task_fmri(
        4, n_runs=1, n_tasks=2, n_blocks=3, voxel_size=10.0, preprocessed=False, random_state=0
    )
    root = tmp_path_factory.mktemp("bids") / "ds"
    root.mkdir()
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "sim", "BIDSVersion": "1.8.0"})
    )
    (root / "task-blocks_bold.json").write_text(json.dumps({"RepetitionTime": sim.t_r}))
    for run_img, events, subject in zip(sim.runs, sim.events, sim.run_groups):
        func = root / f"sub-{subject + 1:02d}" / "func"
        func.mkdir(parents=True, exist_ok=True)
        stem = f"sub-{subject + 1:02d}_task-blocks"
        nib.save(run_img, func / f"{stem}_bold.nii.gz")
        events.to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
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
