"""Functional alignment against the field's own tools on real movie fMRI (Sherlock, PMC).

Two tasks, one fit per method on the unlabeled scan 1 (946 TRs) of all 17 people (the
protocol of Chen et al. 2015 and of brainiak's SRM tutorial), both scored on scan 2:

* **time-segment matching** (Haxby et al. 2011; Chen et al. 2015): scan 2 in the shared space,
  each person's series z-scored per dimension over time; leave-one-person-out: every window
  of 9 TRs (one per start TR) of the held-out person is correlated with the same-space
  average of the 16 others at every candidate window, and counts as correct when the best
  match is its own window. Candidates that overlap the true window (start less than 9 TRs
  away) are excluded, as in brainiak's tutorial, so chance is 1 / (number of windows - 16).
  The last 50 TRs of scan 2 are dropped for everyone: one person's series is constant there.
* **scene decoding** as in ``benchmarks/sherlock.py``: the 23 scenes of scan 2 as labelled
  blocks, features from the shared space (block mean, or the aligner's ``embed``), a readout
  trained on 16 people and tested on the held-out one (17 folds); shrinkage LDA and logistic
  regression rows.

Methods: no alignment, our ``SharedResponseAligner`` (default basis and
``basis="dominant"``) and ``TemporalContrastiveAligner``,
brainiak's probabilistic SRM, deterministic SRM and robust SRM, fmralign's template
alignment (Procrustes, ridge, optimal transport) and CEBRA multi-session with time as the
auxiliary variable. Peers are optional (``pip install -e ".[peers]"``): a peer that is not
installed or fails is a row with its error, never a crash.

Usage::

    python benchmarks/alignment.py --out alignment.json     # default run (~20 min, 1 thread)
    python benchmarks/alignment.py --full --out FILE.json   # every variant (~40 min)
    python benchmarks/alignment.py --quick                  # smoke run (a few minutes)
    python benchmarks/alignment.py --from-json FILE.json --rst TABLE.rst.inc

Rows: ``{"task": "segment_matching" | "scenes", "method", "k", "mean", "sd", "seconds"}``
(``k`` = held-out people, one fold each; ``seconds`` = the method's fit time on scan 1);
a row that failed has ``mean = sd = null`` and an ``"error"``.
"""

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sherlock as scenes_protocol  # noqa: E402  (same data path, splits and readouts)

WINDOW = 9  # TRs per segment
DROP_TAIL = 50  # last TRs of scan 2 dropped for segment matching (one person is constant)
N_COMPONENTS = 50
N_ITER = 10


# ------------------------------------------------------------------- segment matching
# Time-resolved outputs are scored with the package's own segment_matching (the number that
# the aligners' ``score`` gives); ``match_windows`` scores one vector per window (``embed``)
# and windows left unstandardised (``--raw-windows``) with the same rule.
def window_features(series, width=WINDOW):
    """Every window of ``width`` TRs of a (T, d) series, flattened: (T - width + 1, width*d)."""
    n = series.shape[0] - width + 1
    return np.stack([series[i : i + width].ravel() for i in range(n)])


def _rows_standardised(features):
    centred = features - features.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    return centred / np.where(norm > 0, norm, 1.0)


def match_windows(features, width=WINDOW):
    """Leave-one-person-out segment matching on one feature vector per person and window.

    Parameters
    ----------
    features : ndarray of shape (n_people, n_windows, n_features)
        Window ``i`` starts at TR ``i``.
    width : int
        Window length: candidates whose start is less than ``width`` away from the true
        window (other than itself) are excluded.

    Returns
    -------
    accuracy : ndarray of shape (n_people,)
    """
    n_people, n_windows, _ = features.shape
    total = features.sum(axis=0)
    offset = np.abs(np.subtract.outer(np.arange(n_windows), np.arange(n_windows)))
    excluded = (offset < width) & (offset > 0)
    accuracy = np.empty(n_people)
    for person in range(n_people):
        others = (total - features[person]) / (n_people - 1)
        corr = _rows_standardised(features[person]) @ _rows_standardised(others).T
        corr[excluded] = -np.inf
        accuracy[person] = float((corr.argmax(axis=1) == np.arange(n_windows)).mean())
    return accuracy


def matching_accuracy(fitted, scan2, zscore=True):
    """Segment-matching accuracy per held-out person of a fitted method on scan 2.

    ``zscore``: z-score each person's shared-space series per dimension over time first
    (brainiak's tutorial and the package's ``segment_matching``; the default).
    """
    if fitted.kind == "series":
        runs = [np.asarray(fitted.series(p, x), dtype=np.float64) for p, x in enumerate(scan2)]
        if zscore:
            from sklearn_tcssl.alignment import segment_matching

            return segment_matching(runs, window=WINDOW)
        return match_windows(np.stack([window_features(r) for r in runs]))
    windows = [[x[i : i + WINDOW] for i in range(x.shape[0] - WINDOW + 1)] for x in scan2]
    embedded = [np.asarray(fitted.embed(p, w)) for p, w in enumerate(windows)]
    return match_windows(np.stack(embedded).astype(np.float64))


def matching_chance(n_windows, width=WINDOW):
    """Chance accuracy: one over the candidates left after excluding overlapping ones."""
    return 1.0 / (n_windows - 2 * (width - 1))


# ---------------------------------------------------------------------------- methods
class Series:
    """A fitted method whose output keeps time: ``series(person, X) -> (T, d)``."""

    kind = "series"

    def __init__(self, function):
        self.series = function


class Embedding:
    """A fitted method giving one vector per sequence: ``embed(person, seqs) -> (n, d)``."""

    kind = "embed"

    def __init__(self, function):
        self.embed = function


def fit_none(scan1):
    return Series(lambda person, x: x)


def fit_ours_srm(basis):
    def fit(scan1):
        from sklearn_tcssl import SharedResponseAligner

        aligner = SharedResponseAligner(N_COMPONENTS, n_iter=N_ITER, basis=basis, random_state=0)
        aligner.fit(list(scan1), subjects=list(range(len(scan1))))
        return Series(lambda person, x: aligner.transform([x], subjects=[person])[0])

    return fit


def fit_ours_tc(params):
    """Our contrastive aligner with ``params``; both its outputs from one fit."""

    def fit(scan1):
        from sklearn_tcssl import TemporalContrastiveAligner

        aligner = TemporalContrastiveAligner(n_components=N_COMPONENTS, random_state=0, **params)
        aligner.fit(list(scan1), subjects=list(range(len(scan1))))
        return {
            "embed": Embedding(lambda person, seqs: aligner.embed(seqs, [person] * len(seqs))),
            "transform": Series(lambda person, x: aligner.transform([x], subjects=[person])[0]),
        }

    return fit


def fit_brainiak(name, **params):
    def fit(scan1):
        from brainiak.funcalign import rsrm, srm

        model = {"SRM": srm.SRM, "DetSRM": srm.DetSRM, "RSRM": rsrm.RSRM}[name](**params)
        model.fit([run.T.astype(np.float64) for run in scan1])  # brainiak: (voxels, TRs)
        if name == "RSRM":
            # RSRM.transform gives (shared, individual) terms: keep the shared ones
            return Series(lambda person, x: _rsrm_transform(model, person, x, len(scan1)))
        # SRM and DetSRM transform data as W_s^T x: use the fitted maps directly
        return Series(lambda person, x: x @ model.w_[person])

    return fit


def _rsrm_transform(model, person, x, n_people):
    runs = [None] * n_people
    runs[person] = x.T.astype(np.float64)
    shared, _ = model.transform(runs)
    return shared[person].T


def fit_ours_srm_in_brainiak_basis(scan1):
    """Diagnostic: our SRM maps times the common rotation onto brainiak DetSRM's response.

    The SRM objective is unchanged by one rotation of the shared space applied to every
    person, but the per-dimension z-scoring of segment matching is not: this row separates
    the model from the basis it happens to be expressed in.
    """
    from brainiak.funcalign import srm

    from sklearn_tcssl import SharedResponseAligner

    ours = SharedResponseAligner(N_COMPONENTS, n_iter=N_ITER, random_state=0)
    ours.fit(list(scan1), subjects=list(range(len(scan1))))
    theirs = srm.DetSRM(n_iter=N_ITER, features=N_COMPONENTS, rand_seed=0)
    theirs.fit([run.T.astype(np.float64) for run in scan1])
    u, _, vt = np.linalg.svd(ours.shared_response_.T @ theirs.s_.T)  # Procrustes: S_o R ~ S_b
    rotation = u @ vt
    return Series(lambda person, x: ours.transform([x], subjects=[person])[0] @ rotation)


def fit_brainiak_in_canonical_basis(scan1):
    """Diagnostic: brainiak DetSRM's maps rotated onto our canonical ``"dominant"`` basis.

    The counterpart of the row above: our basis rule applied to brainiak's fit.
    """
    from brainiak.funcalign import srm

    from sklearn_tcssl.alignment._srm import canonical_rotation

    theirs = srm.DetSRM(n_iter=N_ITER, features=N_COMPONENTS, rand_seed=0)
    theirs.fit([run.T.astype(np.float64) for run in scan1])
    rotation = canonical_rotation(theirs.s_.T)
    return Series(lambda person, x: x @ theirs.w_[person] @ rotation)


def basis_report(scan1):
    """Print the SRM objective and shared-response variances of ours and brainiak's DetSRM."""
    from brainiak.funcalign import srm

    from sklearn_tcssl import SharedResponseAligner

    runs, people = list(scan1), list(range(len(scan1)))
    ours = SharedResponseAligner(N_COMPONENTS, n_iter=N_ITER, random_state=0).fit(
        runs, subjects=people
    )
    theirs = srm.DetSRM(n_iter=N_ITER, features=N_COMPONENTS, rand_seed=0)
    theirs.fit([run.T.astype(np.float64) for run in runs])
    fits = {
        "ours": ([ours.weights_[p] for p in people], ours.shared_response_),
        "brainiak DetSRM": (list(theirs.w_), theirs.s_.T),
    }
    for name, (maps, shared) in fits.items():
        objective = sum(np.linalg.norm(run - shared @ w.T) ** 2 for run, w in zip(runs, maps))
        variances = np.sort(shared.var(axis=0))[::-1]
        print(
            f"{name}: SRM objective {objective:.5g}; variance of the shared response per "
            f"dimension: largest {variances[:3].round(1)}, smallest {variances[-1]:.2f}"
        )


def fit_fmralign(method):
    def fit(scan1):
        from fmralign import GroupAlignment
        from fmralign import methods as fm

        estimator = {
            "procrustes": fm.Procrustes,
            "ridge": fm.RidgeAlignment,
            "ot": fm.OptimalTransport,
        }[method]()
        aligner = GroupAlignment(method=estimator).fit(
            {str(p): run for p, run in enumerate(scan1)}, y="template"
        )
        return Series(lambda person, x: aligner.transform({str(person): x})[str(person)])

    return fit


def fit_cebra(iterations, batch_size=128):
    def fit(scan1):
        import cebra
        import torch

        torch.manual_seed(0)
        model = cebra.CEBRA(
            model_architecture="offset10-model",
            conditional="time_delta",
            time_offsets=10,
            output_dimension=N_COMPONENTS,
            batch_size=batch_size,
            learning_rate=3e-4,
            temperature=1.0,
            max_iterations=iterations,
            device="cpu",
            verbose=False,
        )
        clock = np.arange(scan1.shape[1], dtype=np.float32)[:, None]  # time: the label
        model.fit([run for run in scan1], [clock] * len(scan1))
        return Series(lambda person, x: model.transform(x, session_id=person))

    return fit


def make_methods(mode):
    """``{name: (fit function, output)}``; ``output`` picks ``embed``/``transform`` of ours."""
    epochs = {"quick": 3, "default": 50, "full": 50}[mode]
    # CEBRA's step costs about 1-5 s on one shared CPU thread here (17 sessions x 128
    # windows x 3): its usual 5,000-10,000 steps do not fit; see the docs
    cebra_iterations = {"quick": 20, "default": 100, "full": 300}[mode]
    tc_default = fit_ours_tc({"max_epochs": epochs})
    tc_frozen = fit_ours_tc({"max_epochs": epochs, "freeze_maps": True})
    methods = {
        "no alignment (voxels)": (fit_none, None),
        "ours: SharedResponseAligner": (fit_ours_srm("fitted"), None),
        'ours: SharedResponseAligner(basis="dominant")': (fit_ours_srm("dominant"), None),
        "ours: TemporalContrastiveAligner (default), embed": (tc_default, "embed"),
        "ours: TemporalContrastiveAligner (default), transform": (tc_default, "transform"),
        "ours: TemporalContrastiveAligner (freeze_maps), embed": (tc_frozen, "embed"),
        "brainiak SRM (probabilistic)": (
            fit_brainiak("SRM", n_iter=N_ITER, features=N_COMPONENTS, rand_seed=0),
            None,
        ),
        "brainiak DetSRM": (
            fit_brainiak("DetSRM", n_iter=N_ITER, features=N_COMPONENTS, rand_seed=0),
            None,
        ),
        "brainiak RSRM": (
            fit_brainiak("RSRM", n_iter=N_ITER, features=N_COMPONENTS, rand_seed=0),
            None,
        ),
        "fmralign template Procrustes": (fit_fmralign("procrustes"), None),
        "fmralign template ridge": (fit_fmralign("ridge"), None),
        "fmralign template optimal transport": (fit_fmralign("ot"), None),
        f"CEBRA multi-session, time ({cebra_iterations} it.)": (
            fit_cebra(cebra_iterations),
            None,
        ),
    }
    if mode == "full":
        methods["diagnostic: ours SRM rotated onto brainiak DetSRM's basis"] = (
            fit_ours_srm_in_brainiak_basis,
            None,
        )
        methods['diagnostic: brainiak DetSRM rotated onto our basis="dominant"'] = (
            fit_brainiak_in_canonical_basis,
            None,
        )
        tc_random = fit_ours_tc({"max_epochs": 3 * epochs, "init": "random", "lr": 1e-3})
        tc_within = fit_ours_tc({"max_epochs": epochs, "cross_subject": False})
        methods.update(
            {
                "ours: TemporalContrastiveAligner (init=random, lr=1e-3), embed": (
                    tc_random,
                    "embed",
                ),
                "ours: TemporalContrastiveAligner (cross_subject=False), embed": (
                    tc_within,
                    "embed",
                ),
            }
        )
    return methods


# ----------------------------------------------------------------------- the scoring
def scene_features(fitted, scan2, scenes):
    """(people, scenes, features): block means in the shared space, or ``embed`` of blocks."""
    rows = []
    for person, x in enumerate(scan2):
        if fitted.kind == "series":
            shared = np.asarray(fitted.series(person, x))
            rows.append(np.stack([shared[a:b].mean(axis=0) for a, b in scenes]))
        else:
            rows.append(np.asarray(fitted.embed(person, [x[a:b] for a, b in scenes])))
    return np.stack(rows)


def loo_splits(n_people):
    people = np.arange(n_people)
    return [(n_people - 1, np.delete(people, p), np.array([p])) for p in people]


def row(task, method, values, seconds, error=None):
    values = np.asarray(values, dtype=float)
    out = {
        "task": task,
        "method": method,
        "k": int(values.size),
        "mean": None if error else round(float(values.mean()), 4),
        "sd": None if error else round(float(values.std()), 4),
        "seconds": None if seconds is None else round(float(seconds), 1),
    }
    if error:
        out["error"] = error
    return out


def score_method(name, fitted, seconds, scan2, scenes, zscore=True):
    """Rows of both tasks for one fitted method."""
    n_people = scan2.shape[0]
    accuracy = matching_accuracy(fitted, scan2[:, :-DROP_TAIL], zscore)
    rows = [row("segment_matching", name, accuracy, seconds)]
    features = scene_features(fitted, scan2, scenes)
    for readout in ("LDA", "LR"):
        values = scenes_protocol.score_features(features, loo_splits(n_people), readout)
        rows.append(row("scenes", f"{name} + {readout}", values, seconds))
    return rows


def failed_rows(name, error, n_people):
    nan = np.full(n_people, np.nan)
    rows = [row("segment_matching", name, nan, None, error)]
    rows += [row("scenes", f"{name} + {r}", nan, None, error) for r in ("LDA", "LR")]
    return rows


def run_methods(methods, scan1, scan2, scenes, zscore=True):
    rows, fits = [], {}
    for name, (fit, output) in methods.items():
        try:
            if fit not in fits:  # one fit serves both outputs of the same aligner
                start = time.perf_counter()
                fits[fit] = (fit(scan1), time.perf_counter() - start)
            fitted, seconds = fits[fit]
            fitted = fitted[output] if output else fitted
            new = score_method(name, fitted, seconds, scan2, scenes, zscore)
        except Exception as exc:  # a peer that does not install or run is a row, not a crash
            message = f"{type(exc).__name__}: {exc}".strip()
            if isinstance(exc, ImportError):
                message += ' (install the peers: pip install -e ".[peers]")'
            else:
                traceback.print_exc()
            new = failed_rows(name, message[:300], scan2.shape[0])
        rows += new
        print_rows(new)
    return rows


# ------------------------------------------------------------------------- the table
def print_rows(rows):
    for r in rows:
        value = "failed: " + r["error"] if r.get("error") else f"{r['mean']:.3f} ± {r['sd']:.3f}"
        seconds = "" if r["seconds"] is None else f"{r['seconds']:7.1f} s"
        print(f"{r['task']:17s} {r['method']:62s} {seconds:>9s}  {value}", flush=True)


def table_rows(rows):
    """One line per method: fit seconds, segment matching, scenes (LDA), scenes (LR)."""
    methods = [r["method"] for r in rows if r["task"] == "segment_matching"]
    cell = {(r["task"], r["method"]): r for r in rows}
    lines = []
    for method in methods:
        match = cell[("segment_matching", method)]
        cells = [match] + [cell.get(("scenes", f"{method} + {r}")) for r in ("LDA", "LR")]
        lines.append((method, match, cells))
    return lines


def rst_table(rows):
    """An RST list-table of the rows (failed rows show their error)."""
    k = max(r["k"] for r in rows)
    lines = [".. list-table::", "   :header-rows: 1", ""]
    header = ["method", "fit (s)", f"segment matching ({k} folds)", "scenes, LDA", "scenes, LR"]
    lines.append("   * - " + header[0])
    lines += [f"     - {h}" for h in header[1:]]
    for method, match, cells in table_rows(rows):
        lines.append(f"   * - {method}")
        if match.get("error"):
            lines.append("     - n/a")
            lines.append(f"     - not run: ``{match['error']}``")
            lines += ["     - n/a", "     - n/a"]
            continue
        lines.append(f"     - {match['seconds']:.1f}")
        for c in cells:
            lines.append("     - n/a" if c is None else f"     - {c['mean']:.3f} ± {c['sd']:.3f}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", default=str(scenes_protocol.DEFAULT_DATA / "sherlock_pmc_movie.npz")
    )
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    parser.add_argument("--rst", default=None, help="also write the table as an RST include")
    parser.add_argument("--from-json", default=None, help="only render an earlier --out file")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke run: few epochs/iterations")
    mode.add_argument("--full", action="store_true", help="every variant, CEBRA 300 it.")
    parser.add_argument(
        "--raw-windows",
        action="store_true",
        help="segment matching without the per-dimension z-scoring (basis-invariant check)",
    )
    parser.add_argument(
        "--basis-report",
        action="store_true",
        help="only compare our SRM's and brainiak's DetSRM's objective and basis",
    )
    parser.add_argument("--methods", default=None, help="only methods whose name has this text")
    args = parser.parse_args(argv)
    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text())
    else:
        path = Path(args.data)
        if not path.is_file():
            print(
                f"SKIPPED: the Sherlock file {path} is absent. Pass --data PATH to "
                "sherlock_pmc_movie.npz (see ../shared/data/README.md); nothing was computed."
            )
            return 0
        rows = run(path, "quick" if args.quick else "full" if args.full else "default", args)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
            print(f"wrote {len(rows)} rows to {args.out}")
    if args.rst:
        Path(args.rst).write_text(rst_table(rows))
    if args.from_json:
        print_rows(rows)
    return 0


def run(path, mode, args):
    import warnings

    warnings.filterwarnings("ignore", message="An ill-conditioned matrix")  # fmralign ridge
    os.environ.setdefault("SKLEARN_TCSSL_N_THREADS", "1")
    scenes_protocol._limit_threads()  # one BLAS and one torch thread
    from sklearn_tcssl.datasets import load_sherlock_pmc

    data = load_sherlock_pmc(path)
    scan1, scan2 = data.scans
    if args.basis_report:
        basis_report(scan1)
        return []
    methods = make_methods(mode)
    if args.methods:
        methods = {k: v for k, v in methods.items() if args.methods.lower() in k.lower()}
    n_windows = scan2.shape[1] - DROP_TAIL - WINDOW + 1
    print(
        f"{scan1.shape[0]} people; fit on scan 1 ({scan1.shape[1]} TRs); segment matching on "
        f"{n_windows} windows of {WINDOW} TRs of scan 2 (chance {matching_chance(n_windows):.4f});"
        f" {len(data.scenes[1])} scenes (chance {1 / len(data.scenes[1]):.3f}); mode {mode}"
    )
    return run_methods(methods, scan1, scan2, data.scenes[1], zscore=not args.raw_windows)


if __name__ == "__main__":
    sys.exit(main())
