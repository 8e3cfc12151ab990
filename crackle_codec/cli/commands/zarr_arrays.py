"""Commands on Zarr arrays: convert (anything into a Crackle Zarr array) and query."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..args import _compressor_arg, _dims_arg, _markov_arg, _positive_arg
from ..errors import EXIT_OK, CLIError, UsageError, _codec, _one_line
from ..files import (STREAM_SUFFIXES, VOLUME_SUFFIXES, _METADATA_FILES, _check_label_dtype, _chunks_hint,
                     _read_stream, _read_volume, _require_file, _suffix_of)
from ..pool import ThreadPool
from ..progress import Progress
from ..registry import _subcommand
from ..text import _ratio_text


# ------------------------------------------------------------------------------------ convert

class _Transposed:
    """A sliceable volume seen with its axes reversed (a view; nothing is read up front)."""

    def __init__(self, source: Any):
        self.source = source
        self.shape = tuple(source.shape)[::-1]
        self.dtype = source.dtype

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self.source[box[::-1]]).T


class _StreamSource:
    """A Crackle stream read as a volume, one slab of z slices at a time (``slab``)."""

    def __init__(self, path: str, stream: bytes, transpose: bool):
        cc = _codec()
        self.path = path
        self.stream = stream
        self.header = cc.header(stream)
        self.transpose = transpose
        shape = tuple(self.header.shape)
        self.shape = shape[::-1] if transpose else shape
        self.dtype = self.header.dtype
        self.slab_axis = 0 if transpose else 2  # the stream's z axis, in output axes

    def slab(self, lo: int, hi: int, parallel: int) -> "_Slab":
        """The volume's slices lo..hi along ``slab_axis``, decoded once, for the regions inside them."""
        cc = _codec()
        try:
            block = cc.decompress(self.stream, z=slice(lo, hi), parallel=parallel)
        except cc.DecodeError as exc:
            raise CLIError(f"{self.path}: not a valid Crackle stream: {exc}") from exc
        return _Slab(block.T if self.transpose else block, self.slab_axis, lo)


class _Slab:
    """A decoded slab of a stream, indexed with boxes in whole-volume coordinates."""

    def __init__(self, block: np.ndarray, axis: int, offset: int):
        self.block, self.axis, self.offset = block, axis, offset

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        local = list(box)
        s = local[self.axis]
        local[self.axis] = slice(s.start - self.offset, s.stop - self.offset)
        return self.block[tuple(local)]


def _is_zarr_path(path: str) -> bool:
    return "://" in path or os.path.isdir(path)


def _open_zarr_array(path: str, mode: str = "r") -> Any:
    """An existing Zarr array (any format and codec), read-only unless ``mode`` says otherwise."""
    try:
        import zarr
    except ImportError:
        raise CLIError("Zarr arrays need zarr >= 3: pip install \"crackle-zarr[zarr]\"") from None
    if "://" not in path and not os.path.exists(path):
        raise CLIError(f"{path}: no such Zarr array")
    try:
        return zarr.open_array(path, mode=mode)
    except Exception as exc:
        raise CLIError(f"{path}: cannot open it as a Zarr array ({_one_line(exc)})") from exc


def _memory_order_of(source: Any) -> str:
    """The memory order that makes copies of ``source`` blocks cheap ("F" or "C")."""
    if isinstance(source, _Transposed):
        return "C" if _memory_order_of(source.source) == "F" else "F"
    if isinstance(source, _StreamSource):
        order = source.header.order
        return ("C" if order == "F" else "F") if source.transpose else order
    if isinstance(source, np.ndarray):
        return "F" if source.flags.f_contiguous and not source.flags.c_contiguous else "C"
    if type(source).__module__.startswith("nibabel"):
        return "F"  # NIfTI voxels are stored x fastest
    order = getattr(source, "order", None)
    return order if order in ("C", "F") else "C"


def open_source(path: str, *, key: str | None = None, transpose: bool = False) -> Any:
    """A convert source: a lazily read volume with ``shape``, ``dtype`` and ``source[box]``."""
    if _is_zarr_path(path):
        if key is not None:
            raise CLIError("--key applies to .npz sources only")
        source: Any = _open_zarr_array(path)
        _check_label_dtype(source.dtype, path)
    elif _suffix_of(path, STREAM_SUFFIXES) is not None:
        if key is not None:
            raise CLIError("--key applies to .npz sources only")
        return _StreamSource(path, _read_stream(path), transpose)
    elif _suffix_of(path, VOLUME_SUFFIXES) is not None:
        source = _read_volume(path, key=key, lazy=True)
    else:
        _require_file(path)
        raise CLIError(f"{path}: unknown source extension; expected a Zarr array or one of "
                       f"{', '.join(VOLUME_SUFFIXES + STREAM_SUFFIXES)}")
    if transpose:
        source = source.T if isinstance(source, np.ndarray) else _Transposed(source)
    return source


def _grid(shape: Sequence[int], chunks: Sequence[int], shards: Sequence[int] | None,
          ) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Chunk (and shard) shapes fitted to ``shape``: none bigger than needed, shards still multiples."""
    ndim = len(shape)

    def per_axis(dims: Sequence[int], what: str) -> tuple[int, ...]:
        if len(dims) == 1:
            return tuple(dims) * ndim
        if len(dims) != ndim:
            raise CLIError(f"--{what} has {len(dims)} values, the volume has {ndim} axes {tuple(shape)}")
        return tuple(dims)

    chunks = per_axis(chunks, "chunks")
    fitted = tuple(max(1, min(c, s)) for c, s in zip(chunks, shape))
    if shards is None:
        return fitted, None
    shards = per_axis(shards, "shards")
    bad = [(sh, c) for sh, c in zip(shards, chunks) if sh % c]
    if bad:
        raise CLIError(f"--shards {','.join(map(str, shards))} must be multiples of --chunks "
                       f"{','.join(map(str, chunks))}")
    fitted_shards = tuple(min(sh, -(-max(s, 1) // c) * c) for sh, s, c in zip(shards, shape, fitted))
    return fitted, fitted_shards


def _stored_bytes(path: str) -> int | None:
    if "://" in path or not os.path.isdir(path):
        return None
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files if f not in _METADATA_FILES)


# Each chunk costs a Crackle header, label table and CRCs (about 100 bytes) and a stored object.
MIN_CHUNK_VOXELS = 64     # below this (4x4x4), refused: the array would be many times its raw size
SMALL_CHUNK_VOXELS = 512  # below this (8x8x8), a warning


def _check_chunks(source_path: str, shape: Sequence[int], chunks: Sequence[int], order: str) -> None:
    """Refuse chunks the codec cannot encode, and warn about chunks too small to pay their way."""
    if sum(1 for c in chunks if c > 1) > 3:
        raise CLIError(f"{source_path}: a {len(shape)}D volume {tuple(shape)}; each Crackle chunk holds at most "
                       f"3 axes longer than 1, the chunks would be {tuple(chunks)}: give --chunks with 1 along "
                       f"the extra axes, e.g. --chunks {_chunks_hint(shape, order)}")
    chunk_voxels = math.prod(chunks)
    n_chunks = math.prod(-(-s // c) for s, c in zip(shape, chunks))
    if chunk_voxels >= SMALL_CHUNK_VOXELS or n_chunks <= 1:
        return
    why = (f"--chunks {','.join(map(str, chunks))}: chunks of {chunk_voxels:,} voxel{'s' if chunk_voxels != 1 else ''} "
           f"make {n_chunks:,} chunks, each with a Crackle header, label table and CRCs (about 100 bytes) and a "
           "stored object of its own: the array can end up larger than the raw volume, and slow to write")
    if chunk_voxels < MIN_CHUNK_VOXELS:
        raise CLIError(f"{why}; choose chunks of at least {MIN_CHUNK_VOXELS} voxels (64 or more per axis is "
                       "usual; the default is 128)")
    print(f"crackle-zarr: warning: {why} (64 or more per axis is usual; the default is 128)", file=sys.stderr)


def _bytes_codec(compressor: tuple[str, int | None], zarr_format: int) -> Any:
    """The bytes-to-bytes codec of ``--compressor`` for a Zarr format (None for none)."""
    name, level = compressor
    if name == "none":
        return None
    if zarr_format == 2:
        import numcodecs

        return numcodecs.Zstd(level=level) if name == "zstd" else numcodecs.GZip(level=level)
    from zarr.codecs import GzipCodec, ZstdCodec

    return ZstdCodec(level=level) if name == "zstd" else GzipCodec(level=level)


def create_crackle_array(path: str, *, shape: Sequence[int], dtype: np.dtype, chunks: Sequence[int],
                         shards: Sequence[int] | None, zarr_format: int, markov: int, pins: bool,
                         order: str, overwrite: bool, compressor: tuple[str, int | None] = ("none", None),
                         optimize: bool = False) -> Any:
    """A new, empty Crackle-compressed Zarr array (format 2: numcodecs compressor; 3: serializer).

    Crackle's x is the source's fastest axis in memory (``order``), as the axis rule of
    docs/zarr-codec-spec.md wants: format 2 stores the array in ``order``; format 3 arrays are C
    ordered, so an F-ordered source (axes (x, y, z) by convention) gets zarr's ``transpose`` codec
    reversing its axes before Crackle. Either way blocks go to the encoder without a transposing
    copy. ``write_empty_chunks`` is on: zarr's per-chunk fill-value check costs more than encoding.

    ``compressor`` adds a bytes-to-bytes stage after Crackle: in format 3 the array's compressor;
    in format 2, where the compressor is the last codec, Crackle becomes the (only) filter.
    """
    import zarr

    cc = _codec()
    common = dict(shape=tuple(shape), chunks=tuple(chunks), dtype=dtype, fill_value=0, overwrite=overwrite)
    after = _bytes_codec(compressor, zarr_format)
    config = {"order": order, "write_empty_chunks": True}
    if zarr_format == 2:
        if shards is not None:
            raise CLIError("--shards needs --zarr-format 3 (format 2 has no sharding)")
        crackle = cc.Crackle(markov_model_order=markov, allow_pins=pins, optimize=optimize)
        stages = dict(filters=[crackle], compressors=after) if after is not None else dict(filters=None, compressors=crackle)
        return zarr.create_array(path, zarr_format=2, order=order, config={"write_empty_chunks": True},
                                 **stages, **common)
    from zarr.codecs import ShardingCodec, TransposeCodec

    from ...zarr3 import CrackleCodec

    crackle = CrackleCodec(markov_model_order=markov, allow_pins=pins, optimize=optimize)
    if order != "F" or len(shape) < 2:
        return zarr.create_array(path, zarr_format=3, shards=None if shards is None else tuple(shards),
                                 serializer=crackle, compressors=after, config=config, **common)
    reverse = TransposeCodec(order=tuple(range(len(shape)))[::-1])
    if shards is None:
        return zarr.create_array(path, zarr_format=3, filters=[reverse], serializer=crackle, compressors=after,
                                 config=config, **common)
    # Inside each shard, so that sharding stays the array's only codec (what the chunk queries read).
    inner = [reverse, crackle] + ([after] if after is not None else [])
    sharding = ShardingCodec(chunk_shape=tuple(chunks), codecs=inner)
    common["chunks"] = tuple(shards)
    return zarr.create_array(path, zarr_format=3, serializer=sharding, compressors=None, filters=None,
                             config=config, **common)


@_subcommand("convert", "Write a volume, a .ckl stream or any Zarr array into a new Crackle Zarr array, "
                        "chunk by chunk on all cores.")
def _setup_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SRC",
                   help="a volume (" + ", ".join(VOLUME_SUFFIXES) + "), a Crackle stream (.ckl...) or a Zarr array")
    p.add_argument("dest", metavar="DST.zarr", help="the Zarr array to create")
    p.add_argument("--chunks", type=_dims_arg, default=(128,), metavar="CX,CY,CZ",
                   help="chunk shape, one value per axis or one for all (default: 128; fitted to the volume)")
    p.add_argument("--shards", type=_dims_arg, default=None, metavar="SX,SY,SZ",
                   help="shard shape, multiples of --chunks (format 3 only; default: no sharding)")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=3,
                   help="3: CrackleCodec serializer (default); 2: Crackle numcodecs compressor")
    p.add_argument("--markov", type=_markov_arg, default=0, metavar="N",
                   help="markov model order of the crack codes, 0..10 (default: 0)")
    p.add_argument("--pins", action="store_true", help="allow the PINS label format")
    p.add_argument("--optimize", action="store_true",
                   help="choose each chunk's label format and markov order for the smallest stream "
                        "(instead of --markov/--pins)")
    p.add_argument("--compressor", type=_compressor_arg, default=("none", None), metavar="NAME[:LEVEL]",
                   help="a second stage after Crackle: zstd[:LEVEL] (default level 3), gzip[:LEVEL] "
                        "(default 6) or none (default: none, every chunk a plain Crackle stream)")
    p.add_argument("--key", metavar="NAME", help="the array to read from an .npz holding several")
    p.add_argument("--transpose", action="store_true", help="reverse the axes of SRC first (see compress)")
    p.add_argument("--workers", type=_positive_arg, default=os.cpu_count() or 1, metavar="N",
                   help=f"chunks (or shards) written concurrently (default: all cores, {os.cpu_count() or 1})")
    p.add_argument("--verify", action="store_true", help="read every chunk back and compare it with SRC")
    p.add_argument("--levels", type=int, default=None, metavar="N",
                   help="also write a label pyramid: DST becomes a Zarr group holding the array as \"0\" and "
                        "levels 1..N by mode pooling (see the downsample command); an (x, y, z) source is "
                        "written as (z, y, x)")
    p.add_argument("--ome", action="store_true",
                   help="make DST an OME-Zarr label image (NGFF 0.4 for --zarr-format 2, 0.5 for 3): "
                        "multiscales and image-label metadata (with --levels N, N levels; else one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-f", "--force", action="store_true", help="replace DST if it exists")
    p.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    """``convert SRC DST``: SRC into a new Crackle Zarr array, one whole chunk or shard per write."""
    _codec()
    if args.optimize and (args.markov or args.pins):
        raise UsageError("--optimize chooses each chunk's markov order and label format: drop --markov and --pins")
    try:
        import zarr
    except ImportError:
        zarr = None
    if zarr is None or int(zarr.__version__.split(".")[0]) < 3:
        raise CLIError("convert needs zarr >= 3: pip install \"crackle-zarr[zarr]\"")
    dest, source_path = args.dest, args.source
    local_dest = "://" not in dest
    if local_dest and os.path.exists(dest):
        if not args.force:
            raise CLIError(f"{dest} already exists (use --force to replace it)")
        if os.path.exists(source_path) and os.path.samefile(dest, source_path):
            raise CLIError(f"{dest}: the destination is the source")
        # --force deletes what is there: only ever a Zarr array or group, or an empty directory.
        if not os.path.isdir(dest) or (os.listdir(dest) and not _METADATA_FILES & set(os.listdir(dest))):
            raise CLIError(f"{dest} exists and is not a Zarr array; refusing to replace it, even with --force")
    pyramid = args.levels is not None or args.ome
    if args.levels is not None and args.levels < 0:
        raise UsageError(f"--levels {args.levels}: expected 0 or more")
    source = open_source(source_path, key=args.key, transpose=args.transpose)
    if pyramid and _memory_order_of(source) == "F":  # OME-Zarr wants (t, c,) z, y, x: C order
        source = open_source(source_path, key=args.key, transpose=not args.transpose)
    shape = tuple(int(s) for s in source.shape)
    dtype = np.dtype(source.dtype)
    if dtype.itemsize > 1 and not dtype.isnative:
        dtype = dtype.newbyteorder("=")  # the codecs take native integers; values are unchanged
    chunks, shards = _grid(shape, args.chunks, args.shards)
    _check_chunks(source_path, shape, chunks, _memory_order_of(source))
    region = shards or chunks
    existed = local_dest and os.path.exists(dest)
    t0 = time.perf_counter()
    try:
        if pyramid:
            zarr.open_group(dest, mode="w" if args.force else "w-", zarr_format=args.zarr_format)
        out = create_crackle_array(f"{dest.rstrip('/')}/0" if pyramid else dest,
                                   shape=shape, dtype=dtype, chunks=chunks, shards=shards,
                                   zarr_format=args.zarr_format, markov=args.markov, pins=args.pins,
                                   order=_memory_order_of(source), overwrite=args.force, compressor=args.compressor,
                                   optimize=args.optimize)
        _write_regions(source, out, shape, region, dtype=dtype, workers=args.workers, verify=args.verify,
                       progress=not args.no_progress, unit="shard" if shards else "chunk")
        if pyramid:
            from .pyramids import finish_pyramid

            levels_text = finish_pyramid(dest, args.zarr_format, levels=args.levels or 0, ome=args.ome,
                                         workers=args.workers, progress=not args.no_progress)
    except BaseException:
        if local_dest and not existed:
            shutil.rmtree(dest, ignore_errors=True)  # no half-written array left behind
        raise
    seconds = time.perf_counter() - t0
    voxels = math.prod(shape)
    raw = voxels * dtype.itemsize
    stored = _stored_bytes(f"{dest.rstrip('/')}/0" if pyramid else dest)  # level 0: the ratio to raw
    n_regions = math.prod(-(-s // r) for s, r in zip(shape, region)) if voxels else 0
    what = f"{n_regions} {'shard' if shards else 'chunk'}{'s' if n_regions != 1 else ''}"
    size = (f"{stored:,} bytes written ({_ratio_text(raw, stored, 'than raw')})" if stored
            else "bytes written unknown" if stored is None else "0 bytes written")
    print(f"{source_path} -> {dest}: {voxels:,} voxels {dtype} ({raw:,} bytes raw) in {what}, {size}, "
          f"{seconds:.2f} s, {voxels / 1e6 / max(seconds, 1e-9):.1f} MVx/s"
          + (", verified" if args.verify else "") + (f"; {levels_text}" if pyramid else ""))
    return EXIT_OK


def _write_regions(source: Any, out: Any, shape: tuple[int, ...], region: tuple[int, ...], *,
                   dtype: np.dtype, workers: int, verify: bool, progress: bool, unit: str) -> None:
    """Copy ``source`` into ``out`` one region (a whole chunk or shard) per task, ``workers`` at a time.

    Each task reads its own block, so memory stays near ``workers`` blocks. A stream source is
    decoded one slab of z slices at a time (all of its regions in that slab, then the next), since
    decoding a few slices costs as much per slice as decoding them all.
    """
    if any(s == 0 for s in shape):
        return
    grid = [range(-(-s // r)) for s, r in zip(shape, region)]

    def box_of(index: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(i * r, min((i + 1) * r, s)) for i, r, s in zip(index, region, shape))

    boxes = [box_of(index) for index in itertools.product(*grid)]
    if isinstance(source, _StreamSource):
        axis = source.slab_axis
        slabs: dict[int, list[tuple[slice, ...]]] = {}
        for box in boxes:
            slabs.setdefault(box[axis].start, []).append(box)
        groups = [(lambda b=group[0][axis]: source.slab(b.start, b.stop, workers), group) for group in slabs.values()]
    else:
        groups = [(lambda: source, boxes)]

    def write(reader: Any, box: tuple[slice, ...]) -> int:
        block = np.asarray(reader[box])
        if block.dtype != dtype:
            block = block.astype(dtype)
        out[box] = block
        if verify and not np.array_equal(np.asarray(out[box]), block):
            raise CLIError(f"chunk at {', '.join(f'{s.start}:{s.stop}' for s in box)} does not read back equal")
        return block.size

    with Progress(len(boxes), unit, enabled=progress, desc="convert") as bar, ThreadPool(workers) as pool:
        for make_reader, group in groups:
            reader = make_reader()
            pool.run([lambda box=box: write(reader, box) for box in group],
                     on_done=lambda voxels: bar.update(1, voxels))


# -------------------------------------------------------------------------------------- query

@_subcommand("query", "Which chunks of a Crackle Zarr array hold a label, or the labels of every chunk "
                      "(read from the chunks' label tables, no voxel decoding).")
def _setup_query(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE.zarr", help="a Zarr array whose chunks are Crackle streams")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--label", type=int, metavar="N", help="list the chunks that hold label N")
    what.add_argument("--chunk-labels", action="store_true", help="list the labels of every chunk")
    what.add_argument("--index", action="store_true", help="list, for every label, the chunks that hold it")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--workers", type=_positive_arg, default=16, metavar="N",
                   help="chunks read concurrently (default: 16)")
    p.set_defaults(run=run_query)


def _coords_text(coords: Sequence[int]) -> str:
    return ",".join(str(int(c)) for c in coords)


def _check_label_value(label: int, dtype: Any, store: str) -> None:
    """A label the array's dtype cannot hold is a usage error, not an empty answer."""
    dtype = np.dtype(dtype)
    lo, hi = (0, 1) if dtype.kind == "b" else (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    if not lo <= label <= hi:
        raise UsageError(f"--label {label}: {store} holds {dtype} labels ({lo}..{hi}), so never {label}")


def run_query(args: argparse.Namespace) -> int:
    """``query STORE``: find_label / chunk_labels / label_index on a Crackle Zarr array."""
    cc = _codec()
    array = _open_zarr_array(args.store)
    if args.label is not None:
        _check_label_value(args.label, array.dtype, args.store)
    try:
        from ...zarr.sources import source as _source

        chunk_shape = list(_source(array).chunks)  # inner chunks for sharded arrays
        if args.label is not None:
            found = cc.find_label(array, args.label, max_workers=args.workers)
        elif args.chunk_labels:
            per_chunk = cc.chunk_labels(array, max_workers=args.workers)
        else:
            index = cc.label_index(array, max_workers=args.workers)
    except (ValueError, TypeError, NotImplementedError, cc.DecodeError) as exc:
        raise CLIError(f"{args.store}: {exc}") from exc
    if args.label is not None:
        if args.json:
            print(json.dumps({"label": args.label, "chunk_shape": chunk_shape, "chunks": [list(c) for c in found]}))
        else:
            sys.stdout.write("".join(_coords_text(c) + "\n" for c in found))
    elif args.chunk_labels:
        if args.json:
            print(json.dumps({"chunk_shape": chunk_shape, "chunks": [
                {"chunk": list(c), "labels": [int(v) for v in values.tolist()]} for c, values in per_chunk.items()]}))
        else:
            sys.stdout.write("".join(f"{_coords_text(c)}: {' '.join(str(int(v)) for v in values.tolist())}\n"
                                     for c, values in per_chunk.items()))
    else:
        if args.json:
            print(json.dumps({"chunk_shape": chunk_shape,
                              "labels": {str(int(k)): [list(c) for c in v] for k, v in index.items()}}))
        else:
            sys.stdout.write("".join(f"{int(k)}: {' '.join(_coords_text(c) for c in v)}\n" for k, v in index.items()))
    if args.label is not None and not found:
        raise CLIError(f"{args.store}: label {args.label} is in none of its chunks")
    return EXIT_OK
