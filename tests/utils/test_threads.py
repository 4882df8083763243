"""Thread policy: torch and BLAS threads follow the CPUs this process may really use."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch
from _helpers import smooth_sequences

import sklearn_tcssl
from sklearn_tcssl import (
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
    config_context,
)
from sklearn_tcssl._utils import threads as _threads
from sklearn_tcssl._utils.threads import resolve_n_threads, thread_budget

FAST = {"n_components": 4, "segment_length": 3, "max_epochs": 1, "random_state": 0}


@pytest.fixture
def automatic():
    with config_context(n_threads=None):
        yield


@pytest.mark.parametrize("found", [1, 3])
def test_fit_and_transform_leave_torch_threads_as_found(found, automatic):
    X = smooth_sequences(8, 12, 5)
    before = torch.get_num_threads()
    torch.set_num_threads(found)
    try:
        embedder = TemporalContrastiveEmbedder(**FAST).fit(X)
        assert torch.get_num_threads() == found
        embedder.transform(X)
        assert torch.get_num_threads() == found
        y = np.arange(8) % 2
        clf = TemporalContrastiveClassifier(n_components=4, max_epochs=1, random_state=0).fit(X, y)
        clf.predict(X)
        assert torch.get_num_threads() == found
    finally:
        torch.set_num_threads(before)


def test_fit_uses_the_budget_inside(monkeypatch):
    seen = []
    original = TemporalContrastiveEmbedder._build_net

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TemporalContrastiveEmbedder, "_build_net", spy)
    with config_context(n_threads=2):
        TemporalContrastiveEmbedder(**FAST).fit(smooth_sequences(8, 12, 5))
    assert seen == [2]


def test_explicit_and_negative_counts_follow_n_jobs(monkeypatch):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 4)
    assert resolve_n_threads(3) == 3
    assert resolve_n_threads(-1) == 4
    assert resolve_n_threads(-2) == 3
    assert resolve_n_threads(-10) == 1


def test_user_limits_lower_the_budget(monkeypatch, automatic):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(_threads, "_blas_limit", lambda: None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(8)
    try:
        assert resolve_n_threads() == 4
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert resolve_n_threads() == 2
        monkeypatch.setenv(_threads.ENV_VAR, "3")
        assert resolve_n_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_the_automatic_count_does_not_follow_the_load(monkeypatch, automatic):
    """The count comes from static limits: no reading of /proc/loadavg or os.getloadavg."""
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    real_open = open

    def guarded_open(path, *args, **kwargs):
        assert "loadavg" not in str(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr(os, "getloadavg", lambda: pytest.fail("the load was read"))
    counts = {resolve_n_threads() for _ in range(20)}
    assert len(counts) == 1


def test_one_thread_inside_a_worker(monkeypatch, automatic):
    monkeypatch.setattr(_threads, "_in_worker", lambda: True)
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    assert resolve_n_threads() == 1


def test_more_threads_than_cpus_are_capped_with_a_warning(monkeypatch, automatic):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 2)
    with pytest.warns(UserWarning, match="n_threads=99999 asks for more threads than the 2 CPUs"):
        assert resolve_n_threads(99999) == 2
    monkeypatch.setenv(_threads.ENV_VAR, "1000000000")
    with pytest.warns(UserWarning, match=f"{_threads.ENV_VAR}=1000000000 .* using 2"):
        assert resolve_n_threads() == 2


def test_numpy_integers_are_accepted():
    with config_context(n_threads=np.int64(2)):
        assert sklearn_tcssl.get_config()["n_threads"] == 2
        assert type(sklearn_tcssl.get_config()["n_threads"]) is int


def test_a_bad_environment_variable_is_named(monkeypatch, automatic):
    monkeypatch.setenv(_threads.ENV_VAR, "many")
    with pytest.raises(ValueError, match=f"{_threads.ENV_VAR}='many' is not allowed"):
        resolve_n_threads()


def test_set_config_reaches_worker_threads_and_new_processes(monkeypatch):
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    seen = []
    try:
        sklearn_tcssl.set_config(n_threads=1)
        worker = threading.Thread(target=lambda: seen.append(resolve_n_threads()))
        worker.start()
        worker.join()
        code = "from sklearn_tcssl._utils.threads import resolve_n_threads as r; print(r())"
        child = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
    finally:
        sklearn_tcssl.set_config(n_threads=None)
    assert seen == [1]
    assert child.stdout.split() == ["1"]
    assert _threads.ENV_VAR not in os.environ  # set_config(None) takes its export back


def test_config_context_changes_this_thread_only():
    seen = []
    with config_context(n_threads=1):
        worker = threading.Thread(target=lambda: seen.append(sklearn_tcssl.get_config()))
        worker.start()
        worker.join()
        assert sklearn_tcssl.get_config()["n_threads"] == 1
    assert seen[0]["n_threads"] is None


def test_importing_the_package_first_sets_a_passive_openmp_wait_policy():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for order, expected in [("sklearn_tcssl, torch", "PASSIVE"), ("torch, sklearn_tcssl", "None")]:
        code = f"import os, {order}; print(os.environ.get('OMP_WAIT_POLICY'))"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.split() == [expected]  # after torch: too late for its OpenMP


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_bad_n_threads_is_refused(bad):
    with pytest.raises(ValueError, match="n_threads=.*positive number of threads"):
        sklearn_tcssl.set_config(n_threads=bad)


def test_nested_budgets_keep_the_outer_count():
    before = torch.get_num_threads()
    with thread_budget(2) as outer:
        with thread_budget(1) as inner:
            assert inner == outer == torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_affinity_mask_is_respected():
    code = textwrap.dedent(
        """
        import os, torch
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        torch.set_num_threads(4)
        from sklearn_tcssl import TemporalContrastiveEmbedder
        import sys; sys.path.insert(0, "tests")
        from _helpers import smooth_sequences
        seen = []
        original = TemporalContrastiveEmbedder._build_net
        def spy(self, *a, **k):
            seen.append(torch.get_num_threads())
            return original(self, *a, **k)
        TemporalContrastiveEmbedder._build_net = spy
        TemporalContrastiveEmbedder(n_components=4, segment_length=3, max_epochs=1).fit(
            smooth_sequences(8, 12, 5))
        print(seen[0], torch.get_num_threads())
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", _threads.ENV_VAR)}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env, check=True
    )
    assert out.stdout.split() == ["1", "4"]


def test_a_users_blas_limit_is_kept(automatic, monkeypatch):
    from threadpoolctl import threadpool_limits

    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    if _threads._blas_limit() is None:
        pytest.skip("no BLAS library seen by threadpoolctl")
    with threadpool_limits(limits=1, user_api="blas"):
        assert resolve_n_threads() == 1


def _default_fits():
    """Default-configuration fits of the three trained estimators and their outputs."""
    from sklearn_tcssl import TemporalContrastiveAligner
    from sklearn_tcssl.datasets import make_time_locked_fmri

    X = smooth_sequences(16, 20, 30)
    y = np.arange(16) % 2
    embedder = TemporalContrastiveEmbedder(n_components=8, max_epochs=3, random_state=0).fit(X)
    classifier = TemporalContrastiveClassifier(n_components=8, max_epochs=3, random_state=0)
    data = make_time_locked_fmri(3, n_timepoints=80, n_features=30, random_state=0)
    aligner = TemporalContrastiveAligner(
        n_components=4, segment_length=4, max_epochs=2, random_state=0
    ).fit(data.runs)
    return [
        embedder.transform(X),
        classifier.fit(X, y).predict_proba(X),
        aligner.embed(data.runs, subjects=np.arange(len(data.runs))),
    ]


def test_default_fits_are_bit_identical_beside_cpu_bound_processes(automatic, monkeypatch):
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    quiet = _default_fits()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded = _default_fits()
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    for a, b in zip(quiet, loaded, strict=True):
        a = np.concatenate([np.ravel(np.asarray(x)) for x in a]) if isinstance(a, list) else a
        b = np.concatenate([np.ravel(np.asarray(x)) for x in b]) if isinstance(b, list) else b
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
