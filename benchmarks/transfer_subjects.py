"""Transfer across cohorts: decoding accuracy vs number of subjects, with and without pretraining.

The experiment of Shi et al. (2023) on the simulator :func:`sklearn_tcssl.datasets.make_task_fmri`:

1. *Pretraining cohort* (``random_state=100``): the continuous runs, unlabeled, cut into
   chunks, train a :class:`~sklearn_tcssl.TemporalContrastiveEmbedder` (no labels).
2. *Target cohort* (``random_state=0``): new subjects and other tasks (the task patterns of
   another seed). For each number of subjects n, the first n subjects are decoded with
   subject-wise ``GroupKFold`` (the same folds for every method):

   (a) ``classical``: block mean of the voxels + LogisticRegression;
   (b) ``random+linear``: an untrained, randomly initialised encoder + LogisticRegression;
   (c) ``pretrained+linear``: the pretrained encoder, frozen (``FrozenEstimator``) +
       LogisticRegression;
   (d) ``pretrained+finetune``: :class:`~sklearn_tcssl.TemporalContrastiveClassifier`
       initialised from the pretrained encoder and fine-tuned;
   (e) ``scratch``: the same classifier trained from a random initialisation.

Writes ``transfer_subjects.csv`` (one row per method, n_subjects and fold) and
``transfer_subjects.png`` (mean accuracy vs subjects) in ``--out``, and prints a table.

Run: ``python benchmarks/transfer_subjects.py [--smoke] [--out DIR]``.
"""

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_tcssl import TemporalContrastiveClassifier, TemporalContrastiveEmbedder
from sklearn_tcssl.datasets import make_task_fmri

METHODS = (
    "classical",
    "random+linear",
    "pretrained+linear",
    "pretrained-features-only+linear",
    "pretrained+finetune",
    "scratch",
)

CONFIGS = {
    # sized for ~10 min on 2 busy CPU cores: 8 mm voxels (about 1.6k), 3 folds, short training
    "full": {
        "pretrain_data": {"n_subjects": 12, "n_runs": 2},
        "target_data": {"n_subjects": 24, "n_runs": 2},
        "grid": (2, 4, 8, 12, 16, 24),
        "max_folds": 3,
        "chunk": 24,
        "n_components": 32,
        "pretrain_epochs": 15,
        "finetune_epochs": 10,
        "voxel_size": 8.0,
    },
    "smoke": {
        "pretrain_data": {"n_subjects": 2, "n_runs": 1, "n_tasks": 2, "n_blocks": 2},
        "target_data": {"n_subjects": 4, "n_runs": 1, "n_tasks": 2, "n_blocks": 2},
        "grid": (2, 4),
        "max_folds": 2,
        "chunk": 12,
        "n_components": 8,
        "pretrain_epochs": 2,
        "finetune_epochs": 2,
        "voxel_size": 12.0,
    },
}


def _masked(imgs, mask):
    """``(n_timepoints, n_voxels)`` float32 arrays (C-order voxels, like nilearn maskers)."""
    return [
        np.ascontiguousarray(np.asarray(img.dataobj)[mask].T, dtype=np.float32) for img in imgs
    ]


def _chunks(runs, length):
    return [run[i : i + length] for run in runs for i in range(0, len(run) - length + 1, length)]


def _block_mean(X):
    return np.stack([x.mean(axis=0) for x in X])


def make_methods(pretrained, config, seed):
    """The five decoders, unfitted, as scikit-learn estimators."""
    width = config["n_components"]
    linear = LogisticRegression(max_iter=2000)
    tuned = {"max_epochs": config["finetune_epochs"], "random_state": seed}
    return {
        "classical": make_pipeline(
            FunctionTransformer(_block_mean), StandardScaler(), LogisticRegression(max_iter=2000)
        ),
        "random+linear": make_pipeline(
            TemporalContrastiveEmbedder(width, init="random", max_epochs=0, random_state=seed),
            StandardScaler(),
            linear,
        ),
        "pretrained+linear": make_pipeline(FrozenEstimator(pretrained), StandardScaler(), linear),
        # the learned features alone, without the mean pattern the embedder appends
        "pretrained-features-only+linear": make_pipeline(
            FrozenEstimator(copy.deepcopy(pretrained).set_params(keep_mean_pattern=False)),
            StandardScaler(),
            LogisticRegression(max_iter=2000),
        ),
        "pretrained+finetune": TemporalContrastiveClassifier(
            init_from=FrozenEstimator(pretrained), **tuned
        ),
        "scratch": TemporalContrastiveClassifier(width, init="random", **tuned),
    }


def run(config, out, seed=0):
    start = time.perf_counter()
    extra = {"voxel_size": config["voxel_size"]} if "voxel_size" in config else {}
    source = make_task_fmri(**config["pretrain_data"], **extra, random_state=100)
    target = make_task_fmri(**config["target_data"], **extra, random_state=seed)
    mask = np.asarray(source.mask_img.dataobj) > 0
    assert np.array_equal(mask, np.asarray(target.mask_img.dataobj) > 0), "masks differ"
    unlabeled = _chunks(_masked(source.runs, mask), config["chunk"])
    X, y, groups = _masked(target.imgs, mask), target.y, target.groups
    print(
        f"{int(mask.sum())} voxels; pretraining on {len(unlabeled)} unlabeled chunks of "
        f"{config['chunk']} volumes; target: {len(X)} blocks of {len(X[0])} volumes, "
        f"{len(np.unique(y))} tasks, {len(np.unique(groups))} subjects "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    pretrained = TemporalContrastiveEmbedder(
        config["n_components"], max_epochs=config["pretrain_epochs"], random_state=seed
    ).fit(unlabeled)
    print(
        f"pretrained in {pretrained.fit_time_:.0f} s; final pretext accuracy "
        f"{pretrained.history_[-1, 'train_pretext_acc']:.2f}",
        flush=True,
    )
    pretrained.save(Path(out) / "transfer_pretrained.safetensors", mask=source.mask_img)
    rows = []
    for n in config["grid"]:
        keep = groups < n
        Xn = [x for x, k in zip(X, keep) if k]
        yn, gn = y[keep], groups[keep]
        folds = list(GroupKFold(min(n, config["max_folds"])).split(Xn, yn, gn))
        for name, estimator in make_methods(pretrained, config, seed).items():
            for fold, (train, test) in enumerate(folds):
                tic = time.perf_counter()
                estimator.fit([Xn[i] for i in train], yn[train])
                accuracy = estimator.score([Xn[i] for i in test], yn[test])
                rows.append(
                    {
                        "method": name,
                        "n_subjects": n,
                        "fold": fold,
                        "n_train_subjects": len(np.unique(gn[train])),
                        "accuracy": accuracy,
                        "fit_s": time.perf_counter() - tic,
                    }
                )
        done = pd.DataFrame(rows).query("n_subjects == @n").groupby("method")["accuracy"]
        print(f"n_subjects={n}: " + ", ".join(f"{m} {done.mean()[m]:.2f}" for m in METHODS))
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    results = pd.DataFrame(rows)
    chance = 1 / len(np.unique(y))
    return results, chance


def summarize(results):
    """Mean (sd over folds) accuracy per method (rows) and n_subjects (columns)."""
    grouped = results.groupby(["method", "n_subjects"])["accuracy"]
    mean, sd = grouped.mean().unstack(), grouped.std(ddof=0).unstack()
    table = mean.map(lambda v: f"{v:.2f}") + " +-" + sd.map(lambda v: f"{v:.2f}")
    return table.reindex(METHODS)


def plot(results, chance, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        rows = results[results.method == method].groupby("n_subjects")["accuracy"]
        ax.errorbar(rows.mean().index, rows.mean(), yerr=rows.std(ddof=0), label=method, capsize=2)
    ax.axhline(chance, color="gray", linestyle=":", label="chance")
    ax.set(xlabel="subjects (cross-validated over subjects)", ylabel="accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny version (seconds)")
    parser.add_argument("--out", default=".", help="folder for the CSV, PNG and model file")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, chance = run(CONFIGS["smoke" if args.smoke else "full"], out)
    results.to_csv(out / "transfer_subjects.csv", index=False)
    plot(results, chance, out / "transfer_subjects.png")
    table = summarize(results)
    print(f"\naccuracy, mean +- sd over folds (chance {chance:.2f}); columns: n_subjects")
    print(table.to_string())
    return results


if __name__ == "__main__":
    main()
