"""The Python API over the C++ core: compress, decompress, label queries, remap, header, verify."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any, Optional, Union

import numpy as np

from . import _crackle
from .errors import DecodeError, MissingLabelsError, SliceOutOfRange

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

    # The reference's field names (crackle.headers.CrackleHeader), for code written for it.
    sx = property(lambda self: self.shape[0], doc="Size along x.")
    sy = property(lambda self: self.shape[1], doc="Size along y.")
    sz = property(lambda self: self.shape[2], doc="Size along z (number of slices).")
    data_width = property(lambda self: self.dtype.itemsize, doc="Bytes per decoded voxel.")
    stored_data_width = property(lambda self: self.stored_width, doc="Bytes per stored label value.")
    stored_dtype = property(lambda self: np.dtype(f"<{self.dtype.kind}{self.stored_width}"),
                            doc="dtype of the stored label values.")
    signed = property(lambda self: self.dtype.kind == "i", doc="Whether the labels are signed.")
    is_sorted = property(lambda self: not self.unsorted, doc="The unique-label list is sorted.")
    is_remapped = property(lambda self: self.remapped, doc="Labels were remapped after compression.")
    fortran_order = property(lambda self: self.order == "F", doc="The decoded array is Fortran-ordered.")
    format_version = property(lambda self: self.version, doc="Format version, 0 or 1.")
    num_label_bytes = property(lambda self: self.label_bytes, doc="Size of the labels section in bytes.")
    num_markov_model_bytes = property(lambda self: self.markov_model_bytes, doc="Size of the markov model.")


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
    _check_encode_options(allow_pins, markov_model_order, optimize)
    threads = _check_parallel(parallel)
    volume, fortran = _normalize_input(labels)
    return _compress_volume(volume, fortran, int(markov_model_order), bool(allow_pins), threads, bool(optimize))


def _check_encode_options(allow_pins: Any, markov_model_order: Any, optimize: Any) -> None:
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


def _reads_in_place(volume: np.ndarray) -> bool:
    """Whether the core can encode the (sx, sy, sz) ``volume`` without a copy: x contiguous, y and z
    strides whole non-negative numbers of elements (any view of a C- or F-ordered array along its
    fastest axis, e.g. a Zarr chunk that is a block of the caller's volume), aligned."""
    item = volume.itemsize
    return volume.flags.aligned and all(
        n <= 1 or (stride >= 0 and stride % item == 0 and (axis > 0 or stride == item))
        for axis, (n, stride) in enumerate(zip(volume.shape, volume.strides)))


def _compress_volume(volume: np.ndarray, fortran: bool, markov_model_order: int, allow_pins: bool, threads: int,
                     optimize: bool) -> bytes:
    """Encode a normalized (sx, sy, sz) volume (``_normalize_input``) with checked options; ``fortran``
    is the header's F bit. Views are read in place: copying an 8 MB block first costs about a
    quarter of its encode (docs/zarr.md)."""
    if not _reads_in_place(volume):
        volume = np.require(volume, requirements=["F", "A"])  # a copy, aligned (buffers off the wire may not be)
    return _crackle.compress(volume, fortran, markov_model_order, allow_pins, threads, optimize)


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


def decompress(binary: BytesLike, label: Optional[int] = None, parallel: int = 1, crop: bool = False,
               verify: bool = True, *, z: Union[None, int, slice] = None,
               max_voxels: Optional[int] = None) -> np.ndarray:
    """Decode a Crackle stream into a label array, or one label's binary image.

    The result always has shape ``(sx, sy, sz)`` as stored: a 2D input of shape ``(sx, sy)``
    comes back as ``(sx, sy, 1)`` (as with the reference ``crackle.decompress``). The dtype and
    memory order (C or Fortran) are those recorded in the header.

    Args:
        data: the stream (bytes, bytearray, memoryview or 1-D uint8 array).
        z: None for the whole volume, an int for one slice, or a ``slice`` with step 1 for a range
            of slices; only those slices are decoded (the result keeps a z axis).
        parallel: number of threads; 0 means all cores.
        label: decode only this label, as a bool array (see ``decoding.decompress_label``): only
            the slices holding it are decoded. ``crop`` then crops the result in z to them, and
            ``verify=False`` skips the CRC checks.
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
    if label is not None:
        from .decoding import decompress_label

        _check_max_voxels(_as_buffer(binary), max_voxels)
        return decompress_label(binary, label, parallel=parallel, crop=crop, verify=verify, z=z)
    threads = _check_parallel(parallel)
    buf = _as_buffer(binary)
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


def header(binary: BytesLike, ignore_crc_check: bool = False) -> Header:
    """Read the header and section sizes of a stream.

    Checks the header CRC8, the crack-index CRC32C and that the section lengths add up to the
    stream's length, and the labels section's structure. It does not check the labels CRC, the
    per-slice CRCs or the crack codes (``verify`` does). ``ignore_crc_check=True`` skips the
    header CRC8 and the crack-index CRC32C (the structure is still checked).
    """
    if ignore_crc_check:
        from .queries import with_fixed_index_crcs

        binary = with_fixed_index_crcs(binary)
    _, info = _info(binary)
    return _header_from_info(info)


# ------------------------------------------------------------------------------ label queries

def _stored_values(buf: memoryview, info: dict[str, Any], offset: int, count: int,
                   sign_extend: bool = True) -> np.ndarray:
    """Label values stored at ``offset`` as the volume's dtype (sign-extended when signed)."""
    width = info["stored_width"]
    raw = np.frombuffer(buf, dtype=f"<u{width}", count=count, offset=offset)
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
    sign_extend = False  # only signed values extend, and only when the volume has two distinct values
    if info["signed"]:
        stored = np.concatenate([bg_raw, raw])
        sign_extend = stored.size > 1 and not bool((stored == stored[0]).all())
    values = _stored_values(buf, info, info["unique_offset"], info["num_unique"], sign_extend)
    bg = _stored_values(buf, info, info["label_offset"], 1, sign_extend) if pins else None
    return values, bg


def _sorted_unique(values: np.ndarray, return_inverse: bool = False):
    """``np.unique`` by sorting (numpy 2's hash-based unique is ~20x slower on a few thousand
    labels, and label lists are what every rewrite works on)."""
    order = np.argsort(values, kind="stable") if return_inverse else None
    ordered = values[order] if return_inverse else np.sort(values)
    first = np.ones(ordered.size, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    unique = ordered[first]
    if not return_inverse:
        return unique
    inverse = np.empty(values.size, dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return unique, inverse


def labels(binary: BytesLike) -> np.ndarray:
    """The sorted distinct label values of the volume, in its dtype, read from the labels section.

    The labels section is checked before it is read (its structure, and its CRC32C in version-1
    streams), so a corrupted section raises DecodeError instead of answering wrongly. Crack codes
    and slice CRCs are not checked (use ``verify`` for that). For a stream written by the reference
    after ``remap``/``mask`` the list may include values that no voxel holds any more, exactly as
    the reference reports them.
    """
    return _crackle.sorted_labels(_as_buffer(binary))  # ext/label_list.hpp


def num_labels(binary: BytesLike) -> int:
    """Number of distinct labels (``len(labels(data))``), from the labels section only.

    Like ``labels``, it checks the labels section (and its CRC) but not the crack codes or slice
    CRCs (use ``verify``).
    """
    return int(labels(binary).size)


def contains(binary: BytesLike, label: int) -> bool:
    """Whether ``label`` is one of the stream's labels, from the labels section only.

    Like ``labels``, it checks the labels section (and its CRC) but not the crack codes or slice
    CRCs (use ``verify``).
    """
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (numbers.Integral, np.integer)):
        raise TypeError(f"label must be an integer, not {type(label).__name__}")
    values = labels(binary)
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


def _check_mapping_keys(mapping: Mapping, dtype: np.dtype, keys: Optional[np.ndarray]) -> None:
    """TypeError for a key that is not an integer (floats, strings, None, bools), ValueError for one
    outside ``dtype``. Every key is checked, whether or not the stream holds it: a key that can
    never match is a mistake, not something to skip. ``keys``: the keys as an integer array when
    they are known to be plain integers (checked by range alone)."""
    info = np.iinfo(dtype)
    if keys is not None:
        if keys.size and (int(keys.min()) < info.min or int(keys.max()) > info.max):
            bad = next(int(k) for k in keys.tolist() if not info.min <= k <= info.max)
            raise ValueError(f"mapping key {bad} is not a value of the volume's dtype {dtype}")
        return
    for old in mapping:
        if isinstance(old, (bool, np.bool_)) or not isinstance(old, (numbers.Integral, np.integer)):
            hint = (" (keys read from JSON are strings: convert them, e.g. {int(k): v for k, v in mapping.items()})"
                    if isinstance(old, (str, bytes)) else "")
            raise TypeError(f"mapping keys must be integers, got {old!r} ({type(old).__name__}){hint}")
        if not info.min <= int(old) <= info.max:
            raise ValueError(f"mapping key {old} is not a value of the volume's dtype {dtype}")


def _missing_labels(missing: list[int]) -> MissingLabelsError:
    shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
    return MissingLabelsError(f"{len(missing)} label(s) of the stream are missing from the mapping: {shown} "
                              "(pass preserve_missing_labels=True to keep them unchanged)")


def _apply_mapping(values: np.ndarray, mapping: Mapping, preserve_missing_labels: bool) -> Union[list[int], np.ndarray]:
    """``mapping`` applied to each of ``values``, as Python ints or an integer array (the one
    mapping validation: keys by ``_check_mapping_keys``, values must be integers).

    Value ranges are left to the caller: remap widens the volume's dtype when a value needs it.
    """
    arrays = _crackle.int_dict_arrays(mapping) if isinstance(mapping, dict) and mapping else None
    _check_mapping_keys(mapping, values.dtype, None if arrays is None else arrays[0])
    fast = _apply_mapping_vectorized(values, mapping, preserve_missing_labels, arrays)
    if fast is not None:
        return fast
    out = []
    missing = []
    for value in values.tolist():
        if value in mapping:
            new = mapping[value]
        elif preserve_missing_labels:
            new = value
        else:
            missing.append(value)
            continue
        if type(new) is not int and (isinstance(new, (bool, np.bool_))
                                     or not isinstance(new, (numbers.Integral, np.integer))):
            raise TypeError(f"mapping values must be integers; {value} maps to {new!r} ({type(new).__name__})")
        out.append(int(new))
    if missing:
        raise _missing_labels(sorted(set(missing)))
    return out


def _apply_mapping_vectorized(values: np.ndarray, mapping: Mapping, preserve_missing_labels: bool,
                              arrays: Optional[tuple[np.ndarray, np.ndarray]]) -> Optional[np.ndarray]:
    """The common case of ``_apply_mapping`` (a dict of Python or numpy integers) with numpy
    lookups instead of one dict lookup per label; None for anything else (the general loop then
    decides, and raises the errors)."""
    if not isinstance(mapping, dict) or not mapping or values.dtype.kind not in "ui":
        return None
    if arrays is not None:  # Python ints within int64: the usual dict
        k, v = arrays
    else:
        keys, vals = list(mapping.keys()), list(mapping.values())
        for items in (keys, vals):
            if not all(t is int or (isinstance(t, type) and issubclass(t, np.integer)) for t in set(map(type, items))):
                return None
        try:
            k, v = np.array(keys), np.array(vals)
        except (OverflowError, ValueError, TypeError):
            return None
    if k.dtype.kind not in "ui" or v.dtype.kind not in "ui":
        return None  # beyond 64 bits, or mixed signs past int64: object arrays
    common = np.result_type(values.dtype, k.dtype, v.dtype)
    if common.kind not in "ui":
        return None  # uint64 next to a signed type: no integer type holds both
    if k.size > 1 and not (k[1:] > k[:-1]).all():  # a dict built from sorted labels needs no sort
        order = np.argsort(k, kind="stable")
        k, v = k[order], v[order]
    k, v = k.astype(common, copy=False), v.astype(common, copy=False)
    wide = values.astype(common, copy=False)
    at = np.searchsorted(k, wide)
    np.minimum(at, k.size - 1, out=at)
    found = k[at] == wide
    if not found.all():
        if not preserve_missing_labels:
            raise _missing_labels(np.unique(values[~found]).tolist())
        return np.where(found, v[at], wide)
    return v[at]


def remap(data: BytesLike, mapping: Mapping[int, int], preserve_missing_labels: bool = False,
          in_place: bool = False, parallel: int = 0) -> Union[bytes, bytearray, memoryview, np.ndarray]:
    """Rewrite the label values of a stream without touching its crack codes.

    Every label ``v`` becomes ``mapping[v]``. Several labels may map to one value (a merge). A label
    missing from ``mapping`` raises ``MissingLabelsError`` (a KeyError and a ValueError, naming the
    missing labels) unless ``preserve_missing_labels`` is True, in which case it keeps its value.
    Keys must be integers of the volume's dtype (TypeError otherwise: convert string keys read from
    JSON first; ValueError for one outside the dtype), checked for every entry; values must be
    integers; ``preserve_missing_labels`` must be a bool. A new value that does not fit the
    volume's dtype widens it, as the reference does (uint16 -> uint32 ..., int8 -> int16 ...);
    ValueError if no dtype of the volume's kind holds it (a negative value in an unsigned volume,
    or beyond 64 bits).

    The label list keeps one entry per original label, as the reference's does: a merge leaves
    duplicates and an unsorted list, which the header's U/M bits flag as the format prescribes
    (``labels`` still reports each value once). The header CRC8 and the labels CRC32C are
    recomputed; everything else is copied byte for byte. The labels CRC of the input is checked
    first, so a corrupted labels section is never silently re-signed.

    ``in_place=True`` writes the result into ``data`` itself and returns it when ``data`` is a
    writable buffer (bytearray, writable memoryview or uint8 array) and the stream keeps its
    size (one entry per original label, same widths); otherwise a new ``bytes`` is returned.
    ``bytes`` objects are never modified. ``parallel`` is accepted for compatibility (labels-only
    work is single-threaded).
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a dict-like Mapping, not {type(mapping).__name__}")
    if not isinstance(preserve_missing_labels, (bool, np.bool_)):
        raise TypeError(f"preserve_missing_labels must be a bool, got {preserve_missing_labels!r}")
    _check_parallel(parallel)
    if not in_place and isinstance(mapping, dict) and mapping:
        # The common case, a dict of Python ints, in one C++ pass (None: the general path decides).
        arrays = _crackle.int_dict_arrays(mapping)
        if arrays is not None:
            out = _crackle.remap_stream(_as_buffer(data), arrays[0], arrays[1], bool(preserve_missing_labels))
            if out is not None:
                return out
    from .operations import remap_values  # operations builds on this module

    return remap_values(data, lambda values: _apply_mapping(values, mapping, preserve_missing_labels), in_place)


def _width_of_count(value: int) -> int:
    for width in (1, 2, 4):
        if value < (1 << (8 * width)):
            return width
    return 8
