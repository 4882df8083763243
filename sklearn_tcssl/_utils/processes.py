"""Processes and signals: SIGTERM as a clean exit (status 143), and whether a process runs.

SIGTERM (``kill``, job schedulers, containers) ends a process at once by default, leaving
half-written files behind; as :class:`Terminated` (a ``SystemExit``), ``finally`` clauses run.
"""

import contextlib
import os
import signal
import sys
import threading

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(SystemExit):
    """SIGTERM turned into a clean exit with status 143; ``str()`` is the ``message``."""

    def __init__(self, message):
        super().__init__(EXIT_TERMINATED)
        self.message = message
        self.reported = False

    def __str__(self):
        return self.message

    def report(self):
        """Print the message on stderr once; return the exception (for ``raise``)."""
        if not self.reported:
            print(self.message, file=sys.stderr, flush=True)
            self.reported = True
        return self


def replaceable(handler):
    """Whether a SIGTERM ``handler`` is the default action or one installed by this package."""
    return handler == signal.SIG_DFL or getattr(handler, "_tcssl_sigterm", False)


@contextlib.contextmanager
def stop_on_sigterm(what):
    """While the block runs, SIGTERM raises :class:`Terminated` instead of killing the process.

    The message, naming ``what`` runs (``"tcssl pretrain"``), is printed on stderr; a SIGTERM
    handler of the user's is left in place.
    """

    def on_term(signum, frame):
        raise Terminated(f"{what}: stopped by SIGTERM.")

    on_term._tcssl_sigterm = True
    installed = threading.current_thread() is threading.main_thread() and replaceable(
        signal.getsignal(signal.SIGTERM)
    )
    previous = signal.signal(signal.SIGTERM, on_term) if installed else None
    try:
        yield
    except Terminated as exc:
        exc.report()
        raise
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


def is_other_live_process(pid):
    """Whether the process ``pid`` is running and is not this one."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True
