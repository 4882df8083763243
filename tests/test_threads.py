"""Thread policy: torch and BLAS threads follow the CPUs this process may really use."""

import os
import subprocess
import sys
import textwrap

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


def test_busy_cpus_and_user_limits_lower_the_budget(monkeypatch, automatic):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(_threads, "_busy_elsewhere", lambda: 1)
    monkeypatch.setattr(_threads, "_blas_limit", lambda: None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(8)
    try:
        assert resolve_n_threads() == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert resolve_n_threads() == 2
        monkeypatch.setenv(_threads.ENV_VAR, "5")
        assert resolve_n_threads() == 5
    finally:
        torch.set_num_threads(before)


def test_one_thread_inside_a_worker(monkeypatch, automatic):
    monkeypatch.setattr(_threads, "_in_worker", lambda: True)
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    assert resolve_n_threads() == 1


def test_cgroup_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _threads._cgroup_quota(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _threads._cgroup_quota(tmp_path) is None


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
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env, check=True
    )
    assert out.stdout.split() == ["1", "4"]


def test_a_users_blas_limit_is_kept(automatic, monkeypatch):
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(_threads, "_busy_elsewhere", lambda: 0)
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    if _threads._blas_limit() is None:
        pytest.skip("no BLAS library seen by threadpoolctl")
    with threadpool_limits(limits=1, user_api="blas"):
        assert resolve_n_threads() == 1
