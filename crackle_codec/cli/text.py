"""Formatting for the terminal: sizes, durations, shapes and fixed-width tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


class Table:
    """A fixed-width text table printed row by row (so slow rows show progress)."""

    def __init__(self, columns: Sequence[tuple[str, int]], out=None, indent: int = 0):
        self.columns = list(columns)
        self.out = out or sys.stdout
        self.indent = " " * indent

    def _line(self, cells: Sequence[str]) -> str:
        first, *rest = self.columns
        parts = [f"{cells[0]:<{first[1]}}"] + [f"{c:>{w}}" for c, (_, w) in zip(cells[1:], rest)]
        return (self.indent + "  ".join(parts)).rstrip()

    def header(self) -> None:
        print(self._line([name for name, _ in self.columns]), file=self.out)
        print(self._line(["-" * w for _, w in self.columns]), file=self.out)

    def row(self, *cells: str) -> None:
        print(self._line(cells), file=self.out, flush=True)



def _ratio_text(raw: int, stored: int, what: str = "") -> str:
    """'12.3x smaller' or '7.8x larger' (never '0.1x smaller'), optionally followed by ``what``."""
    tail = f" {what}" if what else ""
    if stored <= 0:
        return "nothing stored"
    if stored <= raw:
        return f"{raw / stored:.1f}x smaller{tail}"
    return f"{stored / max(raw, 1):.1f}x larger{tail}"


def _shape_text(shape: Sequence[int]) -> str:
    return " x ".join(str(int(s)) for s in shape)

