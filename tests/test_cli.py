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
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["results"]) == 2
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    assert (tmp_path / "scores.csv").exists()


def test_console_script_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_tcssl.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "tcssl" in result.stdout
