"""Rewriting a stream's labels and header without decoding voxels: remap, mask, scalar arithmetic,
astype, refit, renumber and the memory-order flags; and the rewrites that must decode
(apply_binary_mask, recompress, reencode, mode_pooling_2x2x1), which work a few slices at a time.

Label rewrites read the values of the labels section (FORMAT 5), compute new ones with numpy, and
hand the new head of the section to the C++ core, which copies the counts and keys (or pin
records), crack index, model, crack codes and slice CRCs byte for byte and writes a new header and
labels CRC. The label list keeps one entry per original label (a merge leaves duplicates, flagged
by the header's U/M bits, as the reference's remap does), except that mask and mask_except
condense FLAT streams as the reference does: merged labels share one entry and the keys are
renumbered. Stored widths are the narrowest that hold the new values.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any, Optional

import numpy as np

from . import _crackle
from .core import (
    BytesLike,
    _as_buffer,
    _check_parallel,
    _dtype_of,
    _label_values,
    _sorted_unique,
    _stored_width_for,
    _to_stored,
    _width_of_count,
    compress,
    decompress,
)

__all__ = [
    "mask",
    "mask_except",
    "apply_binary_mask",
    "add_scalar",
    "subtract_scalar",
    "multiply_scalar",
    "floordiv_scalar",
    "astype",
    "refit",
    "renumber",
    "recompress",
    "reencode",
    "ascontiguousarray",
    "asfortranarray",
    "mode_pooling_2x2x1",
]

# Slices decoded at a time by the functions that must decode: bounded memory (at most about
# CHUNK_BYTES of decoded voxels, and at least one slice), few C++ calls.
Z_CHUNK = 16
CHUNK_BYTES = 4 << 20


class _Stream:
    """A checked stream (header, layout, labels structure) and its label values."""

    __slots__ = ("data", "buf", "info", "dtype", "pins", "empty")

    def __init__(self, data: BytesLike):
        self.data = data
        self.buf = _as_buffer(data)
        self.info = _crackle.info(self.buf)
        self.dtype = _dtype_of(self.info)
        self.pins = self.info["label_format"] == 2
        self.empty = self.info["sx"] * self.info["sy"] * self.info["sz"] == 0

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.info["sx"], self.info["sy"], self.info["sz"])

    @property
    def fortran(self) -> bool:
        return bool(self.info["fortran"])

    def values(self) -> np.ndarray:
        """Every stored label value, in the volume's dtype: PINS background first, then the
        unique list (an empty array for an empty volume)."""
        if self.empty:
            return np.zeros(0, dtype=self.dtype)
        info = self.info
        if not info["signed"]:  # no sign extension to decide: read the entries directly
            stored = np.frombuffer(self.buf, dtype=f"<u{info['stored_width']}", count=info["num_unique"],
                                   offset=info["unique_offset"])
            if self.pins:  # the background comes first, before the 8-byte count
                bg = np.frombuffer(self.buf, dtype=f"<u{info['stored_width']}", count=1, offset=info["label_offset"])
                stored = np.concatenate([bg, stored])
            return stored.astype(self.dtype)
        values, bg = _label_values(self.buf, info)
        return values if bg is None else np.concatenate([bg, values])

    def distinct(self) -> np.ndarray:
        return _sorted_unique(self.values())


# ------------------------------------------------------------------------------------ dtypes

def _is_int(x: Any) -> bool:
    return not isinstance(x, (bool, np.bool_)) and isinstance(x, (numbers.Integral, np.integer))


def _check_int(x: Any, what: str) -> int:
    if not _is_int(x):
        raise TypeError(f"{what} must be an integer, not {type(x).__name__} {x!r}")
    return int(x)


def _fits(dtype: np.dtype, lo: int, hi: int) -> bool:
    info = np.iinfo(dtype)
    return info.min <= lo and hi <= info.max


def _smallest_dtype(kind: str, lo: int, hi: int, at_least: int = 1) -> np.dtype:
    """The narrowest ``kind`` ('u' or 'i') integer dtype of at least ``at_least`` bytes holding
    [lo, hi]; ValueError if none does."""
    for width in (1, 2, 4, 8):
        if width >= at_least:
            dtype = np.dtype(f"{kind}{width}")
            if _fits(dtype, lo, hi):
                return dtype
    kind_name = "unsigned" if kind == "u" else "signed"
    raise ValueError(f"a label value does not fit any {kind_name} integer dtype (values in [{lo}, {hi}])")


def _widened(dtype: np.dtype, new_values) -> np.ndarray:
    """``new_values`` (Python ints or an integer array) as an array of ``dtype``, widened (same
    kind) when a value needs it."""
    if len(new_values):
        if isinstance(new_values, np.ndarray):
            lo, hi = int(new_values.min()), int(new_values.max())
        else:
            lo, hi = min(new_values), max(new_values)
        if not _fits(dtype, lo, hi):
            dtype = _smallest_dtype(dtype.kind, lo, hi, dtype.itemsize)
    if isinstance(new_values, np.ndarray):
        return new_values.astype(dtype)
    return np.array(new_values, dtype=dtype)


def _as_values(values: Iterable, what: str) -> list[int]:
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "ui":
            raise TypeError(f"{what} must be integers, got an array of {values.dtype}")
        return [int(v) for v in values.ravel().tolist()]
    if _is_int(values):
        return [int(values)]
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{what} must be an iterable of integers, not {type(values).__name__}") from None
    return [_check_int(v, what[:-1] if what.endswith("s") else what) for v in items]


# --------------------------------------------------------------------------- the rewriter

def _writable_view(data: Any) -> Optional[memoryview]:
    if isinstance(data, (bytes, str)):
        return None
    try:
        view = memoryview(data)
    except TypeError:
        return None
    if view.readonly or not view.contiguous:
        return None
    return view.cast("B") if (view.itemsize != 1 or view.ndim != 1) else view


def _rewrite(s: _Stream, values: np.ndarray, *, fortran: Optional[bool] = None, in_place: bool = False,
             condense: bool = False):
    """The stream with label values ``values`` (one per entry of ``s.values()``, in any integer
    dtype, which becomes the volume's dtype) and memory order ``fortran`` (None: unchanged).

    One entry per original label (merges leave duplicates, flagged by the header's U/M bits),
    except with ``condense`` on FLAT streams: merged labels then share one entry (the keys are
    renumbered), as the reference's mask does.
    """
    dtype = np.dtype(values.dtype).newbyteorder("=")
    signed = dtype.kind == "i"
    info = s.info
    fortran = s.fortran if fortran is None else bool(fortran)
    if s.empty:
        return _crackle.rewrite_stream(s.buf, b"", 0, 0, dtype.itemsize, 1, signed, fortran, False, False, False)

    buf = s.buf
    width = _stored_width_for(values, signed, dtype.itemsize)
    n = info["num_unique"]
    label_end = info["label_offset"] + info["label_bytes"]
    # The new section: `head`, then the input's bytes [keep_from, label_end) (counts and keys, or
    # the pin records), which the C++ side copies straight from the input.
    if s.pins or in_place or not condense:
        if in_place:
            width = max(width, info["stored_width"])  # keep the layout if the values allow it
        stored = _to_stored(values, width)
        body = stored[1:] if s.pins else stored
        increasing = body.size < 2 or bool((body[1:] > body[:-1]).all())
        if increasing:  # distinct; only a PINS background can repeat an entry
            unsorted = False
            duplicated = s.pins and bool((body == stored[0]).any())
        else:
            unsorted = bool((body[1:] < body[:-1]).any())
            ordered = np.sort(stored)
            duplicated = bool((ordered[1:] == ordered[:-1]).any())
        head = b"".join(([stored[:1].astype(f"<u{width}").tobytes()] if s.pins else [])
                        + [int(n).to_bytes(8, "little"), body.astype(f"<u{width}").tobytes()])
        keep_from = info["unique_offset"] + n * info["stored_width"]
    else:
        stored = _to_stored(values, width)
        unsorted = duplicated = False
        keep_from = info["cc_per_grid_offset"]
        tail = b""
        if n > 1 and not (stored[1:] > stored[:-1]).all():
            unique, inverse = _sorted_unique(stored, return_inverse=True)
            if unique.size == n:  # distinct but unsorted (e.g. wrapped by a subtraction): keys stay
                unsorted = True
            else:  # merged labels share one entry: renumber the keys
                stored = unique
                kw = info["key_width"]
                old = np.frombuffer(buf, dtype=f"<u{kw}", count=info["num_components"], offset=info["keys_offset"])
                tail = b"".join([buf[info["cc_per_grid_offset"]:info["keys_offset"]],
                                 inverse.astype(f"<u{_width_of_count(unique.size)}")[old].tobytes()])
                keep_from = label_end
        head = b"".join([int(stored.size).to_bytes(8, "little"), stored.astype(f"<u{width}").tobytes(), tail])

    out = None
    if in_place and len(head) + label_end - keep_from == info["label_bytes"]:
        out = _writable_view(s.data)
    result = _crackle.rewrite_stream(buf, head, keep_from, label_end, dtype.itemsize, width, signed, fortran,
                                     unsorted, duplicated, True, out)
    return s.data if out is not None else result


def remap_values(data: BytesLike, fn: Callable[[np.ndarray], list[int]], in_place: bool = False):
    """``remap``'s work: ``fn`` maps the stored values (volume dtype) to Python ints."""
    s = _Stream(data)
    if s.empty:
        return bytes(s.buf)
    # The labels CRC before ``fn`` sees the values: a corrupted section is a DecodeError, never a
    # label "missing" from the mapping (the rewrite checks it again, as every rewrite does).
    _crackle.check_labels_crc(s.buf)
    values = s.values()
    return _rewrite(s, _widened(s.dtype, fn(values)), in_place=in_place)


# ------------------------------------------------------------------------------ masking

def _mask(data: BytesLike, labels: Iterable, value: int, in_place: bool, parallel: int, keep: bool):
    _check_parallel(parallel)
    value = _check_int(value, "value")
    chosen = _as_values(labels, "labels")
    s = _Stream(data)
    if s.empty:
        return bytes(s.buf)
    values = s.values()
    info = np.iinfo(s.dtype)
    inside = np.array([v for v in chosen if info.min <= v <= info.max], dtype=s.dtype)
    hit = np.isin(values, inside)
    if keep:
        hit = ~hit
    if not hit.any():
        new = values
    else:
        dtype = s.dtype if _fits(s.dtype, value, value) else _smallest_dtype(s.dtype.kind, value, value, s.dtype.itemsize)
        new = np.where(hit, np.array(value, dtype=dtype), values.astype(dtype))
    return _rewrite(s, new, in_place=in_place, condense=True)


def mask(binary: BytesLike, labels: Iterable[int], value: int = 0, in_place: bool = False, parallel: int = 0):
    """Set every voxel whose label is in ``labels`` to ``value``, from the labels section alone.

    Labels not in the volume are ignored. A ``value`` beyond the volume's dtype widens it (as
    ``remap`` does). ``in_place``: see ``remap``.
    """
    return _mask(binary, labels, value, in_place, parallel, keep=False)


def mask_except(binary: BytesLike, labels: Iterable[int], value: int = 0, in_place: bool = False, parallel: int = 0):
    """Set every voxel whose label is *not* in ``labels`` to ``value``, from the labels section alone."""
    return _mask(binary, labels, value, in_place, parallel, keep=True)


# ----------------------------------------------------------------------------- arithmetic

def _modular(s: _Stream, fn: Callable[[np.ndarray], np.ndarray]) -> bytes:
    """``fn`` applied to the values as uint64 two's complement, wrapped to the volume's width
    (the arithmetic of numpy arrays of the volume's dtype)."""
    if s.empty:
        return bytes(s.buf)
    values = s.values()
    width = s.dtype.itemsize
    as_u64 = values.astype(np.int64).view(np.uint64) if s.dtype.kind == "i" else values.astype(np.uint64)
    wrapped = fn(as_u64).astype(f"u{width}").view(s.dtype)
    return _rewrite(s, wrapped)


def add_scalar(binary: BytesLike, scalar: int) -> bytes:
    """Add ``scalar`` to every voxel, from the labels section alone; values wrap around in the
    volume's dtype as numpy integer arithmetic does (``uint8`` 250 + 10 = 4)."""
    k = _check_int(scalar, "scalar")
    return _modular(_Stream(binary), lambda v: v + np.uint64(k % 2**64))


def subtract_scalar(binary: BytesLike, scalar: int) -> bytes:
    """Subtract ``scalar`` from every voxel (wrapping, see ``add_scalar``)."""
    k = _check_int(scalar, "scalar")
    return _modular(_Stream(binary), lambda v: v + np.uint64(-k % 2**64))


def multiply_scalar(binary: BytesLike, scalar: int) -> bytes:
    """Multiply every voxel by ``scalar`` (wrapping, see ``add_scalar``)."""
    k = _check_int(scalar, "scalar")
    return _modular(_Stream(binary), lambda v: v * np.uint64(k % 2**64))


def floordiv_scalar(binary: BytesLike, scalar: int) -> bytes:
    """Floor-divide every voxel by ``scalar``. ZeroDivisionError for 0; ValueError for a
    negative divisor of an unsigned volume (the quotients would be negative)."""
    k = _check_int(scalar, "scalar")
    if k == 0:
        raise ZeroDivisionError("Cannot divide by zero.")
    s = _Stream(binary)
    if s.empty:
        return bytes(s.buf)
    values = s.values()
    if s.dtype.kind == "u":
        if k < 0:
            raise ValueError(f"cannot floor-divide an unsigned volume by a negative number ({k})")
        return _rewrite(s, (values // np.uint64(k)).astype(s.dtype) if k < 2**64 else np.zeros_like(values))
    if not -(2**63) <= k < 2**63:
        return _rewrite(s, np.where(values.astype(np.int64) * (1 if k > 0 else -1) < 0, -1, 0).astype(s.dtype))
    return _rewrite(s, np.floor_divide(values.astype(np.int64), np.int64(k)).astype(s.dtype))


# --------------------------------------------------------------------------------- dtypes

_ORDERS = ("C", "F", "K", "A")
_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


def _integer_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"not a numpy dtype: {dtype!r}") from None
    if dt.kind not in "ui":
        raise TypeError(f"Crackle volumes have integer dtypes; {dt} is not one (cast the decoded array instead)")
    return dt.newbyteorder("=")


def _order_flag(order: str, current: bool) -> bool:
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {_ORDERS}, got {order!r}")
    return {"C": False, "F": True}.get(order, current)


def astype(binary: BytesLike, dtype: Any, order: str = "K", casting: str = "unsafe") -> bytes:
    """The volume in another integer dtype (and memory order), from the labels section alone.

    ``casting="unsafe"`` converts every label as ``numpy.ndarray.astype`` would (truncating
    wider values, wrapping between signed and unsigned). Any other casting refuses (TypeError) a
    conversion that would change a label's value. ``order``: "C" or "F" sets the decoded array's
    memory order, "K"/"A" keep it.
    """
    dt = _integer_dtype(dtype)
    if casting not in _CASTINGS:
        raise ValueError(f"casting must be one of {_CASTINGS}, got {casting!r}")
    s = _Stream(binary)
    return _astype(s, dt, _order_flag(order, s.fortran), casting)


def _astype(s: _Stream, dt: np.dtype, fortran: bool, casting: str = "unsafe") -> bytes:
    values = None
    if casting != "unsafe":
        values = s.values()
        if values.size and not _fits(dt, int(values.min()), int(values.max())):
            raise TypeError(f"Specified dtype {dt} cannot hold the labels in [{int(values.min())}, "
                            f"{int(values.max())}] under casting type {casting!r}")
    if dt == s.dtype and fortran == s.fortran:
        return s.data if isinstance(s.data, bytes) else bytes(s.buf)
    if dt.kind == "u" and s.dtype.kind == "u" and (s.info["stored_width"] <= s.dtype.itemsize
                                                  or dt.itemsize <= s.dtype.itemsize):
        # Unsigned to unsigned: decoders truncate stored values to the data width exactly as
        # astype does, so only the header changes (unless stored values are wider than the old
        # width, which truncated them, and the new one would not).
        return _header_only(s, dt, fortran)
    if values is None:
        values = s.values()
    return _rewrite(s, values.astype(dt), fortran=fortran)


def _fitting_dtype(s: _Stream, lo: int, hi: int) -> np.dtype:
    kind = s.dtype.kind
    if kind == "u" and lo < 0:
        raise ValueError(f"labels from {lo} do not fit an unsigned volume")
    return _smallest_dtype(kind, lo, hi)


def refit(binary: BytesLike) -> bytes:
    """The volume in the narrowest dtype of its kind (unsigned/signed) that holds every label."""
    s = _Stream(binary)
    values = s.values()
    if values.size == 0:
        return _astype(s, np.dtype(f"{s.dtype.kind}1"), s.fortran)
    return _astype(s, _fitting_dtype(s, int(values.min()), int(values.max())), s.fortran)


def renumber(binary: BytesLike, start: int = 0, parallel: int = 0) -> tuple[bytes, dict[int, int]]:
    """Relabel the volume ``start, start + 1, ...`` in ascending label order, in the narrowest
    dtype of its kind that holds the new labels. Returns ``(stream, {old label: new label})``."""
    start = _check_int(start, "start")
    _check_parallel(parallel)
    s = _Stream(binary)
    values = s.values()
    distinct = _sorted_unique(values)
    if distinct.size == 0:
        return bytes(s.buf), {}
    dtype = _fitting_dtype(s, start, start + distinct.size - 1)
    new = (np.searchsorted(distinct, values).astype(np.int64) + start).astype(dtype)
    mapping = dict(zip(distinct.tolist(), range(start, start + distinct.size)))
    return _rewrite(s, new), mapping


def _set_order(binary: BytesLike, fortran: bool) -> bytes:
    s = _Stream(binary)
    if s.fortran == fortran:
        return binary if isinstance(binary, bytes) else bytes(s.buf)
    return _header_only(s, s.dtype, fortran)


def _header_only(s: _Stream, dtype: np.dtype, fortran: bool) -> bytes:
    """The stream with another data width and memory order: the labels section is kept (stored
    values wider than the new width are truncated by decoders, as numpy's astype truncates)."""
    info = s.info
    at = info["label_offset"]
    return _crackle.rewrite_stream(s.buf, b"", at, at + info["label_bytes"], dtype.itemsize, info["stored_width"],
                                   info["signed"], fortran, info["unsorted"], info["remapped"], True)


def ascontiguousarray(binary: BytesLike) -> bytes:
    """The stream with its decoded memory order set to C (row-major); only the header changes."""
    return _set_order(binary, False)


def asfortranarray(binary: BytesLike) -> bytes:
    """The stream with its decoded memory order set to Fortran (column-major); only the header changes."""
    return _set_order(binary, True)


# ------------------------------------------------------------------- rewrites that decode

def _z_chunks(sz: int, slice_bytes: int = 0):
    """[z0, z1) ranges covering 0..sz: Z_CHUNK slices, fewer when slices are large."""
    step = max(1, min(Z_CHUNK, CHUNK_BYTES // max(1, slice_bytes)))
    for z0 in range(0, sz, step):
        yield z0, min(sz, z0 + step)


def recompress(binary: BytesLike, parallel: int = 0) -> bytes:
    """Decode and encode again (same label format and markov order): after a remap or mask this
    removes the boundaries between components that now share a label."""
    threads = _check_parallel(parallel)
    s = _Stream(binary)
    volume = decompress(s.buf, parallel=threads)
    return compress(volume, allow_pins=s.pins, markov_model_order=s.info["markov_order"], parallel=threads)


def reencode(binary: BytesLike, markov_model_order: int, parallel: int = 0) -> bytes:
    """The stream with its crack codes coded with a markov model of another order (0 = none),
    without decoding voxels: each slice's difference symbols are read with the old coder and
    written with the new one. Labels, BOC indexes and CRCs are kept (the labels CRC is checked)."""
    if not _is_int(markov_model_order) or not 0 <= int(markov_model_order) <= 15:
        raise ValueError(f"markov_model_order must be an int in 0..15, got {markov_model_order!r}")
    threads = _check_parallel(parallel)
    s = _Stream(binary)
    if s.info["markov_order"] == int(markov_model_order) or s.empty:
        return binary if isinstance(binary, bytes) else bytes(s.buf)
    return _crackle.reencode(s.buf, int(markov_model_order), threads)


def apply_binary_mask(input_binary: BytesLike, mask_binary: BytesLike, parallel: int = 0) -> bytes:
    """Voxels where the mask stream is 0 become 0; the others keep their label. Decodes and
    encodes a few slices at a time (``_z_chunks``), so memory stays bounded by a few slices."""
    from .assemble import zstack

    threads = _check_parallel(parallel)
    a, m = _Stream(input_binary), _Stream(mask_binary)
    if a.shape != m.shape:
        raise ValueError(f"the image {a.shape} and the mask {m.shape} must have the same shape")
    if a.empty:
        return bytes(a.buf)
    parts = []
    sx, sy, sz = a.shape
    for z0, z1 in _z_chunks(sz, sx * sy * a.dtype.itemsize):
        image = decompress(a.buf, z=slice(z0, z1), parallel=threads)
        keep = decompress(m.buf, z=slice(z0, z1), parallel=threads)
        image[keep == 0] = 0
        parts.append(compress(image, parallel=threads))
    return zstack(parts)


def _pool_slices(image: np.ndarray, sparse: bool) -> np.ndarray:
    """2x2x1 mode of a (sx, sy, n) block, in the block's memory order (C++, ext/mode_pooling.hpp):
    of the pixels a = (0,0), b = (1,0), c = (0,1), d = (1,1) of a block, a if it equals b or c,
    else b if it equals c, else d (the reference's tie rule). ``sparse``: 0 equals nothing, and a
    0 result takes the first non-zero pixel. Blocks cut by an odd edge take their first pixel."""
    sx, sy, n = image.shape
    order = "F" if image.flags.f_contiguous else "C"
    out = np.empty(((sx + 1) // 2, (sy + 1) // 2, n), dtype=image.dtype, order=order)
    _crackle.mode_pool(image, out, bool(sparse))
    return out


def mode_pooling_2x2x1(binary: BytesLike, sparse: bool = False, parallel: int = 0) -> bytes:
    """Downsample by 2 in x and y (not z) with the reference's mode pooling; see ``_pool_slices``.
    Works ``Z_CHUNK`` slices at a time."""
    from .assemble import zstack

    if not isinstance(sparse, (bool, np.bool_)):
        raise TypeError(f"sparse must be a bool, got {sparse!r}")
    threads = _check_parallel(parallel)
    s = _Stream(binary)
    sx, sy, sz = s.shape
    if s.empty:
        out = np.zeros(((sx + 1) // 2, (sy + 1) // 2, sz), dtype=s.dtype, order="F" if s.fortran else "C")
        return compress(out)
    parts = []
    for z0, z1 in _z_chunks(sz, sx * sy * s.dtype.itemsize):
        pooled = _pool_slices(decompress(s.buf, z=slice(z0, z1), parallel=threads), bool(sparse))
        parts.append(compress(pooled, parallel=threads))
    return zstack(parts)
