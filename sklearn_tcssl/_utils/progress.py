"""Progress lines: timestamped steps, and transient lines on a terminal (only there)."""

import sys
import time

QUIET, NORMAL, VERBOSE = 0, 1, 2


def is_terminal(stream):
    """Tell whether ``stream`` is a terminal."""
    return bool(getattr(stream, "isatty", lambda: False)())


class Reporter:
    """Timestamped progress messages at a chosen level of detail.

    Parameters
    ----------
    level : {0, 1, 2}, default=1
        0 (``--quiet``): nothing; 1: one line per step (e.g. per fold) and a few epoch
        lines; 2 (``--verbose``): also one line per training epoch.
    stream : file-like or None, default=None
        Where to write; ``None`` is ``sys.stdout`` at the time of writing.
    """

    def __init__(self, level=NORMAL, stream=None):
        self.level = level
        self.stream = stream

    @property
    def out(self):
        """The stream written to."""
        return self.stream if self.stream is not None else sys.stdout

    def __call__(self, message):
        """Write ``message`` with a time stamp (level 1 and above)."""
        if self.level >= NORMAL:
            self.line(f"[{time.strftime('%H:%M:%S')}] {message}")

    def line(self, text, *, transient=False):
        """Write a line; ``transient`` lines overwrite each other on a terminal only."""
        out = self.out
        if transient and is_terminal(out):
            out.write(f"\r\x1b[K{text}")
        else:
            out.write(f"{text}\n")
        out.flush()

    def end_transient(self):
        """Finish a run of transient lines (a newline on a terminal)."""
        if is_terminal(self.out):
            self.out.write("\r\x1b[K")
            self.out.flush()
