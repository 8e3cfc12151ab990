"""Progress bars of the long commands."""

from __future__ import annotations

import contextlib
import sys
from typing import Any


def _progress(total: int, unit: str, enabled: bool) -> Any:
    """A tqdm bar on stderr when tqdm is installed and stderr is a terminal; else a no-op."""
    if enabled and sys.stderr.isatty():
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            pass
    return contextlib.nullcontext(None)

