"""Errors and exit codes of the command line, and the one-line form an error is reported in."""

from __future__ import annotations


PROG = "crackle-zarr"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """A failure to report to the user as one line (exit code 1)."""


class UsageError(CLIError):
    """An option value that is wrong for this input (found only once the input is open): exit code 2,
    reported like argparse's own usage errors (the command's usage line, then the message)."""


def _one_line(exc: BaseException) -> str:
    """A single-line description of ``exc`` for the user."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename is not None:
            text = f"{exc.filename}: {text}"
    elif isinstance(exc, (CLIError,)):
        text = str(exc)
    else:
        msg = str(exc)
        if isinstance(exc, KeyError) and exc.args:
            msg = repr(exc.args[0])
        text = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return " ".join(text.split())



def _codec():
    """Import crackle_codec, turning a missing compiled extension into one clear message."""
    try:
        import crackle_codec
    except ImportError as exc:
        raise CLIError(
            f"cannot import crackle_codec ({' '.join(str(exc).split())}); "
            "is the package installed with its compiled extension? (pip install .)"
        ) from exc
    return crackle_codec

