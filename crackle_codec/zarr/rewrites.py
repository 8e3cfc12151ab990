"""Label rewrites of every chunk of a Crackle Zarr array, from the labels sections alone:
``remap_array``, ``mask_array``, ``mask_except_array`` and ``renumber_array``.

Voxels are never decoded: each chunk's Crackle stream gets new label values (the labels-section
rewrite of ``crackle_codec.operations``; crack codes are copied byte for byte), with the array's
bytes-to-bytes codecs undone and redone around it; chunks of sharded arrays are rewritten inside
their shards. Chunks are processed concurrently on a thread pool (``max_workers``).

Where the result goes (``dest``):

* ``None``: the array itself, in place. Its dtype stays (zarr cannot change the dtype of an
  existing array), so the new labels must fit it; only chunks whose labels change are rewritten.
* an existing zarr array with the source's shape and chunk layout (chunk shape, Crackle axes,
  array-to-array codecs; its bytes-to-bytes codecs and sharding may differ): every chunk is
  written in its dtype, which must hold the new labels. Chunks of it that the source never
  wrote are removed, or written as constant chunks when the source's fill value maps to another
  value than ``dest``'s fill value.
* a store or path (anything ``zarr.create_array`` takes, e.g. a directory name): a new array
  like the source (zarr format, shape, chunks, shards, codecs, dimension names, attributes) is
  created there in the dtype the result needs (for ``renumber_array`` the smallest that fits)
  with the fill value mapped, then written as above. zarr refuses an existing array there.

Exact: reading the result gives the rewrite applied to every voxel of the source, the fill value
of chunks never written included (in place, those chunks are written as constant chunks when
the fill value maps to another value, as ``remap_array`` does). Labels that lie only in the
padding of edge chunks (stale after a shrinking resize) are not labels of the array: they are
rewritten along (to a value of no consequence) but never reported nor checked.

Every argument, the dtype fit of the new labels and ``dest`` are checked before anything is
written (TypeError, ValueError, KeyError); a corrupt chunk raises ``DecodeError`` when reached
(chunks processed before it may already be rewritten).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Optional

import numpy as np

from ..operations import _rewrite, _smallest_dtype, _sorted_unique, _Stream
from .analytics import _imap
from .queries import _exact_labels, _python_value
from .sources import Coords, _region_chunks, _Source
from .sources import source as _source

__all__ = ["remap_array", "mask_array", "mask_except_array", "renumber_array"]

Progress = Optional[Callable[[int], None]]
Relabel = Callable[[np.ndarray], np.ndarray]  # stored label values -> their new values


# =========================================================================== public API

def remap_array(array: Any, mapping: Mapping[int, int], *, preserve_missing_labels: bool = True,
                dest: Any = None, max_workers: Optional[int] = None, progress: Progress = None) -> int:
    """Apply a label mapping to every chunk by rewriting its labels section only.

    Each chunk's Crackle stream goes through the equivalent of ``crackle_codec.remap``. In place,
    chunks in which no label changes are left untouched, so a merge of two ids costs a read of
    every chunk's labels and a rewrite of the chunks holding them. If the mapping changes the fill
    value, chunks that were never written are written as constant chunks of the new value.

    Args:
        array: a zarr array whose chunks are Crackle streams (see ``chunk_labels``); writable
            unless ``dest`` is given.
        mapping: ``{old: new}``; several old labels may map to one new label (a merge). Keys the
            array's dtype cannot hold are ignored; new labels must fit the array's dtype in place
            (a new array at a ``dest`` path gets the source's dtype widened to hold them).
        preserve_missing_labels: labels missing from ``mapping`` keep their value (default True).
            With False, a label missing from ``mapping`` raises KeyError, checked over the whole
            array before anything is written.
        dest: where the result goes (default: in place); see the module docstring.
        max_workers: threads reading and writing chunks concurrently (default 16).
        progress: called (in the calling thread) with the number of chunks just processed, as
            batches of chunks complete (in total the chunks of the array's grid).

    Returns:
        The number of chunks written.
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a dict-like Mapping, not {type(mapping).__name__}")
    if not isinstance(preserve_missing_labels, (bool, np.bool_)):
        raise TypeError(f"preserve_missing_labels must be a bool, got {preserve_missing_labels!r}")
    src = _source(array)
    clean = _check_mapping(mapping, src.dtype)
    out, store = _target(src, dest)
    if not preserve_missing_labels:
        missing = [v for v in _array_labels(src, max_workers).tolist() if int(v) not in clean]
        if missing:
            raise KeyError(missing[0])
    changes = {k: v for k, v in clean.items() if k != v}
    new_values = list(changes.values())
    out_dtype = _out_dtype(src, out, lambda: _widened(src.dtype, new_values), new_values, "mapping values")
    relabel = _mapper(src, changes)
    _check_unchanged_fit(src, out_dtype, relabel, max_workers)
    if out is src and not changes:
        return 0
    return _write(src, relabel, out, store, out_dtype, condense=False, max_workers=max_workers,
                  progress=progress)


def mask_array(array: Any, labels: Iterable[int], value: int = 0, *, dest: Any = None,
               max_workers: Optional[int] = None, progress: Progress = None) -> int:
    """Set every voxel whose label is in ``labels`` to ``value``, chunk by chunk from the labels
    sections alone (``crackle_codec.mask`` on every chunk).

    Labels the array lacks (or its dtype cannot hold) are ignored. In place, ``value`` must fit
    the array's dtype and only the chunks holding a masked label are rewritten; a new array at a
    ``dest`` path gets the source's dtype widened to hold ``value`` if needed (as
    ``crackle_codec.mask`` widens a stream). Masking the fill value writes the chunks never
    written as constant chunks of ``value`` (in place) or makes ``value`` the new array's fill
    value. ``dest``, ``max_workers``, ``progress`` and the return value (chunks written): as
    ``remap_array``.
    """
    return _mask(array, labels, value, keep=False, dest=dest, max_workers=max_workers, progress=progress)


def mask_except_array(array: Any, labels: Iterable[int], value: int = 0, *, dest: Any = None,
                      max_workers: Optional[int] = None, progress: Progress = None) -> int:
    """Set every voxel whose label is *not* in ``labels`` to ``value`` (``crackle_codec.mask_except``
    on every chunk); otherwise as ``mask_array``."""
    return _mask(array, labels, value, keep=True, dest=dest, max_workers=max_workers, progress=progress)


def renumber_array(array: Any, start: int = 0, *, dest: Any = None, max_workers: Optional[int] = None,
                   progress: Progress = None) -> dict[int, int]:
    """Relabel the whole array ``start, start + 1, ...`` in ascending label order, from the labels
    sections alone, and return the mapping ``{old label: new label}``.

    As ``crackle_codec.renumber`` does for one stream (same ``start`` default and order), but with
    one mapping for the whole array: the labels of every chunk are read first (exactly: padding of
    edge chunks excluded, the fill value included when a chunk was never written), then every chunk
    is rewritten. So with the default ``start=0`` an unsigned array holding 0 keeps 0 as 0 (it is
    the smallest label) and its other labels become 1, 2, ...; an array without 0 gets its
    smallest label renumbered to 0. Signed arrays renumber their negative labels first.

    The smallest dtype that holds the new labels (of the array's kind, unsigned or signed) needs a
    new array: pass ``dest`` a store or path and the array created there gets that dtype. In
    place, the array keeps its dtype (zarr cannot change it; ValueError if the new labels do not
    fit it); into an existing ``dest`` array, its dtype (which must hold them).

    Args:
        array: a zarr array whose chunks are Crackle streams (see ``chunk_labels``).
        start: the first new label (an integer; negative only for signed arrays).
        dest, max_workers: as ``remap_array``.
        progress: as ``remap_array``, but every chunk is counted twice: once when its labels are
            read, once when it is rewritten (in total twice the chunks of the grid).

    Returns:
        ``{old: new}`` for every label of the array, as Python ints (bools for bool arrays' keys).
    """
    if isinstance(start, (bool, np.bool_)) or not isinstance(start, (numbers.Integral, np.integer)):
        raise TypeError(f"start must be an integer, not {type(start).__name__} {start!r}")
    start = int(start)
    src = _source(array)
    out, store = _target(src, dest)
    if src.dtype.kind != "i" and start < 0:
        raise ValueError(f"start={start}: the array's labels are unsigned ({src.dtype}), new labels cannot be negative")
    distinct = _array_labels(src, max_workers, progress)
    top = start + max(distinct.size - 1, 0)

    def natural() -> np.dtype:
        if src.dtype == np.bool_ and top <= 1:
            return src.dtype
        return _smallest_dtype("i" if src.dtype.kind == "i" else "u", start, top)

    out_dtype = _out_dtype(src, out, natural, [start, top] if distinct.size else [],
                           f"the new labels ({start}..{top}, {distinct.size} labels)")
    fill = _python_value(src.fill, src.dtype)
    other = fill if _holds(out_dtype, fill, fill) else 0  # for labels that lie only in padding
    relabel = _renumberer(distinct.astype(src.stream_dtype), start, other)
    mapping = {old: start + i for i, old in enumerate(distinct.tolist())}
    if out is not src or any(old != new for old, new in mapping.items()):
        _write(src, relabel, out, store, out_dtype, condense=False, max_workers=max_workers, progress=progress)
    elif progress is not None:
        progress(len(_region_chunks(src, None)))  # nothing to rewrite: the second pass is done
    return mapping


# ======================================================================= the four rewrites

def _mask(array: Any, labels: Iterable[int], value: int, *, keep: bool, dest: Any,
          max_workers: Optional[int], progress: Progress) -> int:
    src = _source(array)
    chosen = _check_labels(labels, src.dtype)
    value = _check_value(value, src.dtype)
    out, store = _target(src, dest)
    out_dtype = _out_dtype(src, out, lambda: _widened(src.dtype, [value]), [value], "value")
    inside = np.array([v for v in chosen if _holds(src.dtype, v, v)], dtype=src.stream_dtype)
    wide = _wide_dtype(src, [value])

    def relabel(values: np.ndarray) -> np.ndarray:
        hit = np.isin(values, inside, invert=keep)
        return np.where(hit, wide.type(value), values.astype(wide))

    _check_unchanged_fit(src, out_dtype, relabel, max_workers)
    return _write(src, relabel, out, store, out_dtype, condense=True, max_workers=max_workers,
                  progress=progress)


def _mapper(src: _Source, changes: dict[int, int]) -> Relabel:
    keys = np.array(sorted(changes), dtype=src.stream_dtype)
    wide = _wide_dtype(src, list(changes.values()))
    new = np.array([changes[k] for k in keys.tolist()], dtype=wide)

    def relabel(values: np.ndarray) -> np.ndarray:
        base = values.astype(wide)
        if keys.size == 0:
            return base
        at = np.minimum(np.searchsorted(keys, values), keys.size - 1)
        return np.where(keys[at] == values, new[at], base)

    return relabel


def _renumberer(distinct: np.ndarray, start: int, other: int) -> Relabel:
    wide = np.dtype(np.int64 if min(start, other) < 0 else np.uint64)

    def relabel(values: np.ndarray) -> np.ndarray:
        if distinct.size == 0:
            return np.full(values.shape, other, dtype=wide)
        at = np.minimum(np.searchsorted(distinct, values), distinct.size - 1)
        return np.where(distinct[at] == values, at.astype(wide) + wide.type(start), wide.type(other))

    return relabel


# ================================================================================ writing

def _write(src: _Source, relabel: Relabel, out: Optional[_Source], store: Any, out_dtype: np.dtype, *,
           condense: bool, max_workers: Optional[int], progress: Progress) -> int:
    """Rewrite every chunk of ``src`` with ``relabel`` into ``out`` (``src`` itself: in place), or
    into a new array like ``src`` created at ``store``. Returns the number of chunks written."""
    fill = _python_value(src.fill, src.dtype)
    new_fill = int(relabel(np.array([fill], dtype=src.stream_dtype))[0])
    stream_dtype = np.dtype(np.uint8) if out_dtype == np.bool_ else out_dtype
    coords = _region_chunks(src, None)

    def convert(stream: bytes, force: bool) -> Optional[bytes]:
        s = _Stream(stream)
        values = s.values()
        new = relabel(values)
        if not force and s.dtype == stream_dtype and np.array_equal(new, values):
            return None
        return _rewrite(s, new.astype(stream_dtype), condense=condense)

    if out is src:
        changed_fill = new_fill if new_fill != fill else None
        work = lambda batch: src.rewrite(batch, lambda s: convert(s, False), changed_fill)  # noqa: E731
        batches = src.batches(coords)
    else:
        if out is None:
            out = _source(src.create_like(store, out_dtype, new_fill))
        missing = new_fill if new_fill != _python_value(out.fill, out.dtype) else None
        target = out

        def work(batch: list[Coords]) -> int:
            streams: dict[Coords, Optional[bytes]] = {}
            for part in src.batches(batch):
                streams.update(src.read(part))
            new = {c: convert(s, True) for c, s in streams.items() if s is not None}
            return target.write(batch, new, missing)

        batches = out.batches(coords)
    written = 0
    for n, count in _imap(work, batches, max_workers):
        written += count
        if progress is not None:
            progress(n)
    return written


def _target(src: _Source, dest: Any) -> tuple[Optional[_Source], Any]:
    """``(array to write, None)``, or ``(None, store)`` for a new array to create at ``store``."""
    if dest is None:
        return src, None
    if isinstance(dest, _Source) or _is_zarr_array(dest):
        out = _source(dest)
        if out.read_only:
            raise ValueError("dest is read-only: open it writable (mode='r+' or 'a')")
        if tuple(out.shape) != tuple(src.shape):
            raise ValueError(f"dest has shape {tuple(out.shape)}, the array {tuple(src.shape)}")
        if out.layout != src.layout:
            raise ValueError(
                "dest does not store its chunks the way the array does (chunk shape, Crackle axes and "
                f"array-to-array codecs must be the array's): {out.layout} vs {src.layout}; pass a store "
                "or path to create a matching array")
        return out, None
    if isinstance(dest, np.ndarray) or hasattr(dest, "__array__"):
        raise TypeError(f"dest must be a zarr array, or a store or path for a new array; got {type(dest).__name__}")
    return None, dest


def _is_zarr_array(obj: Any) -> bool:
    return (hasattr(obj, "_async_array") or (hasattr(obj, "metadata") and hasattr(obj, "store_path"))
            or (hasattr(obj, "_chunk_key") and hasattr(obj, "chunk_store")))


def _array_labels(src: _Source, max_workers: Optional[int], progress: Progress = None) -> np.ndarray:
    """Every label of the array, sorted (exact, as ``chunk_labels``), in its dtype."""
    coords = _region_chunks(src, None)

    def work(batch: list[Coords]) -> np.ndarray:
        streams = src.read(batch)
        return _sorted_unique(np.concatenate([_exact_labels(src, c, streams.get(c)) for c in batch]))

    parts = []
    for n, part in _imap(work, src.batches(coords), max_workers):
        parts.append(part)
        if progress is not None:
            progress(n)
    return _sorted_unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=src.dtype)


# =========================================================================== dtypes and checks

def _holds(dtype: np.dtype, lo: int, hi: int) -> bool:
    if dtype == np.bool_:
        return 0 <= lo and hi <= 1
    info = np.iinfo(dtype)
    return info.min <= lo and hi <= info.max


def _widened(dtype: np.dtype, values: list[int]) -> np.dtype:
    """``dtype`` (bool: uint8 and up), widened within its kind to hold ``values``."""
    if not values or _holds(dtype, min(values), max(values)):
        return dtype
    kind = "i" if dtype.kind == "i" else "u"
    if kind == "u" and min(values) < 0:
        raise ValueError(f"label {min(values)} cannot be stored in an unsigned array ({dtype})")
    return _smallest_dtype(kind, min(values), max(values), dtype.itemsize)


def _wide_dtype(src: _Source, values: list[int]) -> np.dtype:
    """The dtype relabelled values are computed in: int64 when a label can be negative."""
    return np.dtype(np.int64 if src.dtype.kind == "i" or any(v < 0 for v in values) else np.uint64)


def _out_dtype(src: _Source, out: Optional[_Source], natural: Callable[[], np.dtype], new: list[int],
               what: str) -> np.dtype:
    """The dtype written: the array's (in place), ``dest``'s, or ``natural()`` for a new array;
    ValueError if the ``new`` labels do not fit it."""
    dtype = natural() if out is None else out.dtype
    if new and not _holds(dtype, min(new), max(new)):
        whose = "the array's dtype" if out is src else "dest's dtype"
        hint = ("; pass dest= (a store or path) for a new array in a dtype that holds them"
                if out is src else "")
        raise ValueError(f"{what} {sorted(set(new))[:4]}{'...' if len(set(new)) > 4 else ''} do not fit "
                         f"{whose} {dtype}{hint}")
    return dtype


def _check_unchanged_fit(src: _Source, out_dtype: np.dtype, relabel: Relabel, max_workers: Optional[int]) -> None:
    """A ``dest`` narrower than the array must hold the labels the rewrite leaves as they are: then
    (only) the array's labels are read first."""
    if src.dtype == np.bool_:
        lo, hi = 0, 1
    else:
        lo, hi = int(np.iinfo(src.dtype).min), int(np.iinfo(src.dtype).max)
    if _holds(out_dtype, lo, hi):
        return
    labels = _array_labels(src, max_workers)
    if labels.size == 0:
        return
    new = relabel(labels.astype(src.stream_dtype))
    if not _holds(out_dtype, int(new.min()), int(new.max())):
        raise ValueError(f"the rewritten labels span {int(new.min())}..{int(new.max())}, which dest's dtype "
                         f"{out_dtype} cannot hold")


def _is_label(x: Any, dtype: np.dtype) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return dtype == np.bool_
    return isinstance(x, (numbers.Integral, np.integer))


def _check_value(value: Any, dtype: np.dtype) -> int:
    if not _is_label(value, dtype):
        raise TypeError(f"value must be an integer, not {type(value).__name__} {value!r}")
    return int(value)


def _check_labels(labels: Any, dtype: np.dtype) -> list[int]:
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "uib" or (labels.dtype.kind == "b" and dtype != np.bool_):
            raise TypeError(f"labels must be integers, got an array of {labels.dtype}")
        return [int(v) for v in labels.ravel().tolist()]
    if _is_label(labels, dtype):
        return [int(labels)]
    if isinstance(labels, (str, bytes)):
        raise TypeError(f"labels must be an iterable of integers, not {type(labels).__name__}")
    try:
        items = list(labels)
    except TypeError:
        raise TypeError(f"labels must be an iterable of integers, not {type(labels).__name__}") from None
    for v in items:
        if not _is_label(v, dtype):
            raise TypeError(f"labels must be integers, got {type(v).__name__} {v!r}")
    return [int(v) for v in items]


def _check_mapping(mapping: Mapping, dtype: np.dtype) -> dict[int, int]:
    """``{old: new}`` as Python ints, keys the dtype cannot hold dropped; TypeError for a non-integer."""
    clean: dict[int, int] = {}
    for old, new in mapping.items():
        if not _is_label(old, dtype):
            raise TypeError(f"mapping keys must be integers, got {old!r}")
        if not _is_label(new, dtype):
            raise TypeError(f"mapping values must be integers; {old!r} maps to {new!r}")
        if _holds(dtype, int(old), int(old)):
            clean[int(old)] = int(new)
    return clean
