"""How an error is told to a person: one line, never a traceback."""

from __future__ import annotations


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message, without the quotes KeyError adds; the exception's type name when
    it has no message. ``limit``: cut to this many characters (for stored reasons, e.g. a job's error)."""
    text = str(error).strip().strip("'\"").strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:limit] if limit is not None else line
