"""How a store call survives a shared store: interrupts held while a database is written, and what a
failed call deserves (a retry with backoff, a race retried, an auth error said in one line, or none).
Store.call applies them."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from seedvar.errors import UserError


class StoreUnavailable(UserError):
    """The store stayed unreachable (or locked) for the whole retry budget."""


@contextlib.contextmanager
def interrupts_held(deliver: bool = True) -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done, then arrive (or, without `deliver`, are dropped).

    An interrupt that lands inside a database transaction (a user's Ctrl-C, or Ray's task cancel, which
    simulates one) leaves its connection open and sqlite's write lock held until the process exits,
    so every later write, the record of the stop included, waits out the whole retry window.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only ever interrupt the main thread
        return
    caught: list[int] = []
    # a handler that C code installed (getsignal: None) cannot be put back from Python: leave it be
    signals = [sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not None]
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if deliver and caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)  # Python's own SIGINT handler raises KeyboardInterrupt here
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])


# A concurrent insert of the same row, in PostgreSQL's, MySQL's or sqlite's words as a server relays them.
_DUPLICATE = ("integrityerror", "duplicate key", "unique constraint", "duplicate entry")
_TRANSIENT = (
    "connection refused",
    "connection reset",
    "connection aborted",
    "remotedisconnected",
    "max retries exceeded",
    "timed out",
    "timeout",
    "temporarily unavailable",
    "server closed the connection",
    "could not connect to server",
    "connection failed",
    "too many 5",  # urllib3: too many 500/502/503 error responses
    "error code 500",
    "error code 502",
    "error code 503",
    "error code 504",
    "internal_error",
    "temporarily_unavailable",
)


def failure_kind(exc: Exception) -> str:
    """locked | race | transient | auth | other: what a failed store call deserves."""
    text = f"{type(exc).__name__} {exc}".lower()
    code = str(getattr(exc, "error_code", "")).lower()
    if "database is locked" in text or "database table is locked" in text:
        return "locked"
    if any(w in text for w in _DUPLICATE):
        return "race"
    if code in ("unauthenticated", "permission_denied") or "401" in text and "unauthorized" in text:
        return "auth"
    if "403" in text and "forbidden" in text:
        return "auth"
    if code in ("internal_error", "temporarily_unavailable", "request_limit_exceeded"):
        return "transient"
    if any(w in text for w in _TRANSIENT):
        return "transient"
    return "other"


def brief(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__
