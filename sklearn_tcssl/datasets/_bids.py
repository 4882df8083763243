"""Find the BOLD runs and events of a task in a BIDS dataset and cut their blocks."""

import json
import os
from numbers import Integral, Real
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn.interfaces.bids import get_bids_files, parse_bids_filename
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval

from sklearn_tcssl._utils.params import validate_params
from sklearn_tcssl.datasets._blocks import (
    _MAX_T_R,
    BLOCK_CONSTRAINTS,
    BLOCK_HINTS,
    _check_t_r,
    _read_events,
    extract_blocks,
)

__all__ = ["load_bids_blocks"]

# Entities that name a derivative's space or processing, absent from the raw file names.
_DERIVATIVE_ENTITIES = ("space", "res", "den", "desc")


def _find_derivatives_root(root, derivatives):
    if isinstance(derivatives, np.bool_):  # validated as a boolean, as Python's bool
        derivatives = bool(derivatives)
    if derivatives is False or derivatives is None:
        return root
    if derivatives is not True:
        path = Path(derivatives)
        path = path if path.is_absolute() or path.exists() else root / path
        if not path.is_dir():
            raise FileNotFoundError(
                f"derivatives={str(derivatives)!r} is not a folder (looked at {str(path)!r})."
            )
        return path
    deriv = root / "derivatives"
    if not deriv.is_dir():
        raise FileNotFoundError(
            f"derivatives=True but {str(deriv)!r} does not exist. Pass the path of the "
            "pipeline's output folder (e.g. derivatives='derivatives/fmriprep')."
        )
    if any(deriv.glob("sub-*")):
        return deriv
    pipelines = sorted(p for p in deriv.iterdir() if p.is_dir() and any(p.glob("sub-*")))
    if len(pipelines) == 1:
        return pipelines[0]
    if (deriv / "fmriprep") in pipelines:
        return deriv / "fmriprep"
    raise FileNotFoundError(
        f"Could not choose a pipeline folder in {str(deriv)!r} (found "
        f"{[p.name for p in pipelines]}); pass derivatives='derivatives/<pipeline>'."
    )


def _raw_entities(entities):
    return {k: v for k, v in entities.items() if k not in _DERIVATIVE_ENTITIES}


def _inherited(candidates, entities):
    """Candidate files whose entities are a subset of ``entities``, least specific first."""
    matches = []
    for path in candidates:
        ents = parse_bids_filename(path)["entities"]
        if all(entities.get(k) == v for k, v in ents.items()):
            matches.append((len(ents), str(path)))
    return [path for _, path in sorted(matches)]


def _sidecar_files(root, suffix, sub):
    """Files ``*_<suffix>`` of one subject's folder and ``task-*_<suffix>`` at the root."""
    files = sorted(str(p) for p in (root / f"sub-{sub}").rglob(f"sub-{sub}*_{suffix}"))
    return [str(p) for p in sorted(root.glob(f"task-*_{suffix}"))] + files


def _expected_events_path(root, bold_ref):
    ents = _raw_entities(bold_ref["entities"])
    name = "_".join(f"{k}-{v}" for k, v in ents.items()) + "_events.tsv"
    folder = root / f"sub-{ents['sub']}"
    if "ses" in ents:
        folder = folder / f"ses-{ents['ses']}"
    return folder / "func" / name


def _read_sidecar(path):
    """Parse a JSON sidecar; errors name the file, the line and the fix."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # a BOM is tolerated
            meta = json.load(f)
    except json.JSONDecodeError as exc:
        problem = (
            f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). Fix the "
            "file (e.g. check it with python -m json.tool), or pass t_r= to skip reading it."
        )
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text ({exc}). Save it as UTF-8 JSON."
    else:
        if isinstance(meta, dict):
            return meta
        problem = (
            f"holds a {type(meta).__name__}, not a JSON object "
            '(e.g. {"RepetitionTime": 2.0}). Fix the file, or pass t_r=.'
        )
    raise ValueError(f"The JSON sidecar {str(path)!r} {problem}") from None


def _read_t_r(bold_path, bold_ref, raw_root, search_root):
    """RepetitionTime from the JSON sidecars (BIDS inheritance), else the NIfTI header."""
    sub = bold_ref["entities"]["sub"]
    candidates = _inherited(
        _sidecar_files(raw_root, "bold.json", sub), _raw_entities(bold_ref["entities"])
    )
    own = Path(str(bold_path).split(".nii")[0] + ".json")
    if search_root != raw_root and own.is_file():
        candidates.append(str(own))
    meta, source = {}, {}
    for path in candidates:  # least specific first; more specific files override
        sidecar = _read_sidecar(path)
        meta.update(sidecar)
        source.update(dict.fromkeys(sidecar, path))
    if meta.get("RepetitionTime") is not None:
        return _check_t_r(meta["RepetitionTime"], source=repr(source["RepetitionTime"]))
    header = nib.load(bold_path).header
    time_unit = header.get_xyzt_units()[1]
    zooms = header.get_zooms()
    if time_unit in ("sec", "msec") and len(zooms) > 3 and zooms[3] > 0:
        return float(zooms[3]) / (1000.0 if time_unit == "msec" else 1.0)
    raise ValueError(
        f"Repetition time unknown for {str(bold_path)!r}: no RepetitionTime in its JSON "
        f"sidecars {candidates} and its NIfTI header has no time unit. Add RepetitionTime "
        "to the sidecar (or task-<task>_bold.json) or pass t_r=."
    )


def _found(search_root, entity, filters=None):
    """Sorted values of ``entity`` in the names of the BOLD files under ``search_root``."""
    files = get_bids_files(search_root, file_tag="bold", file_type="nii*", filters=filters)
    return sorted({parse_bids_filename(f)["entities"].get(entity, "?") for f in files})


def _bold_files(search_root, task, subjects, derivatives, space, desc):
    filters = [("task", task)]
    if derivatives:
        filters.append(("desc", desc))
        if space is not None:
            filters.append(("space", space))
    subs = ["*"] if subjects is None else subjects
    files = []
    for sub in subs:
        files += get_bids_files(
            search_root,
            file_tag="bold",
            file_type="nii*",
            sub_label=sub,
            modality_folder="func",
            filters=filters,
        )
    if not files:
        labels = _found(search_root, "sub", [("task", task)]) if subjects is not None else []
        if labels:  # the task has BOLD files: the subjects are wrong
            raise ValueError(
                f"No BOLD files of task={task!r} for subjects={subjects} under "
                f"{str(search_root)!r}; the task's subject labels are {labels}. Pass labels "
                f"as they are written after 'sub-', as strings (e.g. subjects=[{labels[0]!r}] "
                f"for sub-{labels[0]})."
            )
        raise ValueError(
            f"No BOLD files for task={task!r}"
            + (f", subjects={subjects}" if subjects is not None else "")
            + (f", space={space!r}, desc={desc!r}" if derivatives else "")
            + f" under {str(search_root)!r}; tasks found: {_found(search_root, 'task')}. Pass "
            "one of them (without the 'task-' prefix)."
        )
    refs = [parse_bids_filename(f) for f in sorted(set(files))]
    by_run = {}
    for ref in refs:
        key = tuple(sorted(_raw_entities(ref["entities"]).items()))
        by_run.setdefault(key, []).append(ref)
    for key, group in by_run.items():
        if len(group) > 1:
            raise ValueError(
                f"Several BOLD files for the run {dict(key)}: "
                f"{[r['file_basename'] for r in group]}. Pass space= (and desc=) to pick one."
            )
    return refs


# ------------------------------------------------------------------ load_bids_blocks' steps
def _check_arguments(bids_root, task, derivatives, space, subjects):
    """Check what the file search needs; return the root, the bare task and subject labels."""
    root = Path(bids_root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"bids_root={str(bids_root)!r} is not a folder. Pass the root of a BIDS dataset."
        )
    if space is not None and not derivatives:
        raise ValueError(
            f"space={space!r} only applies to derivatives (raw BOLD files have no space); "
            "pass derivatives=True or leave space=None."
        )
    if subjects is not None:
        subjects = [str(s).removeprefix("sub-") for s in np.atleast_1d(subjects)]
    return root, str(task).removeprefix("task-"), subjects


def _events_file(root, ref, task):
    """Return the events file of a BOLD run (the most specific one, BIDS inheritance)."""
    entities = _raw_entities(ref["entities"])
    events_files = _inherited(_sidecar_files(root, "events.tsv", entities["sub"]), entities)
    if not events_files:
        raise FileNotFoundError(
            f"No events file for {ref['file_basename']}: expected "
            f"{str(_expected_events_path(root, ref))!r} (or an inherited "
            f"task-{task}_events.tsv at the dataset root)."
        )
    return events_files[-1]


def _run_blocks(ref, root, search_root, task, t_r, cleaning):
    """Read one run's events and repetition time, then clean and cut it (extract_blocks)."""
    entities = _raw_entities(ref["entities"])
    events_file = _events_file(root, ref, task)
    if t_r is None:
        t_r = _read_t_r(ref["file_path"], ref, root, search_root)
    events = _read_events(events_file)
    blocks, labels = extract_blocks(ref["file_path"], events, t_r, **cleaning)
    return Bunch(
        id="_".join(f"{k}-{entities[k]}" for k in ("sub", "ses", "acq", "run") if k in entities),
        subject=f"sub-{entities['sub']}",
        path=ref["file_path"],
        events=events,
        blocks=blocks,
        labels=list(labels),
        t_r=float(t_r),
    )


def _check_runs(runs):
    """Refuse runs that cannot be told apart or that differ in repetition time."""
    run_ids = [run.id for run in runs]
    if len(set(run_ids)) < len(run_ids):
        raise ValueError(
            f"Run ids are not unique: {run_ids}; the runs differ by an entity other "
            "than sub/ses/acq/run. Load them separately (e.g. with subjects=)."
        )
    t_rs = [run.t_r for run in runs]
    if not np.allclose(t_rs, t_rs[0]):
        raise ValueError(
            f"The runs have different repetition times {sorted(set(t_rs))}; load runs "
            "with the same t_r together (e.g. with subjects=)."
        )


def _assemble(runs, task, search_root, hrf_delay):
    """Return the Bunch: the blocks of every run, in run order, and the runs themselves."""
    block_runs = np.asarray([run.id for run in runs for _ in run.blocks])
    return Bunch(
        imgs=[block for run in runs for block in run.blocks],
        y=np.asarray([label for run in runs for label in run.labels]),
        groups=np.asarray([run.subject for run in runs for _ in run.blocks]),
        runs=block_runs,
        block_runs=block_runs,
        run_imgs=[run.path for run in runs],
        run_ids=np.asarray([run.id for run in runs]),
        run_groups=np.asarray([run.subject for run in runs]),
        events=[run.events for run in runs],
        t_r=runs[0].t_r,
        description=(
            f"Blocks of task {task!r} from {len(runs)} run(s) of "
            f"{len({run.subject for run in runs})} subject(s) in {str(search_root)!r}, cut "
            f"{hrf_delay:g} s after each onset."
        ),
    )


@validate_params(
    {
        "bids_root": [str, os.PathLike],
        "task": [str, Integral],
        "derivatives": ["boolean", None, str, os.PathLike],
        "space": [None, str],
        "desc": [str],
        "subjects": [None, str, "array-like"],
        "t_r": [None, Interval(Real, 0, _MAX_T_R, closed="right")],
        **BLOCK_CONSTRAINTS,
    },
    hints=BLOCK_HINTS,
)
def load_bids_blocks(
    bids_root,
    task,
    *,
    derivatives=False,
    space=None,
    desc="preproc",
    subjects=None,
    t_r=None,
    hrf_delay=5.0,
    standardize=True,
    detrend=True,
    high_pass=None,
    trial_types=None,
    min_duration=None,
):
    """Cut the task blocks of every run of one task in a BIDS dataset.

    BOLD runs are found with nilearn's BIDS helpers in the raw tree
    (``sub-*/[ses-*/]func/*_task-<task>_bold.nii[.gz]``) or in a derivatives folder such
    as fMRIPrep's (``*_task-<task>[_space-<space>]_desc-preproc_bold.nii.gz``); events
    come from the raw tree (``*_events.tsv``, with BIDS inheritance). Each run is cleaned
    and cut with :func:`extract_blocks`.

    Parameters
    ----------
    bids_root : str or pathlib.Path
        Root of the raw BIDS dataset (holding ``dataset_description.json``).
    task : str
        Task label, without the ``task-`` prefix.
    derivatives : bool or str or pathlib.Path, default=False
        False reads raw BOLD files. True reads ``<bids_root>/derivatives`` (its only
        pipeline folder, or ``fmriprep``); a path (absolute, or relative to
        ``bids_root``) names the pipeline folder.
    space : str or None, default=None
        Template space of the derivative BOLD files (e.g. ``"MNI152NLin2009cAsym"``).
        Needed when a run exists in several spaces; only used with derivatives.
    desc : str, default="preproc"
        ``desc`` entity of the derivative BOLD files.
    subjects : list of str or None, default=None
        Subject labels to load (``"01"`` or ``"sub-01"``). Default loads all.
    t_r : float or None, default=None
        Repetition time in seconds, in (0, 100]. By default ``RepetitionTime`` of the JSON
        sidecars (with inheritance), else the NIfTI header's when it has a time unit.
    hrf_delay, standardize, detrend, high_pass, trial_types, min_duration
        Passed to :func:`extract_blocks`.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields:

        - ``imgs``: list of 4D Nifti1Image, one per block.
        - ``y``: numpy.ndarray of the blocks' trial types.
        - ``groups``: numpy.ndarray, subject (``"sub-01"``) of each block.
        - ``runs`` (and its alias ``block_runs``): numpy.ndarray, run id of each block,
          e.g. ``"sub-01_run-1"`` (with ``ses-``/``acq-`` when present).
        - ``run_imgs``: list of str, the (uncleaned) BOLD runs, e.g. for unlabeled
          pretraining; ``run_ids`` and ``run_groups`` describe them.
        - ``events``: list of pandas.DataFrame, the events of each run.
        - ``t_r``: float, the repetition time shared by all runs.

    Raises
    ------
    FileNotFoundError
        If ``bids_root`` or the derivatives folder is missing, or a run has no events.
    ValueError
        If no BOLD file matches the task (the tasks found are listed), a run has several
        candidate files, the repetition time is unknown, or runs differ in it.

    See Also
    --------
    extract_blocks : Cut the blocks of one run.

    Examples
    --------
    >>> from sklearn_tcssl.datasets import load_bids_blocks
    >>> data = load_bids_blocks("ds000105", task="objectviewing")  # doctest: +SKIP
    >>> data = load_bids_blocks(
    ...     "ds000105", task="objectviewing", derivatives=True, space="MNI152NLin2009cAsym"
    ... )  # doctest: +SKIP
    """
    cleaning = {  # for extract_blocks
        "hrf_delay": hrf_delay,
        "standardize": standardize,
        "detrend": detrend,
        "high_pass": high_pass,
        "trial_types": trial_types,
        "min_duration": min_duration,
    }
    root, task, subjects = _check_arguments(bids_root, task, derivatives, space, subjects)
    search_root = _find_derivatives_root(root, derivatives)
    refs = _bold_files(search_root, task, subjects, bool(derivatives), space, desc)
    runs = [_run_blocks(ref, root, search_root, task, t_r, cleaning) for ref in refs]
    _check_runs(runs)
    return _assemble(runs, task, search_root, hrf_delay)
