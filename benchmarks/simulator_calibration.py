"""Calibrate ``make_task_fmri``: the classical decoder's accuracy on simulated datasets.

The classical decoder is the mean over time of each block's masked voxels
(``MultiNiftiMasker(standardize=None)``) fed to ``LogisticRegression``, cross-validated
with ``GroupKFold(5)`` over subjects. Prints one row per (setting, seed): the whole-brain
accuracy (mean +- sd over folds) of that decoder and of ``LinearSVC()``, and the
accuracy of each network alone (logistic regression, mean over folds). Chance is
1 / n_tasks (0.25 by default).

Run: ``python benchmarks/simulator_calibration.py [--quick]`` (a few minutes; ``--quick``
runs the default setting only).
"""

import argparse
import time

import numpy as np
from nilearn.maskers import MultiNiftiMasker
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.svm import LinearSVC

from sklearn_tcssl.datasets import make_task_fmri
from sklearn_tcssl.networks import YEO7_NETWORKS

VARIANTS = {
    "default": {},
    "effect_size=0.2": {"effect_size": 0.2},
    "effect_size=0.5": {"effect_size": 0.5},
    "subject_variability=0.8": {"subject_variability": 0.8},
    "jitter=0": {"jitter": 0.0},
    "jitter=12mm": {"jitter": 12.0},
    "n_subjects=6": {"n_subjects": 6},
    "voxel_size=4mm": {"voxel_size": 4.0},
    "hrf_model=spm": {"hrf_model": "spm"},
}


def block_means(data):
    masker = MultiNiftiMasker(mask_img=data.mask_img, standardize=None, reports=False)
    series = masker.fit_transform(data.imgs)
    # The masker keeps the mask's voxels in C order, like boolean indexing does.
    mask = np.asarray(data.mask_img.dataobj) > 0
    labels = np.asarray(data.networks_img.dataobj)[mask]
    return np.stack([s.mean(axis=0) for s in series]), labels


def scores(X, y, groups, clf=None):
    clf = LogisticRegression(max_iter=2000) if clf is None else clf
    return cross_val_score(clf, X, y, groups=groups, cv=GroupKFold(5))


def main(quick=False):
    # the default on 3 seeds, each variant on seed 0 only (the logistic regression is slow)
    variants = {"default": {}} if quick else VARIANTS
    names = list(YEO7_NETWORKS)
    header = f"{'setting':<24} {'seed':>4} {'gen s':>6} {'logreg':>12} {'linsvc':>12} " + " ".join(
        f"{n[:8]:>8}" for n in names
    )
    print(header)
    print("-" * len(header))
    for setting, params in variants.items():
        for seed in range(3) if setting == "default" else [0]:
            start = time.perf_counter()
            data = make_task_fmri(random_state=seed, **params)
            gen_s = time.perf_counter() - start
            X, labels = block_means(data)
            whole = scores(X, data.y, data.groups)
            svc = scores(X, data.y, data.groups, LinearSVC())
            per_net = [
                scores(X[:, labels == YEO7_NETWORKS[n]], data.y, data.groups).mean() for n in names
            ]
            print(
                f"{setting:<24} {seed:>4} {gen_s:>6.1f} "
                f"{whole.mean():>6.2f} +-{whole.std():.2f} {svc.mean():>6.2f} +-{svc.std():.2f} "
                + " ".join(f"{s:>8.2f}" for s in per_net),
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="default setting only")
    main(parser.parse_args().quick)
