"""Whole-array label analytics on Crackle Zarr arrays, computed chunk by chunk from the streams.

* ``label_stats``: every label's voxel count, bounding box and centroid, as columns;
* ``extract_label``: one label's binary mask over its bounding box;
* ``point_cloud_array``: one label's surface voxels in array coordinates.

Arrays are those of ``crackle_codec.zarr.queries`` (Zarr format 2 and 3, sharded or not, any
bytes-to-bytes codec after Crackle). Each chunk's stream is mapped to the array's axes by the
codec's axis rule (``crackle_codec.layout``, docs/zarr-codec-spec.md; legacy arrays included).
Results are exact: a chunk wholly inside the array (and the region asked for) is measured from its
stream by the per-stream functions of ``crackle_codec.geometry`` (decoding only runs, never a whole
chunk); an edge chunk (whose padding must not count) or a chunk cut by the region is decoded (only
the z slices needed) and measured with numpy; a chunk that was never written holds the fill value.
Per-chunk results are reduced across chunks with integer sums, so centroids are exact quotients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional

import numpy as np

from ..core import _info
from ..core import compress as _compress
from ..core import labels as _stream_labels
from ..decoding import _only, _z_extent, binary_image, label_indices
from ..errors import DecodeError
from ..geometry import _stats, point_cloud
from ..layout import decode_chunk, stream_axes, z_axis
from ..queries import index_values
from .queries import _check_label, _fits, _python_value
from .scheduling import Scheduler, map_batches
from .sources import Coords, Region, _region_chunks
from .sources import source as _source

__all__ = ["label_stats", "stats_columns", "extract_label", "point_cloud_array"]

Box = tuple[tuple[int, int], ...]  # per array axis, [start, stop)

_MERGE_ROWS = 1 << 20  # reduce the pending per-chunk tables once they hold this many rows


# =========================================================================== public API

def label_stats(array: Any, *, labels: Optional[Iterable[int]] = None, region: Region = None,
                max_workers: Optional[int] = None, progress: Optional[Callable[[int], None]] = None,
                scheduler: Scheduler = None) -> dict[str, np.ndarray]:
    """Voxel count, bounding box and centroid of every label of a Crackle Zarr array.

    Args:
        array: a zarr array whose chunks are Crackle streams (see ``crackle_codec.chunk_labels``).
        labels: only these labels (the others are skipped; labels absent from the array are not
            reported). Default: every label, the fill value and 0 included.
        region: only the voxels of this selection (a tuple of step-1 slices and/or ints in array
            coordinates, one per axis; missing axes whole). Coordinates stay array coordinates.
        max_workers: threads measuring chunks concurrently (default 16).
        progress: called (in the calling thread) with the number of chunks just measured, as
            batches of chunks complete; the total is ``len(chunk_labels(array, region=region))``.
        scheduler: run the batches of chunks on Dask instead of the thread pool: a
            ``distributed.Client`` (its cluster measures the chunks), ``"dask"`` (Dask's current
            default: the active Client if any), or a Dask scheduler name (``"threads"``,
            ``"processes"``, ``"sync"``). Per-batch tables are reduced in this process as they
            arrive, exactly as on threads. ``max_workers`` is then unused. The array must be
            readable from the workers (a store on a shared path or remote, not a MemoryStore
            for worker processes).

    Returns:
        Columns sorted by label, ``n`` rows for ``n`` labels, ``d`` the array's number of axes:
        ``label`` (n,) in the array's dtype; ``voxel_count`` (n,) int64; ``bbox_min`` and
        ``bbox_max`` (n, d) int64, inclusive, in array coordinates; ``centroid`` (n, d) float64
        (the exact integer coordinate sums divided by the count). As a pandas DataFrame:
        ``pandas.DataFrame(stats_columns(result))``; as Parquet:
        ``pyarrow.parquet.write_table(pyarrow.table(stats_columns(result)), path)``.

    Exact (equal to numpy on the decoded array): padding of edge chunks is excluded and chunks
    never written count as the fill value.
    """
    src = _source(array)
    ndim = len(src.shape)
    wanted = None
    if labels is not None:
        wanted = np.array(sorted({_check_label(v) for v in labels if _fits(_check_label(v), src.dtype)}),
                          dtype=src.dtype)
    box = _region_box(src, region)
    coords = _region_chunks(src, region)

    pending: list[_Table] = []
    rows = 0
    for n, part in map_batches(_stats_batch, src, src.batches(coords), (box, wanted),
                               max_workers=max_workers, scheduler=scheduler):
        if progress is not None:
            progress(n)
        pending.append(part)
        rows += part.size
        if rows > _MERGE_ROWS and len(pending) > 1:
            pending = [_Table.merge(pending, ndim, src.dtype)]
            rows = pending[0].size
    return _Table.merge(pending, ndim, src.dtype).columns()


def stats_columns(stats: dict[str, np.ndarray], axes: Optional[Sequence[str]] = None) -> dict[str, np.ndarray]:
    """``label_stats``' result with one 1-D column per axis (``bbox_min_z``, ..., ``centroid_x``),
    for ``pandas.DataFrame(...)`` or ``pyarrow.table(...)``. ``axes`` names the array's axes
    (default ``z, y, x`` for 3 axes, else ``0, 1, ...``)."""
    ndim = stats["bbox_min"].shape[1]
    if axes is None:
        axes = ["z", "y", "x"] if ndim == 3 else [str(a) for a in range(ndim)]
    if len(axes) != ndim:
        raise ValueError(f"axes names {len(axes)} axes, the stats {ndim}")
    out = {"label": stats["label"], "voxel_count": stats["voxel_count"]}
    for key in ("bbox_min", "bbox_max", "centroid"):
        for a, name in enumerate(axes):
            out[f"{key}_{name}"] = np.ascontiguousarray(stats[key][:, a])
    return out


def extract_label(array: Any, label: int, *, region: Region = None, max_workers: Optional[int] = None,
                  scheduler: Scheduler = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """One label's binary mask over its bounding box: ``(mask, offset)``.

    ``mask`` is a bool array (C order) whose voxel ``i`` is ``array[offset + i] == label``, tight
    around the label (within ``region`` when given); ``offset`` is the box's first voxel in array
    coordinates. Only the chunks whose labels section lists ``label`` are measured, and in them
    only the slices holding the label are decoded. An absent label gives a mask of shape
    ``(0, ..., 0)`` and offset ``(0, ..., 0)``. ``max_workers`` and ``scheduler``: as in
    ``label_stats`` (the pieces of the mask are assembled in this process).
    """
    src = _source(array)
    ndim = len(src.shape)
    value = _check_label(label)
    box = _region_box(src, region)
    coords = _region_chunks(src, region) if _fits(value, src.dtype) else []

    pieces = [p for _, part in map_batches(_mask_batch, src, src.batches(coords), (box, value),
                                           max_workers=max_workers, scheduler=scheduler) for p in part]
    if not pieces:
        return np.zeros((0,) * ndim, dtype=bool), (0,) * ndim
    lo = [min(b[a][0] for b, _ in pieces) for a in range(ndim)]
    hi = [max(b[a][1] for b, _ in pieces) for a in range(ndim)]
    mask = np.zeros([h - l for l, h in zip(lo, hi)], dtype=bool)
    for piece_box, piece in pieces:  # disjoint: one per chunk
        mask[tuple(slice(b0 - l, b1 - l) for (b0, b1), l in zip(piece_box, lo))] = piece
    return mask, tuple(lo)


def point_cloud_array(array: Any, label: int, *, max_workers: Optional[int] = None,
                      scheduler: Scheduler = None) -> np.ndarray:
    """The surface voxels of ``label`` in array coordinates: an ``(n, d)`` int64 array, one column
    per array axis, rows in the order of ``crackle_codec.point_cloud`` (slice by slice in raster
    order of the Crackle axes of the array).

    The answer is that of ``crackle_codec.point_cloud`` on the whole array seen as one Crackle
    volume by the axis rule (its x, y, z are the array axes that are x, y, z in every chunk):
    a voxel is on the surface when one of its 8 neighbours in its z slice or its 2 z neighbours
    has another label, or when it lies in the array's first or last z slice. Chunk borders are
    therefore not surfaces: the label's mask is assembled across chunks (``extract_label``) before
    the surface is taken. Needs an array whose axes outside the chunks' Crackle axes have length
    1 (every 3D array and e.g. ``(1, 1, z, y, x)``). ValueError for a label the array lacks.
    ``max_workers`` and ``scheduler`` are those of ``extract_label``.
    """
    src = _source(array)
    axes = stream_axes(src.chunks, src.x_axis, src.order)
    extra = [a for a in range(len(src.shape)) if a not in axes and src.shape[a] != 1]
    if extra:
        raise NotImplementedError(
            f"point_cloud_array needs the array's axes outside the Crackle axes {list(axes)} of its "
            f"chunks to have length 1; axes {extra} of shape {src.shape} do not")
    mask, offset = extract_label(array, label, max_workers=max_workers, scheduler=scheduler)
    if mask.size == 0:
        raise ValueError(f"Label {label} not contained in array.")
    # One voxel of background around the mask, except where the box touches the array's border:
    # then the mask's border conditions are the array's.
    pad = [(int(offset[a] > 0), int(offset[a] + mask.shape[a] < src.shape[a])) if a in axes else (0, 0)
           for a in range(mask.ndim)]
    padded = np.pad(mask, pad).view(np.uint8)
    volume = padded.transpose(list(axes) + [a for a in range(padded.ndim) if a not in axes])
    volume = volume.reshape([padded.shape[a] for a in axes] + [1] * (3 - len(axes)))
    xyz = point_cloud(_compress(np.asfortranarray(volume)), 1).astype(np.int64)
    points = np.zeros((xyz.shape[0], mask.ndim), dtype=np.int64)
    for k, a in enumerate(axes):
        points[:, a] = xyz[:, k] + offset[a] - pad[a][0]
    for a in range(mask.ndim):
        if a not in axes:
            points[:, a] = offset[a]
    return points


# ====================================================================== per-chunk statistics

def _stats_batch(src: Any, batch: list[Coords], box: Box, wanted: Optional[np.ndarray]) -> "_Table":
    """The table of one batch of chunks (a task: runs on a thread or a Dask worker). Chunks never
    written make one row together (a sparse array is mostly those)."""
    streams = src.read(batch)
    missing = [c for c in batch if streams.get(c) is None]
    tables = [_chunk_stats(src, c, streams[c], box, wanted) for c in batch if streams.get(c) is not None]
    if missing:
        tables.append(_constant_stats(src, [_chunk_box(src, c, box) for c in missing], wanted))
    return _Table.merge(tables, len(src.shape), src.dtype)


class _Table:
    """Per-label sums: label, count, min, max and coordinate sums (int64) in array coordinates."""

    def __init__(self, label: np.ndarray, count: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: np.ndarray):
        self.label, self.count, self.lo, self.hi, self.total = label, count, lo, hi, total

    @property
    def size(self) -> int:
        return int(self.label.size)

    @classmethod
    def empty(cls, ndim: int, dtype: np.dtype) -> "_Table":
        z = np.zeros((0, ndim), dtype=np.int64)
        return cls(np.zeros(0, dtype=dtype), np.zeros(0, dtype=np.int64), z, z.copy(), z.copy())

    @classmethod
    def merge(cls, tables: list["_Table"], ndim: int, dtype: np.dtype) -> "_Table":
        tables = [t for t in tables if t.size]
        if not tables:
            return cls.empty(ndim, dtype)
        if len(tables) == 1:  # every table is built sorted by label, each label once
            return tables[0]
        label = np.concatenate([t.label for t in tables])
        distinct, inverse = np.unique(label, return_inverse=True)
        inverse = inverse.reshape(-1)
        n = distinct.size
        count = np.zeros(n, dtype=np.int64)
        np.add.at(count, inverse, np.concatenate([t.count for t in tables]))
        lo = np.full((n, ndim), np.iinfo(np.int64).max, dtype=np.int64)
        hi = np.full((n, ndim), np.iinfo(np.int64).min, dtype=np.int64)
        total = np.zeros((n, ndim), dtype=np.int64)
        np.minimum.at(lo, inverse, np.concatenate([t.lo for t in tables]))
        np.maximum.at(hi, inverse, np.concatenate([t.hi for t in tables]))
        np.add.at(total, inverse, np.concatenate([t.total for t in tables]))
        return cls(distinct.astype(dtype, copy=False), count, lo, hi, total)

    def columns(self) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            centroid = self.total / self.count[:, None].astype(np.float64)
        return {"label": self.label, "voxel_count": self.count, "bbox_min": self.lo, "bbox_max": self.hi,
                "centroid": centroid}


def _region_box(src: Any, region: Region) -> Box:
    """The region as per-axis [start, stop) in array coordinates (validated by _region_chunks)."""
    if region is None:
        region = ()
    elif not isinstance(region, tuple):
        region = (region,)
    _region_chunks(src, region)  # the argument checks
    box = []
    for axis, size in enumerate(src.shape):
        sel = region[axis] if axis < len(region) else slice(None)
        if isinstance(sel, slice):
            start, stop, _ = sel.indices(size)
        else:
            start = int(sel) + size if int(sel) < 0 else int(sel)
            stop = start + 1
        box.append((start, max(start, stop)))
    return tuple(box)


def _chunk_box(src: Any, coords: Coords, box: Box) -> Box:
    """The part of chunk ``coords`` inside the array and ``box``, in array coordinates."""
    return tuple((max(i * c, b0), min((i + 1) * c, s, b1))
                 for i, c, s, (b0, b1) in zip(coords, src.chunks, src.shape, box))


def _whole(src: Any, coords: Coords, part: Box) -> bool:
    return all(p0 == i * c and p1 == (i + 1) * c for i, c, (p0, p1) in zip(coords, src.chunks, part))


def _chunk_stats(src: Any, coords: Coords, stream: bytes, box: Box, wanted: Optional[np.ndarray]) -> _Table:
    ndim = len(src.shape)
    part = _chunk_box(src, coords, box)
    if any(p1 <= p0 for p0, p1 in part):
        return _Table.empty(ndim, src.dtype)
    if wanted is not None and not np.isin(_stream_labels(stream), wanted).any():
        return _Table.empty(ndim, src.dtype)
    if src.direct and _whole(src, coords, part):
        return _stream_stats(src, coords, stream, wanted)
    return _block_stats(_read_part(src, coords, stream, part), part, wanted, src.dtype)


def _constant_stats(src: Any, parts: list[Box], wanted: Optional[np.ndarray]) -> _Table:
    """Never-written chunks: every voxel of each of ``parts`` is the fill value (one row)."""
    ndim = len(src.shape)
    fill = np.array([src.fill], dtype=src.dtype)
    parts = [p for p in parts if all(p1 > p0 for p0, p1 in p)]
    if not parts or (wanted is not None and not np.isin(fill, wanted).any()):
        return _Table.empty(ndim, src.dtype)
    count, total = 0, [0] * ndim  # Python ints: exact
    for part in parts:
        extent = [p1 - p0 for p0, p1 in part]
        n = math.prod(extent)
        count += n
        for a, (e, (p0, p1)) in enumerate(zip(extent, part)):
            # sum over the box of coordinate a = (n / extent_a) * sum(range(p0, p1))
            total[a] += n // e * ((p0 + p1 - 1) * e // 2)
    row = lambda values: np.array([values], dtype=np.int64)  # noqa: E731
    return _Table(fill, row(count).reshape(1), row([min(p[a][0] for p in parts) for a in range(ndim)]),
                  row([max(p[a][1] for p in parts) - 1 for a in range(ndim)]), row(total))


def _stream_stats(src: Any, coords: Coords, stream: bytes, wanted: Optional[np.ndarray]) -> _Table:
    """A whole chunk measured from its stream, its (x, y, z) mapped to the array's axes."""
    origin = [i * c for i, c in zip(coords, src.chunks)]
    try:
        return _measure(stream, stream_axes(src.chunks, src.x_axis, src.order), origin, src.dtype, wanted)
    except DecodeError as exc:
        raise DecodeError(f"chunk {coords}: {exc}") from None


def _measure(stream: bytes, axes: Sequence[int], origin: Sequence[int], dtype: np.dtype,
             wanted: Optional[np.ndarray]) -> _Table:
    """The per-label table of a stream whose x, y, z are the array axes ``axes`` (the others have
    length 1) and whose first voxel is at ``origin``."""
    distinct, stats = _stats(stream, None, True, True)
    n = distinct.size
    count = stats["count"].astype(np.int64)
    lo = np.tile(np.array(origin, dtype=np.int64), (n, 1))
    hi = lo.copy()
    total = count[:, None] * np.array(origin, dtype=np.int64)[None, :]
    for k, a in enumerate(axes):
        lo[:, a] += stats["lo"][k].astype(np.int64)
        hi[:, a] += stats["hi"][k].astype(np.int64)
        # the per-stream sums are float64 sums of integers: exact below 2**53
        total[:, a] += np.rint(stats["sum"][k]).astype(np.int64)
    table = _Table(distinct.astype(dtype), count, lo, hi, total)
    if wanted is not None:
        keep = np.isin(table.label, wanted)
        table = _Table(table.label[keep], count[keep], lo[keep], hi[keep], total[keep])
    return table


def _read_part(src: Any, coords: Coords, stream: bytes, part: Box) -> np.ndarray:
    """The voxels of ``part`` (inside chunk ``coords``), decoding only the stream's needed z slices."""
    if not src.direct:
        return np.asarray(src.read_region(tuple(slice(p0, p1) for p0, p1 in part)))
    local = [(p0 - i * c, p1 - i * c) for i, c, (p0, p1) in zip(coords, src.chunks, part)]
    axis = z_axis(src.chunks, src.x_axis, src.order)
    z_range = None if axis is None else local[axis]
    try:
        block = decode_chunk(stream, src.chunks, src.x_axis, src.order, z_range)
    except DecodeError as exc:
        raise DecodeError(f"chunk {coords}: {exc}") from None
    return block[tuple(slice(None) if a == axis else slice(l0, l1) for a, (l0, l1) in enumerate(local))]


def _block_stats(block: np.ndarray, part: Box, wanted: Optional[np.ndarray], dtype: np.dtype) -> _Table:
    """A decoded block whose first voxel is at ``part``'s start, measured by re-encoding it (the
    encoder and the per-stream statistics are several times faster than numpy's sort)."""
    axes = [a for a in range(block.ndim) if block.shape[a] > 1][::-1]  # fastest first: an F view
    volume = block.transpose(axes + [a for a in range(block.ndim) if a not in axes])
    volume = volume.reshape([block.shape[a] for a in axes] + [1] * (3 - len(axes)), order="A")
    return _measure(_compress(np.asfortranarray(volume)), axes, [p0 for p0, _ in part], dtype, wanted)


# ======================================================================== one label's mask

def _mask_batch(src: Any, batch: list[Coords], box: Box, value: int) -> list[tuple[Box, np.ndarray]]:
    """The label's pieces in one batch of chunks (a task: runs on a thread or a Dask worker)."""
    streams = src.read(batch)
    pieces = [_chunk_mask(src, c, streams.get(c), box, value) for c in batch]
    return [p for p in pieces if p is not None]


def _chunk_mask(src: Any, coords: Coords, stream: Optional[bytes], box: Box,
                value: int) -> Optional[tuple[Box, np.ndarray]]:
    """(box in array coordinates, mask tight around ``value`` in it) for one chunk, or None."""
    part = _chunk_box(src, coords, box)
    if any(p1 <= p0 for p0, p1 in part):
        return None
    if stream is None:
        if _python_value(src.fill, src.dtype) != value:
            return None
        return part, np.ones([p1 - p0 for p0, p1 in part], dtype=bool)
    if not src.direct:
        return _tighten(part, np.asarray(src.read_region(tuple(slice(p0, p1) for p0, p1 in part))) == value)
    try:
        buf, info = _info(stream)
        values = index_values(buf, info)
        indices = label_indices(values, value)
        if indices.size == 0:
            return None
        axes = stream_axes(src.chunks, src.x_axis, src.order)
        origin = [i * c for i, c in zip(coords, src.chunks)]
        local = _stream_box(axes, origin, info, part)
        if local is None:
            return None
        lo, hi = local
        lo[2], hi[2] = _z_extent(buf, info, indices, lo[2], hi[2], True)
        if hi[2] <= lo[2]:
            return None
        wanted = np.zeros(values.size, dtype=np.uint8)
        wanted[indices] = 1
        image = binary_image(buf, info, wanted, _only(indices), tuple(lo), tuple(hi), True)
    except DecodeError as exc:
        raise DecodeError(f"chunk {coords}: {exc}") from None
    # Tight in the stream's z already (the labels section says which slices hold the label);
    # tighten x and y from one projection along z. Only when x or y was cut (an edge chunk, a
    # region) may the end slices miss the label inside the cut: then project on z too.
    cut_xy = lo[:2] != [0, 0] or hi[:2] != [info["sx"], info["sy"]]
    image = _tighten_stream(image, lo, hi, cut_xy)
    if image is None:
        return None
    # the stream's (x, y, z) box as array axes (the chunk's other axes have length 1)
    piece = image.reshape(image.shape[:len(axes)]) if len(axes) < 3 else image
    piece = piece.transpose(sorted(range(len(axes)), key=lambda k: axes[k]))
    shape = [1] * len(src.shape)
    piece_box = [(origin[a], origin[a] + 1) for a in range(len(src.shape))]
    for k, a in enumerate(axes):
        shape[a] = hi[k] - lo[k]
        piece_box[a] = (origin[a] + lo[k], origin[a] + hi[k])
    return tuple(piece_box), piece.reshape(shape)


def _stream_box(axes: Sequence[int], origin: Sequence[int], info: dict,
                part: Box) -> Optional[tuple[list[int], list[int]]]:
    """The stream box ((x, y, z) lo, hi exclusive) of ``part``, or None if empty."""
    lo, hi = [0, 0, 0], [info["sx"], info["sy"], info["sz"]]
    for k, a in enumerate(axes):
        lo[k] = max(lo[k], part[a][0] - origin[a])
        hi[k] = min(hi[k], part[a][1] - origin[a])
        if hi[k] <= lo[k]:
            return None
    return lo, hi


def _any_along_z(image: np.ndarray) -> np.ndarray:
    """``image.any(axis=2)`` of a bool (x, y, z) image; contiguous slices are OR-ed 8 voxels a word."""
    sx, sy, sz = image.shape
    if sx * sy % 8 or not image.flags.f_contiguous:
        return image.any(axis=2)
    planes = image.reshape(-1, order="F").view(np.uint64).reshape(sz, -1)
    return np.bitwise_or.reduce(planes, axis=0).view(bool).reshape(sx, sy, order="F")


def _tighten_stream(image: np.ndarray, lo: list[int], hi: list[int], project_z: bool) -> Optional[np.ndarray]:
    """Crop a drawn (x, y, z) image to its True voxels, updating ``lo``/``hi``; None if it has none."""
    xy = _any_along_z(image)
    xs, ys = np.flatnonzero(xy.any(axis=1)), np.flatnonzero(xy.any(axis=0))
    if xs.size == 0:
        return None
    zs = np.flatnonzero(image.any(axis=(0, 1))) if project_z else np.array([0, image.shape[2] - 1])
    cut = [(int(w[0]), int(w[-1]) + 1) for w in (xs, ys, zs)]
    for k, (c0, c1) in enumerate(cut):
        lo[k], hi[k] = lo[k] + c0, lo[k] + c1
    return image[tuple(slice(c0, c1) for c0, c1 in cut)]


def _tighten(part: Box, mask: np.ndarray) -> Optional[tuple[Box, np.ndarray]]:
    """Crop ``mask`` (placed at ``part``) to its True voxels; None if it has none."""
    if not mask.any():
        return None
    cut = []
    for a in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(b for b in range(mask.ndim) if b != a)))
        cut.append((int(hit[0]), int(hit[-1]) + 1))
    mask = mask[tuple(slice(c0, c1) for c0, c1 in cut)]
    return tuple((p0 + c0, p0 + c1) for (p0, _), (c0, c1) in zip(part, cut)), mask
