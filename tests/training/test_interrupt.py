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
from sklearn_tcssl._utils.processes import Terminated, stop_on_sigterm

PARAMS = {"n_components": 8, "batch_size": 8, "random_state": 0, "max_epochs": 8}


def _data():
    return smooth_sequences(24, 15, 10, seed=3)


class _InterruptAt(Callback):
    """Interrupts epoch ``epoch`` after its first batch: by SIGINT (Ctrl-C), SIGTERM or a raise."""

    def __init__(self, epoch, *, how="sigint", hook="on_batch_end"):
        self.epoch, self.how, self.hook = epoch, how, hook

    def _interrupt(self, net):
        if len(net.history) != self.epoch:
            return
        if self.how in ("sigterm", "sigterm-only"):
            signal.raise_signal(signal.SIGTERM)
            if self.how == "sigterm-only":
                self.epoch = None  # once
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
from pathlib import Path
sys.path[:0] = [{tests!r}, {root!r}]  # this checkout's package, whatever is installed
from skorch.callbacks import Callback
from _helpers import smooth_sequences
from sklearn_tcssl import TemporalContrastiveEmbedder

class WaitForSignal(Callback):
    # epoch 3 waits after its first batch, until the signal stops it: the test cannot race
    # the training (a loaded machine once let it finish before the signal was sent)
    def on_batch_end(self, net, **kwargs):
        if len(net.history) == 3:
            Path(sys.argv[2]).touch()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                time.sleep(0.01)

X = smooth_sequences(24, 15, 10, seed=3)
TemporalContrastiveEmbedder(
    **{params!r}, checkpoint_dir=sys.argv[1], callbacks=[WaitForSignal()]
).fit(X)
print("finished", flush=True)
"""


def _signal_a_training_process(tmp_path, signum, params):
    """Run the trainer in a child, send ``signum`` during epoch 3; return it and its output."""
    script = tmp_path / "train.py"
    tests = Path(__file__).resolve().parents[1]
    script.write_text(_TRAINER.format(tests=str(tests), root=str(tests.parent), params=params))
    checkpoints, waiting = tmp_path / "checkpoints", tmp_path / "waiting"
    process = subprocess.Popen(
        [sys.executable, str(script), str(checkpoints), str(waiting)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = _signal_when_ready(process, waiting, signum, "epoch 3")[0]
    return process, output, checkpoints


def _signal_when_ready(process, waiting, signum, stage):
    """Send ``signum`` once ``process`` creates ``waiting``; return ``communicate()``'s output.

    The child is killed if anything fails, so that no test leaves a process behind.
    """
    try:
        deadline = time.monotonic() + 120
        while not waiting.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"{stage} not reached in 120 s"
            time.sleep(0.02)
        process.send_signal(signum)
        return process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_real_signal_stops_the_process_and_resume_is_exact(tmp_path, signum):
    params = {**PARAMS, "max_epochs": 6}
    reference = TemporalContrastiveEmbedder(**params).fit(_data())
    process, output, checkpoints = _signal_a_training_process(tmp_path, signum, params)
    assert "finished" not in output
    if signum == signal.SIGINT:  # what Ctrl-C in a terminal does
        assert process.returncode != 0 and "KeyboardInterrupt" in output
    else:  # what kill, schedulers and containers do: a clean exit with the shell's code
        assert process.returncode == 143, output
        assert "Traceback" not in output
        assert (
            f"Training stopped by SIGTERM during epoch 3; checkpoint_dir={str(checkpoints)!r} "
            "keeps epoch 2. Run the same fit again to resume from it." in output
        )
    assert _epochs(checkpoints) == [1, 2]  # the half epoch 3 was never saved
    resumed = TemporalContrastiveEmbedder(**params, checkpoint_dir=checkpoints).fit(_data())
    for key, value in reference.net_.module_.state_dict().items():
        assert torch.equal(value, resumed.net_.module_.state_dict()[key]), key


def test_sigterm_in_process_raises_terminated_after_train_end(tmp_path, capsys):
    embedder = TemporalContrastiveEmbedder(
        **PARAMS, checkpoint_dir=tmp_path, callbacks=[_InterruptAt(4, how="sigterm")]
    )
    with pytest.raises(Terminated) as info:
        embedder.fit(_data())
    assert info.value.code == 143 and isinstance(info.value, SystemExit)
    assert "during epoch 4" in str(info.value) and "keeps epoch 3" in str(info.value)
    assert str(info.value) in capsys.readouterr().err
    assert _epochs(tmp_path) == [2, 3] and not hasattr(embedder, "net_")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored


def test_sigterm_without_checkpoints_says_nothing_was_saved():
    embedder = TemporalContrastiveEmbedder(**PARAMS, callbacks=[_InterruptAt(2, how="sigterm")])
    with pytest.raises(Terminated, match="nothing was saved .pass checkpoint_dir="):
        embedder.fit(_data())


def test_a_users_own_sigterm_handler_is_called_not_replaced():
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        embedder = TemporalContrastiveEmbedder(
            **{**PARAMS, "max_epochs": 3}, callbacks=[_InterruptAt(2, how="sigterm-only")]
        )
        assert len(embedder.fit(_data()).history_) == 3  # the user's handler did not stop it
        assert calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_stop_on_sigterm_outside_training_exits_143_with_a_message(capsys):
    cleaned = []
    with pytest.raises(Terminated) as info:
        with stop_on_sigterm("tcssl pretrain"):
            try:
                signal.raise_signal(signal.SIGTERM)
            finally:
                cleaned.append(True)
    assert info.value.code == 143 and cleaned == [True]
    assert capsys.readouterr().err.strip() == "tcssl pretrain: stopped by SIGTERM."
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


_CLI = """
import sys, time
from pathlib import Path
sys.path[:0] = [{root!r}]
from sklearn_tcssl._training.callbacks import StepCounter
from sklearn_tcssl.cli import main

def wait(self, net, **kwargs):  # the second epoch waits until the signal stops it
    if len(net.history) == 2:
        Path(sys.argv[1]).touch()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.01)

StepCounter.on_batch_end = wait
sys.exit(main(["demo", "--out", sys.argv[2], "--n-subjects", "4", "--folds", "2",
               "--max-epochs", "3"]))
"""


def test_sigterm_during_tcssl_training_exits_143_with_a_message(tmp_path):
    script = tmp_path / "cli.py"
    script.write_text(_CLI.format(root=str(Path(__file__).resolve().parents[2])))
    waiting = tmp_path / "waiting"
    process = subprocess.Popen(
        [sys.executable, str(script), str(waiting), str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = _signal_when_ready(process, waiting, signal.SIGTERM, "training")[1]
    assert process.returncode == 143, err
    assert "Training stopped by SIGTERM during epoch 2" in err and "Traceback" not in err
