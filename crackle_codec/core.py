"""The Python API over the C++ core: compress, decompress, label queries, remap, header, verify."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any, Optional, Union

import numpy as np

from . import _crackle
from .errors import DecodeError, SliceOutOfRange

__all__ = [
    "Header",
    "compress",
    "decompress",
    "labels",
    "num_labels",
    "contains",
    "remap",
    "header",
    "verify",
]

BytesLike = Union[bytes, bytearray, memoryview, np.ndarray]

MAX_MARKOV_ORDER = 15  # the format's limit (4 bits); streams of any order up to it decode
# The encoder refuses markov orders whose model section would exceed this (see compress):
# 1 MiB, so orders up to 10 (a 640 KiB model) are written and 11..15 (2.5 MiB..671 MB) are not.
MAX_MARKOV_MODEL_BYTES = 1 << 20
MAX_WRITTEN_MARKOV_ORDER = 10


def markov_model_bytes(order: int) -> int:
    """Bytes of the markov model section of a stream of this order (``ceil(5 * 4**order / 8)``)."""
    return 0 if order == 0 else (5 * 4**order + 7) // 8
_LABEL_FORMATS = {0: "flat", 2: "pins"}
_CRACK_FORMATS = {0: "impermissible", 1: "permissible"}


@dataclasses.dataclass(frozen=True)
class Header:
    """The decoded header of a Crackle stream, with the byte size of every section.

    ``shape`` is ``(sx, sy, sz)`` as stored; ``order`` is the memory order the decoded array gets
    (``"F"`` or ``"C"``). ``stored_width`` is the byte width of each label value in the labels
    section. ``has_crcs`` is False for version 0 and for the 0.17.x version-1 form without CRCs.
    """

    version: int
    shape: tuple[int, int, int]
    dtype: np.dtype
    order: str
    label_format: str
    crack_format: str
    markov_model_order: int
    stored_width: int
    unsorted: bool
    remapped: bool
    has_crcs: bool
    header_bytes: int
    index_bytes: int
    label_bytes: int
    markov_model_bytes: int
    crack_code_bytes: int
    crc_bytes: int

    @property
    def voxels(self) -> int:
        """Number of voxels, ``sx * sy * sz``."""
        sx, sy, sz = self.shape
        return sx * sy * sz

    @property
    def nbytes(self) -> int:
        """Total stream length in bytes."""
        return (self.header_bytes + self.index_bytes + self.label_bytes + self.markov_model_bytes
                + self.crack_code_bytes + self.crc_bytes)


def _as_buffer(data: BytesLike) -> memoryview:
    """A contiguous, 1-byte-per-item view of ``data``; TypeError for anything else."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError(f"a Crackle stream must be bytes or a 1-D uint8 array, not {data.dtype} {data.shape}")
        data = np.ascontiguousarray(data)
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"a Crackle stream must be bytes-like, not {type(data).__name__}") from None
    if not view.contiguous:
        view = memoryview(view.tobytes())
    if view.itemsize != 1 or view.ndim != 1:
        view = view.cast("B")
    return view


def _info(data: BytesLike) -> tuple[memoryview, dict[str, Any]]:
    buf = _as_buffer(data)
    return buf, _crackle.info(buf)


def _verified_info(data: BytesLike) -> tuple[memoryview, dict[str, Any]]:
    """``_info`` after checking what a label query reads: the structure (header CRC8, index CRC,
    section lengths, the labels section's counts and keys) and the labels CRC (version 1 streams).
    The label queries and the chunk-level tools answer only from a labels section that passed."""
    buf = _as_buffer(data)
    return buf, _crackle.info(buf, True)


def _check_header_shape(data: BytesLike, shape: tuple[int, int, int]) -> None:
    """DecodeError unless the stream's header declares ``shape`` as (sx, sy, sz); reads the header
    alone (for callers that know the shape, e.g. a codec's chunk shape, before anything is
    allocated)."""
    got = tuple(_crackle.shape(_as_buffer(data)))
    if got != tuple(shape):
        raise DecodeError(f"header: the stream declares shape {got}, expected {tuple(shape)}")


def _check_max_voxels(buf: memoryview, max_voxels: Optional[int]) -> None:
    """DecodeError when the header claims more than ``max_voxels`` voxels (header read only)."""
    if max_voxels is None:
        return
    if isinstance(max_voxels, bool) or not isinstance(max_voxels, numbers.Integral):
        raise TypeError(f"max_voxels must be an int or None, not {type(max_voxels).__name__}")
    if max_voxels < 0:
        raise ValueError(f"max_voxels must be >= 0, got {max_voxels}")
    sx, sy, sz = _crackle.shape(buf)
    if sx * sy * sz > max_voxels:
        raise DecodeError(f"header: the stream claims {sx}x{sy}x{sz} = {sx * sy * sz} voxels, "
                          f"more than max_voxels={max_voxels}")


def _dtype_of(info: dict[str, Any]) -> np.dtype:
    kind = "i" if info["signed"] else "u"
    return np.dtype(f"<{kind}{info['data_width']}")


def _header_from_info(info: dict[str, Any]) -> Header:
    return Header(
        version=info["version"],
        shape=(info["sx"], info["sy"], info["sz"]),
        dtype=_dtype_of(info),
        order="F" if info["fortran"] else "C",
        label_format=_LABEL_FORMATS[info["label_format"]],
        crack_format=_CRACK_FORMATS[info["crack_format"]],
        markov_model_order=info["markov_order"],
        stored_width=info["stored_width"],
        unsorted=info["unsorted"],
        remapped=info["remapped"],
        has_crcs=info["has_crcs"],
        header_bytes=info["header_bytes"],
        index_bytes=info["index_bytes"],
        label_bytes=info["label_bytes"],
        markov_model_bytes=info["model_bytes"],
        crack_code_bytes=info["crack_bytes"],
        crc_bytes=info["crc_bytes"],
    )


# ----------------------------------------------------------------------------------- encoding

def _normalize_input(labels: Any) -> tuple[np.ndarray, bool]:
    """Check dtype and rank; return the (sx, sy, sz) array and the F bit."""
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels must be a numpy.ndarray, not {type(labels).__name__}")
    dtype = labels.dtype
    if dtype.kind in "ui" and not dtype.isnative:
        labels = labels.astype(dtype.newbyteorder("="))  # the core reads native-endian integers
        dtype = labels.dtype
    if dtype == np.bool_:
        labels = labels.view(np.uint8)
    elif dtype.kind not in "ui":
        raise TypeError(
            f"Crackle encodes integer or bool label arrays; got dtype {dtype} "
            "(cast explicitly if the values are integral labels)"
        )
    if labels.ndim == 0:
        raise ValueError("labels must have 1, 2 or 3 dimensions, got a 0-d array")
    while labels.ndim > 3 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.ndim > 3:
        raise ValueError(f"labels must have at most 3 dimensions (beyond trailing length-1 axes), got shape {labels.shape}")

    # The F bit records the memory order the caller used, as the reference does: an array that is
    # both C- and F-contiguous (1-wide, empty) counts as Fortran.
    if labels.flags.f_contiguous:
        fortran = True
    elif labels.flags.c_contiguous:
        fortran = False
    else:
        strides = [abs(s) for s, n in zip(labels.strides, labels.shape) if n > 1]
        fortran = len(strides) > 1 and strides[0] < strides[-1]

    while labels.ndim < 3:
        labels = labels[..., np.newaxis]
    # The format's limits, checked before the input is copied: u32 dimensions and component ids
    # that are u32 within a slice.
    sx, sy, _ = labels.shape
    if max(labels.shape) >= 2**32 or sx * sy >= 2**32:
        raise ValueError(f"shape {labels.shape} exceeds the format's limits (each axis < 2^32, sx*sy < 2^32)")
    return labels, fortran


MAX_THREADS = 1024


def _check_parallel(parallel: Any) -> int:
    if (isinstance(parallel, bool) or not isinstance(parallel, numbers.Integral)
            or not 0 <= parallel <= MAX_THREADS):
        raise ValueError(f"parallel must be an int in 0..{MAX_THREADS} (0 = all cores), got {parallel!r}")
    return int(parallel)


def compress(
    labels: np.ndarray,
    *,
    allow_pins: bool = False,
    markov_model_order: int = 0,
    parallel: int = 1,
    optimize: bool = False,
) -> bytes:
    """Compress a 2D or 3D integer label array into a Crackle stream (format version 1).

    Args:
        labels: an integer (``uint8``..``uint64``, ``int8``..``int64``) or bool array of shape
            ``(sx, sy)`` or ``(sx, sy, sz)``; trailing length-1 axes beyond the third are dropped,
            a 1-D array is treated as ``(n, 1, 1)``. Any memory layout works, views included. The
            header records whether the input was Fortran- or C-ordered so that ``decompress``
            returns the same layout. Bool arrays are stored as ``uint8``.
        allow_pins: write the PINS label format when it applies (unsigned data, ``sz > 1`` and a
            volume with more equal neighbours than not) and is smaller than FLAT labels; usually
            the case for volumes whose labels run through many slices. Otherwise FLAT labels are
            written.
        markov_model_order: 0 for plain 2-bit crack codes, 1..10 to code them with a finite-context
            model of that order (smaller, slower; 5 is a good choice). The model section holds
            ``4**order`` entries; orders 11..15, whose models (2.5 MiB up to 671 MB) exceed
            ``MAX_MARKOV_MODEL_BYTES`` (1 MiB) and which other decoders may not read, are refused.
        parallel: number of threads for the C++ encoder; 0 means all cores.
        optimize: choose, for this volume, the label format (FLAT or PINS) and the markov order
            (0..10) that give the smallest stream. Leave ``allow_pins`` and ``markov_model_order``
            at their defaults with it. The stream is never larger than any fixed choice of those
            two options, and every decoder of format version 1 reads it.

    Returns:
        The stream as ``bytes``.

    Raises:
        TypeError: for float, complex, object or other non-integer arrays, or a non-array.
        ValueError: for a bad rank or a bad option value.
    """
    if not isinstance(allow_pins, (bool, np.bool_)):
        raise TypeError(f"allow_pins must be a bool, got {allow_pins!r}")
    if not isinstance(optimize, (bool, np.bool_)):
        raise TypeError(f"optimize must be a bool, got {optimize!r}")
    if (isinstance(markov_model_order, bool) or not isinstance(markov_model_order, numbers.Integral)
            or not 0 <= markov_model_order <= MAX_MARKOV_ORDER):
        raise ValueError(f"markov_model_order must be an int in 0..{MAX_MARKOV_ORDER}, got {markov_model_order!r}")
    if markov_model_bytes(int(markov_model_order)) > MAX_MARKOV_MODEL_BYTES:
        raise ValueError(
            f"markov_model_order={int(markov_model_order)} writes a {markov_model_bytes(int(markov_model_order)):,}-byte "
            f"model section (4**order entries, whatever the volume), over the {MAX_MARKOV_MODEL_BYTES:,}-byte limit; "
            f"use an order up to {MAX_WRITTEN_MARKOV_ORDER} (5 is a good choice), or optimize=True")
    if optimize and (allow_pins or markov_model_order):
        raise ValueError("optimize=True chooses the label format and markov order itself: "
                         "leave allow_pins and markov_model_order at their defaults")
    threads = _check_parallel(parallel)
    volume, fortran = _normalize_input(labels)
    volume = np.asfortranarray(volume)
    return _crackle.compress(volume, fortran, int(markov_model_order), bool(allow_pins), threads, bool(optimize))


# ----------------------------------------------------------------------------------- decoding

def _z_range(z: Union[None, int, slice], sz: int) -> tuple[int, int]:
    if z is None:
        return 0, sz
    if isinstance(z, slice):
        if z.step not in (None, 1):
            raise ValueError(f"z slices must have step 1, got {z.step}")
        start, stop, _ = z.indices(sz)
        return start, max(start, stop)
    if isinstance(z, bool) or not isinstance(z, numbers.Integral):
        raise TypeError(f"z must be None, an int or a slice, not {type(z).__name__}")
    zi = int(z)
    if zi < 0:
        zi += sz
    if not 0 <= zi < sz:
        raise SliceOutOfRange(f"z={z} is out of range: the stream's header declares sz={sz}")
    return zi, zi + 1


def decompress(data: BytesLike, *, z: Union[None, int, slice] = None, parallel: int = 1,
               max_voxels: Optional[int] = None) -> np.ndarray:
    """Decode a Crackle stream into a label array.

    The result always has shape ``(sx, sy, sz)`` as stored: a 2D input of shape ``(sx, sy)``
    comes back as ``(sx, sy, 1)`` (as with the reference ``crackle.decompress``). The dtype and
    memory order (C or Fortran) are those recorded in the header.

    Args:
        data: the stream (bytes, bytearray, memoryview or 1-D uint8 array).
        z: None for the whole volume, an int for one slice, or a ``slice`` with step 1 for a range
            of slices; only those slices are decoded (the result keeps a z axis).
        parallel: number of threads; 0 means all cores.
        max_voxels: for untrusted input: refuse (DecodeError) a stream whose header claims more
            than this many voxels (``sx * sy * sz``, whatever ``z`` selects), before anything is
            allocated. None: no limit (a consistent stream may declare a huge volume in a few
            bytes; see docs/robustness.md).

    Raises:
        DecodeError: the stream is malformed, or larger than ``max_voxels``; the message names the
            failing section. Every CRC of a version-1 stream that covers the decoded slices is
            checked. An int ``z`` outside the stream's slices raises ``SliceOutOfRange``, a
            DecodeError that is also an IndexError.
    """
    threads = _check_parallel(parallel)
    buf = _as_buffer(data)
    _check_max_voxels(buf, max_voxels)
    z0, z1 = _z_range(z, _crackle.shape(buf)[2])
    return _crackle.decompress(buf, z0, z1, threads)


def verify(data: BytesLike, *, parallel: int = 1, max_voxels: Optional[int] = None) -> None:
    """Check a stream completely without producing the volume; raise DecodeError on any fault.

    Version-1 streams: the header CRC8, the crack-index CRC32C, the labels CRC32C and every
    slice's CRC32C (which needs each slice's connected components, so this costs about as much
    as a decode). Version-0 streams carry no CRCs: every structural check is still made.
    ``max_voxels`` refuses (DecodeError) a stream whose header claims more voxels, before any work.
    """
    threads = _check_parallel(parallel)
    buf = _as_buffer(data)
    _check_max_voxels(buf, max_voxels)
    buf, _ = _info(buf)
    _crackle.verify(buf, threads)


def header(data: BytesLike) -> Header:
    """Read the header and section sizes of a stream.

    Checks the header CRC8, the crack-index CRC32C, that the section lengths add up to the
    stream's length, and the labels section's structure. It does not check the labels CRC, the
    per-slice CRCs or the crack codes (``verify`` does).
    """
    _, info = _info(data)
    return _header_from_info(info)


# ------------------------------------------------------------------------------ label queries

def _stored_values(buf: memoryview, info: dict[str, Any], offset: int, count: int,
                   sign_extend: bool = True) -> np.ndarray:
    """Label values stored at ``offset`` as the volume's dtype (sign-extended when signed)."""
    width = info["stored_width"]
    raw = np.frombuffer(buf, dtype=f"<u{width}", count=count, offset=offset).astype(np.uint64)
    dtype = _dtype_of(info)
    if info["signed"] and sign_extend:
        values = raw.astype(np.int64)
        if width < 8:
            shift = 64 - 8 * width
            values = (values << shift) >> shift
        return values.astype(dtype)
    return raw.astype(dtype)


def _label_values(buf: memoryview, info: dict[str, Any]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The labels section's values in the volume's dtype: (unique entries, PINS background or None).

    A single-label volume decodes to its stored value zero-extended, as the reference's Python
    decoder does (FORMAT 10.6); decompress follows the same rule, and so do labels() and remap().
    """
    width = info["stored_width"]
    pins = info["label_format"] == 2
    raw = np.frombuffer(buf, dtype=f"<u{width}", count=info["num_unique"], offset=info["unique_offset"])
    bg_raw = np.frombuffer(buf, dtype=f"<u{width}", count=1, offset=info["label_offset"]) if pins else raw[:0]
    sign_extend = np.unique(np.concatenate([bg_raw, raw])).size != 1
    values = _stored_values(buf, info, info["unique_offset"], info["num_unique"], sign_extend)
    bg = _stored_values(buf, info, info["label_offset"], 1, sign_extend) if pins else None
    return values, bg


def _raw_labels(buf: memoryview, info: dict[str, Any]) -> np.ndarray:
    values, bg = _label_values(buf, info)
    return values if bg is None else np.concatenate([bg, values])


def labels(data: BytesLike) -> np.ndarray:
    """The sorted distinct label values of the volume, in its dtype, read from the labels section.

    The labels section is checked before it is read (its structure, and its CRC32C in version-1
    streams), so a corrupted section raises DecodeError instead of answering wrongly. Crack codes
    and slice CRCs are not checked (use ``verify`` for that). For a stream written by the reference
    after ``remap``/``mask`` the list may include values that no voxel holds any more, exactly as
    the reference reports them.
    """
    buf, info = _verified_info(data)
    if info["sx"] * info["sy"] * info["sz"] == 0:
        return np.zeros(0, dtype=_dtype_of(info))
    return np.unique(_raw_labels(buf, info))


def num_labels(data: BytesLike) -> int:
    """Number of distinct labels (``len(labels(data))``), from the labels section only.

    Like ``labels``, it checks the labels section (and its CRC) but not the crack codes or slice
    CRCs (use ``verify``).
    """
    return int(labels(data).size)


def contains(data: BytesLike, label: int) -> bool:
    """Whether ``label`` is one of the stream's labels, from the labels section only.

    Like ``labels``, it checks the labels section (and its CRC) but not the crack codes or slice
    CRCs (use ``verify``).
    """
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (numbers.Integral, np.integer)):
        raise TypeError(f"label must be an integer, not {type(label).__name__}")
    values = labels(data)
    info = np.iinfo(values.dtype)
    if not info.min <= int(label) <= info.max:
        return False
    i = int(np.searchsorted(values, values.dtype.type(label)))
    return i < values.size and int(values[i]) == int(label)


# ---------------------------------------------------------------------------------------- remap

def _stored_width_for(values: np.ndarray, signed: bool, data_width: int) -> int:
    """Smallest stored width for ``values`` (FORMAT 2.5 and the corrected signed rule of 5.3)."""
    if values.size == 0:
        return 1
    vmax = int(values.max())
    vmin = int(values.min())
    if signed and vmin < 0:
        return data_width
    for width in (1, 2, 4, 8):
        limit = 1 << (8 * width - (1 if signed else 0))
        if vmax < limit:
            return width
    return 8


def _to_stored(values: np.ndarray, width: int) -> np.ndarray:
    """Two's-complement representation of ``values`` in ``width`` bytes, as uint64."""
    as_u64 = values.astype(np.int64).view(np.uint64) if values.dtype.kind == "i" else values.astype(np.uint64)
    if width < 8:
        as_u64 = as_u64 & np.uint64((1 << (8 * width)) - 1)
    return as_u64


def _check_mapping(mapping: Mapping, dtype: np.dtype) -> dict[int, int]:
    """``mapping`` as ``{int: int}``, every key and value an integer of ``dtype``'s range.

    TypeError for a key or value that is not an integer (floats, strings, None, bools); ValueError
    for one outside the dtype. Every entry is checked, whether or not the stream holds its key:
    a key that can never match is a mistake, not something to skip.
    """
    info = np.iinfo(dtype)
    clean: dict[int, int] = {}
    for old, new in mapping.items():
        if isinstance(old, (bool, np.bool_)) or not isinstance(old, (numbers.Integral, np.integer)):
            hint = (" (keys read from JSON are strings: convert them, e.g. {int(k): v for k, v in mapping.items()})"
                    if isinstance(old, (str, bytes)) else "")
            raise TypeError(f"mapping keys must be integers, got {old!r} ({type(old).__name__}){hint}")
        if isinstance(new, (bool, np.bool_)) or not isinstance(new, (numbers.Integral, np.integer)):
            raise TypeError(f"mapping values must be integers; {old!r} maps to {new!r} ({type(new).__name__})")
        if not info.min <= int(old) <= info.max:
            raise ValueError(f"mapping key {old} is not a value of the volume's dtype {dtype}")
        if not info.min <= int(new) <= info.max:
            raise ValueError(f"label {old} maps to {new}, which does not fit the volume's dtype {dtype}")
        clean[int(old)] = int(new)
    return clean


def _apply_mapping(values: np.ndarray, mapping: dict[int, int], preserve_missing_labels: bool) -> np.ndarray:
    present = values.tolist()
    if not preserve_missing_labels:
        missing = sorted(set(v for v in present if v not in mapping))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise ValueError(f"{len(missing)} label(s) of the stream are missing from the mapping: {shown} "
                             "(pass preserve_missing_labels=True to keep them unchanged)")
    return np.array([mapping.get(v, v) for v in present], dtype=values.dtype).reshape(values.shape)


def remap(data: BytesLike, mapping: Mapping[int, int], *, preserve_missing_labels: bool = False) -> bytes:
    """Rewrite the label values of a stream without touching its crack codes.

    Every label ``v`` becomes ``mapping[v]``. Several labels may map to one value (a merge). A label
    missing from ``mapping`` raises ValueError (naming the missing labels) unless
    ``preserve_missing_labels`` is True, in which case it keeps its value. Keys and values must be
    integers (TypeError otherwise: convert string keys read from JSON first) within the volume's
    dtype (ValueError otherwise), checked for every entry; ``preserve_missing_labels`` must be a bool.

    FLAT streams come back sorted and deduplicated (merged labels share one entry), so ``labels``
    stays exact. PINS streams keep one entry per original label, so a merge leaves duplicates and
    sets the header's U/M bits as the format prescribes. The header CRC8 and the labels CRC32C are
    recomputed; everything else is copied byte for byte. The labels CRC of the input is checked
    first, so a corrupted labels section is never silently re-signed.
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a dict-like Mapping, not {type(mapping).__name__}")
    if not isinstance(preserve_missing_labels, (bool, np.bool_)):
        raise TypeError(f"preserve_missing_labels must be a bool, got {preserve_missing_labels!r}")
    buf, info = _verified_info(data)
    mapping = _check_mapping(mapping, _dtype_of(info))
    stream = bytes(buf)
    if info["sx"] * info["sy"] * info["sz"] == 0:
        return stream

    ssb = info["stored_width"]
    label_offset = info["label_offset"]
    label_end = label_offset + info["label_bytes"]
    n = info["num_unique"]
    signed = bool(info["signed"])
    old_values, old_bg = _label_values(buf, info)

    if info["label_format"] == 0:
        new_values = _apply_mapping(old_values, mapping, preserve_missing_labels)
        width = _stored_width_for(new_values, signed, info["data_width"])
        stored = _to_stored(new_values, width)
        unique, inverse = np.unique(stored, return_inverse=True)
        keys = np.frombuffer(buf, dtype=f"<u{info['key_width']}", count=info["num_components"],
                             offset=info["keys_offset"])
        new_keys = inverse.astype(np.uint64)[keys]
        key_width = _width_of_count(unique.size)
        cc_per_grid = stream[info["cc_per_grid_offset"]:info["keys_offset"]]
        section = b"".join([
            np.uint64(unique.size).astype("<u8").tobytes(),
            unique.astype(f"<u{width}").tobytes(),
            cc_per_grid,
            new_keys.astype(f"<u{key_width}").tobytes(),
        ])
        unsorted, duplicated = False, False
    else:
        both = _apply_mapping(np.concatenate([old_bg, old_values]), mapping, preserve_missing_labels)
        width = max(_stored_width_for(both, signed, info["data_width"]), 1)
        stored = _to_stored(both, width)
        rest = stream[info["unique_offset"] + n * ssb:label_end]
        section = b"".join([
            stored[:1].astype(f"<u{width}").tobytes(),
            np.uint64(n).astype("<u8").tobytes(),
            stored[1:].astype(f"<u{width}").tobytes(),
            rest,
        ])
        unsorted = bool(np.any(stored[2:] < stored[1:-1])) if n > 1 else False
        duplicated = np.unique(stored).size != stored.size

    return _crackle.replace_labels(buf, section, width, unsorted, duplicated)


def _width_of_count(value: int) -> int:
    for width in (1, 2, 4):
        if value < (1 << (8 * width)):
            return width
    return 8
