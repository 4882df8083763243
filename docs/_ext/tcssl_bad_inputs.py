"""Sphinx extension: the tables of the "Bad inputs and their errors" page.

When the builder starts, it runs every row of the bad-input table (``tests/bad_inputs_table.py``,
the rows the tests check) in a temporary folder and writes two tables that ``bad_inputs.rst``
includes: ``generated/bad_inputs/errors.rst.inc`` (each input, the exception and the message it
really raises on this code) and ``generated/bad_inputs/accepted.rst.inc`` (inputs accepted on
purpose). A row that no longer raises its documented error is a build warning, so an error
under the docs build (``-W``). Offline; about 15 s on two CPU cores.
"""

import contextlib
import io
import re
import sys
import tempfile
import time
from pathlib import Path

OUT_DIR = Path("generated") / "bad_inputs"
TESTS_DIR = Path(__file__).resolve().parents[2] / "tests"
MAX_MESSAGE = 400  # characters shown of a message (a usage text is longer)


def _load_table():
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    import bad_inputs_table

    return bad_inputs_table


def raised_message(table, case):
    """Run ``case`` in a fresh folder; return ``(message, problem)``.

    ``message`` is the text of the exception raised, with the temporary folder written
    ``<tmp>``; ``problem`` says how the outcome differs from the row (None when it matches).
    """
    reason = table.skip_reason(case)
    if reason:
        return f"(not run by this build: {reason})", None
    quiet = io.StringIO()  # what the rows print (a SIGTERM notice) stays out of the build log
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                table.trigger(case, Path(tmp))
        except BaseException as exc:  # the Ctrl-C and SIGTERM rows expect these
            if not isinstance(exc, (Exception, case.error)):
                raise
            message = str(exc).replace(str(Path(tmp).resolve()), "<tmp>").replace(tmp, "<tmp>")
            if not isinstance(exc, case.error):
                return message, f"raised {type(exc).__name__}, not {case.error.__name__}"
            if not re.search(case.match, str(exc)):
                return message, f"message does not match {case.match!r}"
            return message, None
    return "", f"raised nothing (expected {case.error.__name__})"


def rst_text(text):
    """``text`` on one line, shortened, with reStructuredText markup characters escaped."""
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 6].rstrip() + " [...]"
    return re.sub(r"([\\`*_|])", r"\\\1", text)


def _list_table(header, widths, rows):
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def errors_table(table):
    """The table of bad inputs, and a list of rows whose outcome differs from the table."""
    rows, problems = [], []
    for case in table.CASES:
        message, problem = raised_message(table, case)
        if problem:
            problems.append(f"{case.id}: {problem}")
        error = f"``{case.error.__name__}``"
        rows.append(
            (
                f"``{case.id}``",
                rst_text(case.description),
                f"{error}: {rst_text(message)}" if message else error,
            )
        )
    return _list_table(("Case", "Input", "Error raised"), "20 25 55", rows), problems


def accepted_table(table):
    """The table of inputs accepted on purpose."""
    rows = [(f"``{i}``", rst_text(what), rst_text(does)) for i, what, does, _ in table.ACCEPTED]
    return _list_table(("Case", "Input", "Behaviour"), "25 40 35", rows)


def _write_if_changed(path, text):
    """Write ``text`` unless ``path`` holds it already (an unchanged page is not re-read)."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _on_builder_inited(app):
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    start = time.perf_counter()
    table = _load_table()
    folder = Path(app.srcdir) / OUT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    errors, problems = errors_table(table)
    _write_if_changed(folder / "errors.rst.inc", errors)
    _write_if_changed(folder / "accepted.rst.inc", accepted_table(table))
    logger.info("bad inputs: %d rows run in %.1f s", len(table.CASES), time.perf_counter() - start)
    for problem in problems:
        logger.warning("bad-input row %s (see tests/bad_inputs_table.py)", problem)


def setup(app):
    """Generate the bad-input tables when the builder starts."""
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
