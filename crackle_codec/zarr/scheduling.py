"""Where the per-chunk-batch work of the array-level tools runs: a thread pool, or Dask.

``map_batches(fn, src, batches, args, max_workers=..., scheduler=...)`` calls
``fn(src, batch, *args)`` for every batch of chunk coordinates and yields ``(len(batch), result)``
as results arrive (in no guaranteed order: every caller reduces with order-free operations).

* ``scheduler=None`` (the default): a thread pool of ``max_workers`` threads in this process (the
  C++ core releases the GIL, so chunks are measured in parallel).
* ``scheduler=`` a ``distributed.Client``: one task per batch submitted to its cluster, results
  gathered as they complete. The source (the zarr array) is sent to the cluster once.
* ``scheduler=`` any other value Dask's ``scheduler=`` accepts (``"threads"``, ``"processes"``,
  ``"sync"``, a ``get`` function): ``dask.delayed`` tasks, one per batch, computed in rounds of
  ``_ROUND`` batches (so results waiting to be reduced stay bounded).
* ``scheduler="dask"``: Dask's current default (the active ``distributed.Client`` if there is one).

Dask is imported only when a scheduler is given. ``fn`` must be a module-level function and its
arguments picklable (zarr arrays on a store the workers can reach: a directory, fsspec, ...).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from .sources import DEFAULT_MAX_WORKERS, Coords

Scheduler = Any  # None, a dask scheduler name, a distributed.Client, or a get function

_ROUND = 64  # batches per dask.compute call (non-distributed schedulers)


def map_batches(fn: Callable[..., Any], src: Any, batches: Sequence[list[Coords]], args: tuple = (), *,
                max_workers: Optional[int] = None, scheduler: Scheduler = None) -> Iterator[tuple[int, Any]]:
    """``(len(batch), fn(src, batch, *args))`` for each batch, as the workers complete them."""
    if scheduler is None:
        workers = _check_workers(max_workers)
        return _threads(fn, src, batches, args, workers)
    return _dask(fn, src, batches, args, scheduler)


def _check_workers(max_workers: Optional[int]) -> int:
    workers = DEFAULT_MAX_WORKERS if max_workers is None else int(max_workers)
    if workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    return workers


def _threads(fn: Callable[..., Any], src: Any, batches: Sequence[list[Coords]], args: tuple,
             workers: int) -> Iterator[tuple[int, Any]]:
    if len(batches) <= 1 or workers == 1:
        for batch in batches:
            yield len(batch), fn(src, batch, *args)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(batches))) as pool:
        yield from zip(map(len, batches), pool.map(lambda b: fn(src, b, *args), batches))


def _import_dask() -> Any:
    try:
        import dask
    except ImportError:
        raise ImportError(
            "scheduler= runs the work on Dask, which is not installed: pip install dask "
            "(and distributed for a cluster), or leave scheduler=None for the thread pool"
        ) from None
    return dask


def _client(scheduler: Scheduler) -> Optional[Any]:
    """The distributed.Client to submit to, if the scheduler is (or means) one."""
    if scheduler == "dask":
        try:
            from distributed import default_client
        except ImportError:
            return None
        try:
            return default_client()
        except ValueError:  # no client: dask's default scheduler (threads)
            return None
    if callable(getattr(scheduler, "submit", None)) and callable(getattr(scheduler, "compute", None)):
        return scheduler
    return None


def _dask(fn: Callable[..., Any], src: Any, batches: Sequence[list[Coords]], args: tuple,
          scheduler: Scheduler) -> Iterator[tuple[int, Any]]:
    dask = _import_dask()
    if isinstance(scheduler, bool) or not (scheduler is None or isinstance(scheduler, str)
                                           or callable(getattr(scheduler, "get", None)) or callable(scheduler)):
        raise TypeError(f"scheduler must be None, a dask scheduler name, a distributed.Client or a get "
                        f"function, not {type(scheduler).__name__}")
    client = _client(scheduler)
    # the source is one graph key: shipped to each worker once, not with every task
    handle = dask.delayed(src, name=f"crackle-source-{uuid.uuid4().hex}")
    task = dask.delayed(fn, pure=False)
    if client is not None:
        from distributed import as_completed

        futures = client.compute([task(handle, batch, *args) for batch in batches])
        sizes = {f.key: len(b) for f, b in zip(futures, batches)}
        done = as_completed(futures, with_results=True)
        del futures  # a result leaves the cluster once it is yielded
        for future, result in done:
            yield sizes.pop(future.key), result
        return
    name = None if scheduler == "dask" else scheduler
    for i in range(0, len(batches), _ROUND):
        round_ = batches[i:i + _ROUND]
        results = dask.compute(*(task(handle, batch, *args) for batch in round_), scheduler=name)
        yield from zip(map(len, round_), results)
