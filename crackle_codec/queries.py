"""Stream queries answered from the header, the index and the labels section: label ranges,
min/max, the labels of a range of slices, the stream's sections and per-slice crack codes.

Nothing here decodes a crack code except ``labels_for_z_range`` on PINS streams (whose labels
cannot be told apart per slice without it), which decodes only the slices asked for.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _crackle
from .core import BytesLike, _as_buffer, _dtype_of, _info, _label_values, _sorted_unique, labels

__all__ = [
    "contains_range",
    "min",
    "max",
    "labels_for_z_range",
    "nbytes",
    "components",
    "component_lengths",
    "crack_codes",
]

_min, _max = min, max  # the builtins, shadowed by this module's queries


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    return int(value)


def index_values(buf: memoryview, info: dict[str, Any]) -> np.ndarray:
    """The value of every label index of the C++ core (label_slices.hpp): FLAT, the unique list;
    PINS, the records' labels and then the background."""
    if info["sx"] * info["sy"] * info["sz"] == 0:  # an empty volume has no labels section
        return np.zeros(0, dtype=_dtype_of(info))
    values, bg = _label_values(buf, info)
    return values if bg is None else np.concatenate([values, bg])


def with_fixed_index_crcs(binary: BytesLike) -> bytes:
    """A copy of the stream whose header CRC8 and crack-index CRC32C are recomputed (for
    ``header(..., ignore_crc_check=True)``); version-0 streams have neither."""
    out = bytearray(_as_buffer(binary))
    if len(out) < 29 or out[:4] != b"crkl" or out[4] != 1:
        return bytes(out)
    out[28] = _crackle.crc8(memoryview(out)[5:28])
    sz = int.from_bytes(out[15:19], "little")
    sx, sy = int.from_bytes(out[7:11], "little"), int.from_bytes(out[11:15], "little")
    end = 29 + 4 * sz
    if sx * sy * sz and len(out) >= end + 4:
        out[end:end + 4] = _crackle.crc32c(memoryview(out)[29:end]).to_bytes(4, "little")
    return bytes(out)


def contains_range(binary: BytesLike, low: int, high: int) -> np.ndarray:
    """The stream's labels ``v`` with ``low <= v < high``, sorted, from the labels section only."""
    low, high = _check_int("low", low), _check_int("high", high)
    values = labels(binary)  # sorted
    info = np.iinfo(values.dtype)
    lo = values.dtype.type(_clip(low, info.min, info.max))
    hi = values.dtype.type(_clip(high, info.min, info.max))
    first = int(np.searchsorted(values, lo, side="left")) if low <= info.max else values.size
    last = int(np.searchsorted(values, hi, side="left")) if high <= info.max else values.size
    return values[first:_max(first, last)]


def _clip(value: int, lo: int, hi: int) -> int:
    return _min(_max(value, lo), hi)


def min(binary: BytesLike) -> int:  # noqa: A001 (the reference's name)
    """The smallest label of the stream (0 for an empty volume), from the labels section only."""
    values = labels(binary)
    return int(values[0]) if values.size else 0


def max(binary: BytesLike) -> int:  # noqa: A001 (the reference's name)
    """The largest label of the stream (0 for an empty volume), from the labels section only."""
    values = labels(binary)
    return int(values[-1]) if values.size else 0


def labels_for_z_range(binary: BytesLike, z_start: int, z_end: int) -> np.ndarray:
    """The sorted distinct labels of slices ``z_start <= z < z_end``.

    FLAT streams answer from the labels section's per-slice keys, without decoding anything.
    PINS streams decode the slices asked for (checking their CRCs). An empty range gives an
    empty array; a bound outside ``0..sz`` raises IndexError.
    """
    z_start, z_end = _check_int("z_start", z_start), _check_int("z_end", z_end)
    buf, info = _info(binary)
    sz = info["sz"]
    dtype = _dtype_of(info)
    if not (0 <= z_start <= sz and 0 <= z_end <= sz):
        raise IndexError(f"z range {z_start}:{z_end} is outside 0:{sz}")
    if z_start >= z_end or info["sx"] * info["sy"] == 0:
        return np.zeros(0, dtype=dtype)
    values = index_values(buf, info)
    # FLAT: the keys of the slices' components, no decoding; PINS: the slices are decoded.
    present = _crackle.labels_in_slices(buf, True, z_start, z_end).view(bool)
    found = values[present]
    if found.size > 1 and not bool((found[1:] > found[:-1]).all()):  # unsorted, merged, or a PINS background
        found = _sorted_unique(found)
    return found


def nbytes(binary: BytesLike) -> int:
    """Byte size of the decoded array (``sx * sy * sz * data_width``), from the header."""
    info = _crackle.layout_info(_as_buffer(binary))
    return info["sx"] * info["sy"] * info["sz"] * info["data_width"]


def component_lengths(binary: BytesLike) -> dict[str, int]:
    """Byte length of each section: ``header``, ``z_index``, ``labels``, ``crack_codes`` (with
    the markov model) and ``crcs``."""
    _, info = _info(binary)
    return {
        "header": info["header_bytes"],
        "z_index": info["index_bytes"],
        "labels": info["label_bytes"],
        "crack_codes": info["model_bytes"] + info["crack_bytes"],
        "crcs": info["crc_bytes"],
    }


def components(binary: BytesLike) -> dict[str, Any]:
    """The stream cut into its sections (uint8 arrays viewing the stream, read-only for bytes;
    ``crcs`` as bytes), as ``component_lengths`` measures them."""
    buf = _as_buffer(binary)
    out: dict[str, Any] = {}
    at = 0
    for name, length in component_lengths(buf).items():
        part = buf[at:at + length]
        out[name] = bytes(part) if name == "crcs" else np.frombuffer(part, dtype=np.uint8)  # a view
        at += length
    return out


def crack_codes(binary: BytesLike) -> list[bytes]:
    """Each slice's crack code (BOC length, BOC and moves) as bytes, slice 0 first."""
    buf = _as_buffer(binary)
    info = _crackle.layout_info(buf)
    sz = info["sz"]
    if info["sx"] * info["sy"] * sz == 0:
        return []
    index = np.frombuffer(buf, dtype="<u4", count=sz, offset=info["header_bytes"]).astype(np.uint64)
    at = info["header_bytes"] + info["index_bytes"] + info["label_bytes"] + info["model_bytes"]
    out = []
    for length in index.tolist():
        out.append(bytes(buf[at:at + length]))
        at += length
    return out
