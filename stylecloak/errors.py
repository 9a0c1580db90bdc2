"""How an error is told to a person: one line, never a traceback."""

from __future__ import annotations


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message, without the quotes KeyError adds; the exception's type name when
    it has no message. ``limit``: cut to this many characters (for stored reasons, e.g. a job's error)."""
    text = str(error).strip().strip("'\"").strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:limit] if limit is not None else line


def failure_summary(failures: int, total: int, things: str, done: str) -> str:
    """The closing line of a batch with failures, e.g. "2 of 5 images failed; the others were written"; it
    speaks of "the others" only when there are others."""
    if total == 1:
        return f"the {things.rstrip('s')} failed; nothing was {done}"
    if failures == total:
        return f"all {total} {things} failed; nothing was {done}"
    return f"{failures} of {total} {things} failed; the others were {done}"
