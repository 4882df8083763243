"""Scale-out on existing engines: HF Accelerate (one and two CPU processes), dask."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import smooth_sequences
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_score

from sklearn_tcssl import TemporalContrastiveEmbedder

FAST = {"n_components": 8, "max_epochs": 2, "batch_size": 8, "random_state": 0}


def test_accelerated_fit_transform_and_clone():
    accelerate = pytest.importorskip("accelerate")
    from sklearn_tcssl._training.accelerate import AcceleratedTemporalContrastiveNet

    accelerator = accelerate.Accelerator(cpu=True)
    assert copy.deepcopy(accelerator) is accelerator
    sequences = smooth_sequences(24, 12, 10)
    embedder = TemporalContrastiveEmbedder(accelerator=accelerator, **FAST).fit(sequences)
    assert isinstance(embedder.net_, AcceleratedTemporalContrastiveNet)
    assert embedder.net_.device is None
    Z = embedder.transform(sequences)
    assert Z.shape == (24, 8 + embedder.n_features_in_)  # learned features + mean pattern
    assert np.isfinite(Z).all()
    # clone (used by cross_val_score, GridSearchCV) shares the one accelerator
    assert clone(embedder).accelerator is accelerator
    scores = cross_val_score(
        TemporalContrastiveEmbedder(accelerator=accelerator, **FAST), sequences, cv=2
    )
    assert np.all((scores >= 0) & (scores <= 1))


def test_an_accelerator_copied_by_deepcopy_is_refused():
    accelerate = pytest.importorskip("accelerate")

    class CopiedAccelerator(accelerate.Accelerator):
        def __deepcopy__(self, memo):
            return object.__new__(type(self))

    embedder = TemporalContrastiveEmbedder(accelerator=CopiedAccelerator(cpu=True), **FAST)
    with pytest.raises(ValueError, match=r"accelerator=CopiedAccelerator.*accelerate>=0.30"):
        embedder.fit(smooth_sequences(24, 12, 10))


def test_cross_validation_folds_on_a_dask_cluster():
    distributed = pytest.importorskip("distributed")
    import joblib

    sequences = smooth_sequences(24, 12, 10)
    cv = KFold(3)
    expected = cross_val_score(TemporalContrastiveEmbedder(**FAST), sequences, cv=cv)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_backend("dask"),
    ):
        scores = cross_val_score(TemporalContrastiveEmbedder(**FAST), sequences, cv=cv, n_jobs=-1)
    np.testing.assert_allclose(scores, expected)


_GATHER_SCRIPT = """
import sys
import torch
from accelerate import Accelerator
from sklearn_tcssl._training.accelerate import AcceleratorGather
from sklearn_tcssl.nn.losses import temporal_contrastive_logits, temporal_contrastive_loss

acc = Accelerator(cpu=True)
rank, world, B = acc.process_index, acc.num_processes, 4
g = torch.Generator().manual_seed(0)
zb, zm, ze = (torch.randn(world * B, 6, generator=g) for _ in range(3))
rows = slice(rank * B, (rank + 1) * B)
full = temporal_contrastive_logits(zb, zm, ze, temperature=0.2)
expected = torch.nn.functional.cross_entropy(full[rows], torch.arange(world * B)[rows])
local = [z[rows].clone().requires_grad_(True) for z in (zb, zm, ze)]
loss = temporal_contrastive_loss(*local, temperature=0.2, gather=AcceleratorGather(acc))
loss.backward()
if not (torch.allclose(loss, expected) and world == 2):
    sys.exit(1)

# a whole fit through the accelerator: both processes end with the same weights
import numpy as np
from sklearn_tcssl import TemporalContrastiveEmbedder

rng = np.random.default_rng(0)
X = [np.cumsum(rng.normal(size=(12, 10)), axis=0).astype(np.float32) for _ in range(24)]
embedder = TemporalContrastiveEmbedder(
    accelerator=acc, n_components=4, max_epochs=2, batch_size=8, random_state=0
).fit(X)
weights = torch.cat([p.detach().flatten() for p in embedder.net_.module_.parameters()])
both = acc.gather(weights[None])
sys.exit(0 if torch.equal(both[0], both[1]) and np.isfinite(embedder.transform(X)).all() else 2)
"""


def test_gathered_negatives_and_a_fit_on_two_cpu_processes(tmp_path):
    """Two real processes (gloo): each one's loss equals the one-device loss of its rows,
    and a fit through the accelerator leaves both processes with the same weights."""
    pytest.importorskip("accelerate")
    script = tmp_path / "check_gather.py"
    script.write_text(_GATHER_SCRIPT)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    result = subprocess.run([*command, str(script)], env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
