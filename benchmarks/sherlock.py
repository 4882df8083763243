"""Cross-subject scene decoding on real movie fMRI (Sherlock, 17 people, PMC, 481 voxels).

Protocol: scan 1 (946 TRs) of every person is unlabeled pretraining data; the 23
annotated scenes of scan 2 are labelled blocks (label = scene, chance 1/23 = 0.043). A
decoder is trained on the blocks of k people and tested on the blocks of all the others:
k = 1, 2, 4 with 8 random draws of people each, and leave-one-person-out (k = 16, 17 folds).
Every scan is z-scored per voxel and person. All methods are scored on the same splits.

Unsupervised steps (PCA, SRM, the aligners, the embedder) see scan 1 only, never a label and
never scan 2; by default they are fitted on the scan 1 of all 17 people (the usual SRM
protocol: test people's *unlabeled* scan 1 is used, as SRM does for new subjects). The
``strict`` rows at k = 16 refit them in every fold on the 16 training people's scan 1 and
give the held-out person a map from their own scan 1 only (``add_subjects``).

Usage::

    python benchmarks/sherlock.py --out sherlock.json          # full table (~20 min, 2 CPUs)
    python benchmarks/sherlock.py --quick                       # smoke run (a minute)
    python benchmarks/sherlock.py --data PATH/sherlock_pmc_movie.npz

Writes a JSON list of rows ``{"method", "k", "mean", "sd", "seconds"}`` and prints the table.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sherlock"
DATA_FILE = "sherlock_pmc_movie.npz"
N_EXPENSIVE_LOO = 8  # leave-one-person-out folds used by the rows that train per split


def _limit_threads():
    """One BLAS and one torch thread for the whole run.

    The environment variables come too late for the BLAS that numpy loaded on import, so
    the pool is limited with threadpoolctl. It matters most for the logistic-regression
    rows (hundreds of small L-BFGS steps): 6 leave-one-person-out fits took 551 s with
    OpenBLAS's default 2 threads on a busy 2-core machine and 17.5 s with 1 thread.
    """
    from threadpoolctl import threadpool_limits

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)


# ----------------------------------------------------------------------------- protocol
def make_splits(n_people, ks=(1, 2, 4), draws=8, seed=0):
    """(k, train people, test people) for k-people draws and leave-one-person-out."""
    rng = np.random.default_rng(seed)
    splits = []
    for k in ks:
        for _ in range(draws):
            order = rng.permutation(n_people)
            splits.append((k, order[:k], order[k:]))
    for person in range(n_people):
        splits.append((n_people - 1, np.delete(np.arange(n_people), person), np.array([person])))
    return splits


def scene_blocks(scan, scenes):
    """Per person, the list of scene blocks ``(n_tr, n_voxels)``."""
    return [[person[a:b] for a, b in scenes] for person in scan]


def lr():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def lda():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")


READOUTS = {"LR": lr, "LDA": lda}


def score_features(features, splits, readout):
    """Accuracy per split of a readout on fixed per-person block features (N, S, D)."""
    n_scenes = features.shape[1]
    y = np.arange(n_scenes)
    out = []
    for _, train, test in splits:
        if readout == "LDA" and len(train) < 2:
            out.append(np.nan)  # shrinkage LDA needs 2 samples per class
            continue
        clf = READOUTS[readout]().fit(
            features[train].reshape(-1, features.shape[2]), np.tile(y, len(train))
        )
        predicted = clf.predict(features[test].reshape(-1, features.shape[2]))
        out.append(float((predicted == np.tile(y, len(test))).mean()))
    return out


# ------------------------------------------------------------------------------ methods
def block_mean_features(blocks):
    return np.stack([np.stack([b.mean(axis=0) for b in person]) for person in blocks])


def pca_features(scan1, blocks, n_components=50):
    from sklearn.decomposition import PCA

    pca = PCA(n_components, random_state=0).fit(scan1.reshape(-1, scan1.shape[2]))
    return np.stack([pca.transform(block_mean_features([p])[0]) for p in blocks])


def aligned_features(aligner, blocks, people, *, embed=False):
    """Block features of each person through a fitted aligner."""
    rows = []
    for person in people:
        subjects = [int(person)] * len(blocks[person])
        if embed:
            rows.append(aligner.embed(blocks[person], subjects=subjects))
        else:
            shared = aligner.transform(blocks[person], subjects=subjects)
            rows.append(np.stack([s.mean(axis=0) for s in shared]))
    return np.stack(rows)


def make_aligners(quick):
    from sklearn_tcssl import SharedResponseAligner, TemporalContrastiveAligner

    epochs = 5 if quick else 50
    tc = dict(n_components=50, random_state=0, max_epochs=epochs)
    return {
        "SRM (k=50)": (SharedResponseAligner(50, random_state=0), False),
        'SRM (k=50), basis="dominant"': (
            SharedResponseAligner(50, basis="dominant", random_state=0),
            False,
        ),
        "TC aligner, SRM init, untrained": (
            TemporalContrastiveAligner(**{**tc, "max_epochs": 0}),
            True,
        ),
        "TC aligner, SRM init, pretrained": (TemporalContrastiveAligner(**tc), True),
        "TC aligner, SRM maps frozen, pretrained": (
            TemporalContrastiveAligner(**tc, freeze_maps=True),
            True,
        ),
        "TC aligner, random init, untrained": (
            TemporalContrastiveAligner(**{**tc, "max_epochs": 0}, init="random"),
            True,
        ),
        # from random maps the contrast must find the alignment itself: 10x the learning
        # rate and 3x the epochs (1,200 steps), the setting of the scan-1 prototype
        "TC aligner, random init, pretrained": (
            TemporalContrastiveAligner(**{**tc, "max_epochs": 3 * epochs}, init="random", lr=1e-3),
            True,
        ),
        "TC aligner within-subject, SRM init, pretrained": (
            TemporalContrastiveAligner(**tc, cross_subject=False),
            True,
        ),
    }


def embedder(quick, **params):
    from sklearn_tcssl import TemporalContrastiveEmbedder

    base = dict(random_state=0, max_epochs=2 if quick else 50)
    return TemporalContrastiveEmbedder(**{**base, **params})


# ---------------------------------------------------------------------------- the runs
class Table:
    def __init__(self, splits):
        self.splits = splits
        self.rows = []

    def add(self, method, per_split, seconds):
        ks = sorted({k for k, _, _ in self.splits})
        for k in ks:
            values = [v for (kk, _, _), v in zip(self.splits, per_split) if kk == k]
            values = [v for v in values if v is not None]
            if not values:
                continue
            arr = np.asarray(values, dtype=float)
            ok = np.isfinite(arr)
            self.rows.append(
                {
                    "method": method,
                    "k": int(k),
                    "mean": float(arr[ok].mean()) if ok.any() else float("nan"),
                    "sd": float(arr[ok].std()) if ok.any() else float("nan"),
                    "seconds": round(float(seconds), 1),
                }
            )
        self.print_last(method)

    def print_last(self, method):
        cells = [
            f"k={r['k']}: {r['mean']:.3f}±{r['sd']:.3f}"
            for r in self.rows
            if r["method"] == method
        ]
        print(f"{method:58s} " + "  ".join(cells), flush=True)


def run_fixed_feature_methods(table, scan1, blocks, people, quick):
    start = time.perf_counter()
    raw = block_mean_features(blocks)
    table.add(
        "block mean + LR", score_features(raw, table.splits, "LR"), time.perf_counter() - start
    )
    start = time.perf_counter()
    table.add(
        "block mean + shrinkage LDA",
        score_features(raw, table.splits, "LDA"),
        time.perf_counter() - start,
    )
    start = time.perf_counter()
    features = pca_features(scan1, blocks)
    table.add(
        "PCA(50) on scan 1 + LR",
        score_features(features, table.splits, "LR"),
        time.perf_counter() - start,
    )
    for name, (aligner, embed) in make_aligners(quick).items():
        start = time.perf_counter()
        aligner.fit(list(scan1), subjects=people)
        features = aligned_features(aligner, blocks, people, embed=embed)
        fit_seconds = time.perf_counter() - start
        for readout in ("LR", "LDA"):
            scores = score_features(features, table.splits, readout)
            table.add(f"{name} + {readout}", scores, fit_seconds)


def run_strict(table, scan1, blocks, people, quick):
    """k = 16 rows with the aligner refitted per fold on the training people only."""
    loo = [s for s in table.splits if len(s[2]) == 1][:N_EXPENSIVE_LOO]
    chosen = ["SRM (k=50)", "TC aligner, SRM init, pretrained"]
    for name in chosen:
        aligner, embed = make_aligners(quick)[name]
        start = time.perf_counter()
        scores = {"LR": [], "LDA": []}
        for _, train, test in loo:
            from sklearn.base import clone

            fitted = clone(aligner).fit(list(scan1[train]), subjects=[int(p) for p in train])
            fitted.add_subjects(list(scan1[test]), subjects=[int(p) for p in test])
            features = aligned_features(fitted, blocks, people, embed=embed)
            for readout in scores:
                scores[readout] += score_features(features, [(16, train, test)], readout)
        seconds = time.perf_counter() - start
        for readout, values in scores.items():
            sub = Table(loo)
            sub.add(
                f"{name} + {readout} (strict: refit per fold, {len(loo)} LOO folds)",
                values,
                seconds,
            )
            table.rows += sub.rows


def run_embedder_methods(table, scan1, blocks, people, quick):
    """The package's within-subject embedder pretrained on scan 1, and its untrained twin."""

    # pretrained on the unlabeled scan 1 of everyone (no labels), frozen, then a readout
    for name, params in [
        ("embedder pretrained on scan 1 (within-subject), frozen", {}),
        ("embedder untrained twin (PCA init, 0 epochs)", {"max_epochs": 0}),
    ]:
        start = time.perf_counter()
        model = embedder(quick, segment_length=10, **params).fit(list(scan1))
        features = np.stack([model.transform(blocks[p]) for p in people])
        seconds = time.perf_counter() - start
        steps = model.history_[-1, "n_steps"] if len(model.history_) else 0
        print(f"  ({name}: {steps} optimizer steps, {seconds:.0f} s)", flush=True)
        for readout in ("LR", "LDA"):
            table.add(
                f"{name} + {readout}", score_features(features, table.splits, readout), seconds
            )


def run_fine_tuning(table, scan1, blocks, people, quick, draws):
    """Rows trained split by split (k = 1, 2, 4, 8 x draws, and draws LOO folds).

    TemporalContrastiveClassifier fine-tuned from the scan-1 encoder vs. from scratch, and
    the package default pipeline (embedder fitted on the training people's blocks), beside
    the classical decoders on the same splits.
    """
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator

    from sklearn_tcssl import TemporalContrastiveClassifier

    pretrained = embedder(quick, segment_length=10, keep_mean_pattern=False).fit(list(scan1))
    y = np.arange(len(blocks[0]))
    splits = make_splits(len(people), ks=(1, 2, 4, 8), draws=draws, seed=1)
    loo = [s for s in splits if len(s[2]) == 1][:draws]
    splits = [s for s in splits if len(s[2]) > 1] + loo
    raw = block_mean_features(blocks)
    for readout, label in (("LR", "block mean + LR"), ("LDA", "block mean + shrinkage LDA")):
        sub = Table(splits)
        sub.add(f"{label} (fine-tuning splits)", score_features(raw, splits, readout), 0.0)
        table.rows += sub.rows
    start = time.perf_counter()
    template = embedder(quick)  # the package default pipeline, fitted on the training blocks
    scores = []
    for _, train, test in splits:
        model = clone(template).fit([b for p in train for b in blocks[p]])
        features = np.stack([model.transform(blocks[p]) for p in people])
        scores += score_features(features, [(0, train, test)], "LR")
    sub = Table(splits)
    seconds = time.perf_counter() - start
    sub.add("package default pipeline (blocks only) + LR (fine-tuning splits)", scores, seconds)
    table.rows += sub.rows
    epochs = 3 if quick else 60
    for name, params in [
        ("classifier fine-tuned from scan-1 encoder", {"init_from": FrozenEstimator(pretrained)}),
        ("classifier from scratch (same architecture)", {"n_components": 128}),
    ]:
        start = time.perf_counter()
        template = TemporalContrastiveClassifier(max_epochs=epochs, random_state=0, **params)
        scores = []
        for _, train, test in splits:
            clf = clone(template).fit(
                [b for p in train for b in blocks[p]], np.tile(y, len(train))
            )
            predicted = clf.predict([b for p in test for b in blocks[p]])
            scores.append(float((predicted == np.tile(y, len(test))).mean()))
        sub = Table(splits)
        sub.add(f"{name} (fine-tuning splits)", scores, time.perf_counter() - start)
        table.rows += sub.rows


def rst_table(rows):
    """An RST list-table of the rows: one line per method, one column per k."""
    ks = sorted({r["k"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["k"]): r for r in rows}
    lines = [".. list-table::", "   :header-rows: 1", "", "   * - method"]
    lines += [f"     - k = {k}" + (" (LOO)" if k == max(ks) else "") for k in ks]
    for method in methods:
        lines.append(f"   * - {method}")
        for k in ks:
            r = cell.get((method, k))
            if r is None or r["mean"] != r["mean"]:  # absent or NaN
                lines.append("     - n/a")
            else:
                lines.append(f"     - {r['mean']:.3f} ± {r['sd']:.3f}")
    return "\n".join(lines) + "\n"


def write_rst(rows, path):
    """Write the main table to ``path`` and the split-by-split rows beside it.

    Rows scored on the fine-tuning splits (k = 8 included) go to ``<stem>_finetune<suffix>``.
    """
    path = Path(path)
    trained = [r for r in rows if r["method"].endswith("(fine-tuning splits)")]
    main_rows = [r for r in rows if r not in trained]
    path.write_text(rst_table(main_rows))
    if trained:
        # the names keep their suffix in the JSON; the table drops it
        short = [
            {**r, "method": r["method"].replace(" (fine-tuning splits)", "")} for r in trained
        ]
        path.with_name(path.name.replace(".rst", "_finetune.rst")).write_text(rst_table(short))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA / DATA_FILE))
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    parser.add_argument("--rst", default=None, help="also write the table as an RST include")
    parser.add_argument(
        "--from-json", default=None, help="only render the table of an earlier --out file"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 draws, few epochs")
    parser.add_argument(
        "--parts",
        default="fixed,strict,embedder,finetune",
        help="comma-separated parts to run (fixed, strict, embedder, finetune)",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text())
        if args.rst:
            write_rst(rows, args.rst)
        for row in rows:
            print(f"{row['method']:70s} k={row['k']:2d} {row['mean']:.3f} ± {row['sd']:.3f}")
        return 0
    path = Path(args.data)
    if not path.is_file():
        print(
            f"SKIPPED: the Sherlock file {path} is absent. Pass --data PATH to "
            f"{DATA_FILE} (see ../shared/data/README.md); nothing was computed."
        )
        return 0
    _limit_threads()
    from sklearn_tcssl.datasets import load_sherlock_pmc

    data = load_sherlock_pmc(path)
    scan1, scan2 = data.scans
    blocks = scene_blocks(scan2, data.scenes[1])
    people = list(range(scan1.shape[0]))
    draws = 2 if args.quick else 8
    splits = make_splits(len(people), draws=draws)
    if args.quick:
        splits = [s for s in splits if len(s[2]) > 1] + [s for s in splits if len(s[2]) == 1][:3]
    table = Table(splits)
    parts = set(args.parts.split(","))
    print(f"{len(people)} people, scan 1 {scan1.shape[1]} TRs, {len(blocks[0])} scenes in scan 2")
    if "fixed" in parts:
        run_fixed_feature_methods(table, scan1, blocks, people, args.quick)
    if "strict" in parts:
        run_strict(table, scan1, blocks, people, args.quick)
    if "embedder" in parts:
        run_embedder_methods(table, scan1, blocks, people, args.quick)
    if "finetune" in parts:
        run_fine_tuning(table, scan1, blocks, people, args.quick, 2 if args.quick else 4)
    if args.out:
        Path(args.out).write_text(json.dumps(table.rows, indent=1))
        print(f"wrote {len(table.rows)} rows to {args.out}")
    if args.rst:
        write_rst(table.rows, args.rst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
