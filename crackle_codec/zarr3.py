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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec, ArrayBytesCodecPartialDecodeMixin
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import JSON, parse_named_configuration
from zarr.registry import register_codec

from .errors import DecodeError
from .layout import FASTEST, X_AXIS_FIELD, check_x_axis, codec_kwargs, decode_chunk, encode_chunk, z_axis
from .numcodecs_codec import _check_chunk_shape, _check_dtype, _check_options

if TYPE_CHECKING:
    from typing import Self

    from zarr.abc.store import ByteGetter
    from zarr.core.array_spec import ArraySpec
    from zarr.core.chunk_grids import ChunkGrid
    from zarr.core.indexing import SelectorTuple

__all__ = ["CrackleCodec"]

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

    def __init__(self, *, markov_model_order: int = 0, allow_pins: bool = False,
                 x_axis: str | None = FASTEST) -> None:
        order, pins = _check_options(markov_model_order, allow_pins)
        object.__setattr__(self, "markov_model_order", order)
        object.__setattr__(self, "allow_pins", pins)
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
                              allow_pins=self.allow_pins)
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
