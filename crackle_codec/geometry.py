"""Per-label geometry and statistics computed from a stream slice by slice, never decoding the
whole volume: voxel counts, bounding boxes, centroids, surface points, labels on the volume's
faces, contacts, connectivity, and point queries.

The C++ core (ext/label_geometry.hpp) walks each slice's runs; results are gathered per label
index of the labels section and merged by value here (a remapped PINS stream may list a value
more than once).
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Union

import numpy as np

from . import _crackle
from .core import BytesLike, _check_parallel, _info, decompress
from .decoding import _check_label, _only, label_indices
from .queries import index_values

__all__ = [
    "voxel_counts",
    "bounding_boxes",
    "centroids",
    "edge_labels",
]


def _missing(label: int) -> ValueError:
    return ValueError(f"Label {label} not contained in image.")


def _stats(binary: BytesLike, label: Optional[int], boxes: bool, sums: bool):
    """(distinct values, per-value stats) of the labels present, or of ``label`` alone."""
    buf, info = _info(binary)
    values = index_values(buf, info)
    if info["sx"] * info["sy"] * info["sz"] == 0:
        values = values[:0]
    only = -1
    if label is not None:
        indices = label_indices(values, label)
        if indices.size == 0:
            raise _missing(label)
        only = _only(indices)
    stats = _crackle.label_stats(buf, True, only, boxes, sums)
    count = stats["count"]
    keep = count > 0
    if label is not None:
        keep &= values == values.dtype.type(label)
    distinct, inverse = np.unique(values[keep], return_inverse=True)
    merged: dict[str, Any] = {"count": np.zeros(distinct.size, np.uint64)}
    np.add.at(merged["count"], inverse, count[keep])
    if boxes:
        merged["lo"] = []
        merged["hi"] = []
        for a in range(3):
            lo = np.full(distinct.size, np.iinfo(np.uint32).max, np.uint32)
            hi = np.zeros(distinct.size, np.uint32)
            np.minimum.at(lo, inverse, stats["lo"][a][keep])
            np.maximum.at(hi, inverse, stats["hi"][a][keep])
            merged["lo"].append(lo)
            merged["hi"].append(hi)
    if sums:
        merged["sum"] = []
        for a in range(3):
            total = np.zeros(distinct.size, np.float64)
            np.add.at(total, inverse, stats["sum"][a][keep])
            merged["sum"].append(total)
    if label is not None and distinct.size == 0:
        raise _missing(label)
    return distinct, merged


def voxel_counts(binary: BytesLike, label: Optional[int] = None, parallel: int = 0) -> Union[dict[int, int], int]:
    """Voxels per label, ``{label: count}``; with ``label``, that label's count (an int).

    Only the slices holding ``label`` are decoded when it is given. Raises ValueError for a
    label the stream does not contain.
    """
    _check_parallel(parallel)
    if label is not None:
        label = _check_label(label)
    distinct, stats = _stats(binary, label, False, False)
    counts = stats["count"].tolist()
    if label is not None:
        return int(counts[0])
    return dict(zip(distinct.tolist(), counts))


def bounding_boxes(binary: BytesLike, label: Optional[int] = None, parallel: int = 0,
                   no_slice_conversion: bool = False) -> Union[dict, tuple, np.ndarray]:
    """Axis-aligned bounding box of every label (or of ``label`` alone).

    Each box is ``(slice(xmin, xmax+1), slice(ymin, ymax+1), slice(zmin, zmax+1))``, or with
    ``no_slice_conversion`` a uint32 array ``[xmin, ymin, zmin, xmax, ymax, zmax]`` (inclusive).
    """
    _check_parallel(parallel)
    if label is not None:
        label = _check_label(label)
    distinct, stats = _stats(binary, label, True, False)
    lo, hi = stats["lo"], stats["hi"]
    table = np.stack([lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]], axis=1).astype(np.uint32)

    def box(row):
        if no_slice_conversion:
            return row
        return (slice(int(row[0]), int(row[3]) + 1), slice(int(row[1]), int(row[4]) + 1),
                slice(int(row[2]), int(row[5]) + 1))

    if label is not None:
        return box(table[0])
    return {v: box(row) for v, row in zip(distinct.tolist(), table)}


def centroids(binary: BytesLike, label: Optional[int] = None, parallel: int = 0) -> Union[dict[int, np.ndarray], np.ndarray]:
    """Centroid ``[x, y, z]`` (float64) of every label, or of ``label`` alone."""
    _check_parallel(parallel)
    if label is not None:
        label = _check_label(label)
    distinct, stats = _stats(binary, label, False, True)
    count = stats["count"].astype(np.float64)
    table = np.stack([stats["sum"][a] / count for a in range(3)], axis=1) if count.size else np.zeros((0, 3))
    if label is not None:
        return table[0]
    return {v: row for v, row in zip(distinct.tolist(), table)}


def edge_labels(binary: BytesLike, parallel: int = 0) -> set[int]:
    """The labels with a voxel on one of the volume's six faces."""
    _check_parallel(parallel)
    buf, info = _info(binary)
    if info["sx"] * info["sy"] * info["sz"] == 0:
        return set()
    values = index_values(buf, info)
    seen = _crackle.face_labels(buf, True).astype(bool)
    return set(np.unique(values[seen]).tolist())
