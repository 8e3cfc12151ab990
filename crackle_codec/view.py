"""Look at a Crackle array in Neuroglancer: ``crackle_codec.view`` and ``crackle-zarr view``.

Neuroglancer's own Zarr reader knows only zarr's built-in codecs, so it cannot open a Crackle Zarr
array. ``view`` serves the array from a local web server instead (the ``neuroglancer`` Python
package, whose web client is bundled in its wheel: no internet access is needed). The viewer asks
for chunks as the user pans and zooms; each request decodes only the chunks it touches, through
zarr and our codec (or, for a ``.ckl`` stream, only the z slices it touches), on the server's
worker threads, with a small cache of decoded chunks. The volume is never loaded whole.

Sources: a Zarr array (format 2 or 3, sharded or not; a path or an opened array), an OME-Zarr
multiscale group (its resolution levels are served as Neuroglancer's scales), a ``.ckl`` stream
file (``.ckl.gz`` & co.), a ``.npy`` file (memory-mapped) or an in-memory numpy array.

Axes: from OME-Zarr ``multiscales`` metadata; else the array's ``dimension_names`` (format 3) or
``_ARRAY_DIMENSIONS`` attribute (format 2); else Zarr's convention ``(z, y, x)``, ``(c, z, y, x)``,
``(t, c, z, y, x)`` (``(y, x)`` in 2D). A ``.ckl`` stream decodes to ``(x, y, z)`` when it is
Fortran-ordered and is read as ``(z, y, x)`` when C-ordered. ``axes=`` overrides all of these.

Needs the optional ``neuroglancer`` package: ``pip install "crackle-zarr[view]"``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import numbers
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

__all__ = ["view", "open_volume", "Volume", "VIEW_INSTALL_HINT"]

logger = logging.getLogger(__name__)

VIEW_INSTALL_HINT = 'pip install "crackle-zarr[view]" (or: pip install neuroglancer)'
STREAM_SUFFIXES = (".ckl", ".ckl.gz", ".ckl.bz2", ".ckl.xz", ".ckl.zst")
DEFAULT_CACHE_BYTES = 256 << 20
_SLAB_VOXELS = 1 << 24  # z slices of a .ckl stream decoded (and cached) together: about this many voxels
_LOOPBACK = "127.0.0.1"

# OME-Zarr unit names -> (factor, Neuroglancer unit)
_OME_UNITS = {
    "angstrom": (0.1, "nm"), "picometer": (1, "pm"), "nanometer": (1, "nm"), "micrometer": (1, "um"),
    "micron": (1, "um"), "millimeter": (1, "mm"), "centimeter": (1, "cm"), "meter": (1, "m"),
    "kilometer": (1, "km"), "nanosecond": (1, "ns"), "microsecond": (1, "us"),
    "millisecond": (1, "ms"), "second": (1, "s"), "minute": (60, "s"), "hour": (3600, "s"),
}
_NEUROGLANCER_UNITS = {"", "pm", "nm", "um", "µm", "mm", "cm", "m", "km", "ns", "us", "µs", "ms", "s", "Hz"}


def _neuroglancer() -> Any:
    try:
        import neuroglancer
    except ImportError:
        raise ImportError(f"crackle_codec.view needs the neuroglancer package: {VIEW_INSTALL_HINT}") from None
    return neuroglancer


# ======================================================================= lazy array sources

class _DecodedCache:
    """An LRU cache of decoded blocks, bounded in bytes, that decodes each block once.

    Concurrent requests for a block being decoded wait for that decode instead of repeating it.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._blocks: collections.OrderedDict[Any, np.ndarray] = collections.OrderedDict()
        self._pending: dict[Any, Future] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.decoded = 0  # blocks decoded so far
        self.hits = 0

    def get(self, key: Any, decode: Any) -> np.ndarray:
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
                self.hits += 1
                return block
            future = self._pending.get(key)
            owner = future is None
            if owner:
                future = self._pending[key] = Future()
        if not owner:
            return future.result()
        try:
            block = decode()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self.decoded += 1
            if block.nbytes <= self.max_bytes:
                self._blocks[key] = block
                self._bytes += block.nbytes
                while self._bytes > self.max_bytes:
                    _, old = self._blocks.popitem(last=False)
                    self._bytes -= old.nbytes
        future.set_result(block)
        return block


class _Blocked:
    """A lazy N-d array read block by block (zarr chunks, or z slabs of a stream), through a cache.

    ``read(box)`` takes one ``slice(start, stop, step)`` per axis (step >= 1) and fetches only the
    blocks that hold a selected voxel.
    """

    def __init__(self, shape: Sequence[int], dtype: Any, block_shape: Sequence[int], fetch: Any,
                 cache: _DecodedCache, name: str):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.block_shape = tuple(max(1, int(b)) for b in block_shape)
        self._fetch = fetch  # fetch(tuple of slices) -> ndarray of that region
        self._cache = cache
        self._name = name

    def _block(self, index: tuple[int, ...]) -> np.ndarray:
        box = tuple(slice(i * b, min((i + 1) * b, s)) for i, b, s in zip(index, self.block_shape, self.shape))
        return self._cache.get((self._name, index), lambda: np.asarray(self._fetch(box)))

    def read(self, box: Sequence[slice]) -> np.ndarray:
        ranges = [range(*sl.indices(n)) for sl, n in zip(box, self.shape)]
        out = np.zeros(tuple(len(r) for r in ranges), dtype=self.dtype)
        if out.size == 0:
            return out
        per_axis = []  # per axis: [(block index, out slice, slice inside the block)]
        for r, b in zip(ranges, self.block_shape):
            parts = []
            for i in range(r.start // b, (r[-1] // b) + 1):
                lo, hi = i * b, (i + 1) * b
                k0 = max(0, -(-(lo - r.start) // r.step))
                k1 = min(len(r), -(-(hi - r.start) // r.step))
                if k0 < k1:
                    first = r.start + k0 * r.step - lo
                    parts.append((i, slice(k0, k1), slice(first, first + (k1 - k0 - 1) * r.step + 1, r.step)))
            per_axis.append(parts)
        for combo in itertools.product(*per_axis):
            block = self._block(tuple(p[0] for p in combo))
            out[tuple(p[1] for p in combo)] = block[tuple(p[2] for p in combo)]
        return out


class _Direct:
    """An array already in memory, or memory-mapped: read by plain indexing."""

    def __init__(self, array: np.ndarray):
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self._array = array

    def read(self, box: Sequence[slice]) -> np.ndarray:
        return np.asarray(self._array[tuple(box)])


# ================================================================================ the volume

@dataclass
class Level:
    """One resolution level: a lazy array and its downsampling factor per axis (level 0: all 1)."""

    array: Any  # _Blocked or _Direct
    factors: tuple[int, ...]


@dataclass
class Volume:
    """What ``view`` shows: the levels of one array, with axis names, voxel size and units.

    ``axes_known`` / ``scale_known``: the axes / voxel size came from metadata or the caller, not
    from a default (an image layer without its own then takes the segmentation's).
    """

    name: str
    levels: list[Level]
    description: str
    axes: Optional[tuple[str, ...]] = None
    scales: Optional[tuple[float, ...]] = None
    units: Optional[tuple[str, ...]] = None
    axes_known: bool = False
    scale_known: bool = False
    cache: Optional[_DecodedCache] = None  # decoded chunks (or z slabs) of every level

    @property
    def shape(self) -> tuple[int, ...]:
        return self.levels[0].array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.levels[0].array.dtype

    def read(self, start: Sequence[int], end: Sequence[int], factors: Sequence[int]) -> np.ndarray:
        """Voxels ``start:end`` of the volume downsampled by ``factors`` (by striding), from the
        coarsest stored level whose factors divide ``factors``."""
        factors = tuple(int(f) for f in factors)
        usable = [lv for lv in self.levels if all(f % lf == 0 for f, lf in zip(factors, lv.factors))]
        level = max(usable, key=lambda lv: math.prod(lv.factors))
        steps = [f // lf for f, lf in zip(factors, level.factors)]
        box = tuple(slice(s * k, e * k, k) for s, e, k in zip(start, end, steps))
        block = level.array.read(box)
        want = tuple(int(e) - int(s) for s, e in zip(start, end))
        if block.shape != want:  # a coarser level smaller than the ceil of the full shape
            padded = np.zeros(want, dtype=block.dtype)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        return block


def _default_axes(rank: int) -> tuple[str, ...]:
    if rank == 2:
        return ("y", "x")
    if 3 <= rank <= 5:
        return ("t", "c", "z", "y", "x")[5 - rank:]
    return tuple(f"d{i}" for i in range(rank))


def _parse_axes(axes: Union[str, Sequence[str]], rank: int) -> tuple[str, ...]:
    names = tuple(a.strip() for a in axes.split(",")) if isinstance(axes, str) else tuple(axes)
    if len(names) == 1 and len(names[0]) == rank and rank > 1:  # "xyz"
        names = tuple(names[0])
    if len(names) != rank:
        raise ValueError(f"axes {','.join(names)!s} name {len(names)} axes, but the array has {rank}")
    if len(set(names)) != rank or not all(names):
        raise ValueError(f"axes must be {rank} distinct non-empty names, got {names}")
    return names


def _check_scales(voxel_size: Sequence[float], rank: int) -> tuple[float, ...]:
    scales = tuple(float(v) for v in voxel_size)
    if len(scales) != rank:
        raise ValueError(f"voxel_size has {len(scales)} values, but the array has {rank} axes")
    if not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"voxel_size values must be positive, got {scales}")
    return scales


def _suffix(path: str, suffixes: Sequence[str]) -> Optional[str]:
    lower = path.lower()
    return next((s for s in sorted(suffixes, key=len, reverse=True) if lower.endswith(s)), None)


def _stream_volume(path: str, cache: _DecodedCache, name: str) -> Volume:
    from .core import decompress, header
    from .io import load

    stream = load(path, decode=False)
    h = header(stream)
    sx, sy, sz = h.shape
    slab = max(1, min(sz, _SLAB_VOXELS // max(1, sx * sy)))

    def fetch(box: tuple[slice, ...]) -> np.ndarray:
        return decompress(stream, z=box[2])[box[0], box[1], :]

    array = _Blocked(h.shape, h.dtype, (sx, sy, slab), fetch, cache, name)
    # Fortran order is how (x, y, z) volumes are kept in numpy; C order is Zarr's (z, y, x).
    axes = ("x", "y", "z") if h.order == "F" else ("z", "y", "x")
    return Volume(name, [Level(array, (1, 1, 1))], f"Crackle stream {path} ({sx} x {sy} x {sz} {h.dtype}, "
                  f"{h.order} order)", axes=axes, axes_known=True)


def _zarr() -> Any:
    try:
        import zarr
    except ImportError:
        raise ImportError('viewing Zarr arrays needs zarr >= 3: pip install "crackle-zarr[zarr]"') from None
    return zarr


def _zarr_level(array: Any, cache: _DecodedCache, name: str, factors: tuple[int, ...]) -> Level:
    return Level(_Blocked(array.shape, array.dtype, array.chunks, array.__getitem__, cache, name), factors)


def _zarr_axes(array: Any) -> Optional[tuple[str, ...]]:
    names = getattr(getattr(array, "metadata", None), "dimension_names", None)
    if names is None:
        names = dict(array.attrs).get("_ARRAY_DIMENSIONS")
    if names and all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names):
        return tuple(names)
    return None


def _multiscales(attrs: dict) -> Optional[dict]:
    """The first OME-Zarr ``multiscales`` entry of a group's attributes (NGFF 0.4, or 0.5's ``ome`` key)."""
    entries = attrs.get("multiscales")
    if entries is None and isinstance(attrs.get("ome"), dict):
        entries = attrs["ome"].get("multiscales")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        return entries[0]
    return None


def _ome_scale(transforms: Any, rank: int) -> Optional[list[float]]:
    for t in transforms or []:
        if isinstance(t, dict) and t.get("type") == "scale" and len(t.get("scale", [])) == rank:
            return [float(v) for v in t["scale"]]
    return None


def _ome_volume(group: Any, ms: dict, cache: _DecodedCache, name: str
                ) -> tuple[list[Level], tuple[str, ...], tuple[float, ...], tuple[str, ...]]:
    datasets = ms.get("datasets") or []
    if not datasets:
        raise ValueError("its OME-Zarr multiscales metadata lists no datasets")
    arrays = [group[d["path"]] for d in datasets]
    rank = arrays[0].ndim
    raw_axes = ms.get("axes")
    if raw_axes:
        names = tuple(a["name"] if isinstance(a, dict) else str(a) for a in raw_axes)
        ome_units = [a.get("unit", "") if isinstance(a, dict) else "" for a in raw_axes]
    else:  # NGFF 0.1 / 0.2: always (t, c, z, y, x)
        names, ome_units = _default_axes(rank), [""] * rank
    if len(names) != rank:
        raise ValueError(f"its OME-Zarr axes name {len(names)} axes, but the arrays have {rank}")
    global_scale = _ome_scale(ms.get("coordinateTransformations"), rank) or [1.0] * rank
    scales0 = None
    levels = []
    for i, (d, a) in enumerate(zip(datasets, arrays)):
        scale = _ome_scale(d.get("coordinateTransformations"), rank)
        if scale is None:  # older metadata: factors from the shapes
            factors = tuple(max(1, round(s0 / s)) for s0, s in zip(arrays[0].shape, a.shape))
            scale = [f * 1.0 for f in factors]
        if scales0 is None:
            scales0 = scale
        ratios = [s / s0 for s, s0 in zip(scale, scales0)]
        factors = tuple(max(1, round(r)) for r in ratios)
        if any(abs(r - f) > 1e-6 * f for r, f in zip(ratios, factors)):
            logger.warning("%s: level %s has non-integer factors %s; not used", name, d["path"], ratios)
            continue
        levels.append(_zarr_level(a, cache, f"{name}/{i}", factors))
    scales, units = [], []
    for s, g, unit in zip(scales0, global_scale, ome_units):
        factor, ng_unit = _OME_UNITS.get(str(unit).lower(), (1, "")) if unit else (1, "")
        if unit and not ng_unit:
            logger.warning("%s: unknown OME-Zarr unit %r shown without unit", name, unit)
        scales.append(s * g * factor)
        units.append(ng_unit)
    return levels, names, tuple(scales), tuple(units)


def open_volume(source: Any, *, name: str = "segmentation", axes: Union[None, str, Sequence[str]] = None,
                voxel_size: Optional[Sequence[float]] = None, units: Union[None, str, Sequence[str]] = None,
                cache_bytes: int = DEFAULT_CACHE_BYTES) -> Volume:
    """Open ``source`` lazily as a ``Volume`` (see the module docstring for sources and axes).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: an unknown kind of file, a Zarr group without OME-Zarr multiscales, or axes /
            voxel sizes that do not fit the array.
        ImportError: a Zarr source without zarr >= 3.
    """
    cache = _DecodedCache(cache_bytes)
    vol = _open_source(source, name, cache)
    vol.cache = cache
    rank = len(vol.shape)
    if axes is not None:
        vol.axes, vol.axes_known = _parse_axes(axes, rank), True
    elif vol.axes is None:
        vol.axes = _default_axes(rank)
    if voxel_size is not None:
        vol.scales, vol.scale_known = _check_scales(voxel_size, rank), True
    elif vol.scales is None:
        vol.scales = (1.0,) * rank
    if units is not None:
        vol.units = (units,) * rank if isinstance(units, str) else tuple(units)
        if len(vol.units) != rank:
            raise ValueError(f"units has {len(vol.units)} values, but the array has {rank} axes")
    elif vol.units is None:
        vol.units = ("",) * rank
    for unit in vol.units:
        if unit not in _NEUROGLANCER_UNITS:
            known = ", ".join(sorted(u for u in _NEUROGLANCER_UNITS if u))
            raise ValueError(f"unknown unit {unit!r}; use one of {known}")
    return vol


def _open_source(source: Any, name: str, cache: _DecodedCache) -> Volume:
    if isinstance(source, np.ndarray):
        return Volume(name, [Level(_Direct(source), (1,) * source.ndim)], "numpy array")
    if not isinstance(source, (str, os.PathLike)):
        if hasattr(source, "chunks") and hasattr(source, "attrs") or hasattr(source, "group_keys"):
            return _zarr_volume(source, cache, name, repr(source))
        raise TypeError(f"cannot view a {type(source).__name__}: give a Zarr array or group, a path, "
                        "or a numpy array")
    path = os.fspath(source)
    if not os.path.exists(path) and "://" not in path:
        raise FileNotFoundError(f"{path}: no such file or directory")
    if _suffix(path, STREAM_SUFFIXES):
        return _stream_volume(path, cache, name)
    if path.lower().endswith(".npy"):
        array = np.load(path, mmap_mode="r")
        return Volume(name, [Level(_Direct(array), (1,) * array.ndim)], f"{path} (.npy, memory-mapped)")
    if os.path.isfile(path):
        raise ValueError(f"{path}: not a Zarr array, an OME-Zarr group, a .ckl stream or a .npy file")
    return _zarr_volume(_zarr().open(path, mode="r"), cache, name, path)


def _zarr_volume(node: Any, cache: _DecodedCache, name: str, label: str) -> Volume:
    if hasattr(node, "chunks"):  # an array
        axes = _zarr_axes(node)
        return Volume(name, [_zarr_level(node, cache, name, (1,) * node.ndim)],
                      f"Zarr array {label} ({' x '.join(map(str, node.shape))} {node.dtype}, chunks "
                      f"{' x '.join(map(str, node.chunks))})", axes=axes, axes_known=axes is not None)
    ms = _multiscales(dict(node.attrs))
    if ms is None:
        children = sorted(k for k in node.array_keys())
        hint = f" (arrays in it: {', '.join(children)})" if children else ""
        raise ValueError(f"{label}: a Zarr group without OME-Zarr multiscales metadata; give the path of an "
                         f"array inside it{hint}")
    levels, axes, scales, units = _ome_volume(node, ms, cache, name)
    shape = levels[0].array.shape
    plural = "s" if len(levels) != 1 else ""
    return Volume(name, levels, f"OME-Zarr {label} ({len(levels)} level{plural}, {' x '.join(map(str, shape))} "
                  f"{levels[0].array.dtype})", axes=axes, scales=scales, units=units, axes_known=True,
                  scale_known=True)


# ============================================================================ serving

_SEGMENT_DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _segmentation_dtype(dtype: np.dtype) -> np.dtype:
    """Neuroglancer shows unsigned segment ids: signed and bool labels are shown by their bits."""
    if dtype.kind not in "uib":
        raise TypeError(f"a segmentation needs integer labels, got dtype {dtype}")
    return np.dtype(_SEGMENT_DTYPES[dtype.itemsize])


def _image_dtype(dtype: np.dtype) -> np.dtype:
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype.kind in "iu" and dtype.itemsize == 8 or dtype.kind == "f":
        return np.dtype(np.float32)
    if dtype.kind not in "iu":
        raise TypeError(f"an image layer needs integer or float voxels, got dtype {dtype}")
    return dtype


_local_volume_class = None


def _served_volume_class() -> type:
    """A Neuroglancer ``LocalVolume`` that reads requested boxes from a ``Volume``."""
    global _local_volume_class
    if _local_volume_class is not None:
        return _local_volume_class
    ng = _neuroglancer()
    from neuroglancer import local_volume
    from neuroglancer.chunks import encode_jpeg, encode_npz

    class ServedVolume(local_volume.LocalVolume):
        def __init__(self, volume: Volume, volume_type: str, dtype: np.dtype):
            self.volume = volume
            self.served_dtype = dtype
            self.requests = 0
            self._count_lock = threading.Lock()
            dims = ng.CoordinateSpace(names=list(volume.axes), units=list(volume.units),
                                      scales=list(volume.scales))
            # The array-like handed to LocalVolume is used for its shape and dtype only.
            super().__init__(_Shape(volume.shape, dtype), dimensions=dims, volume_type=volume_type,
                             encoding="raw")

        def get_encoded_subvolume(self, data_format, start, end, scale_key):
            rank = self.rank
            factors = np.array(scale_key.split(","), dtype=np.int64)
            if len(start) != rank or len(end) != rank or len(factors) != rank:
                raise ValueError("Invalid request")
            if np.any(factors < 1) or np.prod(factors) > self.max_downsampling:
                raise ValueError("Invalid downsampling factor.")
            shape = -(-np.asarray(self.shape) // factors)
            if np.any(end < start) or np.any(start < 0) or np.any(end > shape):
                raise ValueError("Out of bounds data request.")
            t0 = time.perf_counter()
            block = self.volume.read(start, end, factors)
            if block.dtype != self.served_dtype:  # signed or bool labels: the same bits, unsigned
                same_bits = block.dtype.kind in "uib" and block.dtype.itemsize == self.served_dtype.itemsize
                block = block.view(self.served_dtype) if same_bits else block.astype(self.served_dtype)
            with self._count_lock:
                self.requests += 1
            logger.debug("%s: served %s voxels from %s to %s at scale %s in %.1f ms (%d chunks decoded so far)",
                         self.volume.name, "x".join(map(str, block.shape)), ",".join(map(str, start)),
                         ",".join(map(str, end)), scale_key, (time.perf_counter() - t0) * 1e3,
                         self.volume.cache.decoded if self.volume.cache else 0)
            if data_format == "raw":  # the client reads raw chunks with the first axis fastest
                return block.tobytes(order="F"), "application/octet-stream"
            if data_format == "npz":
                return encode_npz(block), "application/octet-stream"
            if data_format == "jpeg":
                return encode_jpeg(block), "image/jpeg"
            raise ValueError("Invalid data format requested.")

        def get_object_mesh(self, object_id):
            # Meshing needs the whole volume in memory; a lazily served array has no meshes.
            raise local_volume.MeshesNotSupportedForVolume()

    _local_volume_class = ServedVolume
    return ServedVolume


class _Shape:
    """Shape and dtype for ``LocalVolume.__init__`` (it reads no voxels through this)."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype):
        self.shape = shape
        self.dtype = dtype

    def __getitem__(self, item: Any) -> np.ndarray:
        raise RuntimeError("voxels are read through Volume.read")


def _label_ids(labels: Any, dtype: np.dtype) -> list[int]:
    if labels is None:
        return []
    if isinstance(labels, (numbers.Integral, np.integer)):
        labels = [labels]
    ids = []
    for label in labels:
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, (numbers.Integral, np.integer)):
            raise TypeError(f"labels must be integers, got {label!r}")
        value = int(label)
        if dtype == np.bool_:
            if value not in (0, 1):
                raise ValueError(f"label {value} does not fit a bool segmentation")
            ids.append(value)
            continue
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            raise ValueError(f"label {value} does not fit the segmentation's dtype {dtype}")
        ids.append(int(np.array(value, dtype=dtype).view(_segmentation_dtype(dtype))))
    return ids


def _start_server(port: int) -> None:
    ng = _neuroglancer()
    from neuroglancer import server

    if not isinstance(port, numbers.Integral) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0..65535, got {port!r}")
    if server.is_server_running():
        running = server.global_server.port
        if port and running != port:
            raise ValueError(f"the Neuroglancer server already runs on port {running}; "
                             "call neuroglancer.stop() first to move it")
        return
    ng.set_server_bind_address(_LOOPBACK, port)  # loopback only: the data is not for the network
    ng.server.start()


def _display_space(ng: Any, volume: Volume) -> Any:
    """Global dimensions ordered x, y, z first (Neuroglancer displays the first three)."""
    order = sorted(range(len(volume.axes)), key=lambda i: ("xyz".index(volume.axes[i])
                                                            if volume.axes[i] in ("x", "y", "z") else 3 + i))
    return ng.CoordinateSpace(names=[volume.axes[i] for i in order], units=[volume.units[i] for i in order],
                              scales=[volume.scales[i] for i in order])


def view(source: Any, *, labels: Any = None, image: Any = None, axes: Union[None, str, Sequence[str]] = None,
         voxel_size: Optional[Sequence[float]] = None, units: Union[None, str, Sequence[str]] = None,
         port: int = 0, open_browser: bool = False, layout: str = "4panel",
         cache_bytes: int = DEFAULT_CACHE_BYTES) -> Any:
    """Show a Crackle array in Neuroglancer; returns the ``neuroglancer.Viewer``.

    Starts Neuroglancer's local web server (on 127.0.0.1 only) if it is not running, and adds a
    segmentation layer that decodes only the chunks the viewer asks for. ``print(viewer)`` gives
    the URL; in a notebook the viewer displays itself.

    Args:
        source: a Zarr array (format 2 or 3, sharded or not) or its path, an OME-Zarr multiscale
            group or its path, a ``.ckl`` stream file (``.ckl.gz`` & co.), a ``.npy`` file, or a
            numpy array.
        labels: label ids to select: Neuroglancer then shows only these (its visible segments).
        image: an image to show beside the segmentation (same kinds of source; a ``.npy`` file is
            memory-mapped), with the same axes and voxel size unless its own metadata says otherwise.
        axes: axis names in array order, e.g. ``"x,y,z"`` or ``("z", "y", "x")``; overrides the
            metadata and the default (Zarr's ``(z, y, x)`` convention for 3D arrays).
        voxel_size: size of a voxel along each axis, in array order (default: from OME-Zarr
            metadata, else 1).
        units: a unit for every axis (``"nm"``), or one per axis.
        port: server port; 0 (default) picks a free one.
        open_browser: also open the viewer in the default web browser.
        layout: Neuroglancer layout: ``"4panel"`` (default), ``"xy"``, ``"xz"``, ``"yz"``, ``"3d"``...
        cache_bytes: memory for decoded chunks kept between requests (per source).

    Raises:
        ImportError: neuroglancer (``pip install "crackle-zarr[view]"``) or, for Zarr sources,
            zarr >= 3 is missing.
    """
    ng = _neuroglancer()
    seg = open_volume(source, name="segmentation", axes=axes, voxel_size=voxel_size, units=units,
                      cache_bytes=cache_bytes)
    if seg.dtype.kind not in "uib":
        raise TypeError(f"a segmentation needs integer labels, not {seg.dtype}{_label_images_hint(source)}")
    selected = _label_ids(labels, seg.dtype)
    img = None
    if image is not None:
        img = open_volume(image, name="image", cache_bytes=cache_bytes)
        if len(img.shape) == len(seg.shape):  # what its metadata does not say, it shares with the segmentation
            if not img.axes_known:
                img.axes = seg.axes
            if not img.scale_known:
                img.scales, img.units = seg.scales, seg.units
    _start_server(port)
    served = _served_volume_class()
    viewer = ng.Viewer()
    with viewer.txn() as s:
        s.dimensions = _display_space(ng, seg)
        if img is not None:
            s.layers["image"] = ng.ImageLayer(source=served(img, "image", _image_dtype(img.dtype)))
        s.layers["segmentation"] = ng.SegmentationLayer(
            source=served(seg, "segmentation", _segmentation_dtype(seg.dtype)), segments=selected)
        s.layout = layout
        s.cross_section_scale = _fit_scale(seg, pixels=280 if layout == "4panel" else 560)
        s.projection_scale = _fit_scale(seg, pixels=1) * 1.8
    logger.info("serving %s at %s", seg.description, viewer.get_viewer_url())
    if open_browser:
        import webbrowser

        webbrowser.open(viewer.get_viewer_url())
    return viewer


def _label_images_hint(source: Any) -> str:
    """For an OME-Zarr image with a ``labels`` group: which label images to view instead."""
    if not isinstance(source, (str, os.PathLike)):
        return ""
    labels_dir = os.path.join(os.fspath(source), "labels")
    try:
        names = sorted(n for n in os.listdir(labels_dir) if os.path.isdir(os.path.join(labels_dir, n)))
    except OSError:
        return ""
    if not names:
        return ""
    first = os.path.join(os.fspath(source), "labels", names[0])
    return (f"; its label images: {', '.join(names)} (view one, e.g. {first}, with --image / image= "
            f"{os.fspath(source)} beside it)")


def _fit_scale(volume: Volume, pixels: int = 280) -> float:
    """A zoom (canonical voxels per screen pixel) that fits the x-y extent into about ``pixels``."""
    extents = [n * s for a, n, s in zip(volume.axes, volume.shape, volume.scales) if a in ("x", "y")]
    spatial = [s for a, s in zip(volume.axes, volume.scales) if a in ("x", "y", "z")]
    if not extents or not spatial:
        return 1.0
    return max(extents) / min(spatial) / pixels
