"""The ``tcssl`` options: the parser, its help texts, and the checks of the options alone."""

import argparse
from pathlib import Path

from sklearn_tcssl._utils.progress import NORMAL, QUIET, VERBOSE

DESCRIPTION = """\
Decode which task a block of fMRI belongs to, with an encoder pretrained without labels
(temporal contrast: the end of a sequence should look more like its middle than its
beginning; Shi et al. 2023), next to the classical decoders (mean pattern of each block +
shrinkage LDA, the strongest reference, or logistic regression). Every accuracy is
cross-validated across subjects (or runs), with everything fitted on the training folds only.
"""

DEMO_HELP = """\
Simulate a small block-design task-fMRI study (12 subjects, 4 tasks, offline) and compare
the classical decoders (block mean + shrinkage LDA or logistic regression) with the TCSSL
pipeline (same two readouts) on the same subject-wise folds. Prints a table and saves
scores.csv, summary.json and accuracy.png in --out.
"""

DECODE_HELP = """\
Decode the task blocks of a BIDS dataset (raw, or fMRIPrep derivatives with --derivatives).
Blocks are cut from each run after detrending and z-scoring every voxel over the run,
shifted by --hrf-delay seconds, then decoded within the chosen networks.
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written, and every option's default (None and flags say it in words)."""

    def _get_help_string(self, action):
        if action.default is None or action.nargs == 0 or action.help is None:
            return action.help
        return super()._get_help_string(action)


#: Folds of ``--cv subject`` when ``--folds`` is not given.
DEFAULT_FOLDS = 5
#: Default of ``--min-mask-voxels``: fewer voxels are taken for an ROI given by mistake.
MIN_MASK_VOXELS = 50


def build_parser():
    """Return the ``tcssl`` argument parser.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser with the ``demo``, ``decode`` and ``pretrain`` subcommands.
    """
    from sklearn_tcssl._version import __version__

    raw = _HelpFormatter
    parser = argparse.ArgumentParser(prog="tcssl", description=DESCRIPTION, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"tcssl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = {"formatter_class": raw, "parents": [_verbosity_parser()]}
    _add_demo(commands, common)
    _add_decode(commands, common)
    _add_pretrain(commands, common)
    return parser


def _add_demo(commands, common):
    demo = commands.add_parser(
        "demo", help="run the offline demo", description=DEMO_HELP, **common
    )
    demo.add_argument("--out", type=Path, default=Path("tcssl_demo_out"), help="output folder")
    demo.add_argument("--seed", type=int, default=0, help="simulation and training seed")
    demo.add_argument("--n-subjects", type=int, default=12, help="simulated subjects")
    demo.add_argument("--folds", type=int, default=5, help="subject-wise folds")
    demo.add_argument(
        "--max-epochs",
        type=int,
        default=25,
        help="pretraining epochs (the embedder's own default is 50; fewer here, to stay "
        "under a minute on 2 cores)",
    )


def _add_decode(commands, common):
    decode = commands.add_parser(
        "decode", help="decode a BIDS dataset", description=DECODE_HELP, **common
    )
    decode.add_argument("bids_root", type=Path, help="BIDS dataset folder")
    decode.add_argument("--task", required=True, help="BIDS task label (task-<TASK>)")
    decode.add_argument(
        "--network",
        nargs="+",
        metavar="NAME",
        help="Yeo networks to decode from: visual somatomotor dorsal_attention "
        "ventral_attention limbic frontoparietal default whole_brain, or 'all' (each "
        "network and the whole brain). Default: a whole-brain mask computed from the data "
        "(no atlas needed). The runs must be in MNI152 space, the atlas's: networks with "
        "under 20%% of their voxels inside the brain are refused.",
    )
    decode.add_argument(
        "--atlas",
        type=Path,
        help="local Yeo 2011 7-network atlas file (default: fetched by nilearn, which needs "
        "network access once)",
    )
    _add_mask_options(
        decode,
        "brain mask image on the BOLD grid (default: nilearn's compute_epi_mask on the mean "
        "image of the raw runs)",
    )
    decode.add_argument(
        "--pretrained",
        type=Path,
        help="model file from 'tcssl pretrain': its encoder is used frozen (not refitted) "
        "instead of pretraining in each fold; use the same --mask/--network as in pretraining",
    )
    decode.add_argument(
        "--cv",
        choices=("subject", "run"),
        default="subject",
        help="leave-subjects-out folds, or leave-one-run-out (as many folds as runs)",
    )
    decode.add_argument(
        "--folds",
        type=int,
        help=f"subject-wise folds of --cv subject (default: {DEFAULT_FOLDS}, or the number "
        "of subjects if fewer); not used by --cv run",
    )
    _add_derivatives_options(decode)
    decode.add_argument(
        "--hrf-delay", type=float, default=5.0, help="haemodynamic delay of block onsets (s)"
    )
    _add_training_options(decode)
    decode.add_argument("--out", type=Path, default=Path("tcssl_decode_out"), help="output folder")


def _add_pretrain(commands, common):
    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain an encoder on unlabeled runs",
        description=PRETRAIN_HELP,
        **common,
    )
    pretrain.add_argument(
        "data",
        type=Path,
        nargs="+",
        metavar="BIDS_ROOT | RUN.npy",
        help="a BIDS dataset folder, or masked runs saved as float32 (n_timepoints, "
        "n_voxels) .npy files, one per run (read from disk as memory maps: the runs of many "
        "subjects may together exceed memory)",
    )
    pretrain.add_argument(
        "--task", help="BIDS task label of the runs to use (required with a BIDS folder)"
    )
    pretrain.add_argument("--out", type=Path, required=True, help="model file to write")
    _add_mask_options(
        pretrain,
        "brain mask (default: from the runs); with .npy runs, the mask they were masked "
        "with, recorded in the model file (its voxel count must match)",
    )
    pretrain.add_argument(
        "--masked-runs",
        type=Path,
        metavar="DIR",
        help="with a BIDS folder: write each masked run to DIR as a float32 .npy file (one "
        "run in memory at a time) and pretrain from them on disk, so that many subjects fit; "
        "later pretrains can pass DIR/*.npy directly",
    )
    _add_derivatives_options(pretrain)
    pretrain.add_argument("--segment-length", type=int, default=5, help="TRs per segment")
    _add_training_options(pretrain)


def _add_mask_options(command, mask_help):
    command.add_argument("--mask", type=Path, help=mask_help)
    command.add_argument(
        "--min-mask-voxels",
        type=int,
        default=MIN_MASK_VOXELS,
        metavar="N",
        help="fewest voxels of --mask or of the computed brain mask (a guard against an ROI "
        "passed by mistake; lower it to decode a small region on purpose)",
    )


def _add_derivatives_options(command):
    command.add_argument("--derivatives", action="store_true", help="use fMRIPrep derivatives")
    command.add_argument("--space", help="derivatives space, e.g. MNI152NLin2009cAsym")


def _add_training_options(command):
    command.add_argument("--max-epochs", type=int, help="pretraining epochs (default: 50)")
    command.add_argument("--seed", type=int, default=0, help="training seed")


def _verbosity_parser():
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_mutually_exclusive_group()
    verbosity = {"dest": "level", "action": "store_const"}
    group.add_argument(
        "-v", "--verbose", const=VERBOSE, help="one progress line per training epoch", **verbosity
    )
    group.add_argument(
        "-q", "--quiet", const=QUIET, help="no progress lines, only the results", **verbosity
    )
    options.set_defaults(level=NORMAL)
    return options


PRETRAIN_HELP = """\
Pretrain the temporal-contrastive encoder on whole runs, without labels or events (each
voxel detrended and z-scored over its run), and save it as a safe model file (safetensors
weights + a JSON card: no code is ever loaded from it). Pretrain on subjects or tasks that
you will NOT test on, then decode with 'tcssl decode ... --pretrained FILE'.

The runs come from a BIDS folder (masked in memory), or from .npy files of masked runs,
e.g. 'tcssl pretrain derivatives/masked/sub-*_run-*.npy --out encoder.safetensors', which
train from disk with memory bounded whatever their total size (they are used as they are:
detrend and z-score them when you write them).
"""


def npy_runs(args):
    """Return the ``.npy`` runs given to ``tcssl pretrain``, or None for a BIDS folder.

    Sets ``args.bids_root`` for a BIDS folder; refuses a mix, several folders, and the BIDS
    options with ``.npy`` runs.
    """
    data = list(args.data)
    is_npy = [Path(p).suffix == ".npy" for p in data]
    if len(data) > 1 and not all(is_npy):
        other = data[is_npy.index(False)]
        raise ValueError(
            f"tcssl pretrain got {len(data)} paths, among them {str(other)!r}, which is not a "
            ".npy file. Pass either one BIDS folder or only .npy runs."
        )
    if not is_npy[0]:
        if args.task is None:
            raise ValueError("--task is required with a BIDS folder (the label after 'task-').")
        args.bids_root = data[0]
        return None
    for name in ("task", "space", "derivatives", "masked_runs"):
        if getattr(args, name) not in (None, False):
            option = "--" + name.replace("_", "-")
            raise ValueError(
                f"{option} applies to a BIDS folder only; .npy runs are used as they are. "
                f"Leave out {option}."
            )
    return data


def _check_args(args):
    """Check the options before any data is read, so a typo fails in a second, not an hour."""
    if getattr(args, "command", None) == "pretrain":
        args.npy_runs = npy_runs(args)
    folds = getattr(args, "folds", None)
    if folds is not None and getattr(args, "cv", None) == "run":
        raise ValueError(
            f"--folds {folds} applies to --cv subject only: --cv run leaves one run out per "
            "fold (as many folds as runs). Leave out --folds, or use --cv subject."
        )
    if folds is not None and folds < 2:
        raise ValueError(f"--folds {folds}: cross-validation needs at least 2 folds.")
    if getattr(args, "max_epochs", None) is not None and args.max_epochs < 0:
        raise ValueError(f"--max-epochs {args.max_epochs}: pass 0 or more pretraining epochs.")
    n_subjects = getattr(args, "n_subjects", None)
    if n_subjects is not None and n_subjects < folds:
        raise ValueError(
            f"--n-subjects {n_subjects} is fewer than --folds {folds}: folds split subjects; "
            "simulate more subjects or lower --folds."
        )
    network = getattr(args, "network", None)
    if network is not None and network != ["all"]:
        from sklearn_tcssl.networks._yeo import validate_networks

        try:
            validate_networks(network)
        except ValueError as exc:
            raise ValueError(f"--network {' '.join(network)}: {exc}") from None
    atlas = getattr(args, "atlas", None)
    if atlas is not None and not Path(atlas).is_file():
        raise FileNotFoundError(
            f"--atlas {atlas} does not exist. Pass a local copy of the Yeo 2011 7-network "
            "volume (Yeo2011_7Networks_MNI152_FreeSurferConformed1mm_LiberalMask.nii.gz)."
        )
