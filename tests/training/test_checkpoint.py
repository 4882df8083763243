"""Crash-safe checkpoints: kill a training process with SIGKILL, resume, same final state."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import smooth_sequences
from skorch.callbacks import Callback

from sklearn_tcssl import IncompatibleModelError, TemporalContrastiveEmbedder
from sklearn_tcssl._training.checkpoint import list_checkpoints

TESTS_DIR = Path(__file__).resolve().parents[1]
PARAMS = {"n_components": 8, "batch_size": 8, "random_state": 0, "max_epochs": 12}


def _data():
    return smooth_sequences(24, 15, 10, seed=3)


def _state(embedder):
    return {k: v.detach().clone() for k, v in embedder.net_.module_.state_dict().items()}


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


class _EpochCounter(Callback):
    """Counts the epochs trained by this process (not those restored from a checkpoint)."""

    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


_TRAINER = """
import sys, time
sys.path[:0] = [{tests!r}, {root!r}]  # this checkout's package, whatever is installed
from skorch.callbacks import Callback
from _helpers import smooth_sequences
from sklearn_tcssl import TemporalContrastiveEmbedder

class Slow(Callback):  # runs after the checkpoint callback: slows the run, draws no random numbers
    def on_epoch_end(self, net, **kwargs):
        print("epoch", len(net.history), flush=True)
        time.sleep(0.25)

X = smooth_sequences(24, 15, 10, seed=3)
TemporalContrastiveEmbedder(
    **{params!r}, checkpoint_dir=sys.argv[1], callbacks=[Slow()]
).fit(X)
print("finished", flush=True)
"""


def test_sigkill_then_resume_reaches_the_uninterrupted_state(tmp_path):
    reference = TemporalContrastiveEmbedder(**PARAMS).fit(_data())

    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(_TRAINER).format(
            tests=str(TESTS_DIR), root=str(TESTS_DIR.parent), params=PARAMS
        )
    )
    checkpoints = tmp_path / "checkpoints"
    log = (tmp_path / "log.txt").open("w")
    process = subprocess.Popen(
        [sys.executable, str(script), str(checkpoints)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 50
        while len(list_checkpoints(checkpoints)) < 2 or _latest(checkpoints) < 3:
            assert process.poll() is None, (tmp_path / "log.txt").read_text()
            assert time.monotonic() < deadline, "no checkpoint after 50 s"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL
    output = (tmp_path / "log.txt").read_text()
    assert "finished" not in output
    printed = [int(line.split()[1]) for line in output.splitlines() if line.startswith("epoch")]
    saved = _latest(checkpoints)
    # each epoch is checkpointed before the next starts: at most the running epoch is lost
    assert max(printed, default=0) <= saved < PARAMS["max_epochs"]

    counter = _EpochCounter()
    resumed = TemporalContrastiveEmbedder(
        **PARAMS, checkpoint_dir=checkpoints, callbacks=[counter]
    ).fit(_data())
    assert counter.epochs_ == PARAMS["max_epochs"] - saved
    assert len(resumed.history_) == PARAMS["max_epochs"]
    _assert_same_state(_state(resumed), _state(reference))
    np.testing.assert_allclose(
        resumed.history_[:, "train_loss"], reference.history_[:, "train_loss"], rtol=1e-5
    )
    np.testing.assert_allclose(
        resumed.transform(_data()), reference.transform(_data()), rtol=1e-5, atol=1e-6
    )


def _latest(root):
    found = list_checkpoints(root)
    return int(found[-1].name.split("-")[1]) if found else 0


def test_resume_in_process_is_bitwise_identical(tmp_path):
    reference = TemporalContrastiveEmbedder(**PARAMS).fit(_data())
    TemporalContrastiveEmbedder(**{**PARAMS, "max_epochs": 5}, checkpoint_dir=tmp_path).fit(
        _data()
    )
    resumed = TemporalContrastiveEmbedder(**PARAMS, checkpoint_dir=tmp_path).fit(_data())
    for key, value in _state(reference).items():
        assert torch.equal(value, _state(resumed)[key]), key


def test_checkpoint_every_keeps_last_two_and_the_final_epoch(tmp_path):
    params = {**PARAMS, "max_epochs": 7}
    plain = TemporalContrastiveEmbedder(**params).fit(_data())
    saved = TemporalContrastiveEmbedder(**params, checkpoint_dir=tmp_path, checkpoint_every=3)
    saved.fit(_data())
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch-000006", "epoch-000007"]
    assert sorted(os.listdir(tmp_path / "epoch-000007")) == [
        "history.json",
        "meta.json",
        "optimizer.pt",
        "params.safetensors",
        "rng.pt",
    ]
    meta = json.loads((tmp_path / "epoch-000007" / "meta.json").read_text())
    assert meta["epoch"] == 7
    assert meta["fingerprint"]["n_components"] == 8
    # checkpointing changes nothing in the training itself
    np.testing.assert_array_equal(saved.transform(_data()), plain.transform(_data()))
    # a finished run resumes with no epoch left to train
    counter = _EpochCounter()
    again = TemporalContrastiveEmbedder(**params, checkpoint_dir=tmp_path, callbacks=[counter])
    np.testing.assert_array_equal(again.fit(_data()).transform(_data()), plain.transform(_data()))
    assert counter.epochs_ == 0


def test_half_written_checkpoint_is_ignored(tmp_path):
    TemporalContrastiveEmbedder(**{**PARAMS, "max_epochs": 2}, checkpoint_dir=tmp_path).fit(
        _data()
    )
    partial = tmp_path / ".epoch-000003.tmp-12345"  # what a kill during a write leaves
    partial.mkdir()
    (partial / "params.safetensors").write_bytes(b"truncat")
    counter = _EpochCounter()
    resumed = TemporalContrastiveEmbedder(
        **{**PARAMS, "max_epochs": 4}, checkpoint_dir=tmp_path, callbacks=[counter]
    ).fit(_data())
    assert counter.epochs_ == 2
    assert len(resumed.history_) == 4


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"lr": 0.01}, r"another training run \(differs in: lr 0\.001 -> 0\.01\)"),
        ({"random_state": 1}, r"differs in: random_state 0 -> 1, seed .*integer random_state"),
        ({"data": True}, r"differs in: the training data\).*new or empty checkpoint_dir"),
        ({"max_epochs": 1}, r"after epoch 2, beyond max_epochs=1\. Raise max_epochs"),
    ],
)
def test_resuming_another_run_is_refused(tmp_path, change, match):
    params = {**PARAMS, "max_epochs": 2}
    TemporalContrastiveEmbedder(**params, checkpoint_dir=tmp_path).fit(_data())
    data = _data()[:-1] if change.pop("data", False) else _data()
    error = ValueError if "max_epochs" in change else IncompatibleModelError
    with pytest.raises(error, match=match):
        TemporalContrastiveEmbedder(**{**params, **change}, checkpoint_dir=tmp_path).fit(data)


def _two_checkpoints(tmp_path):
    params = {**PARAMS, "max_epochs": 4}
    TemporalContrastiveEmbedder(**{**params, "max_epochs": 3}, checkpoint_dir=tmp_path).fit(
        _data()
    )
    return params  # epochs 2 and 3 are on disk


def _truncate(path):
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("params.safetensors", _truncate),
        ("optimizer.pt", _truncate),
        ("rng.pt", _truncate),
        ("history.json", lambda p: p.write_text("[{]")),
        ("history.json", lambda p: p.write_text("[]")),
        ("meta.json", _truncate),
        ("params.safetensors", Path.unlink),
    ],
)
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, name, damage):
    params = _two_checkpoints(tmp_path)
    reference = TemporalContrastiveEmbedder(**params).fit(_data())
    damage(tmp_path / "epoch-000003" / name)
    counter = _EpochCounter()
    with pytest.warns(UserWarning, match=rf"epoch-000003.{name}' is damaged or missing|{name}"):
        resumed = TemporalContrastiveEmbedder(
            **params, checkpoint_dir=tmp_path, callbacks=[counter]
        ).fit(_data())
    assert counter.epochs_ == 2  # resumed after epoch 2
    assert (tmp_path / "epoch-000003.damaged").is_dir()
    _assert_same_state(_state(resumed), _state(reference))


def test_every_checkpoint_damaged_trains_afresh_with_a_warning(tmp_path):
    params = _two_checkpoints(tmp_path)
    reference = TemporalContrastiveEmbedder(**params).fit(_data())
    for folder in list_checkpoints(tmp_path):
        _truncate(folder / "params.safetensors")
    with pytest.warns(UserWarning, match="damaged"):
        resumed = TemporalContrastiveEmbedder(**params, checkpoint_dir=tmp_path).fit(_data())
    _assert_same_state(_state(resumed), _state(reference))


def test_checkpoint_dir_that_is_a_file_fails_before_training(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    counter = _EpochCounter()
    embedder = TemporalContrastiveEmbedder(**PARAMS, checkpoint_dir=path, callbacks=[counter])
    with pytest.raises(ValueError, match=r"checkpoint_dir='.*file' is a file, not a folder"):
        embedder.fit(_data())


def test_read_only_checkpoint_dir_fails_before_training(tmp_path, monkeypatch):
    def refuse(self, data):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)  # root ignores chmod: simulate it
    with pytest.raises(ValueError, match=r"checkpoint_dir=.* cannot be written \(Permission"):
        TemporalContrastiveEmbedder(**PARAMS, checkpoint_dir=tmp_path / "ro").fit(_data())


def test_stale_temporary_folders_are_removed(tmp_path):
    dead = tmp_path / ".epoch-000003.tmp-999999999"
    alive = tmp_path / f".epoch-000003.tmp-{os.getppid()}"  # another running process
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "params.safetensors").write_bytes(b"half")
    TemporalContrastiveEmbedder(**{**PARAMS, "max_epochs": 1}, checkpoint_dir=tmp_path).fit(
        _data()
    )
    assert not dead.exists()
    assert alive.exists()


def test_weights_are_safetensors_and_format_1_checkpoints_still_resume(tmp_path):
    from safetensors.torch import load_file

    reference = TemporalContrastiveEmbedder(**PARAMS).fit(_data())
    short = {**PARAMS, "max_epochs": 5}
    TemporalContrastiveEmbedder(**short, checkpoint_dir=tmp_path).fit(_data())
    for folder in list_checkpoints(tmp_path):  # rewrite as the previous format wrote them
        assert sorted(p.name for p in folder.iterdir()) == [
            "history.json",
            "meta.json",
            "optimizer.pt",
            "params.safetensors",
            "rng.pt",
        ]
        torch.save(load_file(folder / "params.safetensors"), folder / "params.pt")
        (folder / "params.safetensors").unlink()
        meta = json.loads((folder / "meta.json").read_text())
        (folder / "meta.json").write_text(json.dumps({**meta, "format": 1}))
    resumed = TemporalContrastiveEmbedder(**PARAMS, checkpoint_dir=tmp_path).fit(_data())
    for key, value in _state(reference).items():
        assert torch.equal(value, _state(resumed)[key]), key
    assert (list_checkpoints(tmp_path)[-1] / "params.safetensors").is_file()
