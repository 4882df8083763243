import importlib.util
from pathlib import Path

import numpy as np

import sklearn_tcssl

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "transfer_subjects.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("transfer_subjects", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_csv_plot_and_model(tmp_path, capsys):
    benchmark = _benchmark()
    results = benchmark.main(["--smoke", "--out", str(tmp_path)])
    assert set(results.method) == set(benchmark.METHODS)
    assert sorted(results.n_subjects.unique()) == [2, 4]
    assert results.accuracy.between(0, 1).all()
    # the same folds for every method
    folds = results.groupby("method").apply(lambda d: tuple(d.fold), include_groups=False)
    assert folds.nunique() == 1
    assert (tmp_path / "transfer_subjects.csv").stat().st_size > 0
    assert (tmp_path / "transfer_subjects.png").stat().st_size > 0
    card = sklearn_tcssl.io.read_card(tmp_path / "transfer_pretrained.safetensors")
    assert card["input"]["n_voxels"] == card["n_features_in"]
    out = capsys.readouterr().out
    assert "pretrained+finetune" in out and "chance" in out
    assert np.isfinite(results.fit_s).all()
