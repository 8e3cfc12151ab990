"""Decoding one label at a time: ``decompress(..., label=)``'s binary image and ``each``.

Only the slices that hold a label are decoded (FLAT streams tell them from the labels section's
per-slice keys; PINS streams from the pins and component lists), one slice at a time into runs,
so the extra memory is a slice's runs plus the answer.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator
from typing import Any, Optional, Union

import numpy as np

from . import _crackle
from .core import BytesLike, _check_parallel, _info, _sorted_unique, _z_range
from .errors import DecodeError
from .queries import index_values

__all__ = ["decompress_label", "each"]


def _check_label(label: Any) -> int:
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (numbers.Integral, np.integer)):
        raise TypeError(f"label must be an integer, not {type(label).__name__}")
    return int(label)


def label_indices(values: np.ndarray, label: int) -> np.ndarray:
    """The label indices holding ``label`` (several only in a remapped PINS stream)."""
    info = np.iinfo(values.dtype)
    if not info.min <= label <= info.max:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(values == values.dtype.type(label))


def _only(indices: np.ndarray) -> int:
    """The one index whose slices bound the work, or -1 (visit every slice)."""
    return int(indices[0]) if indices.size == 1 else -1


def new_volume(shape: tuple[int, ...], dtype: Any, order: str) -> np.ndarray:
    """np.zeros, with DecodeError (as decompress gives) for a shape numpy cannot represent."""
    try:
        return np.zeros(shape, dtype=dtype, order=order)
    except ValueError as e:
        raise DecodeError(f"header: a {'x'.join(map(str, shape))} volume cannot be represented: {e}") from None


def binary_image(buf: memoryview, info: dict[str, Any], wanted: np.ndarray, only: int,
                 lo: tuple[int, int, int], hi: tuple[int, int, int], verify: bool) -> np.ndarray:
    """bool image of the voxels of the wanted label indices in the box [lo, hi), in the stream's order."""
    shape = tuple(int(h - l) for l, h in zip(lo, hi))
    out = new_volume(shape, bool, "F" if info["fortran"] else "C")
    if out.size:
        _crackle.label_binary(buf, verify, wanted, only, lo, hi, out)
    return out


def _z_extent(buf: memoryview, info: dict[str, Any], indices: np.ndarray, z0: int, z1: int,
              verify: bool) -> tuple[int, int]:
    """The exact slices [first, last + 1) of [z0, z1) holding the label indices; (0, 0) if none."""
    holding = np.zeros(info["sz"], dtype=bool)
    if info["label_format"] == 0:
        for k in indices.tolist():
            holding |= _crackle.slices_holding(buf, k).astype(bool)
    else:  # pins and component lists over-approximate: measure
        for k in indices.tolist():
            stats = _crackle.label_stats(buf, verify, k, True, False)
            if stats["count"][k]:
                holding[stats["lo"][2][k]:stats["hi"][2][k] + 1] = True
    holding[:z0] = False
    holding[z1:] = False
    found = np.flatnonzero(holding)
    return (int(found[0]), int(found[-1]) + 1) if found.size else (0, 0)


def decompress_label(binary: BytesLike, label: int, parallel: int = 1, crop: bool = False, verify: bool = True,
                     z: Union[None, int, slice] = None) -> np.ndarray:
    """One label's binary image (bool, the stream's shape and memory order).

    Only the slices holding ``label`` are decoded. With ``crop`` the image is cropped in z to
    those slices (as the reference does; an absent label gives a ``(0, 0, 0)`` array). With
    ``verify`` (the default) the labels CRC and the decoded slices' CRCs are checked. ``z``
    limits the image to a slice or a range of slices, as in ``decompress``.
    """
    label = _check_label(label)
    _check_parallel(parallel)
    buf, info = _info(binary)
    sx, sy, sz = info["sx"], info["sy"], info["sz"]
    z0, z1 = _z_range(z, sz)
    if sx * sy * sz == 0:
        return new_volume((0, 0, 0) if crop else (sx, sy, z1 - z0), bool, "F" if info["fortran"] else "C")
    values = index_values(buf, info)
    indices = label_indices(values, label)
    if crop:
        z0, z1 = _z_extent(buf, info, indices, z0, z1, verify)
        if z0 == z1:
            return np.zeros((0, 0, 0), dtype=bool, order="F" if info["fortran"] else "C")
    wanted = np.zeros(values.size, dtype=np.uint8)
    wanted[indices] = 1
    return binary_image(buf, info, wanted, _only(indices), (0, 0, z0), (sx, sy, z1), verify)


def each(binary: BytesLike, parallel: int = 0, crop: bool = True, labels: Optional[Iterable[int]] = None,
         multi: bool = False) -> Iterator[tuple]:
    """Iterate over ``(label, binary_image)`` for every label (or those in ``labels``).

    With ``crop`` (the default) each image is cropped to the label's bounding box. Labels not in
    the stream are skipped. With ``multi``, up to 255 labels are drawn into one uint8 image,
    each with a number 1..255 (label 0 draws as 0), yielding ``(label, number, image)``; the
    image is shared by the labels of one batch.
    """
    _check_parallel(parallel)
    buf, info = _info(binary)
    values = index_values(buf, info)
    present = _sorted_unique(values)
    if labels is None:
        wanted_labels = present.tolist()
    else:
        wanted_labels = [_check_label(v) for v in labels]
        present_set = set(present.tolist())
        wanted_labels = [v for v in dict.fromkeys(wanted_labels) if v in present_set]
    if multi:
        return _each_multi(buf, info, values, wanted_labels)
    return _each_single(buf, info, values, wanted_labels, crop)


def _each_single(buf, info, values, wanted_labels, crop):
    sx, sy, sz = info["sx"], info["sy"], info["sz"]
    boxes = _crackle.label_stats(buf, True, -1, True, False) if crop and wanted_labels else None
    for label in wanted_labels:
        indices = label_indices(values, label)
        wanted = np.zeros(values.size, dtype=np.uint8)
        wanted[indices] = 1
        if crop:
            seen = indices[boxes["count"][indices] > 0]
            if seen.size == 0:
                continue
            lo = tuple(int(boxes["lo"][a][seen].min()) for a in range(3))
            hi = tuple(int(boxes["hi"][a][seen].max()) + 1 for a in range(3))
        else:
            lo, hi = (0, 0, 0), (sx, sy, sz)
        yield values.dtype.type(label), binary_image(buf, info, wanted, _only(indices), lo, hi, True)


def _each_multi(buf, info, values, wanted_labels):
    sx, sy, sz = info["sx"], info["sy"], info["sz"]
    nonzero = sorted(v for v in wanted_labels if v != 0)
    batches = [nonzero[i:i + 255] for i in range(0, len(nonzero), 255)] or [[]]
    for b, batch in enumerate(batches):
        image = new_volume((sx, sy, sz), np.uint8, "F" if info["fortran"] else "C")
        number = {label: i + 1 for i, label in enumerate(batch)}
        for label, n in number.items():
            wanted = np.zeros(values.size, dtype=np.uint8)
            indices = label_indices(values, label)
            wanted[indices] = 1
            part = binary_image(buf, info, wanted, _only(indices), (0, 0, 0), (sx, sy, sz), True)
            image[part] = n
        in_batch = set(batch)
        for label in wanted_labels:
            if label in in_batch or (label == 0 and b == 0):
                yield values.dtype.type(label), number.get(label, 0), image
