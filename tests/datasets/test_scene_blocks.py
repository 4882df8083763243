import numpy as np
import pandas as pd
import pytest
from _helpers import SHERLOCK

from sklearn_tcssl.datasets import load_sherlock_pmc, scene_blocks


def test_blocks_are_cut_person_by_person():
    runs = np.arange(2 * 10 * 3, dtype=float).reshape(2, 10, 3)
    cut = scene_blocks(runs, [[0, 4], [6, 10]], subjects=["a", "b"], labels=["x", "y"])
    assert [b.shape for b in cut.blocks] == [(4, 3), (4, 3), (4, 3), (4, 3)]
    np.testing.assert_array_equal(cut.blocks[3], runs[1, 6:10])
    assert cut.y.tolist() == ["x", "y", "x", "y"]
    assert cut.groups.tolist() == ["a", "a", "b", "b"]


def test_events_in_seconds_need_the_repetition_time():
    runs = [np.zeros((20, 2)), np.ones((20, 2))]
    events = pd.DataFrame({"onset": [0.0, 15.0], "duration": [6.0, 9.0], "trial_type": list("pq")})
    cut = scene_blocks(runs, events, t_r=1.5)
    assert [len(b) for b in cut.blocks[:2]] == [4, 6] and cut.y.tolist() == list("pqpq")
    with pytest.raises(ValueError, match=r"t_r=None: scenes given as events .* pass t_r="):
        scene_blocks(runs, events)


@pytest.mark.parametrize(
    ("runs", "scenes", "message"),
    [
        (np.zeros((10, 3)), [[0, 4]], r"runs has shape \(10, 3\); .* 3D array"),
        (np.zeros((2, 10, 3)), [[0, 12]], r"scenes\[0\] = \[0, 12\] .*0 to 10 time points"),
        (np.zeros((2, 10, 3)), [[5, 5]], r"scenes\[0\] = \[5, 5\] is not a \[start, stop\)"),
        (np.zeros((2, 10, 3)), [[0.0, 4.5]], r"float64 values; .* integers"),
        (np.zeros((2, 10, 3)), [0, 4], r"scenes has shape \(2,\); expected \(n_scenes, 2\)"),
    ],
)
def test_bad_scenes_are_refused_with_the_fix(runs, scenes, message):
    with pytest.raises(ValueError, match=message):
        scene_blocks(runs, scenes)


@pytest.mark.skipif(not SHERLOCK.is_file(), reason="the Sherlock file (../shared/data) is absent")
def test_sherlock_scan_2_gives_23_scenes_of_17_people():
    data = load_sherlock_pmc(SHERLOCK)
    cut = scene_blocks(data.scans[1], data.scenes[1])
    assert len(cut.blocks) == 17 * 23 and len(set(cut.y)) == 23
