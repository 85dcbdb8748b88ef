"""Errors the CLI reports as one line (what is wrong and what to do) instead of a traceback."""


class MCLBenchError(Exception):
    """Base class of user-facing errors."""
