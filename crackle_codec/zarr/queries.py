"""Chunk-level label queries on Crackle-compressed Zarr arrays, without decoding voxels.

Works on

* Zarr format 2 arrays whose compressor (or last filter) is ``crackle_codec.Crackle``, with zarr 3.x
  or zarr 2.18;
* Zarr format 3 arrays whose serializer is ``crackle_codec.zarr3.CrackleCodec``, sharded or not.

Bytes-to-bytes codecs after Crackle (zstd, gzip, crc32c, a v2 compressor after a Crackle filter,
...) are undone with the array's own codecs. Every answer is read from the labels section of each
chunk's Crackle stream; crack codes are decoded only for edge chunks (those that stick out of the
array), whose in-bounds part is decoded (only the needed z slices) to keep the answer exact. A chunk
that was never written holds only the fill value. Chunks are read concurrently on a thread pool
(``max_workers``), so remote stores are fast.

Chunk coordinates are indices in the array's chunk grid (``array.chunks``; for sharded arrays the
inner chunks).
"""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np

from ..core import labels as stream_labels
from ..errors import DecodeError
from ..layout import decode_chunk, z_axis
from .sources import Coords, Region, _pool_map, _region_chunks, _Source
from .sources import source as _source

__all__ = ["chunk_labels", "find_label", "label_index"]


# =========================================================================== public API

def chunk_labels(array: Any, *, region: Region = None,
                 max_workers: Optional[int] = None) -> dict[Coords, np.ndarray]:
    """The sorted labels of each chunk, read from the Crackle labels sections.

    Args:
        array: a zarr array (zarr 3 ``Array``/``AsyncArray`` of format 2 or 3, sharded or not, or a
            zarr 2.18 ``Array``) whose chunks are Crackle streams.
        region: restrict the answer to the chunks that intersect this selection: a tuple of slices
            (step 1) and/or ints in array coordinates, one per axis (missing axes are taken
            whole). The labels reported are always those of the whole chunk (inside the array).
        max_workers: threads reading chunks concurrently (default 16).

    Returns:
        ``{chunk_coords: labels}``, ``labels`` a sorted 1-D array in the array's dtype, for every
        chunk of the (selected part of the) chunk grid. Exact: an edge chunk reports only the labels
        of its voxels inside the array; a chunk that was never written reports the fill value.
    """
    src = _source(array)
    coords = _region_chunks(src, region)
    result: dict[Coords, np.ndarray] = {}

    def work(batch: list[Coords]) -> list[tuple[Coords, np.ndarray]]:
        streams = src.read(batch)
        return [(c, _exact_labels(src, c, streams.get(c))) for c in batch]

    for part in _pool_map(work, src.batches(coords), max_workers):
        result.update(part)
    return {c: result[c] for c in coords}


def find_label(array: Any, label: int, *, region: Region = None,
               max_workers: Optional[int] = None) -> list[Coords]:
    """The coordinates (sorted) of the chunks that contain ``label`` (exact, as ``chunk_labels``).

    Edge chunks are decoded only when their labels section lists ``label``.
    """
    src = _source(array)
    value = _check_label(label)
    if not _fits(value, src.dtype):
        return []
    coords = _region_chunks(src, region)

    def work(batch: list[Coords]) -> list[Coords]:
        streams = src.read(batch)
        return [c for c in batch if _contains_exact(src, c, streams.get(c), value)]

    found: list[Coords] = []
    for part in _pool_map(work, src.batches(coords), max_workers):
        found.extend(part)
    return sorted(found)


def label_index(array: Any, *, region: Region = None,
                max_workers: Optional[int] = None) -> dict[int, list[Coords]]:
    """``{label: [chunk coords, ...]}`` for every label of the array, built in one pass over the chunks.

    Labels are Python ints (bools for bool arrays), in ascending order; each chunk list is sorted.
    """
    per_chunk = chunk_labels(array, region=region, max_workers=max_workers)
    index: dict[Any, list[Coords]] = {}
    for coords in sorted(per_chunk):
        for value in per_chunk[coords].tolist():
            index.setdefault(value, []).append(coords)
    return {k: index[k] for k in sorted(index)}


# ====================================================================== exact per-chunk answers

def _is_edge(src: "_Source", coords: Coords) -> bool:
    return any((i + 1) * c > s for i, c, s in zip(coords, src.chunks, src.shape))


def _fill_labels(src: "_Source") -> np.ndarray:
    return np.array([src.fill], dtype=src.dtype)


def _as_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return values if values.dtype == dtype else values.astype(dtype)


def _exact_labels(src: "_Source", coords: Coords, stream: Optional[bytes]) -> np.ndarray:
    if stream is None:
        return _fill_labels(src)
    values = stream_labels(stream)
    if values.size <= 1 or not _is_edge(src, coords):
        return _as_dtype(values, src.dtype)
    return _as_dtype(np.unique(_in_bounds_block(src, coords, stream)), src.dtype)


def _contains_exact(src: "_Source", coords: Coords, stream: Optional[bytes], value: int) -> bool:
    if stream is None:
        return _python_value(src.fill, src.dtype) == value
    values = stream_labels(stream)
    i = int(np.searchsorted(values, value))
    if not (i < values.size and int(values[i]) == value):
        return False
    if values.size == 1 or not _is_edge(src, coords):
        return True
    return bool(np.any(_in_bounds_block(src, coords, stream) == value))


def _in_bounds_block(src: "_Source", coords: Coords, stream: bytes) -> np.ndarray:
    """The voxels of an edge chunk that lie inside the array (decoding only the needed z slices)."""
    extent = tuple(min(c, s - i * c) for i, c, s in zip(coords, src.chunks, src.shape))
    if not src.direct:
        box = tuple(slice(i * c, i * c + e) for i, c, e in zip(coords, src.chunks, extent))
        return np.asarray(src.read_region(box))
    # The in-bounds part starts at 0 on every axis: along the stream's z axis only its first
    # slices are decoded (the axis rule of the array's codec: crackle_codec.layout).
    shape = tuple(src.chunks)
    axis = z_axis(shape, src.x_axis, src.order)
    z_range = None if axis is None else (0, extent[axis])
    try:
        block = decode_chunk(stream, shape, src.x_axis, src.order, z_range)
    except DecodeError as exc:
        raise DecodeError(f"chunk {coords}: {exc}") from None
    return block[tuple(slice(0, e) for e in extent)]


# ============================================================================= argument checks

def _check_label(label: Any) -> int:
    if isinstance(label, (bool, np.bool_)):
        return int(label)
    if not isinstance(label, (numbers.Integral, np.integer)):
        raise TypeError(f"label must be an integer, not {type(label).__name__}")
    return int(label)


def _fits(value: int, dtype: np.dtype) -> bool:
    if dtype == np.bool_:
        return value in (0, 1)
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def _python_value(value: Any, dtype: np.dtype) -> int:
    return int(np.asarray(value, dtype=dtype).astype(np.int64 if dtype.kind != "u" else np.uint64))
