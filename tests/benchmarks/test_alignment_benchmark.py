import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "alignment.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("alignment_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_segment_matching_finds_shared_windows(bench):
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(60, 4))
    people = np.stack(
        [bench.window_features(shared + 0.3 * rng.normal(size=shared.shape)) for _ in range(5)]
    )
    assert people.shape == (5, 60 - 9 + 1, 36)
    assert bench.match_windows(people).min() > 0.9
    unrelated = np.stack([bench.window_features(rng.normal(size=(60, 4))) for _ in range(5)])
    assert bench.match_windows(unrelated).mean() < 0.2


def test_windows_are_scored_as_the_package_scores_them(bench):
    from sklearn_tcssl.alignment import segment_matching

    rng = np.random.default_rng(1)
    shared = rng.normal(size=(50, 3))
    runs = [shared + rng.normal(size=shared.shape) for _ in range(4)]
    standardised = [(r - r.mean(axis=0)) / r.std(axis=0) for r in runs]
    ours = bench.match_windows(np.stack([bench.window_features(r) for r in standardised]))
    np.testing.assert_allclose(ours, segment_matching(runs, window=9))


def test_overlapping_windows_are_not_candidates(bench):
    # a slow, shared ramp: a window's best match among all windows would be a neighbour,
    # but the neighbours overlapping it are excluded, so its own window wins
    t = np.linspace(0, 1, 40)[:, None]
    series = np.hstack([t, t**2, np.sin(6 * t)])
    features = np.stack([bench.window_features(series)] * 3)
    assert bench.match_windows(features).min() == 1.0
    assert bench.matching_chance(972) == pytest.approx(1 / 956)


def test_skips_cleanly_without_the_data(bench, tmp_path, capsys):
    assert bench.main(["--data", str(tmp_path / "absent.npz")]) == 0
    assert "SKIPPED" in capsys.readouterr().out


def test_a_failing_peer_is_a_row_not_a_crash(bench, tmp_path):
    rng = np.random.default_rng(0)
    scan1 = rng.normal(size=(4, 40, 6)).astype(np.float32)
    scan2 = rng.normal(size=(4, 80, 6)).astype(np.float32)
    scenes = np.array([[0, 10], [10, 20], [20, 30]])

    def missing(scan):
        raise ImportError("No module named 'nopeer'")

    methods = {"none": (bench.fit_none, None), "peer": (missing, None)}
    rows = bench.run_methods(methods, scan1, scan2, scenes)
    by_key = {(r["task"], r["method"]): r for r in rows}
    assert by_key[("segment_matching", "none")]["k"] == 4
    assert by_key[("scenes", "none + LDA")]["mean"] is not None
    failed = by_key[("segment_matching", "peer")]
    assert failed["mean"] is None and "nopeer" in failed["error"] and "[peers]" in failed["error"]
    out, rst = tmp_path / "rows.json", tmp_path / "table.rst"
    out.write_text(json.dumps(rows))
    assert bench.main(["--from-json", str(out), "--rst", str(rst)]) == 0
    text = rst.read_text()
    assert "not run: ``ImportError" in text and "segment matching (4 folds)" in text
