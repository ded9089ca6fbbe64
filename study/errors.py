"""The one exception type a user sees: a one-line message and exit status 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad spec, missing file, unwritable store): printed as one line."""
