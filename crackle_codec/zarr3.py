"""The Zarr v3 codec ``CrackleCodec``: an array-to-bytes codec (serializer) named ``crackle``.

Needs zarr >= 3 (``import crackle_codec`` itself does not)::

    import zarr
    from crackle_codec.zarr3 import CrackleCodec

    z = zarr.create_array("seg.zarr", shape=(512, 512, 512), chunks=(128, 128, 128), dtype="uint32",
                          serializer=CrackleCodec(), compressors=None)
    # sharded: 64^3 Crackle chunks inside 256^3 shards
    z = zarr.create_array("seg.zarr", shape=(512, 512, 512), shards=(256, 256, 256),
                          chunks=(64, 64, 64), dtype="uint32", serializer=CrackleCodec(),
                          compressors=None)

The array metadata names it ``{"name": "crackle", "configuration": {"markov_model_order": 0,
"allow_pins": false, "x_axis": "fastest"}}``; the package declares it under the ``zarr.codecs``
entry point, so arrays open in a process that never imported ``crackle_codec``.

Axes (docs/zarr-codec-spec.md): Crackle's x is the chunk's last axis, y the one before, z the one
before that (axes of length 1 do not count), so a ``(z, y, x)`` or ``(t, c, z, y, x)`` array is
sliced along z, and a chunk in zarr's default C order is encoded and decoded without a copy
(crackle_codec.layout). Arrays written before the ``"x_axis"`` field existed keep their mapping
(chunk axis 0 is x). The codec implements partial decoding: a read that needs only some z slices
of a chunk decodes only those slices (when no bytes-to-bytes codec follows it).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec, ArrayBytesCodecPartialDecodeMixin
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import JSON, parse_named_configuration
from zarr.registry import register_codec

from .errors import DecodeError
from .layout import FASTEST, X_AXIS_FIELD, check_x_axis, codec_kwargs, decode_chunk, encode_chunk, z_axis
from .numcodecs_codec import _check_chunk_shape, _check_dtype, _check_optimize, _check_options

if TYPE_CHECKING:
    from typing import Self

    from zarr.abc.store import ByteGetter
    from zarr.core.array_spec import ArraySpec
    from zarr.core.chunk_grids import ChunkGrid
    from zarr.core.indexing import SelectorTuple

__all__ = ["CrackleCodec", "create_array", "write_array"]

CODEC_NAME = "crackle"


def _native_dtype(chunk_spec: ArraySpec) -> np.dtype:
    return np.dtype(chunk_spec.dtype.to_native_dtype())


def _to_spec_dtype(array: np.ndarray, chunk_spec: ArraySpec) -> np.ndarray:
    """The decoded array in the chunk's dtype (bool chunks are stored as uint8)."""
    dtype = _native_dtype(chunk_spec)
    if array.dtype == dtype:
        return array
    if dtype == np.bool_ and array.dtype == np.uint8:
        return array.view(np.bool_)
    if dtype.kind in "ui" and dtype.itemsize == array.dtype.itemsize and dtype.kind == array.dtype.kind:
        return array.astype(dtype)  # byte order only
    raise DecodeError(f"the Crackle stream holds {array.dtype} labels, but the array's dtype is {dtype}")


def _z_window(selector: Any, sz: int) -> tuple[int, int, Any] | None:
    """(z0, z1, shifted selector) when ``selector`` (for the chunk's z axis) needs only z0..z1."""
    if isinstance(selector, (int, np.integer)) and not isinstance(selector, (bool, np.bool_)):
        z = int(selector)
        z = z + sz if z < 0 else z
        if 0 <= z < sz:
            return z, z + 1, z - z
        return None
    if isinstance(selector, slice):
        start, stop, step = selector.indices(sz)
        if step <= 0 or start >= stop:
            return None
        last = start + ((stop - start - 1) // step) * step
        return start, last + 1, slice(0, last + 1 - start, step)
    if isinstance(selector, np.ndarray) and selector.dtype.kind in "ui" and selector.size:
        lo, hi = int(selector.min()), int(selector.max())
        if 0 <= lo and hi < sz:
            return lo, hi + 1, selector - lo
    return None


@dataclass(frozen=True)
class CrackleCodec(ArrayBytesCodec, ArrayBytesCodecPartialDecodeMixin):
    """Zarr v3 array-to-bytes codec writing each chunk as a Crackle stream.

    Args:
        markov_model_order: 0 (default) for plain crack codes (fastest); 1..15 for a finite-context
            model of that order (smaller, slower; 5 is a good choice).
        allow_pins: write the PINS label format where it applies (default False).
        optimize: choose, per chunk, the label format and markov order that give the smallest
            stream (leave the two options above at their defaults); in the metadata only when True.
        x_axis: ``"fastest"`` (default): Crackle's x is the chunk's last axis, z the first of its
            three axes longer than 1, so ``(z, y, x)`` arrays are sliced along z. ``None`` is the
            mapping of arrays written before this field existed (chunk axis 0 is x); ``from_dict``
            gives it to their metadata, which has no ``"x_axis"``. Do not use it for new arrays.

    Supports bool and integer data types (8 to 64 bits, signed or not) and chunks with at most
    three axes longer than 1; others are refused when the array is created. Use
    ``compressors=None`` (raw Crackle chunks) or put a bytes-to-bytes codec such as ``ZstdCodec``
    after it.
    """

    is_fixed_size = False

    markov_model_order: int = 0
    allow_pins: bool = False
    x_axis: str | None = FASTEST
    optimize: bool = False

    def __init__(self, *, markov_model_order: int = 0, allow_pins: bool = False,
                 x_axis: str | None = FASTEST, optimize: bool = False) -> None:
        order, pins = _check_options(markov_model_order, allow_pins)
        object.__setattr__(self, "markov_model_order", order)
        object.__setattr__(self, "allow_pins", pins)
        object.__setattr__(self, "optimize", _check_optimize(optimize, order, pins))
        object.__setattr__(self, "x_axis", check_x_axis(x_axis))

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        """From array metadata; without ``"x_axis"`` (an array of the first release): the legacy mapping."""
        _, configuration = parse_named_configuration(data, CODEC_NAME, require_configuration=False)
        return cls(**codec_kwargs(configuration or {}))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, JSON]:
        config: dict[str, JSON] = {"markov_model_order": self.markov_model_order, "allow_pins": self.allow_pins}
        if self.x_axis is not None:
            config[X_AXIS_FIELD] = self.x_axis
        if self.optimize:
            config["optimize"] = True
        return {"name": CODEC_NAME, "configuration": config}

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: ChunkGrid) -> None:
        _check_dtype(dtype.to_native_dtype())
        chunk_shape = getattr(chunk_grid, "chunk_shape", None)
        if chunk_shape is not None:
            _check_chunk_shape(tuple(chunk_shape))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable size

    # ------------------------------------------------------------------------- sync encode/decode
    # Format 3 chunks are logically C-ordered ("C" below), whatever zarr's runtime memory order:
    # a C-ordered chunk is the F-ordered (x, y, z) volume Crackle codes, so neither direction
    # copies; an F-ordered one (config={"order": "F"}) costs one transposing copy each way.

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        array = chunk_array.as_numpy_array()
        if array.dtype.itemsize > 1 and not array.dtype.isnative and array.dtype.kind in "ui":
            array = array.astype(array.dtype.newbyteorder("="))
        _check_dtype(array.dtype)
        stream = encode_chunk(array, self.x_axis, "C", markov_model_order=self.markov_model_order,
                              allow_pins=self.allow_pins, optimize=self.optimize)
        return chunk_spec.prototype.buffer.from_bytes(stream)

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        array = decode_chunk(chunk_bytes.as_numpy_array(), tuple(chunk_spec.shape), self.x_axis, "C")
        return chunk_spec.prototype.nd_buffer.from_numpy_array(_to_spec_dtype(array, chunk_spec))

    # ------------------------------------------------------------------------ async (zarr's path)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    # ---------------------------------------------------------------------------- partial decode

    def _decode_selection_sync(self, chunk_bytes: Buffer, selection: SelectorTuple,
                               chunk_spec: ArraySpec) -> NDBuffer:
        data = chunk_bytes.as_numpy_array()
        shape = tuple(chunk_spec.shape)
        axis = z_axis(shape, self.x_axis, "C")
        window = None
        if axis is not None and isinstance(selection, tuple) and len(selection) == len(shape):
            window = _z_window(selection[axis], shape[axis])
        if window is None or (window[0] == 0 and window[1] == shape[axis]):
            selected = decode_chunk(data, shape, self.x_axis, "C")[selection]
        else:
            z0, z1, z_selector = window
            part = decode_chunk(data, shape, self.x_axis, "C", z_range=(z0, z1))
            selected = part[selection[:axis] + (z_selector,) + selection[axis + 1:]]
        selected = _to_spec_dtype(np.asarray(selected), chunk_spec)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(selected)

    async def _decode_partial_single(self, byte_getter: ByteGetter, selection: SelectorTuple,
                                     chunk_spec: ArraySpec) -> NDBuffer | None:
        chunk_bytes = await byte_getter.get(prototype=chunk_spec.prototype)
        if chunk_bytes is None:
            return None
        return await asyncio.to_thread(self._decode_selection_sync, chunk_bytes, selection, chunk_spec)


register_codec(CODEC_NAME, CrackleCodec)


# ------------------------------------------------------------------------------- writing helpers
# Why writes go through these: zarr 3.1 writes ``z[...] = volume`` by allocating and filling a new
# buffer per chunk (np.full), copying the chunk's part of the volume into it on its event-loop
# thread, and, with ``write_empty_chunks=False`` (its default), comparing every chunk with the
# fill value (NDBuffer.all_equal: about 8 ms for a 128^3 uint32 chunk, more than Crackle takes
# to encode it). ``write_array`` skips zarr's write path for Crackle arrays altogether
# (crackle_codec/zarr/writes.py: chunks encoded in place from the caller's volume on our threads,
# then the array's own codecs, shard encoder and store); for other arrays it writes one whole
# chunk or shard per ``array[box] = data[box]`` call. docs/zarr.md has the measurements.

def create_array(store: Any, *, shape: Any = None, dtype: Any = None, data: Any = None,
                 markov_model_order: int = 0, allow_pins: bool = False, compressors: Any = None,
                 config: Any = None, max_workers: int | None = None, optimize: bool = False,
                 **kwargs: Any) -> Any:
    """``zarr.create_array`` with Crackle as the serializer, set up for fast writes.

    The returned array has ``write_empty_chunks=True`` in its config (zarr's check of every
    written chunk against the fill value costs more than encoding it; a chunk that holds only the
    fill value is then stored too, about 2 KB for 128^3 voxels). With ``data`` (an array of the
    array's shape), the data is written with ``write_array``. ``compressors`` defaults to None
    (raw Crackle chunks); other keyword arguments (``chunks``, ``shards``, ``fill_value``,
    ``dimension_names``, ``overwrite``...) go to ``zarr.create_array``. Axes follow zarr's
    convention: give a ``(z, y, x)`` volume (``vol.T`` of an ``(x, y, z)`` Fortran volume is one,
    without a copy).
    """
    import zarr

    if data is not None:
        data_shape, data_dtype = tuple(data.shape), data.dtype
        shape = data_shape if shape is None else shape
        dtype = data_dtype if dtype is None else dtype
    config = dict(config or {})
    config.setdefault("write_empty_chunks", True)
    array = zarr.create_array(store, shape=shape, dtype=dtype, compressors=compressors, config=config,
                              serializer=CrackleCodec(markov_model_order=markov_model_order,
                                                      allow_pins=allow_pins, optimize=optimize), **kwargs)
    if data is not None:
        write_array(array, data, max_workers=max_workers)
    return array


def write_array(array: Any, data: Any, *, max_workers: int | None = None) -> None:
    """Write ``data`` (of the array's shape) into a zarr array: ``array[...] = data``, faster.

    For a zarr 3.x array whose chunks are Crackle streams (format 2 or 3, sharded or not, any
    bytes-to-bytes codec after Crackle), every chunk is encoded straight from ``data`` (a view per
    chunk, no copy for a numpy array whose fastest axis is the array's) on ``max_workers`` threads
    (default: the number of cores) and stored through the array's store: the store then holds
    what ``array[...] = data`` would have stored, including the array's ``write_empty_chunks``
    setting (``create_array`` turns it on: zarr's per-chunk fill check is skipped, and an empty
    Crackle chunk costs about 2 KB). Other arrays are written one whole shard or chunk per
    ``array[box] = data[box]`` call from the same threads. ``data`` may be any sliceable array
    (a numpy array, a memmap, a zarr array...) of the array's shape.
    """
    from .zarr.writes import chunk_writer

    shape = tuple(array.shape)
    if tuple(data.shape) != shape:
        raise ValueError(f"data has shape {tuple(data.shape)}, the array {shape}")
    workers = max_workers or os.cpu_count() or 1
    writer = chunk_writer(array)
    with ThreadPoolExecutor(workers) as pool:
        if writer is not None:
            writer.write(data.__getitem__, writer.regions(), pool)
        else:
            list(pool.map(lambda box: array.__setitem__(box, data[box]), _regions(array)))


def _regions(array: Any) -> list[tuple[slice, ...]]:
    """The array's shards (or chunks when unsharded) as boxes clipped to its shape."""
    shape = tuple(array.shape)
    block = tuple(getattr(array, "shards", None) or array.chunks)
    return [tuple(slice(i * b, min((i + 1) * b, s)) for i, b, s in zip(index, block, shape))
            for index in itertools.product(*(range(-(-s // b)) for s, b in zip(shape, block)))]
