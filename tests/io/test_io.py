import json
import os
import pickle
import struct
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from _helpers import smooth_sequences
from nilearn.maskers import NiftiMasker

import sklearn_tcssl
from sklearn_tcssl import (
    IncompatibleModelError,
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
    load,
    save,
)
from sklearn_tcssl.io import FORMAT_VERSION, check_input, describe_mask, read_card

FAST = {"n_components": 8, "max_epochs": 2, "random_state": 0}


def _mask_img(shape=(4, 5, 3), n_on=30, seed=0):
    data = np.zeros(shape, dtype=np.uint8)
    data.flat[np.random.default_rng(seed).permutation(data.size)[:n_on]] = 1
    return nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0]))


@pytest.fixture(scope="module")
def data():
    X = smooth_sequences(30, 12, 30)
    y = np.array(["rest", "task"])[np.arange(30) % 2]
    return X, y


@pytest.fixture(scope="module")
def embedder(data):
    return TemporalContrastiveEmbedder(**FAST).fit(data[0])


class _Marker:
    """Unpickling this object creates a file: proof that code from the file ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_embedder_round_trip_same_embeddings(tmp_path, data, embedder):
    path = embedder.save(tmp_path / "model.safetensors", t_r=2.0, input_info={"space": "MNI"})
    loaded = load(path)
    assert isinstance(loaded, TemporalContrastiveEmbedder)
    np.testing.assert_array_equal(loaded.transform(data[0]), embedder.transform(data[0]))
    np.testing.assert_array_equal(loaded.mean_, embedder.mean_)
    assert loaded.get_params()["n_components"] == 8
    assert loaded.score(data[0]) == pytest.approx(embedder.score(data[0]))
    assert loaded.device_ == torch.device("cpu")
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed


def test_classifier_round_trip(tmp_path, data):
    X, y = data
    clf = TemporalContrastiveClassifier(**FAST).fit(X, y)
    loaded = load(save(clf, tmp_path / "clf.safetensors"))
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.classes_.dtype == clf.classes_.dtype
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_card_contents(tmp_path, data, embedder):
    mask = _mask_img()
    path = save(embedder, tmp_path / "m.safetensors", mask=mask, t_r=2.0)
    card = read_card(path)
    assert card["format_version"] == FORMAT_VERSION
    assert card["estimator"] == "TemporalContrastiveEmbedder"
    assert card["versions"]["torch"] == torch.__version__
    assert card["versions"]["sklearn_tcssl"] == sklearn_tcssl.__version__
    assert card["architecture"]["n_features"] == 30
    assert card["n_features_in"] == 30
    assert card["input"]["t_r"] == 2.0
    assert card["input"]["n_voxels"] == 30
    assert card["input"]["voxel_size"] == [3.0, 3.0, 3.0]
    assert card["input"]["mask_sha256"] == describe_mask(mask)["mask_sha256"]
    assert card["training"]["n_sequences"] == 30
    assert card["training"]["n_timepoints"] == 360
    assert 0 <= card["training"]["final_pretext_accuracy"] <= 1
    assert card["params"]["callbacks"] is None
    # a classifier trained from a pretrained embedder records where it came from
    clf = TemporalContrastiveClassifier(init_from=path, max_epochs=1).fit(*data)
    card = read_card(save(clf, tmp_path / "clf.safetensors"))
    assert card["training"]["init_from"]["file"] == str(path)
    assert card["classes"] == ["rest", "task"]


def test_init_from_a_loaded_then_refitted_estimator_records_its_new_training(
    tmp_path, data, embedder
):
    X, y = data
    refitted = load(save(embedder, tmp_path / "m.safetensors")).fit(X[:20])
    clf = TemporalContrastiveClassifier(init_from=refitted, max_epochs=0).fit(X, y)
    saved = read_card(save(refitted, tmp_path / "refitted.safetensors"))["training"]
    assert clf.init_card_["training"] == saved
    assert saved["n_sequences"] == 20


def test_mask_checks(tmp_path, data, embedder):
    mask = _mask_img()
    path = save(embedder, tmp_path / "m.safetensors", mask=mask)
    load(path, mask=mask)  # same mask: fine
    masker = NiftiMasker(mask_img=mask).fit()
    check_input(load(path), mask=masker)
    other = _mask_img(seed=1)  # same voxel count, other voxels
    with pytest.raises(IncompatibleModelError, match="differs from the one recorded"):
        load(path, mask=other)
    with pytest.raises(IncompatibleModelError, match="mask has 29 voxels"):
        load(path, mask=_mask_img(n_on=29))
    loaded = load(path)
    with pytest.raises(IncompatibleModelError, match="expects 30 features.*X has 31"):
        check_input(loaded, [np.zeros((5, 31))])
    with pytest.raises(ValueError, match="fitted with 30"):
        loaded.transform([np.zeros((5, 31), dtype=np.float32)])


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    for name, payload in [
        ("model.safetensors", pickle.dumps(_Marker(str(marker)))),
        ("model.pt", pickle.dumps({"state": _Marker(str(marker))}, protocol=2)),
    ]:
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(IncompatibleModelError, match="not a safetensors model file"):
            load(path)
        with pytest.raises(IncompatibleModelError):
            TemporalContrastiveEmbedder(init_from=path).fit(smooth_sequences(4, 9, 3))
    assert not marker.exists()
    # the payload is live: unpickling it would have created the marker
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_torch_save_file_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(IncompatibleModelError, match="not a safetensors model file"):
        load(path)


def _rewrite_card(path, out, **changes):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    card = json.loads(header["__metadata__"]["tcssl_card"])
    card.update(changes)
    header["__metadata__"]["tcssl_card"] = json.dumps(card)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    out.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])
    return out


def test_newer_format_version_is_refused(tmp_path, embedder):
    path = save(embedder, tmp_path / "m.safetensors")
    newer = _rewrite_card(path, tmp_path / "newer.safetensors", format_version=FORMAT_VERSION + 1)
    with pytest.raises(IncompatibleModelError, match="format_version=2.*Upgrade"):
        load(newer)
    load(_rewrite_card(path, tmp_path / "same.safetensors"))  # the rewrite itself is valid


@pytest.mark.parametrize(
    ("version", "advice"),
    [(0, "older than any format.*save it again"), ("1", "damaged"), (True, "damaged")],
)
def test_older_or_odd_format_version_is_refused_without_upgrade_advice(
    tmp_path, embedder, version, advice
):
    path = save(embedder, tmp_path / "m.safetensors")
    other = _rewrite_card(path, tmp_path / "other.safetensors", format_version=version)
    with pytest.raises(IncompatibleModelError, match=advice) as info:
        load(other)
    assert "pip install -U" not in str(info.value)


def test_sigterm_during_save_leaves_the_old_file_and_no_temporary(tmp_path, embedder, capsys):
    import signal
    from unittest import mock

    from sklearn_tcssl._utils.processes import Terminated

    path = save(embedder, tmp_path / "m.safetensors")
    before = path.read_bytes()

    def killed(fd):
        signal.raise_signal(signal.SIGTERM)

    with mock.patch("sklearn_tcssl.io._model_file.os.fsync", killed):
        with pytest.raises(Terminated) as info:
            save(embedder, path)
    assert info.value.code == 143 and "stopped by SIGTERM" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_save_removes_temporaries_of_dead_writers_only(tmp_path, embedder):
    dead = tmp_path / ".m.safetensors.tmp-999999999-abc"
    alive = tmp_path / f".m.safetensors.tmp-{os.getppid()}-abc"  # a save still running
    other = tmp_path / ".n.safetensors.tmp-999999999-abc"  # another file's
    for leftover in (dead, alive, other):
        leftover.write_bytes(b"partial")
    save(embedder, tmp_path / "m.safetensors")
    assert not dead.exists() and alive.exists() and other.exists()


def test_plain_safetensors_without_card_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(IncompatibleModelError, match="not an sklearn-tcssl model"):
        load(path)


def test_save_needs_fitted_tcssl_estimator(tmp_path):
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="only sklearn-tcssl estimators"):
        save(LogisticRegression(), tmp_path / "x.safetensors")
    with pytest.raises(sklearn_tcssl.NotFittedError):
        save(TemporalContrastiveEmbedder(), tmp_path / "x.safetensors")
    with pytest.raises(FileNotFoundError, match="a folder"):
        load(tmp_path)


def test_loads_on_a_cpu_only_process(tmp_path, data, embedder):
    path = save(embedder, tmp_path / "m.safetensors")
    np.save(tmp_path / "X.npy", np.stack(data[0]))
    np.save(tmp_path / "Z.npy", embedder.transform(data[0]))
    code = (
        "import numpy as np, torch, sklearn_tcssl, sys\n"
        "assert not torch.cuda.is_available()\n"
        f"m = sklearn_tcssl.load({str(path)!r})\n"
        f"Z = m.transform(np.load({str(tmp_path / 'X.npy')!r}))\n"
        f"np.testing.assert_array_equal(Z, np.load({str(tmp_path / 'Z.npy')!r}))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_only_model_describing_parameters_are_read_back(tmp_path, data):
    embedder = TemporalContrastiveEmbedder(
        n_components=8,
        max_epochs=1,
        random_state=0,
        checkpoint_dir=tmp_path / "checkpoints",
        cache_dir=tmp_path / "cache",
        device="cpu",
        verbose=0,
    ).fit(data[0])
    path = save(embedder, tmp_path / "model.safetensors")
    hostile = _rewrite_card(
        path,
        tmp_path / "hostile.safetensors",
        params={
            **read_card(path)["params"],
            "checkpoint_dir": "/somewhere/else",
            "cache_dir": "/tmp/evil",
            "device": "cuda:7",
            "callbacks": "x",
            "num_workers": 64,
        },
    )
    loaded = load(hostile)
    defaults = TemporalContrastiveEmbedder().get_params()
    for key in ("checkpoint_dir", "cache_dir", "device", "callbacks", "num_workers", "init_from"):
        assert loaded.get_params()[key] == defaults[key], key
    assert loaded.get_params()["n_components"] == 8
    assert loaded.get_params()["random_state"] == 0


def test_card_parameters_are_checked_against_parameter_constraints(
    tmp_path, embedder, monkeypatch
):
    from numbers import Real

    from sklearn.utils._param_validation import Interval

    path = save(embedder, tmp_path / "model.safetensors")
    bad = _rewrite_card(
        path, tmp_path / "bad.safetensors", params={**read_card(path)["params"], "lr": -1.0}
    )
    with pytest.raises(IncompatibleModelError, match=r"'params' is invalid: The 'lr' parameter"):
        load(bad)  # the class's constraints (numeric bounds for a class without them)
    constraints = {"lr": [Interval(Real, 0, None, closed="neither")]}
    monkeypatch.setattr(
        TemporalContrastiveEmbedder, "_parameter_constraints", constraints, raising=False
    )
    with pytest.raises(IncompatibleModelError, match=r"'params' is invalid: The 'lr' parameter"):
        load(bad)


def test_load_in_a_fresh_process_imports_the_estimator_by_name(tmp_path, embedder):
    """The package imports its estimators lazily: io.load must find them by name."""
    path = embedder.save(tmp_path / "model.safetensors")
    code = (
        "import sys; from sklearn_tcssl.io import load; m = load(sys.argv[1]); "
        "print(type(m).__name__)"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env
    )
    assert result.stdout.strip() == "TemporalContrastiveEmbedder", result.stderr[-2000:]
