"""Progress of the long commands: items done (chunks, shards, slabs) and their throughput.

Every long command reports through ``Progress.update(items, voxels)`` as each piece of work
completes, so the display moves during the run (not only at its end) and shows megavoxels per
second. Where it goes depends on stderr:

* a terminal: a tqdm bar when tqdm is installed, else one line redrawn in place;
* anything else (a log file of a batch job): one plain line every ``LOG_INTERVAL_S`` seconds, and
  none at all for a command that finishes sooner, so short runs stay quiet.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

LOG_INTERVAL_S = 10.0
REDRAW_INTERVAL_S = 0.1


class Progress:
    """Counts completed items and voxels; renders them on stderr (see the module docstring).

    ``update`` is called from the thread that collects finished tasks (``ThreadPool.run`` calls
    ``on_done`` there), so it needs no lock.
    """

    def __init__(self, total: int, unit: str, *, enabled: bool = True, desc: str | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 interactive: bool | None = None, use_tqdm: bool = True):
        self.total, self.unit, self.desc = total, unit, desc
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.items = 0
        self.voxels = 0
        self.start = clock()
        self._last_render = self.start
        self._bar: Any = None
        self._mode = "off"
        if enabled:
            if interactive is None:
                interactive = _isatty(self.stream)
            if interactive and use_tqdm:
                self._bar = _tqdm_bar(total, unit, desc, self.stream)
            self._mode = "tqdm" if self._bar is not None else "line" if interactive else "log"

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def mvx_per_s(self) -> float:
        return self.voxels / 1e6 / max(self.clock() - self.start, 1e-9)

    def text(self) -> str:
        """One line: done/total items, percentage, throughput and the time left."""
        elapsed = self.clock() - self.start
        plural = "s" if self.total != 1 else ""
        parts = [f"{self.items}/{self.total} {self.unit}{plural}"]
        if self.total:
            parts[0] += f" ({100 * self.items // self.total}%)"
        if self.voxels:
            parts.append(f"{self.mvx_per_s:.1f} MVx/s")
        if 0 < self.items < self.total:
            parts.append(f"about {_duration(elapsed * (self.total - self.items) / self.items)} left")
        return (f"{self.desc}: " if self.desc else "") + ", ".join(parts)

    def update(self, items: int = 1, voxels: int = 0) -> None:
        """Record ``items`` more completed items holding ``voxels`` voxels, and show it."""
        self.items += items
        self.voxels += voxels
        if self._mode == "tqdm":
            self._bar.set_postfix_str(f"{self.mvx_per_s:.1f} MVx/s", refresh=False)
            self._bar.update(items)
            return
        now = self.clock()
        if self._mode == "line" and (now - self._last_render >= REDRAW_INTERVAL_S or self.items >= self.total):
            self._write("\r" + self.text() + "\x1b[K")
            self._last_render = now
        elif self._mode == "log" and now - self._last_render >= LOG_INTERVAL_S:
            self._write(self.text() + "\n")
            self._last_render = now

    def close(self) -> None:
        if self._mode == "tqdm":
            self._bar.close()
        elif self._mode == "line":
            self._write("\r" + self.text() + "\x1b[K\n")
        self._mode = "off"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _tqdm_bar(total: int, unit: str, desc: str | None, stream: TextIO) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, desc=desc, file=stream, dynamic_ncols=True)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
