"""Label pyramids: downsample (levels of a Crackle Zarr array by mode pooling), and the pyramid step
of ``convert --levels N --ome``."""

from __future__ import annotations

import argparse
import math
import os
from typing import Any, Optional, Sequence

from ..args import _dims_arg, _positive_arg
from ..errors import EXIT_OK, CLIError, UsageError, _codec, _one_line
from ..progress import Progress
from ..registry import _subcommand
from .zarr_arrays import _open_zarr_array


@_subcommand("downsample", "Levels 1..N of a label pyramid of a Crackle Zarr array, by mode pooling "
                           "(chunk by chunk on all cores), as arrays 1..N of a Zarr group.")
def _setup_downsample(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SRC", help="a Zarr array whose chunks are Crackle streams (level 0)")
    p.add_argument("dest", metavar="DEST",
                   help="the Zarr group to write levels 1..N into (created if absent; may be SRC's own group)")
    p.add_argument("--levels", type=_positive_arg, default=1, metavar="N", help="how many levels (default: 1)")
    p.add_argument("--factor", type=_dims_arg, default=None, metavar="F,F,F",
                   help="1 (keep) or 2 (halve) per array axis, in the array's axis order, e.g. 1,2,2 for "
                        "(z, y, x) (default: halve the last two axes, the reference's 2x2x1)")
    p.add_argument("--workers", type=_positive_arg, default=os.cpu_count() or 1, metavar="N",
                   help=f"chunks pooled concurrently (default: all cores, {os.cpu_count() or 1})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-f", "--force", action="store_true", help="replace levels 1..N if DEST holds them")
    p.set_defaults(run=run_downsample)


def run_downsample(args: argparse.Namespace) -> int:
    """``downsample SRC DEST``: crackle_codec.downsample with a progress bar."""
    _codec()
    array = _open_zarr_array(args.source)
    if "://" not in args.dest and os.path.exists(args.dest) and not _is_group_dir(args.dest):
        raise CLIError(f"{args.dest} exists and is not a Zarr group; refusing to write levels into it")
    import zarr

    try:
        group = zarr.open_group(args.dest, mode="a", zarr_format=array.metadata.zarr_format)
    except Exception as exc:
        raise CLIError(f"{args.dest}: cannot open it as a Zarr group ({_one_line(exc)})") from exc
    shapes = build_levels(array, group, levels=args.levels, factor=args.factor, workers=args.workers,
                          progress=not args.no_progress, overwrite=args.force, where=args.source)
    print(f"{args.source} -> {args.dest}: levels " + ", ".join(
        f"{k} {'x'.join(map(str, s))}" for k, s in enumerate(shapes, start=1)))
    return EXIT_OK


def _is_group_dir(path: str) -> bool:
    """An empty directory or a Zarr group (never an array, never a directory of other files)."""
    if not os.path.isdir(path):
        return False
    names = set(os.listdir(path))
    if "zarr.json" in names:
        import json

        try:
            with open(os.path.join(path, "zarr.json")) as f:
                return json.load(f).get("node_type") == "group"
        except (OSError, ValueError):
            return False
    return not names or (".zgroup" in names and ".zarray" not in names)


def build_levels(array: Any, group: Any, *, levels: int, factor: Optional[Sequence[int]], workers: int,
                 progress: bool, overwrite: bool, where: str) -> list[tuple[int, ...]]:
    """Run ``downsample`` with a progress bar over every level's chunks; the levels' shapes.

    A wrong ``factor`` is a usage error; the library's other errors name ``where``.
    """
    cc = _codec()
    from ...zarr.pyramids import _chunk_count, level_shapes, pyramid_factor
    from ...zarr.sources import source as _source

    try:
        fac = pyramid_factor(len(array.shape), factor)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--factor: {exc}") from None
    try:
        src = _source(array)
        shapes = level_shapes(src.shape, fac, levels)
        total = sum(_chunk_count(s, src.chunks) for s in shapes)
        chunk_voxels = math.prod(src.chunks)
        with Progress(total, "chunk", enabled=progress, desc="downsample") as bar:
            cc.downsample(array, group, factor=fac, levels=levels, max_workers=workers, overwrite=overwrite,
                          progress=lambda n: bar.update(n, n * chunk_voxels))
    except ValueError as exc:
        if "already holds" in str(exc):
            raise CLIError(f"{str(exc).replace('pass overwrite=True', 'use --force')}") from exc
        raise CLIError(f"{where}: {exc}") from exc
    except (TypeError, NotImplementedError, cc.DecodeError) as exc:
        raise CLIError(f"{where}: {exc}") from exc
    return shapes


def finish_pyramid(dest: str, zarr_format: int, *, levels: int, ome: bool, workers: int, progress: bool) -> str:
    """``convert --levels N [--ome]``: levels 1..N of ``dest``'s array "0", then (``--ome``) the
    OME-Zarr label-image metadata. A summary line."""
    import zarr

    from ...zarr.pyramids import pyramid_factor, write_ome_label_metadata

    group = zarr.open_group(dest, mode="a", zarr_format=zarr_format)
    array = group["0"]
    factor = pyramid_factor(len(array.shape))
    if levels:
        build_levels(array, group, levels=levels, factor=factor, workers=workers, progress=progress,
                     overwrite=True, where=dest)
    what = f"{levels} level{'s' if levels != 1 else ''} (factor {','.join(map(str, factor))})"
    if ome:
        try:
            name = os.path.basename(dest.rstrip("/")).removesuffix(".zarr") or None
            write_ome_label_metadata(group, levels=levels, factor=factor, name=name)
        except ValueError as exc:
            raise CLIError(f"{dest}: {exc}") from exc
        what += f", OME-Zarr {'0.4' if zarr_format == 2 else '0.5'} label image"
    return what
