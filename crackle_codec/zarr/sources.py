"""Where the array-level tools read and write Crackle chunks: one ``_Source`` per kind of zarr array.

A source gives the array's geometry (shape, chunk shape, dtype, fill value, the Crackle codec's
axis mapping) and reads or rewrites the Crackle streams of chunks, undoing and redoing the
bytes-to-bytes codecs after Crackle. The kinds of array live in one module per zarr library
version: ``sources_v3`` (zarr 3.x: format 2 and 3, sharded or not) and ``sources_v2`` (zarr 2.18);
``source(array)`` picks one.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Optional

import numpy as np

from ..numcodecs_codec import Crackle

Coords = tuple[int, ...]
Region = Any  # a slice, an int, or a tuple of them

DEFAULT_MAX_WORKERS = 16
_BATCH = 16  # chunks per task for unsharded arrays


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


def _batched(coords: Sequence[Coords], n: int = _BATCH) -> list[list[Coords]]:
    return [list(coords[i:i + n]) for i in range(0, len(coords), n)]


class _Source:
    """What the queries need from an array: geometry, Crackle streams of chunks, and rewriting."""

    array: Any  # the zarr array itself
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
        """The voxels of ``box`` (array coordinates), decoded by zarr itself."""
        return self.array[box]

    # Writing whole chunks, for the rewrites into another array (``crackle_codec.zarr.rewrites``).

    def write(self, batch: list[Coords], streams: dict[Coords, bytes], missing: Optional[int]) -> int:
        """Store the Crackle stream of each chunk of ``batch`` found in ``streams`` (a batch of
        ``self.batches``: for sharded arrays, every chunk of one shard). The other chunks of the
        batch hold ``missing``: written as constant chunks, or, when ``missing`` is None (the
        fill value), removed from the store. Returns the number of chunks written."""
        raise NotImplementedError

    def create_like(self, store: Any, dtype: np.dtype, fill: int) -> Any:
        """A new zarr array at ``store`` like this one (zarr format, shape, chunks, shards, codecs,
        order, dimension names, attributes) with another dtype and fill value."""
        raise NotImplementedError

    def _array_codecs(self) -> tuple[Any, ...]:
        return ()  # the array-to-array codecs before Crackle (format 3)

    @property
    def layout(self) -> tuple[Any, ...]:
        """What the placement of a stream's voxels in a chunk depends on: two arrays with equal
        layouts can exchange Crackle streams."""
        from ..layout import stream_axes

        return (tuple(self.chunks), stream_axes(self.chunks, self.x_axis, self.order), self._array_codecs())

    @property
    def stream_dtype(self) -> np.dtype:
        """The dtype of the chunks' Crackle streams (bool arrays store uint8 streams)."""
        return np.dtype(np.uint8) if self.dtype == np.bool_ else self.dtype

    @property
    def read_only(self) -> bool:
        return bool(getattr(getattr(self, "array", None), "read_only", False))


class _Unsharded(_Source):
    """One store key per chunk; subclasses give key I/O and the codecs after Crackle."""

    def _key(self, coords: Coords) -> str:
        raise NotImplementedError

    def _get_many(self, keys: list[str]) -> list[Optional[bytes]]:
        raise NotImplementedError

    def _set_many(self, items: dict[str, bytes]) -> None:
        raise NotImplementedError

    def _delete_many(self, keys: list[str]) -> None:
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

    def write(self, batch, streams, missing) -> int:
        out: dict[str, bytes] = {}
        gone: list[str] = []
        constant = None
        for c in batch:
            stream = streams.get(c)
            if stream is not None:
                out[self._key(c)] = self._redo(stream)
            elif missing is None:
                gone.append(self._key(c))
            else:
                if constant is None:
                    constant = self._constant_raw(missing)
                out[self._key(c)] = constant
        if out:
            self._set_many(out)
        if gone:
            self._delete_many(gone)
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


class _Format2Codecs:
    """The codec half of a format-2 source (zarr 2.18 or 3.x): Crackle and the numcodecs codecs
    after it, ``self.tail``. Listed before ``_Unsharded`` in a source's bases."""

    tail: _NumcodecsTail

    def _undo(self, raw):
        return self.tail.undo(raw)

    def _redo(self, stream):
        return self.tail.redo(stream)

    def _constant_raw(self, value):
        return self.tail.constant(self.chunks, self.dtype, self.order, value)


def _is_crackle_numcodec(codec: Any) -> bool:
    if isinstance(codec, Crackle):
        return True
    return getattr(codec, "codec_id", None) == Crackle.codec_id


def _fill_or_default(fill: Any, dtype: np.dtype) -> Any:
    """The fill value as a scalar of ``dtype`` (a format-2 ``null`` fill reads as 0)."""
    if fill is None:
        return dtype.type(0)
    return np.asarray(fill).astype(dtype).item() if dtype != np.bool_ else bool(fill)


def source(array: Any) -> _Source:
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
        from zarr.codecs.sharding import ShardingCodec

        from .sources_v3 import _Zarr3Sharded, _Zarr3V2, _Zarr3V3

        if meta.zarr_format == 2:
            return _Zarr3V2(array, async_array)

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
        from .sources_v2 import _Zarr2

        return _Zarr2(array)
    raise TypeError(f"expected a zarr array, got {type(array).__name__}")
