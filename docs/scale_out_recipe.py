"""Scale-out recipe: multi-GPU pretraining with Accelerate, CV folds on a dask cluster.

Shown on the "Whole-brain volumes, GPUs, scale-out" page of the documentation. Run

    # one machine, all its GPUs (data parallel), bf16:
    accelerate launch --multi_gpu --mixed_precision bf16 scale_out_recipe.py pretrain
    # several machines: `accelerate config` on each (machine rank, main IP), then the same
    # `accelerate launch` command on every machine.
    # cross-validation folds on a dask cluster (a scheduler address, or a local cluster):
    python scale_out_recipe.py cv --scheduler tcp://scheduler:8786

On a laptop, ``python scale_out_recipe.py pretrain`` and ``... cv`` run the same code in one
process on the CPU (``tests/training/test_scale_out.py`` checks both mechanisms on small data:
a fit through an Accelerator, on one and on two CPU processes, and folds on a dask
LocalCluster).
"""

import argparse

import numpy as np

from sklearn_tcssl import TemporalContrastiveEmbedder


def load_runs():
    """Replace with your data: 4D images (paths) or masked sequences."""
    rng = np.random.default_rng(0)
    return [rng.normal(size=(60, 500)).astype(np.float32) for _ in range(64)]


def pretrain():
    # The accelerator places devices, shards batches across processes and applies mixed
    # precision; the embedder then ignores its own device and precision parameters.
    from accelerate import Accelerator

    accelerator = Accelerator()  # settings come from `accelerate launch` / config
    embedder = TemporalContrastiveEmbedder(
        n_components=128,
        segment_length=5,
        max_epochs=50,
        batch_size=64,  # per process: the global batch is batch_size x number of processes
        num_workers=4,  # DataLoader workers per process, each drawing its own windows
        accelerator=accelerator,
        random_state=0,
    )
    embedder.fit(load_runs())
    if accelerator.is_main_process:  # write files once, not once per GPU
        np.save("embeddings.npy", embedder.transform(load_runs()))
        accelerator.print("pretext accuracy:", embedder.history_[-1, "train_pretext_acc"])


def cross_validate_on_dask(scheduler):
    import joblib
    from distributed import Client, LocalCluster
    from sklearn.model_selection import KFold, cross_val_score

    # Each fold is one joblib task, shipped to a dask worker; the worker trains on its own
    # device (device="auto" picks its GPU if it has one). Do not combine with an
    # accelerator: the folds would all share one Accelerator.
    client = Client(scheduler) if scheduler else Client(LocalCluster(n_workers=2))
    with client, joblib.parallel_backend("dask"):
        scores = cross_val_score(
            TemporalContrastiveEmbedder(max_epochs=20, random_state=0),
            load_runs(),
            cv=KFold(5),
            n_jobs=-1,
        )
    print("held-out pretext accuracy per fold:", scores)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["pretrain", "cv"])
    parser.add_argument("--scheduler", default=None, help="dask scheduler address")
    args = parser.parse_args()
    if args.task == "pretrain":
        pretrain()
    else:
        cross_validate_on_dask(args.scheduler)
