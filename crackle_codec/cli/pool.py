"""The thread pool that runs a command's per-chunk tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class ThreadPool:
    """A thread pool that runs a batch of tasks, stopping at (and re-raising) the first failure."""

    def __init__(self, workers: int):
        from concurrent.futures import ThreadPoolExecutor

        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def __enter__(self) -> "ThreadPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, tasks: Sequence[Callable[[], Any]], on_done: Callable[[Any], Any] | None = None) -> None:
        """Run ``tasks``; ``on_done(result)`` is called in this thread as each task completes.

        Completion order, not submission order: a progress display moves with the work.
        """
        if self.pool is None:
            for task in tasks:
                result = task()
                if on_done:
                    on_done(result)
            return
        from concurrent.futures import FIRST_COMPLETED, wait

        pending = {self.pool.submit(task) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()  # re-raises the task's exception
                    if on_done:
                        on_done(result)
        finally:
            for future in pending:
                future.cancel()
