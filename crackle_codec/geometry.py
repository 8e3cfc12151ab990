"""Per-label geometry and statistics computed from a stream slice by slice, never decoding the
whole volume: voxel counts, bounding boxes, centroids, surface points, labels on the volume's
faces, contacts, connectivity, and point queries.

The C++ core (ext/label_geometry.hpp) walks each slice's runs; results are gathered per label
index of the labels section and merged by value here (a remapped PINS stream may list a value
more than once).
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _crackle
from .core import BytesLike, _check_parallel, _info, _width_of_count
from .decoding import _check_label, _only, label_indices, new_volume
from .queries import index_values

__all__ = [
    "voxel_counts",
    "bounding_boxes",
    "centroids",
    "edge_labels",
    "point_cloud",
    "contacts",
    "voxel_connectivity_graph",
    "component_map",
    "select_enclosed_points",
    "signed_distance_to_boundary",
    "to_parquet",
    "connected_components",
]


def _missing(label: int) -> ValueError:
    return ValueError(f"Label {label} not contained in image.")


def _stats(binary: BytesLike, label: Optional[int], boxes: bool, sums: bool):
    """(distinct values, per-value stats) of the labels present, or of ``label`` alone."""
    buf, info = _info(binary)
    values = index_values(buf, info)
    if info["sx"] * info["sy"] * info["sz"] == 0:
        if label is not None:
            raise _missing(label)
        empty = np.zeros(0, np.uint32)
        return values, {"count": np.zeros(0, np.uint64), "lo": [empty] * 3, "hi": [empty] * 3,
                        "sum": [np.zeros(0)] * 3}
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


# ------------------------------------------------------------------- neighbour comparisons

def _canonical(buf: memoryview, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, canonical id of each label index): equal values share one id."""
    values = index_values(buf, info)
    distinct, canon = np.unique(values, return_inverse=True)
    return distinct, canon.astype(np.uint32).reshape(-1)


def _stream_of(obj: Any) -> BytesLike:
    """A stream, or the stream behind an array-like holding one (``.binary``)."""
    inner = getattr(obj, "binary", None)
    return obj if inner is None else inner


def _coordinate_dtype(info: dict[str, Any]) -> np.dtype:
    return np.dtype(np.uint16 if max(info["sx"], info["sy"], info["sz"]) <= 0xFFFF else np.uint32)


def point_cloud(binary: BytesLike, label: Union[int, list[int], None] = None, parallel: int = 0, z_start: int = -1,
                z_end: int = -1, skip_background: bool = True) -> Union[np.ndarray, dict[int, np.ndarray]]:
    """Surface voxels of each label as ``(n, 3)`` arrays of ``x, y, z`` (uint16, or uint32 for
    an axis longer than 65535), slice by slice in raster order, each voxel once.

    A voxel is on its label's surface when one of its 8 in-slice neighbours or its 2 z
    neighbours has another label, or it lies in the volume's first or last slice. ``label``: one
    label (an array back; ValueError if absent), a list (a dict back), or None (a dict of every
    label, without 0 when ``skip_background``). ``z_start``/``z_end`` (negative: the volume's
    start/end) limit the slices searched, ``z_end`` exclusive. Only the slices that hold a
    single requested label are decoded (with their neighbours).
    """
    threads = _check_parallel(parallel)
    buf, info = _info(binary)
    sz = info["sz"]
    if info["sx"] * info["sy"] * sz == 0:
        sz = 0  # nothing to visit (and an empty volume's sz is not backed by any index bytes)
    z0 = 0 if z_start < 0 else builtins_min(int(z_start), sz)
    z1 = sz if z_end < 0 else builtins_min(int(z_end), sz)
    distinct, canon = _canonical(buf, info)
    dtype = _coordinate_dtype(info)
    single = label is not None and not isinstance(label, (list, tuple, np.ndarray))
    if single:
        requested = [_check_label(label)]
    elif label is None:
        requested = [v for v in distinct.tolist() if not (skip_background and v == 0)]
    else:
        requested = [_check_label(v) for v in label]
    present = {v: i for i, v in enumerate(distinct.tolist())}
    if single and requested[0] not in present:
        raise _missing(requested[0])
    wanted = np.zeros(builtins_max(distinct.size, 1), dtype=np.uint8)
    for v in requested:
        if v in present and not (skip_background and v == 0 and not single):
            wanted[present[v]] = 1
    visit = np.zeros(sz, dtype=np.uint8)
    if info["sx"] * info["sy"] * sz and wanted.any() and z0 < z1:
        if single:
            for k in np.flatnonzero(canon == present[requested[0]]).tolist():
                visit |= _crackle.slices_holding(buf, k)
        else:
            visit[:] = 1
        # One label's few slices are not worth a thread each.
        xyz, offsets = _crackle.surface_points(buf, True, canon, wanted, visit, z0, z1, dtype == np.uint32,
                                               1 if single else threads)
    else:
        xyz, offsets = np.zeros((0, 3), dtype), np.zeros(wanted.size + 1, np.uint64)
    if single:
        return xyz
    bounds = offsets.tolist()
    return {v: xyz[bounds[present[v]]:bounds[present[v] + 1]] for v in requested if v in present}


builtins_min, builtins_max = min, max


def contacts(binary: BytesLike, anisotropy: tuple[float, float, float] = (1.0, 1.0, 1.0),
             parallel: int = 0) -> dict[tuple[int, int], float]:
    """Contact area between every pair of touching labels (6-connected faces), background 0
    excluded: ``{(a, b): area}`` with ``a < b``. A face normal to x weighs ``ay * az``, and so
    on, with ``anisotropy = (ax, ay, az)``."""
    threads = _check_parallel(parallel)
    ax, ay, az = (float(v) for v in anisotropy)
    buf, info = _info(binary)
    if info["sx"] * info["sy"] * info["sz"] == 0:
        return {}
    distinct, canon = _canonical(buf, info)
    zero = np.flatnonzero(distinct == 0)
    skip = int(zero[0]) if zero.size else -1
    faces = _crackle.contact_faces(buf, True, canon, skip, threads)
    weights = (ay * az, ax * az, ax * ay)
    keys = np.concatenate([k for k, _ in faces])
    areas = np.concatenate([n * w for (_, n), w in zip(faces, weights)])
    unique, inverse = np.unique(keys, return_inverse=True)
    total = np.zeros(unique.size, dtype=np.float64)
    np.add.at(total, inverse, areas)
    first = distinct[(unique >> np.uint64(32)).astype(np.intp)].tolist()
    second = distinct[(unique & np.uint64(0xFFFFFFFF)).astype(np.intp)].tolist()
    return {(a, b): area for a, b, area in zip(first, second, total.tolist())}


def voxel_connectivity_graph(binary: BytesLike, connectivity: int = 6, parallel: int = 0) -> np.ndarray:
    """Each voxel's connections to its face neighbours as a Fortran-ordered uint8 volume of the
    stream's shape: bit set when the neighbour has the same label or lies outside the volume, from the
    least significant bit ``+x, -x, +y, -y, +z, -z`` (connectivity 6) or only the first four
    (connectivity 4)."""
    threads = _check_parallel(parallel)
    if connectivity not in (4, 6):
        raise ValueError(f"connectivity must be 4 or 6, got {connectivity!r}")
    buf, info = _info(binary)
    out = new_volume((info["sx"], info["sy"], info["sz"]), np.uint8, "F")  # as the reference, always F
    if out.size:
        _, canon = _canonical(buf, info)
        _crackle.connectivity_graph(buf, True, canon, int(connectivity), out, threads)
    return out


def component_map(component_binary: BytesLike, parent_binary: BytesLike, parallel: int = 0) -> dict[int, int]:
    """For two streams of one shape whose labels map many to one (e.g. connected components and
    the labels they came from): ``{component label: parent label}``."""
    _check_parallel(parallel)
    buf_a, info_a = _info(_stream_of(component_binary))
    buf_b, info_b = _info(_stream_of(parent_binary))
    if (info_a["sx"], info_a["sy"], info_a["sz"]) != (info_b["sx"], info_b["sy"], info_b["sz"]):
        raise ValueError("the two streams have different shapes")
    if info_a["sx"] * info_a["sy"] * info_a["sz"] == 0:
        return {}
    da, ca = _canonical(buf_a, info_a)
    db, cb = _canonical(buf_b, info_b)
    parent = _crackle.component_parents(buf_a, ca, da.size, buf_b, cb, True)
    a_values, b_values = da.tolist(), db.tolist()
    return {a_values[i]: b_values[p] for i, p in enumerate(parent.tolist()) if p >= 0}


def _points_inside(info: dict[str, Any], points: Any) -> tuple[np.ndarray, np.ndarray]:
    """(integer (n, 3) voxel coordinates, mask of those inside the volume)."""
    pts = np.asarray(points)
    if pts.ndim == 1 and pts.size == 3:
        pts = pts.reshape(1, 3)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be an (n, 3) array, got shape {pts.shape}")
    if pts.dtype.kind == "f":
        pts = np.floor(pts)
    elif pts.dtype.kind not in "ui":
        raise TypeError(f"points must be numbers, not {pts.dtype}")
    pts = pts.astype(np.int64)
    shape = np.array([info["sx"], info["sy"], info["sz"]], dtype=np.int64)
    inside = np.all((pts >= 0) & (pts < shape), axis=1)
    return pts, inside


def select_enclosed_points(binary: BytesLike, label: int, points: np.ndarray, parallel: int = 0) -> np.ndarray:
    """For each point ``(x, y, z)`` (an ``(n, 3)`` array), whether the voxel holding it has
    ``label``; points outside the volume are not enclosed. Only the slices holding points are
    decoded."""
    _check_parallel(parallel)
    label = _check_label(label)
    buf, info = _info(binary)
    pts, inside = _points_inside(info, points)
    out = np.zeros(pts.shape[0], dtype=bool)
    distinct, canon = _canonical(buf, info)
    where = np.flatnonzero(distinct == distinct.dtype.type(label)) if _fits(distinct.dtype, label) else []
    if len(where) == 0 or not inside.any():
        return out
    # Only the slices that hold the label need decoding: elsewhere no point is enclosed.
    holding = np.zeros(info["sz"], dtype=np.uint8)
    for k in np.flatnonzero(canon == where[0]).tolist():
        holding |= _crackle.slices_holding(buf, k)
    inside &= holding[np.clip(pts[:, 2], 0, info["sz"] - 1)].astype(bool)
    if inside.any():
        ids = _crackle.ids_at(buf, True, canon, np.ascontiguousarray(pts[inside], dtype=np.uint32))
        out[inside] = ids == where[0]
    return out


def _fits(dtype: np.dtype, value: int) -> bool:
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def signed_distance_to_boundary(binary: BytesLike, label: int, points: np.ndarray,
                                anisotropy: Any = np.array([1.0, 1.0, 1.0], dtype=np.float32), parallel: int = 0,
                                z_chunk: int = 100, progress: bool = False) -> np.ndarray:
    """Signed distance from each point to ``label``'s surface (its ``point_cloud`` voxels), in
    the units of ``anisotropy``: positive outside the label, and inside ``-(1 + distance)``
    (a surface voxel itself is -1), as the reference reports it. Float points lie in the voxel
    ``floor(point)``."""
    _check_parallel(parallel)
    label = _check_label(label)
    pts_in = np.asarray(points, dtype=np.float64)
    if pts_in.ndim == 1 and pts_in.size == 3:
        pts_in = pts_in.reshape(1, 3)
    if pts_in.ndim != 2 or pts_in.shape[1] != 3:
        raise ValueError(f"points must be an (n, 3) array, got shape {pts_in.shape}")
    scale = np.asarray(anisotropy, dtype=np.float64).reshape(3)
    surface = point_cloud(binary, label).astype(np.float64) * scale
    query = pts_in * scale
    out = np.empty(pts_in.shape[0], dtype=np.float64)
    step = builtins_max(1, 2**22 // builtins_max(1, surface.shape[0]))
    for i in range(0, query.shape[0], step):
        q = query[i:i + step]
        best = np.full(q.shape[0], np.inf)
        for j in range(0, surface.shape[0], 1 << 16):
            s = surface[j:j + (1 << 16)]
            d2 = ((q[:, None, :] - s[None, :, :]) ** 2).sum(axis=2)
            best = np.minimum(best, d2.min(axis=1))
        out[i:i + step] = np.sqrt(best)
    inside = select_enclosed_points(binary, label, pts_in)
    out[inside] = -(out[inside] + 1.0)
    return out


def to_parquet(binary: BytesLike, parallel: int = 0) -> "pyarrow.Table":  # noqa: F821
    """Every label's voxel count and bounding box as a pyarrow Table (columns ``label``,
    ``voxel_count``, ``min_x``, ``max_x``, ``min_y``, ``max_y``, ``min_z``, ``max_z``), sorted by
    label; without the z columns for a single-slice volume. Write it with
    ``pyarrow.parquet.write_table``. Needs pyarrow."""
    try:
        import pyarrow as pa
    except ImportError:
        raise ImportError("to_parquet needs pyarrow: pip install pyarrow") from None
    _check_parallel(parallel)
    buf, info = _info(binary)
    distinct, stats = _stats(binary, None, True, False)
    coord = _coordinate_dtype(info)
    count = stats["count"]
    count = count.astype(np.uint32) if count.size == 0 or count.max() <= 0xFFFFFFFF else count
    columns = {"label": distinct, "voxel_count": count}
    for a, axis in enumerate("xyz" if info["sz"] != 1 else "xy"):  # a single slice: a 2D image
        columns[f"min_{axis}"] = stats["lo"][a].astype(coord)
        columns[f"max_{axis}"] = stats["hi"][a].astype(coord)
    return pa.table(columns)


def _as_flat_unsigned(stream: bytearray, width: int) -> bytes:
    """The stream's header made that of a FLAT, unsigned volume of ``width`` bytes per voxel: the
    format field (FORMAT 2.2) and the CRC8 of a version-1 header."""
    field = int.from_bytes(stream[5:7], "little")
    field = (field & ~0b11 & ~(0b11 << 5) & ~(1 << 8)) | {1: 0, 2: 1, 4: 2, 8: 3}[width]
    stream[5:7] = field.to_bytes(2, "little")
    if stream[4] == 1:
        stream[28] = _crackle.crc8(memoryview(bytes(stream[5:28])))
    return bytes(stream)


def connected_components(binary: BytesLike, connectivity: int = 26, binary_image: bool = False,
                         memory_target: int = 3_500_000_000, progress: bool = False,
                         return_mapping: bool = False) -> Union[bytes, tuple[bytes, dict[int, int]]]:
    """3D connected components (6- or 26-connected) of the labels, as a new Crackle stream.

    Background (label 0) stays 0; components are numbered 1..n by their first voxel, x fastest
    (as ``cc3d.connected_components`` numbers a Fortran-ordered volume). With ``binary_image``,
    every non-zero label is one foreground. The crack codes and slice CRCs are reused as they
    are (a component never crosses a crack): only the labels section is new, FLAT, in the
    smallest unsigned type that holds n. With ``return_mapping``, also ``{component: label}``
    (the label of its first voxel; ``0: 0`` for the background). ``memory_target`` and
    ``progress`` are accepted for the reference's sake: the work is slice by slice anyway.
    """
    if connectivity not in (6, 26):
        raise ValueError(f"connectivity must be 6 or 26, got {connectivity!r}")
    buf, info = _info(binary)
    if info["sx"] * info["sy"] * info["sz"] == 0:  # the stream is its header: the same shape, as uint8
        out = _as_flat_unsigned(bytearray(buf), 1)
        return (out, {}) if return_mapping else out
    distinct, canon = _canonical(buf, info)
    zero = np.flatnonzero(distinct == 0)
    cc_of, label_of = _crackle.connected_components(buf, True, canon, int(zero[0]) if zero.size else -1,
                                                    int(connectivity), bool(binary_image))
    n = label_of.size - 1
    has_background = bool((cc_of == 0).any())
    width = _width_of_count(n)
    unique = np.arange(0 if has_background else 1, n + 1, dtype=np.uint64)
    keys = cc_of - np.uint64(0 if has_background else 1)
    counts_at = info["cc_per_grid_offset"]
    section = b"".join([
        np.uint64(unique.size).astype("<u8").tobytes(),
        unique.astype(f"<u{width}").tobytes(),
        bytes(buf[counts_at:counts_at + info["sz"] * info["cc_width"]]),
        keys.astype(f"<u{_width_of_count(unique.size)}").tobytes(),
    ])
    out = _as_flat_unsigned(bytearray(_crackle.replace_labels(buf, section, width, False, False)), width)
    if not return_mapping:
        return out
    values = distinct.tolist()
    mapping = {0: 0} if has_background else {}
    mapping.update({cc: values[k] for cc, k in enumerate(label_of.tolist()) if cc})
    return out, mapping
