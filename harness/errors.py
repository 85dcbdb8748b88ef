"""Errors the CLI reports as one line (what is wrong and what to do) instead of a traceback."""

import errno


class MCLBenchError(Exception):
    """Base class of user-facing errors."""


def error_line(exc: Exception) -> str:
    """One line for the user: what is wrong (and what to do, where the error says it)."""
    if isinstance(exc, MCLBenchError):
        text = str(exc.args[0]) if exc.args else str(exc)
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        text = f"{exc.strerror or exc}{where}"
        if exc.errno == errno.ENOSPC:
            text += "; free disk space and run again (finished stages are kept)"
    else:
        lines = [line for line in str(exc).split("\n") if line.strip()]  # some start with a newline
        text = (f"{type(exc).__name__}: {lines[0] if lines else ''} "
                "(an internal error: rerun with --debug for the traceback)")
    return " ".join(text.split("\n")[0].split()) if not isinstance(exc, MCLBenchError) else text
