import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from _helpers import SHERLOCK

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "sherlock.py"
DATA = SHERLOCK


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("sherlock_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_splits_follow_the_protocol(bench):
    splits = bench.make_splits(17)
    ks = [k for k, _, _ in splits]
    assert ks.count(1) == ks.count(2) == ks.count(4) == 8 and ks.count(16) == 17
    for k, train, test in splits:
        assert len(train) == k and len(set(train) | set(test)) == 17
        assert not set(train) & set(test)


def test_skips_cleanly_without_the_data(bench, tmp_path, capsys):
    assert bench.main(["--data", str(tmp_path / "absent.npz")]) == 0
    assert "SKIPPED" in capsys.readouterr().out


def test_scores_and_table(bench, tmp_path):
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(1, 5, 8))
    features = templates + 0.1 * rng.normal(size=(6, 5, 8))  # 6 people, 5 classes
    splits = bench.make_splits(6, ks=(1, 2), draws=2)
    lr_scores = bench.score_features(features, splits, "LR")
    assert min(lr_scores) == 1.0
    lda_scores = bench.score_features(features, splits, "LDA")
    assert np.isnan(lda_scores[0]) and lda_scores[-1] == 1.0  # k=1: LDA undefined
    table = bench.Table(splits)
    table.add("toy", lda_scores, 1.0)
    assert [r["k"] for r in table.rows] == [1, 2, 5]
    out = tmp_path / "rows.json"
    out.write_text(json.dumps(table.rows))
    rst = tmp_path / "table.rst"
    assert bench.main(["--from-json", str(out), "--rst", str(rst)]) == 0
    text = rst.read_text()
    assert "n/a" in text and "1.000 ± 0.000" in text and "k = 5 (LOO)" in text


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_file(), reason="the Sherlock file (../shared/data) is absent")
def test_quick_run_on_real_data(bench, tmp_path):
    out = tmp_path / "rows.json"
    assert bench.main(["--quick", "--parts", "fixed", "--out", str(out)]) == 0
    rows = {(r["method"], r["k"]): r["mean"] for r in json.loads(out.read_text())}
    # alignment must beat raw voxels across people on real data
    assert rows[("SRM (k=50) + LR", 16)] > rows[("block mean + LR", 16)] + 0.05
