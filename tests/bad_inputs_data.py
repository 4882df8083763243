"""Rows of the bad-input table for data loading, simulators, conventions, signals, concurrency.

Collected by ``tests/bad_inputs_table.py`` for the tests (``tests/test_bad_inputs.py``) and
the docs page. Each row of :data:`ROWS` is ``(id, call(tmp_path), error, regex, what)``;
each row of :data:`ACCEPTED` is ``(id, input, documented behaviour, check(tmp_path))``.
"""

import json
import os
import signal
from unittest import mock

import nibabel as nib
import numpy as np
import pandas as pd
from _helpers import smooth_sequences
from skorch.callbacks import Callback

from sklearn_tcssl import (
    CheckpointInUseError,
    DamagedFileError,
    IncompatibleModelError,
    TemporalContrastiveClassifier,
    TemporalContrastiveEmbedder,
    load,
    save,
)
from sklearn_tcssl._training import checkpoint as checkpoint_lock
from sklearn_tcssl._training.checkpoint import list_checkpoints
from sklearn_tcssl._utils.processes import Terminated
from sklearn_tcssl.datasets import (
    extract_blocks,
    load_bids_blocks,
    load_sherlock_pmc,
    make_time_locked_fmri,
)

FAST = {"n_components": 4, "max_epochs": 2, "batch_size": 8, "random_state": 0}


def _X():
    return smooth_sequences(16, 12, 6, seed=1)


# ------------------------------------------------------------------------ Sherlock file
def _sherlock_arrays():
    scenes = np.array([[0, 5], [5, 12], [12, 22], [22, 30], [30, 38]], dtype=np.int32)
    return {
        "movie": np.random.default_rng(0).normal(size=(3, 40, 5)).astype(np.float16),
        "scenes": np.stack([scenes] * 3),
        "scan_starts": np.array([0, 20]),
        "t_r": np.array(1.5),
        "subjects": np.arange(3),
    }


def _sherlock(tmp, drop=(), **changes):
    arrays = {**_sherlock_arrays(), **changes}
    path = tmp / "sherlock_pmc_movie.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if k not in drop})
    return load_sherlock_pmc(path)


def _sherlock_truncated(tmp):
    path = tmp / "sherlock_pmc_movie.npz"
    np.savez(path, **_sherlock_arrays())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    load_sherlock_pmc(path)


def _sherlock_npy(tmp):
    path = tmp / "sherlock_pmc_movie.npz"
    with open(path, "wb") as handle:
        np.save(handle, _sherlock_arrays()["movie"])
    load_sherlock_pmc(path)


def _sherlock_object_movie(tmp):
    path = tmp / "sherlock_pmc_movie.npz"
    arrays = {**_sherlock_arrays(), "movie": np.array([{"x": 1}], dtype=object)}
    np.savez(path, **arrays)
    load_sherlock_pmc(path)


# ------------------------------------------------------------------------ blocks and BIDS
def _run_img():
    data = np.random.default_rng(0).normal(size=(3, 3, 3, 30)).astype(np.float32)
    return nib.Nifti1Image(data, np.eye(4))


def _events(trial_type=("a", "b")):
    return pd.DataFrame({"onset": [0.0, 12.0], "duration": [6.0, 6.0], "trial_type": trial_type})


def _all_zero_mask(tmp):
    mask = nib.Nifti1Image(np.zeros((3, 3, 3), dtype=np.uint8), np.eye(4))
    extract_blocks(_run_img(), _events(), 1.0, mask_img=mask)


def _annex_link(tmp, name):
    target = tmp / ".git" / "annex" / "objects" / "Xy" / "MD5E-s1--x.nii.gz" / "x.nii.gz"
    link = tmp / name
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
    return link


def _dangling_annex_img(tmp):
    extract_blocks(_annex_link(tmp, "run_bold.nii.gz"), _events(), 1.0)


def _dangling_plain_img(tmp):
    link = tmp / "run_bold.nii.gz"
    os.symlink(tmp / "moved_away.nii.gz", link)
    extract_blocks(link, _events(), 1.0)


def _dangling_annex_events(tmp):
    extract_blocks(_run_img(), _annex_link(tmp, "run_events.tsv"), 1.0)


def _int_trial_types(tmp):
    extract_blocks(_run_img(), _events(trial_type=(1, 2)), 1.0, trial_types=["1"])


def _bids(tmp, *, annexed=False):
    root = tmp / "ds"
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.8"}))
    (root / "task-x_bold.json").write_text(json.dumps({"RepetitionTime": 1.0}))
    bold = func / "sub-01_task-x_bold.nii.gz"
    if annexed:
        os.symlink(root / ".git" / "annex" / "objects" / "Ab" / "k" / "k", bold)
    else:
        nib.save(_run_img(), bold)
    _events().to_csv(func / "sub-01_task-x_events.tsv", sep="\t", index=False)
    return root


def _bids_int_subject(tmp):
    load_bids_blocks(_bids(tmp), "x", subjects=[1])


def _bids_annexed_run(tmp):
    load_bids_blocks(_bids(tmp, annexed=True), "x")


# ------------------------------------------------------------------------ conventions
def _feature_names_wrong_length(tmp):
    TemporalContrastiveEmbedder(**FAST).fit(_X()).get_feature_names_out(["a", "b"])


def _generator_fit(tmp):
    TemporalContrastiveEmbedder(**FAST).fit(x for x in _X())


def _generator_transform(tmp):
    TemporalContrastiveEmbedder(**FAST).fit(_X()).transform(iter(_X()))


def _model_with_version(tmp, version):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    path = save(TemporalContrastiveEmbedder(**FAST).fit(_X()), tmp / "m.safetensors")
    with safe_open(str(path), "np") as handle:
        card = json.loads(handle.metadata()["tcssl_card"])
    card["format_version"] = version
    save_file(load_file(str(path)), str(path), metadata={"tcssl_card": json.dumps(card)})
    load(path)


# ------------------------------------------------------------------------ concurrency
def _checkpoint_dir_in_use(tmp):
    with checkpoint_lock.checkpoint_dir_lock(tmp, owner="another fit"):
        TemporalContrastiveEmbedder(**FAST, checkpoint_dir=tmp).fit(_X())


def _checkpoint_dir_in_use_without_flock(tmp):
    (tmp / checkpoint_lock.LOCK_NAME).write_text(f"{os.getppid()}\n")  # a running process
    with mock.patch.object(checkpoint_lock, "fcntl", None):
        TemporalContrastiveEmbedder(**FAST, checkpoint_dir=tmp).fit(_X())


# ------------------------------------------------------------------------ signals
class _Sigterm(Callback):
    """Sends SIGTERM to this process after the first batch of epoch 2."""

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == 2:
            signal.raise_signal(signal.SIGTERM)


def _sigterm_save(tmp):
    embedder = TemporalContrastiveEmbedder(**FAST).fit(_X())
    with mock.patch("sklearn_tcssl.io._model_file.os.fsync", lambda fd: os.kill(os.getpid(), 15)):
        save(embedder, tmp / "m.safetensors")


ROWS = [
    # -- load_sherlock_pmc
    (
        "sherlock-2d-movie",
        lambda tmp: _sherlock(tmp, movie=np.zeros((40, 5), np.float16)),
        DamagedFileError,
        r"'movie' has shape \(40, 5\).*must be a floating \(subjects, time points, voxels\)",
        "Sherlock file whose movie is 2-D",
    ),
    (
        "sherlock-integer-movie",
        lambda tmp: _sherlock(tmp, movie=np.zeros((3, 40, 5), np.int64)),
        DamagedFileError,
        r"'movie' has shape \(3, 40, 5\) and dtype int64",
        "Sherlock file whose movie holds integers",
    ),
    (
        "sherlock-scan-starts-out-of-order",
        lambda tmp: _sherlock(tmp, scan_starts=np.array([20, 0])),
        DamagedFileError,
        r"'scan_starts'=\[20, 0\] must be increasing integer time points starting at 0",
        "scan_starts out of order",
    ),
    (
        "sherlock-scan-starts-past-end",
        lambda tmp: _sherlock(tmp, scan_starts=np.array([0, 55])),
        DamagedFileError,
        r"'scan_starts'=\[0, 55\].*before the end of the movie \(40 time points\)",
        "scan_starts past the end of the movie",
    ),
    (
        "sherlock-t-r-nan",
        lambda tmp: _sherlock(tmp, t_r=np.array(np.nan)),
        DamagedFileError,
        r"'t_r'=nan must be one finite positive number of seconds",
        "t_r = NaN in the Sherlock file",
    ),
    (
        "sherlock-t-r-array",
        lambda tmp: _sherlock(tmp, t_r=np.array([1.5, 2.0])),
        DamagedFileError,
        r"'t_r'=\[1\.5, 2\.0\] must be one finite positive number",
        "t_r given as several numbers",
    ),
    (
        "sherlock-reversed-scenes",
        lambda tmp: _sherlock(tmp, scenes=_sherlock_arrays()["scenes"][:, :, ::-1]),
        DamagedFileError,
        r"'scenes' must hold integer \[start, stop\) pairs with start < stop.*reversed",
        "scenes given as [stop, start)",
    ),
    (
        "sherlock-scenes-wrong-shape",
        lambda tmp: _sherlock(tmp, scenes=np.zeros((3, 5), np.int32)),
        DamagedFileError,
        r"'scenes' has shape \(3, 5\); it must be \(subjects, scenes, 2\)",
        "scenes of the wrong shape",
    ),
    (
        "sherlock-missing-movie",
        lambda tmp: _sherlock(tmp, drop=("movie",)),
        DamagedFileError,
        r"lacks the array\(s\) \['movie'\] \(it holds \[.*\]\); the file needs",
        "Sherlock file without its movie array",
    ),
    (
        "sherlock-missing-subjects",
        lambda tmp: _sherlock(tmp, drop=("subjects",)),
        DamagedFileError,
        r"lacks the array\(s\) \['subjects'\]",
        "Sherlock file without the (now documented) subjects array",
    ),
    (
        "sherlock-subjects-wrong-length",
        lambda tmp: _sherlock(tmp, subjects=np.arange(2)),
        DamagedFileError,
        r"'subjects' has shape \(2,\); it must give one id for each of the 3 subjects",
        "subjects not one per subject of the movie",
    ),
    (
        "sherlock-truncated-archive",
        _sherlock_truncated,
        DamagedFileError,
        r"cannot be read as an \.npz archive \(BadZipFile.*truncated or not the Sherlock",
        "Sherlock archive cut in half (an interrupted copy)",
    ),
    (
        "sherlock-npy-under-npz-name",
        _sherlock_npy,
        DamagedFileError,
        r"is a single \.npy array, not an \.npz archive of the arrays movie, scenes",
        "a .npy file saved under the .npz name",
    ),
    (
        "sherlock-pickled-array",
        _sherlock_object_movie,
        DamagedFileError,
        r"cannot be read as an \.npz archive \(ValueError: Object arrays cannot be loaded",
        "a pickled (object) array in the archive: never unpickled",
    ),
    # -- simulators
    (
        "time-locked-too-much-memory",
        lambda tmp: make_time_locked_fmri(100_000, n_timepoints=100_000, n_features=10_000),
        MemoryError,
        r"make_time_locked_fmri: 2 scans x 100000 subjects .* GiB\), more than this machine",
        "make_time_locked_fmri asked for petabytes (refused before allocating)",
    ),
    # -- blocks and BIDS
    (
        "extract-blocks-all-zero-mask",
        _all_zero_mask,
        ValueError,
        r"mask_img=\(in memory\) has no non-zero voxel: no block would hold any data",
        "extract_blocks with an all-zero mask_img",
    ),
    (
        "extract-blocks-datalad-link",
        _dangling_annex_img,
        FileNotFoundError,
        r"is a symbolic link to .*annex.*content was not downloaded\. Run `datalad get",
        "img is a DataLad/git-annex link whose content was not fetched",
    ),
    (
        "extract-blocks-dangling-link",
        _dangling_plain_img,
        FileNotFoundError,
        r"img=.* is a symbolic link to .*moved_away.*which does not exist\. Restore",
        "img is a symbolic link to a file that was moved",
    ),
    (
        "extract-blocks-datalad-events",
        _dangling_annex_events,
        FileNotFoundError,
        r"events=.*symbolic link.*Run `datalad get",
        "events.tsv is a DataLad link whose content was not fetched",
    ),
    (
        "extract-blocks-trial-types-str-vs-int",
        _int_trial_types,
        ValueError,
        r"trial_types=\['1'\] \(of type str\) matches none of the trial types .*\[1, 2\] "
        r"\(of type int\)",
        "trial_types as strings where the events hold integers",
    ),
    (
        "bids-integer-subject-label",
        _bids_int_subject,
        ValueError,
        r"for subjects=\['1'\].*subject labels are \['01'\].*subjects=\['01'\] for sub-01",
        "subjects=[1] for a dataset of sub-01 (says how to name it, not the task)",
    ),
    (
        "bids-datalad-run",
        _bids_annexed_run,
        FileNotFoundError,
        r"sub-01_task-x_bold\.nii\.gz' is a symbolic link.*`datalad get",
        "a BIDS run that is a DataLad link without content",
    ),
    # -- conventions
    (
        "feature-names-wrong-length",
        _feature_names_wrong_length,
        ValueError,
        r"input_features should have length equal to number of features \(6\), got 2",
        "get_feature_names_out with names of the wrong length",
    ),
    (
        "embedder-fit-generator",
        _generator_fit,
        TypeError,
        r"X is a generator \(an iterator, which can be read only once\).*list\(X\)",
        "a generator of arrays for fit (reported as a generator, not as dtype object)",
    ),
    (
        "embedder-transform-iterator",
        _generator_transform,
        TypeError,
        r"X is a list_iterator \(an iterator",
        "an iterator of arrays for transform",
    ),
    (
        "model-older-format-version",
        lambda tmp: _model_with_version(tmp, 0),
        IncompatibleModelError,
        r"format_version=0.*older than any format this version reads: load it with the "
        r"sklearn-tcssl that wrote it and save it again",
        "a model file of an older format_version (advice: re-save, not upgrade)",
    ),
    (
        "model-format-version-text",
        lambda tmp: _model_with_version(tmp, "1"),
        IncompatibleModelError,
        r"format_version='1'.*The card is damaged",
        "a model card whose format_version is text",
    ),
    # -- concurrency
    (
        "checkpoint-dir-in-use",
        _checkpoint_dir_in_use,
        CheckpointInUseError,
        r"checkpoint_dir=.* is in use by another fit \(process \d+\).*Give each fit its own",
        "two fits sharing one checkpoint_dir (the second is refused before training)",
    ),
    (
        "checkpoint-dir-in-use-no-flock",
        _checkpoint_dir_in_use_without_flock,
        CheckpointInUseError,
        r"is in use by another fit \(process \d+\)",
        "the same where fcntl is unavailable (a lock file of a running process)",
    ),
    # -- signals
    (
        "sigterm-during-fit",
        lambda tmp: TemporalContrastiveEmbedder(**FAST, callbacks=[_Sigterm()]).fit(_X()),
        Terminated,
        r"Training stopped by SIGTERM during epoch 2; nothing was saved \(pass checkpoint_dir",
        "SIGTERM during fit: exit 143 with a message (SystemExit)",
    ),
    (
        "sigterm-during-fit-with-checkpoints",
        lambda tmp: TemporalContrastiveEmbedder(
            **FAST, checkpoint_dir=tmp, callbacks=[_Sigterm()]
        ).fit(_X()),
        Terminated,
        r"during epoch 2; checkpoint_dir=.* keeps epoch 1\. Run the same fit again to resume",
        "SIGTERM with checkpoint_dir: the last complete epoch is kept, exit 143",
    ),
    (
        "sigterm-during-classifier-fit",
        lambda tmp: TemporalContrastiveClassifier(**FAST, callbacks=[_Sigterm()]).fit(
            _X(), np.arange(16) % 2
        ),
        Terminated,
        r"Training stopped by SIGTERM during epoch 2",
        "SIGTERM during the classifier's fit",
    ),
    (
        "sigterm-during-save",
        _sigterm_save,
        Terminated,
        r"sklearn_tcssl\.io\.save\(.*m\.safetensors'\): stopped by SIGTERM",
        "SIGTERM while a model file is written: no partial or hidden file left",
    ),
]


# ------------------------------------------------------------------ accepted on purpose
def _accept_random_state_instance(tmp):
    a = make_time_locked_fmri(
        3, n_timepoints=40, n_features=6, n_components=2, random_state=np.random.RandomState(0)
    )
    b = make_time_locked_fmri(
        3, n_timepoints=40, n_features=6, n_components=2, random_state=np.random.RandomState(0)
    )
    np.testing.assert_array_equal(a.runs[0], b.runs[0])


def _accept_stale_lock(tmp):
    (tmp / checkpoint_lock.LOCK_NAME).write_text("999999999\n")
    TemporalContrastiveEmbedder(**FAST, checkpoint_dir=tmp).fit(_X())
    assert len(list_checkpoints(tmp)) == 2 and not (tmp / checkpoint_lock.LOCK_NAME).exists()


def _accept_user_sigterm_handler(tmp):
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        fitted = TemporalContrastiveEmbedder(**FAST, callbacks=[_Sigterm()]).fit(_X())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(fitted.history_) == FAST["max_epochs"] and calls


def _accept_live_writers_temporary(tmp):
    alive = tmp / f".m.safetensors.tmp-{os.getppid()}-abc"
    alive.write_bytes(b"partial")
    save(TemporalContrastiveEmbedder(**FAST).fit(_X()), tmp / "m.safetensors")
    assert alive.exists()


def _accept_scene_across_scans(tmp):
    data = _sherlock(tmp)  # the scene [12, 22) crosses the boundary at 20
    assert [s.tolist() for s in data.scenes] == [[[0, 5], [5, 12]], [[2, 10], [10, 18]]]


#: (id, input, documented behaviour, check(tmp_path)).
ACCEPTED = [
    (
        "time-locked-random-state-instance",
        "make_time_locked_fmri(random_state=np.random.RandomState(0))",
        "used like an int seed (scikit-learn's random_state convention); same data twice",
        _accept_random_state_instance,
    ),
    (
        "checkpoint-stale-lock-file",
        "a .lock file left in checkpoint_dir by a process that died",
        "ignored: the lock is an flock the system released when that process ended",
        _accept_stale_lock,
    ),
    (
        "sigterm-user-handler",
        "SIGTERM while the user's own SIGTERM handler is installed",
        "the user's handler runs and decides; training goes on if it returns",
        _accept_user_sigterm_handler,
    ),
    (
        "save-temporary-of-a-running-save",
        "a temporary file of a save by another running process beside the model file",
        "kept: that save may still be writing (only dead writers' files are removed)",
        _accept_live_writers_temporary,
    ),
    (
        "sherlock-scene-across-scans",
        "a Sherlock scene that crosses the boundary between the two scans",
        "dropped, as documented (it belongs to neither scan)",
        _accept_scene_across_scans,
    ),
]
