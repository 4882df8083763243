"""The bad-input table: the rows of every ``bad_inputs_*`` module, for the tests and the docs.

``tests/test_bad_inputs.py`` checks each row; the docs build (``docs/_ext/tcssl_bad_inputs.py``)
runs the same rows to show each error message on the "Bad inputs and their errors" page. To add
a case, add a row to the module of its topic:

- ``bad_inputs_api.py``: the estimators, the masker, the loaders, model files, the CLI;
- ``bad_inputs_reliability.py``: Ctrl-C, checkpoints, damaged and hostile files;
- ``bad_inputs_aligners.py``: the aligners;
- ``bad_inputs_data.py``: data files, simulators, conventions, signals, concurrency.

Needs only the package and its dependencies (not pytest), so that the docs build can import it.
"""

import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the row modules import _helpers

import bad_inputs_aligners  # noqa: E402
import bad_inputs_api  # noqa: E402
import bad_inputs_data  # noqa: E402
import bad_inputs_reliability  # noqa: E402

MODULES = (bad_inputs_api, bad_inputs_reliability, bad_inputs_aligners, bad_inputs_data)


@dataclass(frozen=True)
class Case:
    """One bad input: how to trigger it and the error it must raise."""

    id: str
    call: object  # callable(tmp_path)
    error: type
    match: str  # a regex the message must match
    what: str = ""  # one line for the docs; defaults to the id

    @property
    def description(self):
        """The input in words, for the docs page."""
        return self.what or self.id.replace("-", " ")


#: Every bad input, in the order of :data:`MODULES`.
CASES = [Case(*row) for module in MODULES for row in module.ROWS]

#: Inputs accepted on purpose: ``(id, input, documented behaviour, check(tmp_path))``.
ACCEPTED = [row for module in MODULES for row in module.ACCEPTED]


def skip_reason(case):
    """Why ``case`` cannot be checked on this machine, or None."""
    if case.id == "embedder-cuda-without-gpu":
        import torch

        if torch.cuda.is_available():
            return "needs a machine without a GPU"
    return None


@contextmanager
def _working_dir(path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def trigger(case, tmp_path):
    """Run ``case.call`` in ``tmp_path`` (also the working directory), warnings silenced.

    Whatever the call raises propagates; a call that writes default outputs into the working
    directory (the CLI's ``--out``) writes them into ``tmp_path``.
    """
    with warnings.catch_warnings(), _working_dir(tmp_path):
        warnings.simplefilter("ignore")
        return case.call(tmp_path)
