"""The exception types a user meets: a one-line error (exit status 2) and a stop asked for by SIGTERM."""

from __future__ import annotations

import signal
from typing import Any


class UserError(Exception):
    """A problem the user can fix (bad spec, missing file, unwritable store): printed as one line."""


class TestModesError(UserError):
    """seedvar.log_test_modes cannot test or log the model as given (no active run, unlabelled batches,
    a model without dropout or BatchNorm, ...): nothing was logged."""

    __test__ = False  # pytest: not a test class


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop, `kill`): the same stop as Ctrl-C (the run and the sweep marked KILLED,
    a rerun resumes), with its own exit status, 143."""


def raise_terminated(signum: int, frame: Any) -> None:
    """The SIGTERM handler a sweep runs under: one stop request is enough, so later ones are ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated
