"""The ``tcssl`` command: decode task fMRI with and without temporal-contrastive pretraining.

Exit codes: 0 success, 1 unexpected failure (a bug: report it with ``--debug`` output), 2 a
usage or data problem explained in the message, 130 Ctrl-C, 143 stopped by SIGTERM.
"""

import json
import sys
import time
from pathlib import Path

from sklearn_tcssl._utils.exceptions import TCSSLError
from sklearn_tcssl._utils.progress import NORMAL, Reporter
from sklearn_tcssl.cli._parser import (
    DEFAULT_FOLDS,
    _check_args,
    build_parser,
)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_say = Reporter()  # replaced in main() by one at the level of --verbose/--quiet


def _embedder_params(args):
    from sklearn_tcssl._training.callbacks import EpochProgress

    params = {"random_state": args.seed}
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    if _say.level >= NORMAL:
        params["callbacks"] = [EpochProgress(_say)]
    return params


def _cross_validate(imgs, mask_img, y, groups, cv, embedding):
    """Score the references and our pipeline (both readouts) on the same folds.

    The blocks are masked once: with a given mask, the masker learns nothing from them.
    """
    from nilearn.maskers import MultiNiftiMasker

    from sklearn_tcssl.baselines import FitCache
    from sklearn_tcssl.report import (
        _drop_lda_if_too_few,
        compare_decoders,
        reference_decoders,
        tcssl_decoders,
    )

    masker = MultiNiftiMasker(mask_img=mask_img, standardize=None, reports=False)
    X = masker.fit_transform(list(imgs))
    folds = list(cv.split(X, y, groups))
    decoders = {**reference_decoders(), **tcssl_decoders(memory=FitCache(), **embedding)}
    decoders = _drop_lda_if_too_few(decoders, y, folds, _say)
    return compare_decoders(X, y, groups, decoders=decoders, cv=folds, progress=_say)


def run_demo(args):
    """Run ``tcssl demo``: simulate, cross-validate the decoders, write the results."""
    from sklearn.model_selection import GroupKFold

    from sklearn_tcssl.cli._checks import check_output_folder
    from sklearn_tcssl.datasets import make_task_fmri

    check_output_folder("--out", args.out)
    _say(f"simulating {args.n_subjects} subjects (seed {args.seed})")
    data = make_task_fmri(args.n_subjects, random_state=args.seed)
    n_tasks = len(set(data.y))
    _say(f"{len(data.imgs)} blocks, {n_tasks} tasks; cross-validating ({args.folds} folds)")
    cv = GroupKFold(args.folds)
    embedding = _embedder_params(args)
    scores = _cross_validate(data.imgs, data.mask_img, data.y, data.groups, cv, embedding)
    _write_results(scores, args.out, chance=1 / n_tasks, title="Simulated task fMRI")
    return EXIT_OK


def run_decode(args):
    """Run ``tcssl decode``: check every input, load BIDS blocks, cross-validate, write."""
    from sklearn_tcssl.cli._checks import check_output_folder
    from sklearn_tcssl.datasets import load_bids_blocks

    check_output_folder("--out", args.out)
    networks = "all" if args.network == ["all"] else args.network
    runs = _bold_runs(args)
    mask_img = _brain_mask(args, runs) if networks is None or args.mask else None
    if networks is not None:
        from sklearn_tcssl.cli._checks import check_networks

        check_networks(args, networks, mask_img, runs, _say)
    embedding = _tcssl_embedding(args, networks, mask_img, runs[0])
    _say(f"inputs checked; reading task '{args.task}' from {args.bids_root}")
    data = load_bids_blocks(
        args.bids_root,
        args.task,
        derivatives=args.derivatives,
        space=args.space,
        hrf_delay=args.hrf_delay,
    )
    n_tasks = len(set(data.y))
    _say(f"{len(data.imgs)} blocks, {n_tasks} block types, {len(set(data.groups))} subjects")
    cv, groups = _decode_cv(args, data)
    if networks is None:
        scores = _cross_validate(data.imgs, mask_img, data.y, groups, cv, embedding)
        scores.insert(0, "network", "whole_brain (brain mask)")
    else:
        from sklearn_tcssl.report import network_decoding_report

        scores = network_decoding_report(
            data.imgs,
            data.y,
            groups,
            networks=networks,
            atlas=args.atlas,
            mask_img=mask_img,
            cv=cv,
            progress=_say,
            estimator=embedding.pop("embedder"),
            **embedding,
        )
    _write_results(scores, args.out, chance=1 / n_tasks, title=f"task-{args.task}")
    return EXIT_OK


def _bold_runs(args):
    """Paths of the task's BOLD runs, with their events files for decode (no data read)."""
    from sklearn_tcssl.datasets._bids import (
        _bold_files,
        _check_arguments,
        _events_file,
        _find_derivatives_root,
    )

    root, task, _ = _check_arguments(args.bids_root, args.task, args.derivatives, args.space, None)
    search_root = _find_derivatives_root(root, args.derivatives)
    refs = _bold_files(search_root, task, None, args.derivatives, args.space, "preproc")
    if args.command == "decode":
        for ref in refs:
            _events_file(root, ref, task)
    return [r["file_path"] for r in refs]


def _tcssl_embedding(args, networks, mask_img, first_run):
    """Parameters of a fresh embedder, or the frozen ``--pretrained`` one.

    The pretrained model is refused unless pretrained on the mask (or network) used here.
    """
    if args.pretrained is None:
        return {"embedder": None, **_embedder_params(args)}
    from sklearn.frozen import FrozenEstimator

    from sklearn_tcssl._utils.exceptions import IncompatibleModelError
    from sklearn_tcssl.io import check_input, load

    if not Path(args.pretrained).is_file():
        raise FileNotFoundError(f"--pretrained {args.pretrained} does not exist.")
    target = mask_img
    if networks is not None:
        from sklearn_tcssl.networks import network_mask

        if networks == "all" or len(networks) > 1:
            raise ValueError(
                f"--pretrained with --network {' '.join(args.network)}: a pretrained model "
                "expects the voxels of one mask; pass a single --network (the one it was "
                "pretrained on)."
            )
        target = network_mask(networks[0], args.atlas, target_img=first_run, mask_img=mask_img)
    model = load(args.pretrained)
    try:  # the recorded mask's grid, voxel count and voxels
        check_input(model, mask=target)
    except IncompatibleModelError as exc:
        raise IncompatibleModelError(f"--pretrained {args.pretrained}: {exc}") from None
    _say(f"using the frozen pretrained encoder in {args.pretrained}")
    return {"embedder": FrozenEstimator(model)}


def _decode_cv(args, data):
    import numpy as np
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    if args.cv == "subject":
        n_subjects = len(np.unique(data.groups))
        if n_subjects < 2:
            raise ValueError(
                f"--cv subject needs at least 2 subjects; {args.bids_root} has {n_subjects}. "
                "Use --cv run to cross-validate across runs."
            )
        folds = DEFAULT_FOLDS if args.folds is None else args.folds
        return GroupKFold(min(folds, n_subjects)), data.groups
    runs = np.asarray(data.runs)
    if len(np.unique(runs)) < 2:
        raise ValueError("--cv run needs at least 2 runs; the dataset has 1. Use --cv subject.")
    return LeaveOneGroupOut(), runs


def _brain_mask(args, run_paths):
    """Return ``--mask`` checked against the runs' grid, or one computed from the raw runs."""
    from sklearn_tcssl.cli._checks import compute_brain_mask, load_mask

    if args.mask is None:
        return compute_brain_mask(list(run_paths), say=_say, min_voxels=args.min_mask_voxels)
    mask_img = load_mask(args.mask, run_paths[0], min_voxels=args.min_mask_voxels)
    _say(f"brain mask {args.mask}: {int(mask_img.get_fdata().sum())} voxels")
    return mask_img


def run_pretrain(args):
    """Run ``tcssl pretrain``: z-score whole runs, pretrain the embedder, save a model file."""
    from sklearn_tcssl.cli._checks import check_output_file
    from sklearn_tcssl.embedding._embedder import TemporalContrastiveEmbedder

    check_output_file("--out", args.out)
    npy = args.npy_runs
    sequences, mask_img, info = _bids_runs(args) if npy is None else _npy_runs(args, npy)
    params = {**_embedder_params(args), "segment_length": args.segment_length}
    _say(f"pretraining on {len(sequences)} runs x {sequences[0].shape[1]} voxels")
    embedder = TemporalContrastiveEmbedder(**params).fit(sequences)
    path = embedder.save(args.out, mask=mask_img, input_info=info)
    _say(f"saved {path} (final pretext accuracy {embedder.history_[-1, 'train_pretext_acc']:.2f})")
    return EXIT_OK


def _npy_runs(args, paths):
    """Return masked runs on disk as memory maps (memory bounded), and ``--mask`` if given."""
    from sklearn_tcssl._input.files import open_npy_run
    from sklearn_tcssl.cli._checks import check_mask_voxels

    sequences = [open_npy_run(path, "RUN.npy") for path in paths]
    mask_img = None if args.mask is None else check_mask_voxels(args.mask, sequences)
    _say(f"{len(paths)} .npy run(s), {sum(s.nbytes for s in sequences) / 2**30:.2f} GiB")
    return sequences, mask_img, {"npy_runs": len(paths)}


def _bids_runs(args):
    """Return the task's runs, detrended and z-scored in the mask (in memory or on disk)."""
    import numpy as np
    from nilearn.maskers import MultiNiftiMasker

    runs = _bold_runs(args)
    _say(f"{len(runs)} run(s) of task '{args.task}'")
    mask_img = _brain_mask(args, runs)
    masker = MultiNiftiMasker(
        mask_img=mask_img, detrend=True, standardize="zscore_sample", reports=False
    )
    info = {"bids_task": args.task}
    if args.masked_runs is None:
        return masker.fit_transform(runs), mask_img, info
    from sklearn_tcssl.cli._checks import check_output_folder

    folder = check_output_folder("--masked-runs", args.masked_runs)
    masker.fit()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for run in runs:  # one masked run in memory at a time
        paths.append(folder / f"{Path(run).name.split('.')[0]}.npy")
        np.save(paths[-1], np.ascontiguousarray(masker.transform(run), dtype=np.float32))
    _say(f"masked runs written to {folder}: pretraining from disk")
    return _npy_runs(args, paths)[0], mask_img, info


def _write_results(scores, out, *, chance, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_tcssl.report import plot_network_report, summarize

    by = ("network", "decoder") if "network" in scores else ("decoder",)
    summary = summarize(scores, by=by)
    out.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out / "scores.csv", index=False)
    records = summary.reset_index().to_dict(orient="records")
    (out / "summary.json").write_text(json.dumps({"chance": chance, "results": records}, indent=2))
    ax = plot_network_report(scores, chance=chance, title=title)
    ax.figure.tight_layout()
    ax.figure.savefig(out / "accuracy.png", dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    print()
    print(_format_table(summary))
    print(f"\nchance = {chance:.2f}; scores.csv, summary.json and accuracy.png are in {out}/")


def _format_table(summary):
    header = " | ".join([*summary.index.names, "accuracy (mean ± sd)", "folds", "time (s)"])
    lines = [header, "-" * len(header)]
    for key, row in summary.iterrows():
        accuracy = f"{row['mean']:.3f} ± {row['sd']:.3f}"
        cells = [accuracy, str(int(row["n_folds"])), f"{row['time_s']:.1f}"]
        lines.append(" | ".join([*map(str, key if isinstance(key, tuple) else (key,)), *cells]))
    return "\n".join(lines)


def _run_within_thread_budget(args):
    """Run the command inside one thread budget (the scikit-learn parts follow it too)."""
    from sklearn_tcssl._utils import processes, threads

    with threads.thread_budget() as n_threads, processes.stop_on_sigterm(f"tcssl {args.command}"):
        _say(f"using {n_threads} CPU thread(s) (sklearn_tcssl thread policy)")
        run = {"demo": run_demo, "decode": run_decode, "pretrain": run_pretrain}[args.command]
        return run(args)


def main(argv=None):
    """Entry point of the ``tcssl`` console script.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments; ``None`` reads ``sys.argv``.

    Returns
    -------
    code : int
        The exit code (0 success, 1 unexpected failure, 2 usage or data problem).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    global _say
    _say = Reporter(args.level)
    start = time.perf_counter()
    try:
        _check_args(args)
        code = _run_within_thread_budget(args)
        _say(f"tcssl {args.command} done in {time.perf_counter() - start:.0f} s")
        return code
    except KeyboardInterrupt:
        print(f"\ntcssl {args.command}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (TCSSLError, ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"tcssl {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - last resort: a clear line, details on --debug
        if args.debug:
            raise
        print(
            f"tcssl {args.command}: unexpected error ({type(exc).__name__}: {exc}). "
            "Rerun with --debug for the traceback and report it.",
            file=sys.stderr,
        )
        return EXIT_FAILURE
