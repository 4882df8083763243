"""Ctrl-C stops training: KeyboardInterrupt propagates out of fit, the half epoch is lost."""

import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from _helpers import smooth_sequences
from skorch.callbacks import Callback, EarlyStopping

from sklearn_tcssl import TemporalContrastiveClassifier, TemporalContrastiveEmbedder
from sklearn_tcssl._training.checkpoint import list_checkpoints

PARAMS = {"n_components": 8, "batch_size": 8, "random_state": 0, "max_epochs": 8}


def _data():
    return smooth_sequences(24, 15, 10, seed=3)


class _InterruptAt(Callback):
    """Interrupts epoch ``epoch`` after its first batch: by SIGINT (Ctrl-C) or a raise."""

    def __init__(self, epoch, *, how="sigint", hook="on_batch_end"):
        self.epoch, self.how, self.hook = epoch, how, hook

    def _interrupt(self, net):
        if len(net.history) != self.epoch:
            return
        if self.how == "sigint":
            signal.raise_signal(signal.SIGINT)
        raise KeyboardInterrupt

    def on_batch_end(self, net, **kwargs):
        if self.hook == "on_batch_end":
            self._interrupt(net)

    def on_epoch_end(self, net, **kwargs):
        if self.hook == "on_epoch_end":
            self._interrupt(net)


def _epochs(root):
    return [int(p.name.split("-")[1]) for p in list_checkpoints(root)]


@pytest.mark.parametrize("how", ["sigint", "raise"])
def test_ctrl_c_propagates_then_resume_equals_uninterrupted(tmp_path, how):
    reference = TemporalContrastiveEmbedder(**PARAMS).fit(_data())
    embedder = TemporalContrastiveEmbedder(
        **PARAMS, checkpoint_dir=tmp_path, callbacks=[_InterruptAt(5, how=how)]
    )
    with pytest.raises(KeyboardInterrupt):
        embedder.fit(_data())
    assert not hasattr(embedder, "net_")  # stopped half way: not fitted
    assert _epochs(tmp_path) == [3, 4]  # the half epoch 5 was never saved
    assert not list(tmp_path.glob(".*"))  # no leftover temporary folder
    resumed = TemporalContrastiveEmbedder(**PARAMS, checkpoint_dir=tmp_path).fit(_data())
    for key, value in reference.net_.module_.state_dict().items():
        assert torch.equal(value, resumed.net_.module_.state_dict()[key]), key
    np.testing.assert_array_equal(
        resumed.history_[:, "train_loss"], reference.history_[:, "train_loss"]
    )


def test_ctrl_c_keeps_the_last_complete_checkpoint_with_checkpoint_every(tmp_path):
    embedder = TemporalContrastiveEmbedder(
        **PARAMS, checkpoint_dir=tmp_path, checkpoint_every=3, callbacks=[_InterruptAt(5)]
    )
    with pytest.raises(KeyboardInterrupt):
        embedder.fit(_data())
    assert _epochs(tmp_path) == [3]


def test_ctrl_c_during_epoch_end_propagates_and_saves_nothing_more(tmp_path):
    embedder = TemporalContrastiveEmbedder(
        **PARAMS, checkpoint_dir=tmp_path, callbacks=[_InterruptAt(2, hook="on_epoch_end")]
    )
    with pytest.raises(KeyboardInterrupt):
        embedder.fit(_data())
    assert _epochs(tmp_path) == [1, 2]  # epoch 2 was complete and saved before the callback


def test_ctrl_c_without_checkpoints_propagates():
    embedder = TemporalContrastiveEmbedder(**PARAMS, callbacks=[_InterruptAt(2)])
    with pytest.raises(KeyboardInterrupt):
        embedder.fit(_data())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_early_stopping_still_ends_training_normally(tmp_path):
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
    embedder = TemporalContrastiveEmbedder(**PARAMS, checkpoint_dir=tmp_path, callbacks=[stop])
    embedder.fit(_data())
    assert len(embedder.history_) < PARAMS["max_epochs"]
    assert _epochs(tmp_path)[-1] == len(embedder.history_)


def test_callback_raising_at_epoch_end_is_an_early_stop():
    embedder = TemporalContrastiveEmbedder(
        **PARAMS, callbacks=[_InterruptAt(3, how="raise", hook="on_epoch_end")]
    )
    assert len(embedder.fit(_data()).history_) == 3


@pytest.mark.parametrize("how", ["sigint", "raise"])
def test_classifier_ctrl_c_propagates(how):
    y = np.repeat([0, 1], 12)
    clf = TemporalContrastiveClassifier(**PARAMS, callbacks=[_InterruptAt(2, how=how)])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(_data(), y)
    assert not hasattr(clf, "net_")
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
    clf = TemporalContrastiveClassifier(**PARAMS, callbacks=[stop]).fit(_data(), y)
    assert len(clf.history_) < PARAMS["max_epochs"]


def test_aligner_ctrl_c_propagates():
    from sklearn_tcssl import TemporalContrastiveAligner
    from sklearn_tcssl._training.callbacks import StepCounter
    from sklearn_tcssl.datasets import make_time_locked_fmri

    data = make_time_locked_fmri(3, n_timepoints=60, n_features=10, n_components=3, random_state=0)
    aligner = TemporalContrastiveAligner(
        n_components=3, segment_length=4, max_epochs=4, batch_size=4, random_state=0
    )
    with mock.patch.object(StepCounter, "on_batch_end", _InterruptAt(2).on_batch_end):
        with pytest.raises(KeyboardInterrupt):
            aligner.fit(data.runs)
    assert not hasattr(aligner, "net_") and not hasattr(aligner, "shared_response_")


_TRAINER = """
import sys, time
sys.path[:0] = [{tests!r}, {root!r}]  # this checkout's package, whatever is installed
from skorch.callbacks import Callback
from _helpers import smooth_sequences
from sklearn_tcssl import TemporalContrastiveEmbedder

class Slow(Callback):
    def on_batch_end(self, net, **kwargs):
        time.sleep(0.05)

    def on_epoch_end(self, net, **kwargs):
        print("epoch", len(net.history), flush=True)

X = smooth_sequences(24, 15, 10, seed=3)
TemporalContrastiveEmbedder(**{params!r}, checkpoint_dir=sys.argv[1], callbacks=[Slow()]).fit(X)
print("finished", flush=True)
"""


def test_real_ctrl_c_stops_the_process_and_resume_is_exact(tmp_path):
    params = {**PARAMS, "max_epochs": 12}
    reference = TemporalContrastiveEmbedder(**params).fit(_data())
    script = tmp_path / "train.py"
    tests = Path(__file__).resolve().parent
    script.write_text(_TRAINER.format(tests=str(tests), root=str(tests.parent), params=params))
    checkpoints = tmp_path / "checkpoints"
    process = subprocess.Popen(
        [sys.executable, str(script), str(checkpoints)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list_checkpoints(checkpoints) or _epochs(checkpoints)[-1] < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal does
        output = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0 and "finished" not in output
    assert "KeyboardInterrupt" in output
    saved = _epochs(checkpoints)[-1]
    assert saved < params["max_epochs"]
    resumed = TemporalContrastiveEmbedder(**params, checkpoint_dir=checkpoints).fit(_data())
    for key, value in reference.net_.module_.state_dict().items():
        assert torch.equal(value, resumed.net_.module_.state_dict()[key]), key
