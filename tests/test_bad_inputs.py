"""Bad inputs across the public API: each row raises a clear error naming value and fix.

The rows are data in the ``bad_inputs_*`` modules, collected by ``bad_inputs_table.py``
(which says where to add a case); the docs build shows the same rows with their messages.
"""

import re

import pytest
from bad_inputs_table import ACCEPTED, CASES, skip_reason, trigger


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path):
    if skip_reason(case):
        pytest.skip(skip_reason(case))
    with pytest.raises(case.error, match=case.match or None):
        trigger(case, tmp_path)


def test_table_is_large_ids_unique_and_regexes_valid():
    ids = [c.id for c in CASES] + [row[0] for row in ACCEPTED]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30
    for case in CASES:
        re.compile(case.match)


@pytest.mark.parametrize("check", [row[3] for row in ACCEPTED], ids=[row[0] for row in ACCEPTED])
def test_accepted_input(check, tmp_path):
    check(tmp_path)
