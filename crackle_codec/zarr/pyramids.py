"""Label pyramids: mode-pooled, downsampled levels of a Crackle Zarr array, chunk by chunk.

``downsample(array, dest, levels=N)`` writes levels 1..N of ``array`` (level 0) as arrays
``"1"``..``"N"`` of the Zarr group ``dest``. Each level has the array's codecs (Crackle and its
configuration, compressors, sharding), chunk (and shard) shape, dtype, fill value and dimension
names; only its shape differs.

**Factor.** ``factor`` gives one value per *array* axis, in the array's axis order (``(z, y, x)``
for a Zarr label volume, ``(t, c, z, y, x)`` for a 5D one), each 1 (kept) or 2 (halved); only the
last three axes may be halved. The default halves the two last (fastest) axes: ``(1, 2, 2)`` for a
``(z, y, x)`` array, which is Crackle's x and y, the reference's ``mode_pooling_2x2x1``. ``(2, 2,
2)`` halves all three. A level's size along a halved axis is ``ceil(n / 2)`` of the level below.

**Rule.** Each output voxel is the mode (most frequent label) of its block of the level below, the
block's voxels taken in the array's C order (last axis fastest):

* a whole block of four voxels (two halved axes, e.g. the default) follows the reference's rule:
  of ``a, b, c, d`` (C order) the result is ``a`` if it equals ``b`` or ``c``, else ``b`` if it
  equals ``c``, else ``d``. This is the mode, ties broken as ``mode_pooling_2x2x1`` breaks them,
  so level 1 of a ``(z, y, x)`` array equals ``crackle.mode_pooling_2x2x1`` of its volume;
* every other block (eight voxels for ``(2, 2, 2)``, two for one halved axis, and the blocks cut
  by an odd edge, which hold only the voxels inside the array) takes its most frequent label, a
  tie going to the label that comes first in C order.

Chunks never written hold the fill value, and so does every output chunk whose source chunks were
all never written: such chunks are not written (a sparse array stays sparse).

**Work.** One task per output chunk (per output shard for sharded arrays), ``max_workers`` threads
at a time; a task reads and decodes one source chunk at a time and pools it straight into the output
chunk (C++, ext/mode_pooling.hpp), then encodes the output chunk with the array's codecs. Memory is
a few chunks per worker (a shard's encoded chunks for sharded arrays), whatever the array size.
Level ``k + 1`` is computed from level ``k`` as written.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import numpy as np

from .. import _crackle
from ..errors import DecodeError
from ..layout import decode_chunk
from .sources import DEFAULT_MAX_WORKERS, Coords, _Source, _Unsharded
from .sources import source as _source

__all__ = ["downsample", "pyramid_factor", "level_shapes", "write_ome_label_metadata"]

# OME-Zarr (NGFF) axes of a label image, by number of axes: time, channel, then space (z, y, x)
OME_AXES = {2: ("y", "x"), 3: ("z", "y", "x"), 4: ("c", "z", "y", "x"), 5: ("t", "c", "z", "y", "x")}
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}

Box = tuple[tuple[int, int], ...]  # per array axis, [start, stop)


# =========================================================================== public API

def pyramid_factor(ndim: int, factor: Optional[Sequence[int]] = None) -> tuple[int, ...]:
    """``factor`` checked and as a tuple of ``ndim`` ints (see the module docstring); None gives
    the default, 2 on the last two axes (the last one for a 1D array)."""
    if factor is None:
        return tuple(2 if a >= ndim - 2 else 1 for a in range(ndim))
    if isinstance(factor, (str, bytes)) or not isinstance(factor, Sequence):
        raise TypeError(f"factor must be a sequence of ints, one per array axis, got {factor!r}")
    values = []
    for f in factor:
        if isinstance(f, (bool, np.bool_)) or not isinstance(f, (int, np.integer)):
            raise TypeError(f"factor must hold ints, got {f!r}")
        values.append(int(f))
    if len(values) != ndim:
        raise ValueError(f"factor {tuple(values)} has {len(values)} values; the array has {ndim} axes "
                         "(give one per array axis, e.g. (1, 2, 2) for a (z, y, x) array)")
    if any(f not in (1, 2) for f in values):
        raise ValueError(f"factor {tuple(values)}: each axis is kept (1) or halved (2)")
    if 2 not in values:
        raise ValueError(f"factor {tuple(values)} halves no axis")
    if any(f == 2 for f in values[:-3]):
        raise ValueError(f"factor {tuple(values)}: only the last three (spatial) axes can be halved")
    return tuple(values)


def level_shapes(shape: Sequence[int], factor: Sequence[int], levels: int) -> list[tuple[int, ...]]:
    """The shapes of levels 1..``levels`` of an array of ``shape`` (``factor`` as checked by
    ``pyramid_factor``)."""
    shapes = []
    current = tuple(int(s) for s in shape)
    for _ in range(levels):
        current = tuple(-(-s // f) for s, f in zip(current, factor))
        shapes.append(current)
    return shapes


def downsample(array: Any, dest: Any, *, factor: Optional[Sequence[int]] = None, levels: int = 1,
               max_workers: Optional[int] = None, progress: Optional[Callable[[int], None]] = None,
               overwrite: bool = False) -> list[Any]:
    """Write levels 1..``levels`` of a label pyramid of a Crackle Zarr array, by mode pooling.

    Args:
        array: a zarr array whose chunks are Crackle streams (format 2 or 3, sharded or not, any
            bytes-to-bytes codec after Crackle), opened with zarr 3.
        dest: where the levels go: a zarr group, or a store or path opened as one
            (``zarr.open_group(dest, mode="a")``, in the array's Zarr format). Level ``k`` is its
            array ``str(k)``, OME-Zarr's naming ("0" is the full resolution; it may be ``array``).
        factor: one value per array axis, 1 (kept) or 2 (halved); only the last three axes may be
            halved. Default: the last two axes, ``(1, 2, 2)`` for ``(z, y, x)``, the reference's
            2x2x1. See the module docstring for the rule (ties as ``mode_pooling_2x2x1``).
        levels: how many levels to write (>= 1); each halves the level below.
        max_workers: threads pooling chunks concurrently (default 16).
        progress: called (in the calling thread) with the number of output chunks just finished,
            over all levels; the total is ``sum(len(chunk grid) for each level)``, see
            ``level_shapes``.
        overwrite: replace arrays ``"1"``..``"N"`` already in ``dest`` (else ValueError).

    Returns:
        The level arrays (zarr arrays), level 1 first.

    Exact: every level equals numpy mode pooling (the module docstring's rule) of the level below,
    decoded; padding of edge chunks never counts, chunks never written count as the fill value.
    """
    if isinstance(levels, (bool, np.bool_)) or not isinstance(levels, (int, np.integer)):
        raise TypeError(f"levels must be an int, got {levels!r}")
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    workers = DEFAULT_MAX_WORKERS if max_workers is None else int(max_workers)
    if workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    src = _source(array)
    if getattr(array, "metadata", None) is None:
        raise NotImplementedError("downsample writes levels with zarr >= 3: open the array with zarr 3")
    fac = pyramid_factor(len(src.shape), factor)
    group = _open_group(dest, array)
    names = [str(k) for k in range(1, levels + 1)]
    if not overwrite:
        taken = [n for n in names if n in group]
        if taken:
            raise ValueError(f"the destination already holds {', '.join(repr(n) for n in taken)} "
                             "(pass overwrite=True to replace them)")
    if _is_member(array, group, names):
        raise ValueError(f"the array is {array.path!r} of the destination group, where a level would be "
                         "written: write the levels into another group, or name the array \"0\"")
    out = []
    below, below_src = array, src
    for name, shape in zip(names, level_shapes(src.shape, fac, levels)):
        level = _create_like(group, name, below, shape)
        _pool_level(below_src, _source(level), fac, workers, progress)
        out.append(level)
        below, below_src = level, _source(level)
    return out


def write_ome_label_metadata(group: Any, *, levels: int, factor: Sequence[int], name: Optional[str] = None,
                             axes: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Make ``group`` (holding arrays ``"0"``..``str(levels)``, level 0 the full resolution) an
    OME-Zarr label image: NGFF 0.4 attributes for a Zarr format 2 group, 0.5 for format 3.

    Writes ``multiscales`` (the axes, and per level a ``scale`` transform of ``factor ** k``,
    ``type`` "mode") and ``image-label``. ``axes`` names the array's axes (default by their number:
    ``y, x``; ``z, y, x``; ``c, z, y, x``; ``t, c, z, y, x``); ``t`` is a time axis, ``c`` a
    channel axis, the others space. Returns the attributes written.
    """
    ndim = len(factor)
    names = tuple(axes) if axes is not None else OME_AXES.get(ndim)
    if names is None or len(names) != ndim:
        raise ValueError(f"OME-Zarr images have 2 to 5 axes; name the {ndim} axes of this one")
    unknown = [a for a in names if a not in _AXIS_TYPES]
    if unknown:
        raise ValueError(f"OME-Zarr axes are named from t, c, z, y, x; got {unknown}")
    version = "0.4" if group.metadata.zarr_format == 2 else "0.5"
    datasets = [{"path": str(k), "coordinateTransformations": [
        {"type": "scale", "scale": [float(f ** k) for f in factor]}]} for k in range(levels + 1)]
    multiscale: dict[str, Any] = {
        "name": name or "labels",
        "axes": [{"name": a, "type": _AXIS_TYPES[a]} for a in names],
        "datasets": datasets,
        "type": "mode",
        "metadata": {"method": "crackle_codec.downsample", "factor": list(factor),
                     "description": "mode pooling, ties as crackle's mode_pooling_2x2x1 "
                                    "(docs/zarr.md, Label pyramids)"},
    }
    if version == "0.4":
        attrs: dict[str, Any] = {"multiscales": [dict(multiscale, version=version)],
                                 "image-label": {"version": version}}
    else:
        attrs = {"ome": {"version": version, "multiscales": [multiscale], "image-label": {}}}
    group.attrs.update(attrs)
    return attrs


# ===================================================================== the levels' arrays

def _open_group(dest: Any, array: Any) -> Any:
    import zarr

    if isinstance(dest, zarr.Group):
        return dest
    fmt = getattr(getattr(array, "metadata", None), "zarr_format", None)
    return zarr.open_group(dest, mode="a", zarr_format=fmt)


def _is_member(array: Any, group: Any, names: Sequence[str]) -> bool:
    """Whether ``array`` is one of the arrays ``names`` of ``group`` (it would be overwritten)."""
    try:
        return any(array.store_path == group.store_path / name for name in names)
    except (AttributeError, TypeError):
        return False


def _create_like(group: Any, name: str, like: Any, shape: tuple[int, ...]) -> Any:
    """A new array ``name`` in ``group``: ``like``'s codecs, chunks, dtype and fill, of ``shape``."""
    meta = getattr(like, "metadata", None)
    if meta is None or not hasattr(group, "create_array"):
        raise NotImplementedError("downsample writes levels with zarr >= 3 (open the array with zarr 3)")
    common = dict(shape=shape, dtype=like.dtype, chunks=like.chunks, fill_value=meta.fill_value,
                  filters=like.filters, compressors=like.compressors, overwrite=True,
                  config={"write_empty_chunks": True})
    if meta.zarr_format == 2:
        return group.create_array(name, order=like.order, **common)
    return group.create_array(name, shards=like.shards, serializer=like.serializer,
                              dimension_names=meta.dimension_names, **common)


# =================================================================== pooling one level

def _pool_level(src: _Source, dst: _Source, factor: tuple[int, ...], workers: int,
                progress: Optional[Callable[[int], None]]) -> None:
    grid = [range(-(-s // c)) for s, c in zip(dst.shape, dst.chunks)]
    coords = list(itertools.product(*grid))
    if not coords:
        return
    encode = _chunk_encoder(dst)
    if isinstance(dst, _Unsharded):
        tasks = [[c] for c in coords]

        def work(batch: list[Coords]) -> int:
            raw = {}
            for c in batch:
                chunk = _pooled_chunk(src, dst, factor, c)
                if chunk is not None:
                    raw[dst._key(c)] = encode(chunk)
            if raw:
                dst._set_many(raw)
            return len(batch)
    else:
        tasks = dst.batches(coords)  # one output shard per task

        def work(batch: list[Coords]) -> int:
            from .sources_v3 import _build_shard

            local = {}
            for c in batch:
                chunk = _pooled_chunk(src, dst, factor, c)
                if chunk is not None:
                    local[dst._local(c)] = encode(chunk)
            if local:
                built = _build_shard(dst.sharding, local, dst.per_shard)
                if built is not None:
                    dst.io.set_many({dst.io.key(dst._shard_of(batch[0])): built.to_bytes()})
            return len(batch)

    if workers == 1 or len(tasks) == 1:
        for task in tasks:
            n = work(task)
            if progress is not None:
                progress(n)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        for n in pool.map(work, tasks):
            if progress is not None:
                progress(n)


def _pooled_chunk(src: _Source, dst: _Source, factor: tuple[int, ...], coords: Coords) -> Optional[np.ndarray]:
    """Output chunk ``coords`` (its full chunk shape, padding holding the fill value), or None when
    every source chunk it pools was never written."""
    out_box = tuple((i * c, min((i + 1) * c, s)) for i, c, s in zip(coords, dst.chunks, dst.shape))
    src_box = tuple((lo * f, min(hi * f, s)) for (lo, hi), f, s in zip(out_box, factor, src.shape))
    sources = list(itertools.product(*(range(lo // c, -(-hi // c)) for (lo, hi), c in zip(src_box, src.chunks))))
    streams: dict[Coords, Optional[bytes]] = {}
    for batch in src.batches(sources):
        streams.update(src.read(batch))
    if all(streams.get(c) is None for c in sources):
        return None
    inside = all(hi - lo == c for (lo, hi), c in zip(out_box, dst.chunks))
    if inside:  # every voxel is pooled below
        chunk = np.empty(dst.chunks, dtype=dst.dtype, order=dst.order)
    else:  # the padding holds the fill value, as zarr's own writes pad
        chunk = np.full(dst.chunks, dst.fill, dtype=dst.dtype, order=dst.order)
    out = chunk[tuple(slice(0, hi - lo) for lo, hi in out_box)]
    aligned = src.direct and all(c % 2 == 0 for c, f in zip(src.chunks, factor) if f == 2)
    if not aligned:  # pool the whole region at once (blocks straddle source chunks)
        _pool_into(_read_region(src, src_box, sources, streams), out, factor)
        return chunk
    for sc in sources:
        part = tuple((max(i * c, lo), min((i + 1) * c, hi)) for i, c, (lo, hi) in zip(sc, src.chunks, src_box))
        # ``part`` starts at an even offset from ``src_box`` along every halved axis
        dest = out[tuple(slice((p0 - lo) // f, -(-(p1 - lo) // f))
                         for (p0, p1), (lo, _), f in zip(part, src_box, factor))]
        stream = streams.get(sc)
        if stream is None:
            dest[...] = src.fill
            continue
        block = _decode(src, sc, stream)
        local = tuple(slice(p0 - i * c, p1 - i * c) for i, c, (p0, p1) in zip(sc, src.chunks, part))
        _pool_into(block[local], dest, factor)
    return chunk


def _decode(src: _Source, coords: Coords, stream: bytes) -> np.ndarray:
    try:
        block = decode_chunk(stream, src.chunks, src.x_axis, src.order)
    except DecodeError as exc:
        raise DecodeError(f"chunk {coords}: {exc}") from None
    return block.view(src.dtype) if block.dtype != src.dtype and block.dtype.itemsize == src.dtype.itemsize else block


def _read_region(src: _Source, box: Box, sources: list[Coords], streams: dict[Coords, Optional[bytes]]) -> np.ndarray:
    """The voxels of ``box`` (chunks never written as the fill value)."""
    if not src.direct:
        return np.asarray(src.read_region(tuple(slice(lo, hi) for lo, hi in box)))
    region = np.empty([hi - lo for lo, hi in box], dtype=src.dtype)
    for sc in sources:
        part = tuple((max(i * c, lo), min((i + 1) * c, hi)) for i, c, (lo, hi) in zip(sc, src.chunks, box))
        dest = region[tuple(slice(p0 - lo, p1 - lo) for (p0, p1), (lo, _) in zip(part, box))]
        stream = streams.get(sc)
        if stream is None:
            dest[...] = src.fill
        else:
            block = _decode(src, sc, stream)
            dest[...] = block[tuple(slice(p0 - i * c, p1 - i * c) for i, c, (p0, p1) in zip(sc, src.chunks, part))]
    return region


def _pool_into(block: np.ndarray, out: np.ndarray, factor: tuple[int, ...]) -> None:
    """Mode-pool ``block`` by ``factor`` into ``out`` (C++): over its last three axes, once per
    index of the axes before them (which ``pyramid_factor`` keeps)."""
    if block.ndim < 3:
        lead = (np.newaxis,) * (3 - block.ndim)
        block, out, factor = block[lead], out[lead], (1,) * (3 - len(factor)) + tuple(factor)
    f3 = tuple(factor[-3:])
    for index in itertools.product(*(range(n) for n in block.shape[:-3])):
        _crackle.mode_pool_blocks_into(block[index], out[index], f3)


def _chunk_encoder(dst: _Source) -> Callable[[np.ndarray], bytes]:
    """Stored bytes of a whole chunk of ``dst``: its Crackle stream through the codecs after it."""
    tail = getattr(dst, "tail", None)
    if tail is not None:  # format 2: numcodecs codecs
        return lambda chunk: tail.redo(tail.crackle.encode(chunk))
    chain = dst.chain
    return chain.encode


def _chunk_count(shape: Sequence[int], chunks: Sequence[int]) -> int:
    return math.prod(-(-s // c) for s, c in zip(shape, chunks))
