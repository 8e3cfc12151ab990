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

Axes (docs/zarr-codec-spec.md): Crackle's x is the chunk's fastest-varying axis in the array's
``order``, y the next, z the next (length-1 axes do not count): the last axis of a C-ordered
``(z, y, x)`` array, the first of an F-ordered ``(x, y, z)`` one. Either way the stream holds the
chunk's own memory, so neither ``encode`` nor ``decode`` makes a copy. Arrays written before the
``"x_axis"`` configuration field existed keep their mapping (chunk axis 0 is x).
"""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_ndarray_like
from numcodecs.registry import register_codec

from . import _crackle
from .core import MAX_MARKOV_ORDER, _as_buffer, decompress
from .errors import DecodeError
from .layout import (FASTEST, X_AXIS_FIELD, check_x_axis, codec_kwargs, encode_chunk, memory_order, stream_axes,
                     stream_header)

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


def _check_chunk_shape(shape: tuple[int, ...]) -> None:
    """ValueError for a chunk with more than 3 axes longer than 1 (under either mapping)."""
    stream_axes(shape, FASTEST, "C")


def _stream_bytes(buf: Any) -> np.ndarray:
    """The bytes of a stream from what zarr hands a codec's ``decode``, without a copy.

    Accepts bytes-like objects of unsigned bytes (bytes, bytearray, memoryview, array.array('B'))
    and uint8 numpy arrays of any shape; TypeError for anything else (a signed-byte array.array,
    a float array...), where a cast would silently change what is decoded.
    """
    if isinstance(buf, np.ndarray):
        if buf.dtype != np.uint8:
            raise TypeError(f"a Crackle stream is bytes; got a {buf.dtype} array")
        return np.ascontiguousarray(buf).reshape(-1)
    try:
        view = memoryview(buf)
    except TypeError:
        raise TypeError(f"a Crackle stream must be bytes-like, not {type(buf).__name__}") from None
    if view.format not in ("B", "<B", "=B", ">B", "@B", "c"):
        raise TypeError(f"a Crackle stream is unsigned bytes; got a buffer of format {view.format!r} "
                        f"({type(buf).__name__}); pass bytes(buf) if that is really a stream")
    return np.frombuffer(view if view.contiguous else view.tobytes(), dtype=np.uint8)


def _destination(out: Any, dtype: np.dtype) -> np.ndarray:
    """``out`` as an ndarray of the stream's ``dtype`` (a view); TypeError where that needs a cast.

    A numpy array must have the stream's dtype (bool for a uint8 stream); any other buffer
    (bytearray, memoryview...) is raw memory, filled with the decoded elements' bytes.
    """
    if isinstance(out, np.ndarray) and out.dtype == object:
        raise TypeError("cannot decode into an object array")
    dest = ensure_ndarray_like(out)
    if dest.dtype == object:
        raise TypeError("cannot decode into an object array")
    if not isinstance(out, np.ndarray) and dest.dtype.itemsize == 1 and dest.dtype != dtype:
        if not (dest.flags.c_contiguous or dest.flags.f_contiguous):
            raise ValueError("out must be contiguous")
        flat = dest.reshape(-1, order="A")
        if flat.nbytes % dtype.itemsize:
            raise DecodeError(f"the Crackle stream holds {dtype} labels; the output buffer holds {flat.nbytes} "
                              "bytes, not a whole number of them")
        dest = flat.view(np.uint8).view(dtype)
    if dest.dtype != dtype and not (dest.dtype == np.bool_ and dtype == np.uint8):
        raise TypeError(f"the Crackle stream holds {dtype} labels; cannot decode them into a {dest.dtype} "
                        "array (no silent cast: decode without out and cast explicitly)")
    return dest


# --------------------------------------------------------------------------------- the codec

class Crackle(Codec):
    """numcodecs codec for integer label chunks (segmentations), encoding each chunk as a Crackle stream.

    Args:
        markov_model_order: 0 (default) writes plain 2-bit crack codes: the fastest encode and
            decode. 1..15 codes them with a finite-context model of that order, usually 10-25%
            smaller chunks at a lower speed (5 is a good choice).
        allow_pins: write the PINS label format where it applies (smaller for labels that run
            through many slices; slower to encode). Default False (FLAT labels).
        x_axis: ``"fastest"`` (default): Crackle's x is the chunk's fastest-varying axis in memory
            (the array's ``order``), z the slowest. ``None`` is the mapping of arrays written
            before this field existed (chunk axis 0 is x); ``from_config`` gives it to their
            configurations, which have no ``"x_axis"``. Do not use it for new arrays.

    ``encode`` takes the chunk as an ndarray (bool or integer, native byte order, C or F order) and
    returns ``bytes``. ``decode`` returns the chunk's elements in its memory order as an
    ``(sx, sy, sz)`` array of the stream's dtype (bool chunks come back as uint8; zarr reshapes
    and views them), or fills ``out``: a C- or F-contiguous array of the stream's dtype (the
    elements land in its memory order, as zarr expects) or a byte buffer (bytearray...).

    Raises:
        DecodeError: a malformed stream, or one whose voxel count is not that of ``out``.
        TypeError: a non-integer chunk; an ``out`` of another dtype (never a silent cast) or of
            object dtype; a stream that is not bytes (e.g. ``array.array("b")``).
    """

    codec_id = "crackle"

    def __init__(self, markov_model_order: int = 0, allow_pins: bool = False,
                 x_axis: Optional[str] = FASTEST):
        self.markov_model_order, self.allow_pins = _check_options(markov_model_order, allow_pins)
        self.x_axis = check_x_axis(x_axis)

    @classmethod
    def from_config(cls, config: dict) -> "Crackle":
        """Instantiate from a configuration, with or without its ``"id"`` (``get_config()`` round-trips).

        A configuration without ``"x_axis"`` is one of an array written before the field existed:
        it gets the legacy mapping (``x_axis=None``). Unknown fields raise ValueError.
        """
        config = dict(config)
        codec_id = config.pop("id", cls.codec_id)
        if codec_id != cls.codec_id:
            raise ValueError(f"not a {cls.codec_id!r} codec configuration: id={codec_id!r}")
        return cls(**codec_kwargs(config))

    def get_config(self) -> dict:
        config: dict[str, Any] = {"id": self.codec_id, "markov_model_order": self.markov_model_order,
                                  "allow_pins": self.allow_pins}
        if self.x_axis is not None:
            config[X_AXIS_FIELD] = self.x_axis
        return config

    def encode(self, buf: Any) -> bytes:
        if not isinstance(buf, np.ndarray):
            raise TypeError(f"the Crackle codec encodes numpy arrays (it needs the chunk's dtype and shape), "
                            f"not {type(buf).__name__}")
        _check_dtype(buf.dtype)
        return encode_chunk(buf, self.x_axis, memory_order(buf), markov_model_order=self.markov_model_order,
                            allow_pins=self.allow_pins)

    def decode(self, buf: Any, out: Any = None) -> Any:
        data = _stream_bytes(buf)
        sx, sy, sz, dtype, fortran = stream_header(data)
        if out is None:
            if self.x_axis is None:
                return decompress(data)  # legacy: the stream's recorded memory order
            return _crackle.decompress_into(_as_buffer(data), 0, sz, np.empty((sx, sy, sz), dtype, order="F"), 1)
        dest = _destination(out, dtype)
        if dest.size != sx * sy * sz:
            raise DecodeError(f"the Crackle stream holds {sx}x{sy}x{sz} voxels, but the output buffer holds "
                              f"{dest.size} ({dest.shape} {dest.dtype})")
        # The stream's voxels, x fastest, are the chunk's elements in the array's order, i.e. in the
        # memory order of the chunk-shaped ``out`` zarr hands over: decode straight into that memory.
        if self.x_axis is None:
            order = "F" if fortran else "C"  # legacy: the stream's memory order is the chunk's
            if not (dest.flags.f_contiguous if order == "F" else dest.flags.c_contiguous):
                dest[...] = decompress(data).reshape(dest.shape, order=order)  # the first release's copy
                return out
        else:
            order = "F"
            if not (dest.flags.c_contiguous or dest.flags.f_contiguous):
                raise ValueError("out must be a C- or F-contiguous array")
        volume = dest.reshape(-1, order=memory_order(dest)).reshape((sx, sy, sz), order=order)
        _crackle.decompress_into(_as_buffer(data), 0, sz, volume, 1)
        return out

    def __repr__(self) -> str:
        legacy = ", x_axis=None" if self.x_axis is None else ""
        return f"Crackle(markov_model_order={self.markov_model_order}, allow_pins={self.allow_pins}{legacy})"


register_codec(Crackle)
