"""The axis rule: which axes of a Zarr chunk are the x, y and z of its Crackle stream.

docs/zarr-codec-spec.md specifies the rule; this module is its one implementation, used by both
codecs (numcodecs_codec.py, zarr3.py), the chunk queries (chunks.py) and the CLI. The codec
configuration field ``"x_axis"`` names the mapping an array uses:

* ``"fastest"`` (every array written since the field exists): Crackle's x is the chunk's
  fastest-varying axis in the array's element order, y the next, z the next, counting only axes
  longer than 1. The element order is C (last axis fastest) in Zarr format 3 and the array's
  ``order`` in format 2. The stream's voxels, x fastest, are then the chunk's elements in that
  order: a C-ordered ``(z, y, x)`` chunk has the memory of the Fortran-ordered ``(x, y, z)``
  volume Crackle encodes, so ``to_stream`` and ``to_chunk`` are views, never copies.
* absent (``None`` here, "legacy"): the mapping of the first release (crackle-zarr 0.1.0): chunk
  axis 0 is x, 1 is y, 2 is z; a chunk of more than 3 dimensions first loses its length-1 axes.
  Kept so that the arrays written then read (and extend) exactly.

``order`` arguments are "C" or "F": the array's element order as defined above (always "C" for
format 3, whatever zarr's runtime ``order`` setting).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from . import _crackle
from .core import _as_buffer, _check_encode_options, _compress_volume, _normalize_input, compress
from .errors import DecodeError

FASTEST = "fastest"
X_AXIS_FIELD = "x_axis"

Shape = tuple[int, ...]


def check_x_axis(value: Any) -> Optional[str]:
    """``value`` if it names a mapping this version knows ("fastest", or None for legacy arrays)."""
    if value is None or (isinstance(value, str) and value == FASTEST):
        return value
    raise ValueError(
        f'unknown Crackle codec x_axis {value!r}: this version of crackle_codec knows "fastest" '
        "(and arrays without the field); a newer crackle_codec may be needed to read this array"
    )


def codec_kwargs(config: Any) -> dict[str, Any]:
    """Constructor arguments of either codec from its configuration (without "id"/"name").

    No ``"x_axis"`` field: an array of the first release, the legacy mapping (``x_axis=None``).
    Unknown fields and unknown mappings raise ValueError: such an array must not be read with a
    mapping it was not written with.
    """
    config = dict(config)
    unknown = sorted(set(config) - {"markov_model_order", "allow_pins", "optimize", X_AXIS_FIELD})
    if unknown:
        raise ValueError(f"unknown Crackle codec configuration fields {unknown}: this array needs a newer "
                         "crackle_codec")
    if X_AXIS_FIELD in config and config[X_AXIS_FIELD] is None:
        raise ValueError('"x_axis": null is not a Crackle axis mapping (arrays with the legacy mapping have '
                         "no x_axis field)")
    config.setdefault(X_AXIS_FIELD, None)
    return config


def stream_axes(shape: Sequence[int], x_axis: Optional[str], order: str) -> tuple[int, ...]:
    """The chunk axes that are Crackle's x, y, z in that order (missing ones have length 1).

    ValueError for a chunk with more than 3 axes longer than 1.
    """
    shape = tuple(int(s) for s in shape)
    if x_axis is None and len(shape) <= 3:
        return tuple(range(len(shape)))
    axes = tuple(i for i, s in enumerate(shape) if s != 1)
    if len(axes) > 3:
        raise ValueError(
            f"the Crackle codec encodes chunks with at most 3 axes longer than 1; got chunk shape {shape}"
        )
    if x_axis is not None and order == "C":
        axes = axes[::-1]
    return axes


def stream_shape(shape: Sequence[int], x_axis: Optional[str], order: str) -> tuple[int, int, int]:
    """The (sx, sy, sz) of the stream of a chunk of ``shape``."""
    dims = [int(shape[a]) for a in stream_axes(shape, x_axis, order)]
    return tuple(dims + [1] * (3 - len(dims)))  # type: ignore[return-value]


def z_axis(shape: Sequence[int], x_axis: Optional[str], order: str) -> Optional[int]:
    """The chunk axis that is Crackle's z, or None if the stream has a single slice."""
    axes = stream_axes(shape, x_axis, order)
    return axes[2] if len(axes) == 3 and shape[axes[2]] > 1 else None


def memory_order(array: np.ndarray) -> str:
    """"F" for an array that is F- but not C-contiguous, else "C" (the order numcodecs chunks come in)."""
    return "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"


def to_stream(chunk: np.ndarray, x_axis: Optional[str], order: str) -> np.ndarray:
    """The chunk as the (sx, sy, sz) volume its stream holds: a view for a chunk contiguous in ``order``.

    For the "fastest" mapping the view is F-contiguous, so ``compress`` reads the chunk's own
    memory; legacy chunks keep their axes (and their memory order, which the stream records).
    """
    shape3 = stream_shape(chunk.shape, x_axis, order)
    if x_axis is None:
        return chunk.reshape(shape3, order=memory_order(chunk))
    fastest_first = chunk.T if order == "C" else chunk
    return fastest_first.reshape(shape3, order="F")


def to_chunk(volume: np.ndarray, shape: Sequence[int], x_axis: Optional[str], order: str) -> np.ndarray:
    """The inverse of ``to_stream``: the (sx, sy, nz) ``volume`` as a chunk of ``shape`` (its z axis of
    length nz). A view when ``volume`` is F-contiguous (as ``decode_chunk`` makes it)."""
    shape = tuple(int(s) for s in shape)
    if x_axis is None:
        return volume.reshape(shape, order=memory_order(volume))
    if order == "C":
        return volume.reshape(shape[::-1], order="F").T
    return volume.reshape(shape, order="F")


# ------------------------------------------------------------------------------- encode / decode

def encode_chunk(chunk: np.ndarray, x_axis: Optional[str], order: str, *, markov_model_order: int,
                 allow_pins: bool, optimize: bool = False) -> bytes:
    """The Crackle stream of a chunk (bool or integer, native byte order).

    Under the "fastest" mapping the chunk may be any view whose fastest axis is contiguous (a block
    of a larger volume): the core reads it in place, and the stream is the same as for a contiguous
    copy (its F bit is always set: the stream's volume is x fastest by construction).
    """
    if x_axis is None:
        if chunk.ndim > 3:
            stream_axes(chunk.shape, None, order)  # raises for more than 3 long axes
            chunk = np.squeeze(chunk, axis=tuple(i for i, s in enumerate(chunk.shape) if s == 1))
        return compress(chunk, allow_pins=allow_pins, markov_model_order=markov_model_order, optimize=optimize)
    _check_encode_options(allow_pins, markov_model_order, optimize)
    volume, _ = _normalize_input(to_stream(chunk, x_axis, order))
    return _compress_volume(volume, True, int(markov_model_order), bool(allow_pins), 1, bool(optimize))


def stream_header(data: Any) -> tuple[int, int, int, np.dtype, bool]:
    """(sx, sy, sz, dtype, fortran) of a stream, from its header alone."""
    return _crackle.layout(_as_buffer(data))


def check_stream_shape(data: Any, expected: tuple[int, int, int], what: str) -> tuple[int, int, int, np.dtype, bool]:
    """The stream's header fields; DecodeError unless its shape is ``expected`` (checked before
    any voxel is decoded, so a hostile header cannot make us allocate more than the chunk)."""
    fields = stream_header(data)
    if tuple(fields[:3]) != tuple(expected):
        raise DecodeError(
            f"the Crackle stream has shape {tuple(fields[:3])}, but {what} is stored as {tuple(expected)}"
        )
    return fields


def decode_chunk(data: Any, shape: Sequence[int], x_axis: Optional[str], order: str,
                 z_range: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Decode a stream into a chunk of ``shape`` (the stream's dtype; bool chunks come back as uint8).

    ``z_range=(z0, z1)`` decodes only those slices: the chunk's z axis (``z_axis``) then has length
    ``z1 - z0``. The slices are decoded straight into F order, so the result is a view of them.
    """
    expect = stream_shape(shape, x_axis, order)
    sx, sy, sz, dtype, _ = check_stream_shape(data, expect, f"a chunk of shape {tuple(shape)}")
    z0, z1 = (0, sz) if z_range is None else z_range
    volume = np.empty((sx, sy, z1 - z0), dtype=dtype, order="F")
    _crackle.decompress_into(_as_buffer(data), z0, z1, volume, 1)
    shape = list(shape)
    if z1 - z0 != sz:
        axis = z_axis(shape, x_axis, order)
        if axis is None:  # pragma: no cover - callers only pass z ranges for 3D streams
            raise ValueError("a z range needs a stream with more than one slice")
        shape[axis] = z1 - z0
    return to_chunk(volume, shape, x_axis, order)
