"""Two fits sharing one checkpoint_dir: one trains, the other is refused, nothing is lost."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import smooth_sequences

from sklearn_tcssl import CheckpointInUseError, TemporalContrastiveEmbedder
from sklearn_tcssl._training import checkpoint as checkpoint_lock
from sklearn_tcssl._training.checkpoint import LOCK_NAME, checkpoint_dir_lock, list_checkpoints

TESTS_DIR = Path(__file__).resolve().parents[1]
PARAMS = {"n_components": 8, "batch_size": 8, "random_state": 0, "max_epochs": 6}

_TRAINER = """
import sys, time
from pathlib import Path
sys.path[:0] = [{tests!r}, {root!r}]
from skorch.callbacks import Callback
from _helpers import smooth_sequences
from sklearn_tcssl import CheckpointInUseError, TemporalContrastiveEmbedder

class Slow(Callback):
    def on_epoch_end(self, net, **kwargs):
        time.sleep(0.4)

X = smooth_sequences(24, 15, 10, seed=3)
Path(sys.argv[2] + ".ready").touch()
while not Path(sys.argv[3]).exists():  # both processes call fit at the same moment
    time.sleep(0.005)
params = dict({params!r}, temperature=float(sys.argv[4]))
try:
    TemporalContrastiveEmbedder(**params, checkpoint_dir=sys.argv[1], callbacks=[Slow()]).fit(X)
except CheckpointInUseError as exc:
    print("refused:", exc, flush=True)
    sys.exit(3)
print("finished", flush=True)
"""


def test_two_processes_started_together_one_trains_one_is_refused(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        _TRAINER.format(tests=str(TESTS_DIR), root=str(TESTS_DIR.parent), params=PARAMS)
    )
    shared, go = tmp_path / "checkpoints", tmp_path / "go"
    env = {**os.environ, "SKLEARN_TCSSL_N_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(shared), str(tmp_path / name), str(go), temp],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for name, temp in [("a", "0.1"), ("b", "0.5")]
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"{n}.ready").exists() for n in "ab"):
            assert all(p.poll() is None for p in processes) and time.monotonic() < deadline
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=120)[0] for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    codes = sorted(p.returncode for p in processes)
    assert codes == [0, 3], outputs
    winner = next(o for p, o in zip(processes, outputs) if p.returncode == 0)
    loser = next(o for p, o in zip(processes, outputs) if p.returncode == 3)
    assert "finished" in winner and "Traceback" not in winner
    assert f"checkpoint_dir={str(shared)!r} is in use by another fit (process " in loser
    assert "Give each fit its own checkpoint_dir" in loser
    # the winner's training is complete and intact; the lock is gone with it
    assert int(list_checkpoints(shared)[-1].name.split("-")[1]) == PARAMS["max_epochs"]
    assert not (shared / LOCK_NAME).exists()
    temperature = 0.1 if processes[0].returncode == 0 else 0.5
    resumed = TemporalContrastiveEmbedder(**PARAMS, temperature=temperature, checkpoint_dir=shared)
    assert len(resumed.fit(smooth_sequences(24, 15, 10, seed=3)).history_) == PARAMS["max_epochs"]


def test_a_fit_in_this_process_is_refused_while_the_lock_is_held(tmp_path):
    with checkpoint_dir_lock(tmp_path, owner="other") as path:
        assert path.read_text().strip() == str(os.getpid())
        with pytest.raises(CheckpointInUseError, match=r"checkpoint_dir=.* is in use by"):
            TemporalContrastiveEmbedder(**PARAMS, checkpoint_dir=tmp_path).fit(
                smooth_sequences(24, 15, 10, seed=3)
            )
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path):
    (tmp_path / LOCK_NAME).write_text("999999999\n")  # no flock held: its owner died
    TemporalContrastiveEmbedder(**{**PARAMS, "max_epochs": 2}, checkpoint_dir=tmp_path).fit(
        smooth_sequences(24, 15, 10, seed=3)
    )
    assert len(list_checkpoints(tmp_path)) == 2 and not (tmp_path / LOCK_NAME).exists()


def test_without_fcntl_a_live_owner_blocks_and_a_dead_one_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_lock, "fcntl", None)
    lock = tmp_path / LOCK_NAME
    lock.write_text(f"{os.getppid()}\n")  # a running process
    with pytest.raises(CheckpointInUseError, match=rf"\(process {os.getppid()}\)"):
        with checkpoint_dir_lock(tmp_path, owner="Embedder"):
            pass
    lock.write_text("999999999\n")
    with checkpoint_dir_lock(tmp_path, owner="Embedder"):
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(CheckpointInUseError):
            with checkpoint_dir_lock(tmp_path, owner="Embedder"):
                pass
    assert not lock.exists()
