"""The numcodecs codec ``Crackle`` (``codec_id = "crackle"``), for Zarr format 2 arrays.

Use it as the compressor of a Zarr v2 array::

    import zarr
    from crackle_codec import Crackle

    z = zarr.open("seg.zarr", mode="w", shape=(512, 512, 512), chunks=(128, 128, 128),
                  dtype="uint32", compressor=Crackle(), zarr_format=2)   # zarr 3.x
    z = zarr.open("seg.zarr", mode="w", shape=(512, 512, 512), chunks=(128, 128, 128),
                  dtype="uint32", compressor=Crackle())                  # zarr 2.18

The package declares the codec under the ``numcodecs.codecs`` entry point, so an existing array
opens in a process that never imported ``crackle_codec``.

Chunk axes map to Crackle's axes in order: chunk axis 0 is x (fastest in the stream), 1 is y, 2 is
z. A 1D or 2D chunk is stored as (n, 1, 1) or (sx, sy, 1); a chunk of more than 3 dimensions is
stored after dropping its length-1 axes (it may have at most 3 axes longer than 1). The stream
records the chunk's memory order (C or F) and dtype, so ``decode`` returns the chunk's elements in
the memory order they were encoded in; zarr reshapes them to the chunk shape in the array's order.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_ndarray_like
from numcodecs.registry import register_codec

from .core import MAX_MARKOV_ORDER, compress, decompress
from .errors import DecodeError

__all__ = ["Crackle"]


# ------------------------------------------------------------------------------ shape helpers
# Shared with the Zarr v3 codec (zarr3.py) and the chunk queries (chunks.py).

def _check_options(markov_model_order: Any, allow_pins: Any) -> tuple[int, bool]:
    if (isinstance(markov_model_order, (bool, np.bool_))
            or not isinstance(markov_model_order, (numbers.Integral, np.integer))
            or not 0 <= int(markov_model_order) <= MAX_MARKOV_ORDER):
        raise ValueError(f"markov_model_order must be an int in 0..{MAX_MARKOV_ORDER}, got {markov_model_order!r}")
    if not isinstance(allow_pins, (bool, np.bool_)):
        raise TypeError(f"allow_pins must be a bool, got {allow_pins!r}")
    return int(markov_model_order), bool(allow_pins)


def _check_dtype(dtype: np.dtype) -> None:
    """TypeError unless ``dtype`` is a bool or integer dtype in native byte order."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "uib":
        raise TypeError(
            f"the Crackle codec stores integer or bool label arrays; got dtype {dtype} "
            "(use zarr's usual compressors for other data)"
        )
    if dtype.itemsize > 1 and not dtype.isnative:
        raise TypeError(
            f"the Crackle codec needs a native-byte-order dtype; got {dtype.str}: "
            f"use {dtype.newbyteorder('=').str!r} for the array"
        )


def _squeeze_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape Crackle encodes a chunk of ``shape`` as (before 1D/2D get trailing 1s)."""
    if len(shape) <= 3:
        return tuple(shape)
    squeezed = tuple(s for s in shape if s != 1)
    if len(squeezed) > 3:
        raise ValueError(
            f"the Crackle codec encodes chunks with at most 3 axes longer than 1; got chunk shape {tuple(shape)}"
        )
    return squeezed


def _chunk_for_encoding(chunk: Any) -> np.ndarray:
    """The ndarray to pass to ``compress`` for a zarr chunk (any rank, C or F order)."""
    if not isinstance(chunk, np.ndarray):
        # Let the core raise its TypeError for buffers without a dtype (bytes, memoryview...).
        return chunk
    _check_dtype(chunk.dtype)
    if chunk.ndim > 3:
        _squeeze_shape(chunk.shape)  # raises for more than 3 long axes
        chunk = np.squeeze(chunk, axis=tuple(i for i, s in enumerate(chunk.shape) if s == 1))
    return chunk


def _memory_order(array: np.ndarray) -> str:
    return "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"


def _as_chunk(decoded: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``decoded`` (sx, sy, sz) reshaped to the chunk ``shape`` in its own memory order (a view)."""
    if decoded.size != int(np.prod(shape, dtype=np.int64)):
        raise DecodeError(
            f"the Crackle stream holds {decoded.shape} = {decoded.size} voxels, but the chunk has shape "
            f"{tuple(shape)}"
        )
    return decoded.reshape(shape, order=_memory_order(decoded))


def _stream_bytes(buf: Any) -> Any:
    """A 1-byte-per-item buffer for ``decompress`` from what zarr hands a codec's ``decode``."""
    if isinstance(buf, np.ndarray):
        if buf.dtype != np.uint8 or buf.ndim != 1:
            buf = np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
        return buf
    return buf


# --------------------------------------------------------------------------------- the codec

class Crackle(Codec):
    """numcodecs codec for integer label chunks (segmentations), encoding each chunk as a Crackle stream.

    Args:
        markov_model_order: 0 (default) writes plain 2-bit crack codes: the fastest encode and
            decode. 1..15 codes them with a finite-context model of that order, usually 10-25%
            smaller chunks at a lower speed (5 is a good choice).
        allow_pins: write the PINS label format where it applies (smaller for labels that run
            through many slices; slower to encode). Default False (FLAT labels).

    ``encode`` takes the chunk as an ndarray (bool or integer, native byte order, C or F order) and
    returns ``bytes``; ``decode`` returns the chunk's elements in the recorded dtype (bool chunks come
    back as uint8 unless ``out`` is a bool array) and memory order, or fills ``out`` when given.
    Malformed streams raise ``crackle_codec.DecodeError``; non-integer chunks raise ``TypeError``.
    """

    codec_id = "crackle"

    def __init__(self, markov_model_order: int = 0, allow_pins: bool = False):
        self.markov_model_order, self.allow_pins = _check_options(markov_model_order, allow_pins)

    @classmethod
    def from_config(cls, config: dict) -> "Crackle":
        """Instantiate from a configuration, with or without its ``"id"`` (``get_config()`` round-trips)."""
        config = dict(config)
        codec_id = config.pop("id", cls.codec_id)
        if codec_id != cls.codec_id:
            raise ValueError(f"not a {cls.codec_id!r} codec configuration: id={codec_id!r}")
        return cls(**config)

    def encode(self, buf: Any) -> bytes:
        chunk = _chunk_for_encoding(buf)
        return compress(chunk, allow_pins=self.allow_pins, markov_model_order=self.markov_model_order)

    def decode(self, buf: Any, out: Any = None) -> Any:
        decoded = decompress(_stream_bytes(buf))
        if out is None:
            return decoded
        dest = ensure_ndarray_like(out)
        if dest.size == decoded.size:
            # Logical copy: zarr hands a destination shaped like the chunk, in the array's order.
            dest[...] = decoded.reshape(dest.shape, order=_memory_order(decoded))
        elif dest.nbytes == decoded.nbytes:
            # A flat byte buffer: copy the elements in the stream's memory order.
            flat = dest.reshape(-1, order="A").view(np.uint8)
            flat[...] = decoded.reshape(-1, order=_memory_order(decoded)).view(np.uint8)
        else:
            raise ValueError(
                f"decode: the output buffer holds {dest.size} items ({dest.nbytes} bytes), but the "
                f"Crackle stream decodes to {decoded.shape} {decoded.dtype}"
            )
        return out

    def __repr__(self) -> str:
        return f"Crackle(markov_model_order={self.markov_model_order}, allow_pins={self.allow_pins})"


register_codec(Crackle)
