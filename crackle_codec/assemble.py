"""Assembling streams along z without decoding voxels: zstack, zsplit, zshatter; streams built
directly (full, zeros, ones); and array_equal, which compares two streams a few slices at a time.

Slices are independent apart from the labels section and the markov model (FORMAT 1 and 5), so
a z range of a FLAT stream is its crack codes, index entries and slice CRCs for those slices,
with the keys of their components and a label list condensed to the labels they use. Stacking
FLAT streams without a model concatenates the same parts under one merged label list. PINS
streams, streams with a markov model (stacking only) and streams without CRCs are decoded and
encoded again, ``Z_CHUNK`` slices at a time.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from . import _crackle
from .core import BytesLike, _check_parallel, _stored_width_for, _to_stored, _width_of_count, compress, decompress
from .operations import _integer_dtype, _sorted_unique, _Stream, _z_chunks

__all__ = ["zstack", "zsplit", "zshatter", "full", "zeros", "ones", "array_equal"]


def _log2(width: int) -> int:
    return {1: 0, 2: 1, 4: 2, 8: 3}[width]


def _header(version: int, format_field: int, shape: tuple[int, int, int], label_bytes: int) -> bytes:
    sx, sy, sz = shape
    head = bytearray(b"crkl")
    head.append(version)
    head += format_field.to_bytes(2, "little")
    for n in (sx, sy, sz):
        head += int(n).to_bytes(4, "little")
    head.append(31)  # log2(grid_size): one grid per slice
    head += int(label_bytes).to_bytes(4 if version == 0 else 8, "little")
    if version == 1:
        head.append(_crackle.crc8(bytes(head[5:28])))
    return bytes(head)


def _format_field(data_width: int, stored_width: int, permissible: bool, fortran: bool, signed: bool,
                  markov_order: int = 0, pins: bool = False, unsorted: bool = False, remapped: bool = False) -> int:
    return (_log2(data_width) | _log2(stored_width) << 2 | int(permissible) << 4 | (2 if pins else 0) << 5
            | int(fortran) << 7 | int(signed) << 8 | markov_order << 9 | int(unsorted) << 13 | int(remapped) << 14)


def _u32(data: np.ndarray) -> bytes:
    return np.asarray(data, dtype="<u4").tobytes()


def _crc(data: bytes) -> bytes:
    return int(_crackle.crc32c(data)).to_bytes(4, "little")


class _Parts:
    """Where a checked stream's per-slice parts lie (FORMAT 1, 3, 5.1)."""

    def __init__(self, s: _Stream):
        info = s.info
        self.s = s
        _crackle.check_labels_crc(s.buf)  # its parts are re-signed: never launder a bad section
        sz = info["sz"]
        index_at = info["header_bytes"]
        self.index = np.frombuffer(s.buf, dtype="<u4", count=sz, offset=index_at)
        codes_at = info["label_offset"] + info["label_bytes"] + info["model_bytes"]
        self.code_offsets = np.concatenate([[0], np.cumsum(self.index, dtype=np.uint64)]) + codes_at
        self.has_crcs = bool(info["has_crcs"])
        self.trailer = codes_at + info["crack_bytes"]
        self.cc_width = _cc_width(info["sx"] * info["sy"])
        if not s.pins and not s.empty:
            self.counts = np.frombuffer(s.buf, dtype=f"<u{self.cc_width}", count=sz, offset=info["cc_per_grid_offset"])
            self.cc_offsets = np.concatenate([[0], np.cumsum(self.counts, dtype=np.uint64)]).astype(np.int64)
            self.keys = np.frombuffer(s.buf, dtype=f"<u{info['key_width']}", count=info["num_components"],
                                      offset=info["keys_offset"])
            self.stored = np.frombuffer(s.buf, dtype=f"<u{info['stored_width']}", count=info["num_unique"],
                                        offset=info["unique_offset"])

    def codes(self, z0: int, z1: int) -> memoryview:
        return self.s.buf[int(self.code_offsets[z0]):int(self.code_offsets[z1])]

    def slice_crcs(self, z0: int, z1: int) -> memoryview:
        return self.s.buf[self.trailer + 4 + 4 * z0:self.trailer + 4 + 4 * z1]


def _cc_width(pixels: int) -> int:
    # W(sx*sy) as the decoder computes it (FORMAT 5): the smallest width whose range holds it.
    for width in (1, 2, 4):
        if pixels < (1 << (8 * width)):
            return width
    return 8


# ------------------------------------------------------------------------------ splitting

def _sub_stream(p: _Parts, z0: int, z1: int) -> bytes:
    """Slices [z0, z1) of a FLAT stream, without decoding them."""
    s = p.s
    info = s.info
    version = info["version"]
    shape = (info["sx"], info["sy"], z1 - z0)
    ff = _format_field(info["data_width"], info["stored_width"], bool(info["crack_format"]), s.fortran,
                       bool(info["signed"]), info["markov_order"])
    if z1 == z0:
        return _header(version, ff, shape, 0)
    c0, c1 = int(p.cc_offsets[z0]), int(p.cc_offsets[z1])
    used, keys = _sorted_unique(p.keys[c0:c1], return_inverse=True)
    stored = p.stored[used].astype(np.uint64)
    if info["unsorted"] or info["remapped"]:  # a remapped input: condense by value too
        stored, again = _sorted_unique(stored, return_inverse=True)
        keys = again[keys]
    width = info["stored_width"]
    section = b"".join([
        np.uint64(stored.size).astype("<u8").tobytes(),
        stored.astype(f"<u{width}").tobytes(),
        p.counts[z0:z1].tobytes(),
        keys.astype(f"<u{_width_of_count(stored.size)}").tobytes(),
    ])
    index = p.index[z0:z1].tobytes()
    model = s.buf[info["label_offset"] + info["label_bytes"]:info["label_offset"] + info["label_bytes"] + info["model_bytes"]]
    parts = [_header(version, ff, shape, len(section)), index]
    if p.has_crcs:
        parts.append(_crc(index))
    parts += [section, model, p.codes(z0, z1)]
    if p.has_crcs:
        parts += [_crc(section), p.slice_crcs(z0, z1)]
    return b"".join(parts)


def _recoded_range(s: _Stream, z0: int, z1: int, threads: int = 1) -> bytes:
    """Slices [z0, z1) of a stream, decoded and encoded again in its own label format and order."""
    volume = decompress(s.buf, z=slice(z0, z1), parallel=threads)
    return compress(volume, allow_pins=s.pins, markov_model_order=s.info["markov_order"], parallel=threads)


def _z_range(s: _Stream, z0: int, z1: int) -> bytes:
    if s.pins:
        return _recoded_range(s, z0, z1)
    return _sub_stream(_Parts(s), z0, z1)


def _check_z(z: Any, sz: int) -> int:
    if isinstance(z, (bool, np.bool_)) or not isinstance(z, (numbers.Integral, np.integer)):
        raise TypeError(f"z must be an integer, not {type(z).__name__}")
    z = int(z)
    if z < 0:
        z += sz
    if not 0 <= z < sz:
        raise IndexError(f"z={z} is out of range for a volume with sz={sz}")
    return z


def zsplit(binary: BytesLike, z: int) -> tuple[bytes, bytes, bytes]:
    """Split a stream into the slices before ``z``, slice ``z`` and the slices after it, without
    decoding FLAT streams (PINS streams are decoded and encoded again, part by part)."""
    s = _Stream(binary)
    sz = s.shape[2]
    z = _check_z(z, sz)
    if s.pins:
        return (_recoded_range(s, 0, z), _recoded_range(s, z, z + 1), _recoded_range(s, z + 1, sz))
    p = _Parts(s)
    return (_sub_stream(p, 0, z), _sub_stream(p, z, z + 1), _sub_stream(p, z + 1, sz))


def zshatter(binary: BytesLike) -> list[bytes]:
    """One stream per z slice (see ``zsplit``)."""
    s = _Stream(binary)
    sz = s.shape[2]
    if s.pins:
        return [_recoded_range(s, z, z + 1) for z in range(sz)]
    p = _Parts(s)
    return [_sub_stream(p, z, z + 1) for z in range(sz)]


# ------------------------------------------------------------------------------- stacking

def _stream_of(image: Any) -> bytes:
    from .array import CrackleArray

    if isinstance(image, CrackleArray):
        return image.binary
    if isinstance(image, np.ndarray) and not (image.dtype == np.uint8 and image.ndim == 1):
        return compress(image)
    return image


def _flat_m0(s: _Stream, crack_format: int, threads: int) -> list[_Stream]:
    """A stream as FLAT, order-0, CRC-carrying parts with the given crack format."""
    info = s.info
    if (not s.pins and info["markov_order"] == 0 and info["has_crcs"] and info["crack_format"] == crack_format):
        return [s]
    parts = []
    sx, sy, sz = s.shape
    for z0, z1 in _z_chunks(sz, sx * sy * s.dtype.itemsize):
        volume = np.asfortranarray(decompress(s.buf, z=slice(z0, z1), parallel=threads))
        parts.append(_Stream(_crackle.compress(volume, s.fortran, 0, False, threads, crack_format=crack_format)))
    return parts


def zstack(images: Sequence[Union[np.ndarray, Any, bytes]]) -> bytes:
    """One stream of the given images (arrays, CrackleArrays or streams) stacked along z.

    They must share ``sx`` and ``sy`` and the kind of dtype (unsigned or signed); the result has
    the widest dtype and the first image's memory order, FLAT labels and no markov model. FLAT
    streams without a model are joined without decoding; others are decoded and encoded again
    ``Z_CHUNK`` slices at a time, so memory stays bounded by a few slices plus the result.
    """
    if isinstance(images, (bytes, bytearray, memoryview, np.ndarray)) or not isinstance(images, Sequence):
        images = list(images) if not isinstance(images, (bytes, bytearray, memoryview, np.ndarray)) else [images]
    streams = [_Stream(_stream_of(img)) for img in images]
    if not streams:
        raise ValueError("zstack needs at least one image")
    sx, sy, _ = streams[0].shape
    for st in streams:
        if st.shape[:2] != (sx, sy):
            raise ValueError(f"images must share sx and sy: {streams[0].shape} and {st.shape}")
    kinds = {st.dtype.kind for st in streams}
    if len(kinds) > 1:
        raise TypeError("zstack cannot mix signed and unsigned images")
    dtype = max((st.dtype for st in streams), key=lambda d: d.itemsize)
    signed = dtype.kind == "i"
    fortran = streams[0].fortran
    sz = sum(st.shape[2] for st in streams)
    if sz >= 2**32:
        raise ValueError(f"the stack has {sz} slices; the format allows fewer than 2^32")
    if sx * sy * sz == 0:
        return _header(1, _format_field(dtype.itemsize, 1, False, fortran, signed), (sx, sy, sz), 0)
    streams = [st for st in streams if st.shape[2] > 0]
    ready = [st for st in streams if not st.pins and st.info["markov_order"] == 0 and st.info["has_crcs"]]
    crack_format = ready[0].info["crack_format"] if ready else 0
    parts: list[_Parts] = []
    for st in streams:
        parts += [_Parts(x) for x in _flat_m0(st, crack_format, 1)]

    values = [p.s.values().astype(dtype) for p in parts]
    every = np.concatenate(values)
    width = _stored_width_for(every, signed, dtype.itemsize)
    union = _sorted_unique(_to_stored(every, width))
    key_width = _width_of_count(union.size)
    keys = []
    for p, v in zip(parts, values):
        table = np.searchsorted(union, _to_stored(v, width)).astype(f"<u{key_width}")
        keys.append(table[p.keys].tobytes())
    cc_width = _cc_width(sx * sy)
    section = b"".join([np.uint64(union.size).astype("<u8").tobytes(), union.astype(f"<u{width}").tobytes()]
                       + [p.counts.astype(f"<u{cc_width}").tobytes() for p in parts] + keys)
    index = b"".join(p.index.tobytes() for p in parts)
    ff = _format_field(dtype.itemsize, width, bool(crack_format), fortran, signed)
    return b"".join([_header(1, ff, (sx, sy, sz), len(section)), index, _crc(index), section]
                    + [p.codes(0, p.s.shape[2]) for p in parts] + [_crc(section)]
                    + [p.slice_crcs(0, p.s.shape[2]) for p in parts])


# ------------------------------------------------------------------------- uniform volumes

def _shape3(shape: Any) -> tuple[int, int, int]:
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (int(shape),)
    try:
        dims = [int(n) if isinstance(n, (numbers.Integral, np.integer)) and not isinstance(n, (bool, np.bool_))
                else None for n in shape]
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, not {type(shape).__name__}") from None
    if None in dims or any(n < 0 for n in dims):
        raise ValueError(f"shape must hold non-negative integers, got {shape!r}")
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"shape must have 1 to 3 dimensions (beyond trailing 1s), got {shape!r}")
    dims += [1] * (3 - len(dims))
    if max(dims) >= 2**32 or dims[0] * dims[1] >= 2**32:
        raise ValueError(f"shape {tuple(dims)} exceeds the format's limits")
    return dims[0], dims[1], dims[2]


def _full_stream(shape: Any, fill_value: int, dtype: Any = None, order: str = "C") -> bytes:
    sx, sy, sz = _shape3(shape)
    dt = np.dtype(np.uint64) if dtype is None else _integer_dtype(dtype)
    if isinstance(fill_value, (bool, np.bool_)) or not isinstance(fill_value, (numbers.Integral, np.integer)):
        raise TypeError(f"fill_value must be an integer, not {type(fill_value).__name__} {fill_value!r}")
    info = np.iinfo(dt)
    if not info.min <= int(fill_value) <= info.max:
        raise ValueError(f"fill_value {fill_value} does not fit {dt}")
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', got {order!r}")
    signed = dt.kind == "i"
    value = np.array([fill_value], dtype=dt)
    width = _stored_width_for(value, signed, dt.itemsize)
    ff = _format_field(dt.itemsize, width, False, order == "F", signed)
    if sx * sy * sz == 0:
        return _header(1, ff, (sx, sy, sz), 0)
    cc_width = _cc_width(sx * sy)
    section = b"".join([np.uint64(1).astype("<u8").tobytes(), _to_stored(value, width).astype(f"<u{width}").tobytes(),
                        np.ones(sz, dtype=f"<u{cc_width}").tobytes(), bytes(sz)])
    yw = _cc_width(sy + 1)  # W(sy + 1): the BOC row count field; no rows, no moves
    code = (yw).to_bytes(4, "little") + bytes(yw)
    index = _u32(np.full(sz, len(code)))
    zero_crc = _crc(bytes(4 * sx * sy))
    return b"".join([_header(1, ff, (sx, sy, sz), len(section)), index, _crc(index), section, code * sz,
                     _crc(section), zero_crc * sz])


def full(shape: Any, fill_value: int, dtype: Any = None, order: str = "C"):
    """A CrackleArray of ``shape`` whose every voxel is ``fill_value`` (like ``numpy.full``),
    built directly (nothing is compressed). ``dtype`` defaults to uint64."""
    from .array import CrackleArray

    return CrackleArray(_full_stream(shape, fill_value, dtype, order))


def zeros(shape: Any, dtype: Any = None, order: str = "C"):
    """``full(shape, 0, dtype, order)``."""
    return full(shape, 0, dtype, order)


def ones(shape: Any, dtype: Any = None, order: str = "C"):
    """``full(shape, 1, dtype, order)``."""
    return full(shape, 1, dtype, order)


# ---------------------------------------------------------------------------- comparison

def array_equal(binary1: BytesLike, binary2: BytesLike, parallel: int = 0) -> bool:
    """Whether two streams hold the same voxel values (whatever their encodings, dtypes or
    memory orders; values compare as numbers). Both are decoded slice by slice into runs, with
    their CRCs checked, and compared run by run: no voxel array is allocated."""
    threads = _check_parallel(parallel)
    a, b = _Stream(binary1), _Stream(binary2)
    if a.shape != b.shape:
        return False
    if a.buf == b.buf:
        from .core import verify

        verify(a.buf, parallel=threads)
        return True
    return _crackle.streams_equal(a.buf, b.buf, threads)  # run by run (ext/label_compare.hpp)
