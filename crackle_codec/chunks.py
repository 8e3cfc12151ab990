"""Chunk-level label queries and label remapping on Crackle-compressed Zarr arrays, without decoding voxels.

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

import itertools
import math
import numbers
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import numpy as np

from .core import labels as stream_labels
from .core import remap as remap_stream
from .errors import DecodeError
from .layout import decode_chunk, z_axis
from .numcodecs_codec import Crackle

__all__ = ["chunk_labels", "find_label", "label_index", "remap_array", "zarr_demo"]

Coords = tuple[int, ...]
Region = Any  # a slice, an int, or a tuple of them

DEFAULT_MAX_WORKERS = 16
_BATCH = 16  # chunks per task for unsharded arrays


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


def remap_array(array: Any, mapping: Mapping[int, int], *, preserve_missing_labels: bool = True,
                max_workers: Optional[int] = None) -> int:
    """Apply a label mapping to every stored chunk by rewriting its labels section only.

    Voxels are never decoded: each chunk's Crackle stream goes through ``crackle_codec.remap`` (and
    the array's bytes-to-bytes codecs are undone and redone around it); chunks of sharded arrays are
    rewritten inside their shards. Chunks in which no label changes are left untouched, so a merge of
    two ids costs a read of every chunk's labels and a rewrite of the chunks holding them.

    If the mapping changes the fill value, chunks that were never written (which hold the fill
    value) are written as constant chunks of the new value, so that reading the array afterwards
    gives ``mapping`` applied to every voxel.

    Args:
        array: a writable zarr array whose chunks are Crackle streams (see ``chunk_labels``).
        mapping: ``{old: new}``; several old labels may map to one new label (a merge).
        preserve_missing_labels: labels missing from ``mapping`` keep their value (default True).
            With False, a label missing from ``mapping`` raises KeyError, checked over the whole
            array before anything is written.
        max_workers: threads reading and writing chunks concurrently (default 16).

    Returns:
        The number of chunks written.

    Raises:
        KeyError, TypeError, ValueError: for a bad mapping, before anything is written.
        DecodeError: a corrupt chunk (chunks processed before it may already be rewritten).
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a dict-like Mapping, not {type(mapping).__name__}")
    src = _source(array)
    clean = _check_mapping(mapping, src.dtype)
    if not preserve_missing_labels:
        missing = sorted(set(label_index(array, max_workers=max_workers)) - set(clean))
        if missing:
            raise KeyError(missing[0])
    changes = {k: v for k, v in clean.items() if k != v}
    fill = _python_value(src.fill, src.dtype)
    new_fill = changes.get(fill)

    def transform(stream: bytes) -> Optional[bytes]:
        if not changes:
            return None
        present = stream_labels(stream).tolist()
        if not any(v in changes for v in present):
            return None
        return remap_stream(stream, changes, preserve_missing_labels=True)

    if not changes:
        return 0
    coords = _region_chunks(src, None)
    return sum(_pool_map(lambda batch: src.rewrite(batch, transform, new_fill),
                         src.batches(coords), max_workers))


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


def _check_mapping(mapping: Mapping, dtype: np.dtype) -> dict[int, int]:
    clean: dict[int, int] = {}
    for old, new in mapping.items():
        if isinstance(old, (bool, np.bool_)) or not isinstance(old, (numbers.Integral, np.integer)):
            if not (dtype == np.bool_ and isinstance(old, (bool, np.bool_))):
                raise TypeError(f"mapping keys must be integers, got {old!r}")
        if isinstance(new, (bool, np.bool_)) or not isinstance(new, (numbers.Integral, np.integer)):
            if not (dtype == np.bool_ and isinstance(new, (bool, np.bool_))):
                raise TypeError(f"mapping values must be integers; {old!r} maps to {new!r}")
        if not _fits(int(new), dtype):
            raise ValueError(f"label {old} maps to {new}, which does not fit the array's dtype {dtype}")
        if _fits(int(old), dtype):
            clean[int(old)] = int(new)
    return clean


def _region_chunks(src: "_Source", region: Region) -> list[Coords]:
    ndim = len(src.shape)
    if region is None:
        region = ()
    elif not isinstance(region, tuple):
        region = (region,)
    if len(region) > ndim:
        raise IndexError(f"region has {len(region)} axes, the array {ndim}")
    ranges = []
    for axis in range(ndim):
        size, chunk = src.shape[axis], src.chunks[axis]
        sel = region[axis] if axis < len(region) else slice(None)
        if isinstance(sel, (numbers.Integral, np.integer)) and not isinstance(sel, (bool, np.bool_)):
            i = int(sel) + size if int(sel) < 0 else int(sel)
            if not 0 <= i < size:
                raise IndexError(f"region index {sel} is out of bounds for axis {axis} of size {size}")
            start, stop = i, i + 1
        elif isinstance(sel, slice):
            if sel.step not in (None, 1):
                raise ValueError(f"region slices must have step 1, got {sel}")
            start, stop, _ = sel.indices(size)
        else:
            raise TypeError(f"region must be slices and ints, got {sel!r}")
        if stop <= start:
            return []
        ranges.append(range(start // chunk, -(-stop // chunk)))
    return list(itertools.product(*ranges))


def _pool_map(fn: Callable[[Any], Any], items: Sequence[Any], max_workers: Optional[int]) -> Iterable[Any]:
    items = list(items)
    workers = DEFAULT_MAX_WORKERS if max_workers is None else int(max_workers)
    if workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if len(items) <= 1 or workers == 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def _batched(coords: Sequence[Coords], n: int = _BATCH) -> list[list[Coords]]:
    return [list(coords[i:i + n]) for i in range(0, len(coords), n)]


# ================================================================================ array sources

class _Source:
    """What the queries need from an array: geometry, Crackle streams of chunks, and rewriting."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    fill: Any
    direct: bool  # chunk axes are the stream's axes (no array-to-array codec before Crackle)
    x_axis: Optional[str]  # the Crackle codec's axis mapping (crackle_codec.layout)
    order: str  # the array's element order: "C" in format 3, the array's order in format 2

    def batches(self, coords: list[Coords]) -> list[list[Coords]]:
        return _batched(coords)

    def read(self, batch: list[Coords]) -> dict[Coords, Optional[bytes]]:
        raise NotImplementedError

    def rewrite(self, batch: list[Coords], transform: Callable[[bytes], Optional[bytes]],
                new_fill: Optional[int]) -> int:
        raise NotImplementedError

    def read_region(self, box: tuple[slice, ...]) -> np.ndarray:
        raise NotImplementedError


class _Unsharded(_Source):
    """One store key per chunk; subclasses give key I/O and the codecs after Crackle."""

    def _key(self, coords: Coords) -> str:
        raise NotImplementedError

    def _get_many(self, keys: list[str]) -> list[Optional[bytes]]:
        raise NotImplementedError

    def _set_many(self, items: dict[str, bytes]) -> None:
        raise NotImplementedError

    def _undo(self, raw: bytes) -> bytes:
        raise NotImplementedError

    def _redo(self, stream: bytes) -> bytes:
        raise NotImplementedError

    def _constant_raw(self, value: int) -> bytes:
        raise NotImplementedError

    def read(self, batch: list[Coords]) -> dict[Coords, Optional[bytes]]:
        raws = self._get_many([self._key(c) for c in batch])
        return {c: (None if raw is None else self._undo(raw)) for c, raw in zip(batch, raws)}

    def rewrite(self, batch, transform, new_fill) -> int:
        keys = [self._key(c) for c in batch]
        raws = self._get_many(keys)
        out: dict[str, bytes] = {}
        constant = None
        for key, raw in zip(keys, raws):
            if raw is None:
                if new_fill is not None:
                    if constant is None:
                        constant = self._constant_raw(new_fill)
                    out[key] = constant
                continue
            new = transform(self._undo(raw))
            if new is not None:
                out[key] = self._redo(new)
        if out:
            self._set_many(out)
        return len(out)


# ------------------------------------------------------------------------- numcodecs (format 2)

class _NumcodecsTail:
    """The Crackle codec of a format-2 array and the numcodecs codecs applied after it."""

    def __init__(self, filters: Optional[Sequence[Any]], compressor: Any):
        codecs = list(filters or []) + ([compressor] if compressor is not None else [])
        position = next((i for i, c in enumerate(codecs) if _is_crackle_numcodec(c)), None)
        if position is None:
            raise ValueError(
                "this array is not Crackle-compressed: neither its compressor nor a filter is "
                f"crackle_codec.Crackle (got filters={filters!r}, compressor={compressor!r})"
            )
        if position > 0:
            raise ValueError(
                f"filters before Crackle ({codecs[:position]!r}) change the labels; "
                "the chunk queries need Crackle to be the first codec"
            )
        self.crackle = codecs[position]
        self.after = codecs[position + 1:]
        self.x_axis = getattr(self.crackle, "x_axis", None)

    def undo(self, raw: Any) -> bytes:
        from numcodecs.compat import ensure_bytes

        data = raw
        for codec in reversed(self.after):
            data = codec.decode(data)
        return ensure_bytes(data)

    def redo(self, stream: bytes) -> bytes:
        from numcodecs.compat import ensure_bytes

        data: Any = stream
        for codec in self.after:
            data = codec.encode(data)
        return ensure_bytes(data)

    def constant(self, shape: tuple[int, ...], dtype: np.dtype, order: str, value: int) -> bytes:
        return self.redo(self.crackle.encode(np.full(shape, value, dtype=dtype, order=order)))


def _is_crackle_numcodec(codec: Any) -> bool:
    if isinstance(codec, Crackle):
        return True
    return getattr(codec, "codec_id", None) == Crackle.codec_id


# ------------------------------------------------------------------------------------ zarr 3.x

def _zarr_sync(coro: Any) -> Any:
    """Run a coroutine on zarr's own event loop (zarr 3.x internal helper, used as zarr.Array does)."""
    from zarr.core.sync import sync

    return sync(coro)


class _Zarr3IO:
    """Key reads and writes through a zarr 3 ``StorePath``, concurrently on zarr's event loop."""

    def __init__(self, async_array: Any):
        from zarr.core.buffer import default_buffer_prototype

        self.store_path = async_array.store_path
        self.metadata = async_array.metadata
        self.prototype = default_buffer_prototype()

    def key(self, coords: Coords) -> str:
        return self.metadata.encode_chunk_key(coords)

    def get_many(self, keys: list[str], ranges: Optional[list[Any]] = None) -> list[Optional[bytes]]:
        import asyncio

        async def one(key: str, byte_range: Any) -> Optional[bytes]:
            buf = await (self.store_path / key).get(prototype=self.prototype, byte_range=byte_range)
            return None if buf is None else buf.to_bytes()

        async def many() -> list[Optional[bytes]]:
            return await asyncio.gather(*(one(k, r) for k, r in zip(keys, ranges or [None] * len(keys))))

        return _zarr_sync(many())

    def set_many(self, items: dict[str, bytes]) -> None:
        import asyncio

        async def many() -> None:
            await asyncio.gather(*(
                (self.store_path / k).set(self.prototype.buffer.from_bytes(v)) for k, v in items.items()
            ))

        _zarr_sync(many())


class _Zarr3Unsharded(_Unsharded):
    """An unsharded array opened with zarr 3.x: chunk keys and bytes go through its store (``self.io``)."""

    io: "_Zarr3IO"

    def _key(self, coords):
        return self.io.key(coords)

    def _get_many(self, keys):
        return self.io.get_many(keys)

    def _set_many(self, items):
        self.io.set_many(items)


class _Zarr3V2(_Zarr3Unsharded):
    """A format-2 array opened with zarr 3.x."""

    def __init__(self, array: Any, async_array: Any):
        meta = async_array.metadata
        self.array = array
        self.io = _Zarr3IO(async_array)
        self.tail = _NumcodecsTail(meta.filters, meta.compressor)
        self.shape = tuple(meta.shape)
        self.chunks = tuple(meta.chunks)
        self.dtype = np.dtype(meta.dtype.to_native_dtype())
        self.order = meta.order
        self.x_axis = self.tail.x_axis
        self.fill = _fill_or_default(meta.fill_value, self.dtype)
        self.direct = True

    def _undo(self, raw):
        return self.tail.undo(raw)

    def _redo(self, stream):
        return self.tail.redo(stream)

    def _constant_raw(self, value):
        return self.tail.constant(self.chunks, self.dtype, self.order, value)

    def read_region(self, box):
        return self.array[box]


class _V3Chain:
    """The codecs of a format-3 chunk: array-to-array codecs, Crackle, bytes-to-bytes codecs."""

    def __init__(self, codecs: Sequence[Any], chunk_spec: Any):
        from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec

        from .zarr3 import CrackleCodec

        self.aa = [c for c in codecs if isinstance(c, ArrayArrayCodec)]
        ab = [c for c in codecs if isinstance(c, ArrayBytesCodec)]
        self.bb = [c for c in codecs if isinstance(c, BytesBytesCodec)]
        if len(ab) != 1 or not isinstance(ab[0], CrackleCodec):
            raise ValueError(
                "this array is not Crackle-compressed: its serializer is "
                f"{ab[0] if ab else None!r}, not crackle_codec.zarr3.CrackleCodec"
            )
        self.ab = ab[0]
        spec = chunk_spec
        for codec in self.aa:
            spec = codec.resolve_metadata(spec)
        self.ab_spec = spec
        spec = self.ab.resolve_metadata(spec)
        self.bb_specs = []
        for codec in self.bb:
            self.bb_specs.append(spec)
            spec = codec.resolve_metadata(spec)

    @staticmethod
    def _call(codec: Any, method: str, data: Any, spec: Any) -> Any:
        sync_method = getattr(codec, f"_{method}_sync", None)
        if sync_method is not None:
            return sync_method(data, spec)
        return _zarr_sync(getattr(codec, f"_{method}_single")(data, spec))

    def undo(self, raw: bytes) -> bytes:
        if not self.bb:
            return raw
        buf = self.ab_spec.prototype.buffer.from_bytes(raw)
        for codec, spec in zip(reversed(self.bb), reversed(self.bb_specs)):
            buf = self._call(codec, "decode", buf, spec)
        return buf.to_bytes()

    def redo(self, stream: bytes) -> bytes:
        if not self.bb:
            return stream
        buf = self.ab_spec.prototype.buffer.from_bytes(stream)
        for codec, spec in zip(self.bb, self.bb_specs):
            buf = self._call(codec, "encode", buf, spec)
        return buf.to_bytes()

    def constant(self, dtype: np.dtype, value: int) -> bytes:
        spec = self.ab_spec
        block = np.full(tuple(spec.shape), value, dtype=dtype)
        nd = spec.prototype.nd_buffer.from_numpy_array(block)
        return self.redo(self.ab._encode_sync(nd, spec).to_bytes())


def _v3_chunk_spec(async_array: Any, shape: tuple[int, ...]) -> Any:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import default_buffer_prototype

    meta = async_array.metadata
    return ArraySpec(shape=shape, dtype=meta.dtype, fill_value=meta.fill_value,
                     config=async_array.config, prototype=default_buffer_prototype())


class _Zarr3V3(_Zarr3Unsharded):
    """A format-3 array without sharding."""

    def __init__(self, array: Any, async_array: Any):
        meta = async_array.metadata
        self.array = array
        self.io = _Zarr3IO(async_array)
        self.shape = tuple(meta.shape)
        self.chunks = tuple(meta.chunks)
        self.dtype = np.dtype(meta.dtype.to_native_dtype())
        self.fill = _fill_or_default(meta.fill_value, self.dtype)
        self.chain = _V3Chain(meta.codecs, _v3_chunk_spec(async_array, self.chunks))
        self.direct = not self.chain.aa
        self.x_axis, self.order = self.chain.ab.x_axis, "C"

    def _undo(self, raw):
        return self.chain.undo(raw)

    def _redo(self, stream):
        return self.chain.redo(stream)

    def _constant_raw(self, value):
        return self.chain.constant(self.dtype, value)

    def read_region(self, box):
        return self.array[box]


# The two uses of zarr's sharding internals (zarr 3.x), each kept to one small function.

def _load_shard_index(sharding: Any, store_path: Any, chunks_per_shard: tuple[int, ...]) -> Optional[np.ndarray]:
    """The shard's index as an array (chunks_per_shard..., 2) of (offset, length), or None if absent."""
    index = _zarr_sync(sharding._load_shard_index_maybe(store_path, chunks_per_shard))
    return None if index is None else np.asarray(index.offsets_and_lengths)


def _build_shard(sharding: Any, chunks: dict[Coords, Optional[bytes]], chunks_per_shard: tuple[int, ...]) -> Optional[Any]:
    """Shard bytes (a zarr Buffer) holding ``chunks`` (local coords -> stored bytes), or None if empty."""
    from zarr.core.buffer import default_buffer_prototype

    prototype = default_buffer_prototype()
    buffers = {k: (None if v is None else prototype.buffer.from_bytes(v)) for k, v in chunks.items()}
    return _zarr_sync(sharding._encode_shard_dict(buffers, chunks_per_shard=chunks_per_shard,
                                                  buffer_prototype=prototype))


_EMPTY = np.uint64(2**64 - 1)


class _Zarr3Sharded(_Source):
    """A format-3 array with a sharding codec whose inner chunks are Crackle streams."""

    def __init__(self, array: Any, async_array: Any, sharding: Any):
        meta = async_array.metadata
        self.array = array
        self.io = _Zarr3IO(async_array)
        self.sharding = sharding
        self.shape = tuple(meta.shape)
        self.chunks = tuple(sharding.chunk_shape)
        self.shard_shape = tuple(meta.chunk_grid.chunk_shape)
        self.per_shard = tuple(s // c for s, c in zip(self.shard_shape, self.chunks))
        self.grid = tuple(-(-s // c) for s, c in zip(self.shape, self.chunks))
        self.dtype = np.dtype(meta.dtype.to_native_dtype())
        self.fill = _fill_or_default(meta.fill_value, self.dtype)
        self.chain = _V3Chain(sharding.codecs, _v3_chunk_spec(async_array, self.chunks))
        self.direct = not self.chain.aa
        self.x_axis, self.order = self.chain.ab.x_axis, "C"

    def _shard_of(self, coords: Coords) -> Coords:
        return tuple(c // n for c, n in zip(coords, self.per_shard))

    def _local(self, coords: Coords) -> Coords:
        return tuple(c % n for c, n in zip(coords, self.per_shard))

    def batches(self, coords):
        groups: dict[Coords, list[Coords]] = {}
        for c in coords:
            groups.setdefault(self._shard_of(c), []).append(c)
        return list(groups.values())

    def _path(self, shard: Coords) -> Any:
        return self.io.store_path / self.io.key(shard)

    def read(self, batch):
        from zarr.abc.store import RangeByteRequest

        shard = self._shard_of(batch[0])
        index = _load_shard_index(self.sharding, self._path(shard), self.per_shard)
        if index is None:
            return {c: None for c in batch}
        spans = {}
        for c in batch:
            offset, length = index[self._local(c)]
            if offset != _EMPTY:
                spans[c] = (int(offset), int(offset) + int(length))
        result: dict[Coords, Optional[bytes]] = {c: None for c in batch}
        if not spans:
            return result
        key = self.io.key(shard)
        if 2 * len(spans) >= math.prod(self.per_shard):
            (whole,) = self.io.get_many([key])
            raws = [None if whole is None else whole[a:b] for a, b in spans.values()]
        else:
            raws = self.io.get_many([key] * len(spans), [RangeByteRequest(a, b) for a, b in spans.values()])
        for c, raw in zip(spans, raws):
            result[c] = None if raw is None else self.chain.undo(raw)
        return result

    def rewrite(self, batch, transform, new_fill):
        shard = self._shard_of(batch[0])
        key = self.io.key(shard)
        index = _load_shard_index(self.sharding, self._path(shard), self.per_shard)
        whole = None if index is None else self.io.get_many([key])[0]
        if whole is None and new_fill is None:
            return 0
        local_chunks: dict[Coords, Optional[bytes]] = {}
        for local in itertools.product(*(range(n) for n in self.per_shard)):
            if whole is not None:
                offset, length = index[local]
                if offset != _EMPTY:
                    local_chunks[local] = whole[int(offset):int(offset) + int(length)]
        changed = 0
        constant = None
        for c in batch:
            local = self._local(c)
            raw = local_chunks.get(local)
            if raw is None:
                if new_fill is not None:
                    if constant is None:
                        constant = self.chain.constant(self.dtype, new_fill)
                    local_chunks[local] = constant
                    changed += 1
                continue
            new = transform(self.chain.undo(raw))
            if new is not None:
                local_chunks[local] = self.chain.redo(new)
                changed += 1
        if changed:
            built = _build_shard(self.sharding, local_chunks, self.per_shard)
            if built is not None:
                self.io.set_many({key: built.to_bytes()})
        return changed

    def read_region(self, box):
        return self.array[box]


# ------------------------------------------------------------------------------------ zarr 2.18

class _Zarr2(_Unsharded):
    """A zarr 2.x ``Array`` (format 2); the store is a MutableMapping."""

    def __init__(self, array: Any):
        self.array = array
        store = getattr(array, "chunk_store", None)
        self.store = store if store is not None else array.store
        self.tail = _NumcodecsTail(array.filters, array.compressor)
        self.shape = tuple(array.shape)
        self.chunks = tuple(array.chunks)
        self.dtype = np.dtype(array.dtype)
        self.order = array.order
        self.x_axis = self.tail.x_axis
        self.fill = _fill_or_default(array.fill_value, self.dtype)
        self.direct = True

    def _key(self, coords):
        return self.array._chunk_key(coords)  # zarr 2.x: the store key of a chunk

    def _get_many(self, keys):
        out = []
        for key in keys:
            try:
                out.append(self.store[key])
            except KeyError:
                out.append(None)
        return out

    def _set_many(self, items):
        for key, value in items.items():
            self.store[key] = value

    def _undo(self, raw):
        return self.tail.undo(raw)

    def _redo(self, stream):
        return self.tail.redo(stream)

    def _constant_raw(self, value):
        return self.tail.constant(self.chunks, self.dtype, self.order, value)

    def read_region(self, box):
        return self.array[box]


def _fill_or_default(fill: Any, dtype: np.dtype) -> Any:
    """The fill value as a scalar of ``dtype`` (a format-2 ``null`` fill reads as 0)."""
    if fill is None:
        return dtype.type(0)
    return np.asarray(fill).astype(dtype).item() if dtype != np.bool_ else bool(fill)


def _source(array: Any) -> _Source:
    """Wrap a zarr array of any supported kind."""
    if isinstance(array, _Source):
        return array
    async_array = getattr(array, "_async_array", None)
    if async_array is None and hasattr(array, "metadata") and hasattr(array, "store_path"):
        async_array = array  # a zarr 3 AsyncArray
        import zarr

        array = zarr.Array(async_array)
    if async_array is not None and hasattr(async_array, "store_path"):
        meta = async_array.metadata
        if meta.zarr_format == 2:
            return _Zarr3V2(array, async_array)
        from zarr.codecs.sharding import ShardingCodec

        shardings = [c for c in meta.codecs if isinstance(c, ShardingCodec)]
        if shardings:
            if len(meta.codecs) != 1:
                raise NotImplementedError(
                    "chunk queries support sharding as the array's only codec; this array has "
                    f"{[type(c).__name__ for c in meta.codecs]}"
                )
            return _Zarr3Sharded(array, async_array, shardings[0])
        return _Zarr3V3(array, async_array)
    if hasattr(array, "_chunk_key") and hasattr(array, "chunk_store"):
        return _Zarr2(array)
    raise TypeError(f"expected a zarr array, got {type(array).__name__}")


# ========================================================================================= demo

def zarr_demo(volume: np.ndarray, *, chunks: Optional[Sequence[int]] = None,
              path: Optional[str] = None) -> str:
    """Write ``volume`` as a Crackle Zarr v3 array, read it back, and answer chunk-level label queries.

    A Fortran-ordered 3D volume (axes (x, y, z)) is stored as its (z, y, x) view, with ``chunks``
    reversed. For ``crackle-zarr demo``. Writes to ``path`` (a directory, created) or to a temporary directory
    that is removed afterwards. Returns a short report (several lines, no trailing newline). Raises
    RuntimeError if the array does not read back bit-exact or a query disagrees with the volume.
    """
    import shutil
    import tempfile

    import zarr

    from .zarr3 import create_array

    volume = np.asarray(volume)
    names = None
    if volume.ndim == 3 and volume.flags.f_contiguous and not volume.flags.c_contiguous:
        # An (x, y, z) Fortran volume is stored the Zarr way, as its (z, y, x) view (no copy), so
        # that Crackle slices it along z (the axis rule, crackle_codec.layout); the axis names say
        # so to viewers.
        volume = volume.T
        chunks = None if chunks is None else tuple(chunks)[::-1]
        names = ("z", "y", "x")
    if chunks is None:
        chunks = tuple(min(64, s) for s in volume.shape)
    chunks = tuple(int(c) for c in chunks)
    tmp = None
    if path is None:
        tmp = tempfile.mkdtemp(prefix="crackle-zarr-demo-")
        path = os.path.join(tmp, "volume.zarr")
    try:
        t0 = time.perf_counter()
        z = create_array(path, data=volume, chunks=chunks, fill_value=0, overwrite=True, dimension_names=names)
        write_s = time.perf_counter() - t0
        stored = sum(os.path.getsize(os.path.join(root, f))
                     for root, _, files in os.walk(path) for f in files if f != "zarr.json")
        t0 = time.perf_counter()
        back = zarr.open_array(path, mode="r")[...]
        read_s = time.perf_counter() - t0
        if not np.array_equal(back, volume):
            raise RuntimeError("the Crackle Zarr array did not read back bit-exact")

        z = zarr.open_array(path, mode="r")
        t0 = time.perf_counter()
        per_chunk = chunk_labels(z)
        labels_s = time.perf_counter() - t0
        ids, counts = np.unique(volume, return_counts=True)
        nonzero = ids[ids != 0] if np.any(ids != 0) else ids
        target = int(nonzero[np.argmax(counts[ids != 0])] if np.any(ids != 0) else ids[0])
        t0 = time.perf_counter()
        found = find_label(z, target)
        find_s = time.perf_counter() - t0

        # Check both answers against the voxels.
        for coords, values in per_chunk.items():
            box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, chunks))
            truth = np.unique(volume[box])
            if not np.array_equal(values, truth):
                raise RuntimeError(f"chunk_labels disagrees with the volume at chunk {coords}")
        expected = sorted(c for c, v in per_chunk.items() if target in v)
        if found != expected:
            raise RuntimeError("find_label disagrees with chunk_labels")

        n = len(per_chunk)
        most = max(len(v) for v in per_chunk.values()) if per_chunk else 0
        shape_txt = "x".join(map(str, volume.shape))
        chunk_txt = "x".join(map(str, chunks))
        n_chunks = f"{n} chunk{'s' if n != 1 else ''}"
        ratio = (f"{volume.nbytes / max(stored, 1):.0f}x smaller than raw" if stored <= volume.nbytes
                 else f"{stored / max(volume.nbytes, 1):.1f}x larger than raw")
        lines = [
            f"Zarr v3 array with the Crackle codec ({shape_txt}, chunks {chunk_txt}, {n_chunks}): "
            f"{stored:,} bytes stored ({ratio}), "
            f"written in {write_s:.2f} s, read back bit-exact in {read_s:.2f} s",
            f"  chunk_labels: the labels of {'all ' if n != 1 else 'its '}{n_chunks} in {labels_s * 1e3:.1f} ms "
            f"without decoding voxels (up to {most} label{'s' if most != 1 else ''} per chunk)",
            f"  find_label({target}): in {len(found)} of {n_chunks}, found in {find_s * 1e3:.1f} ms",
        ]
        return "\n".join(lines)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
