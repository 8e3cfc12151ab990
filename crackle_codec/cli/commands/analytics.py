"""Commands answering questions about a whole Crackle Zarr array: stats (every label's voxel count,
bounding box and centroid, as text, JSON or Parquet) and extract (one label's mask, as .npy or .tif)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..args import _positive_arg
from ..errors import EXIT_OK, CLIError, UsageError, _codec
from ..files import _check_new_output, _optional_library, _output_file, _suffix_of, _write_volume
from ..progress import Progress
from ..registry import _subcommand
from .zarr_arrays import _check_label_value, _open_zarr_array


@_subcommand("stats", "Voxel count, bounding box and centroid of every label of a Crackle Zarr array "
                      "(computed chunk by chunk from the streams).")
def _setup_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="ARRAY", help="a Zarr array whose chunks are Crackle streams")
    p.add_argument("--label", type=int, action="append", metavar="N",
                   help="only label N (repeat for several; default: every label)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", metavar="OUT", help="write the table as JSON columns to OUT ('-': stdout)")
    out.add_argument("--parquet", metavar="OUT",
                     help="write the table as a Parquet file (one column per axis: bbox_min_z, ..., "
                          "centroid_x; needs pyarrow)")
    p.add_argument("--axes", metavar="NAMES",
                   help="axis names in array order for the --parquet columns, e.g. x,y,z (default: the "
                        "array's dimension_names, else x,y,z for an array stored Fortran-style, else z,y,x)")
    p.add_argument("-f", "--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--workers", type=_positive_arg, default=os.cpu_count() or 1, metavar="N",
                   help=f"chunks measured concurrently (default: all cores, {os.cpu_count() or 1})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    """``stats ARRAY``: label_stats as a text table on stdout, or JSON columns."""
    cc = _codec()
    from ...zarr.sources import _region_chunks
    from ...zarr.sources import source as _source

    pyarrow = _require_pyarrow() if args.parquet is not None else None
    for path in (args.parquet, None if args.json == "-" else args.json):
        if path is not None:
            _check_new_output(path, args.force)
    array = _open_zarr_array(args.store)
    for label in args.label or []:
        _check_label_value(label, array.dtype, args.store)
    axes = _axis_names(array, args.axes)
    try:
        total = len(_region_chunks(_source(array), None))
        with Progress(total, "chunk", enabled=not args.no_progress, desc="stats") as bar:
            stats = cc.label_stats(array, labels=args.label, max_workers=args.workers,
                                   progress=lambda n: bar.update(n))
    except (ValueError, TypeError, NotImplementedError, cc.DecodeError) as exc:
        raise CLIError(f"{args.store}: {exc}") from exc
    if args.parquet is not None:
        from ...zarr.analytics import stats_columns

        table = pyarrow.table(stats_columns(stats, axes))
        with _output_file(args.parquet, args.force) as tmp:
            pyarrow.parquet.write_table(table, tmp)
    elif args.json is not None:
        columns = {k: v.tolist() for k, v in stats.items()}
        text = json.dumps(columns)
        if args.json == "-":
            print(text)
        else:
            with _output_file(args.json, args.force) as tmp, open(tmp, "w") as f:
                f.write(text + "\n")
    else:
        rows = ["label\tvoxel_count\tbbox_min\tbbox_max\tcentroid"]
        for i in range(stats["label"].size):
            rows.append("\t".join([
                str(int(stats["label"][i])), str(int(stats["voxel_count"][i])),
                ",".join(map(str, stats["bbox_min"][i].tolist())),
                ",".join(map(str, stats["bbox_max"][i].tolist())),
                ",".join(f"{c:.3f}" for c in stats["centroid"][i].tolist())]))
        sys.stdout.write("\n".join(rows) + "\n")
    missing = sorted(set(args.label or []) - set(int(v) for v in stats["label"].tolist()))
    if missing:
        raise CLIError(f"{args.store}: label{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(map(str, missing))} not in the array")
    return EXIT_OK


def _require_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise CLIError("--parquet needs the pyarrow package: pip install pyarrow") from None
    return pyarrow


def _axis_names(array, axes: str | None) -> list[str] | None:
    """The names of the Parquet columns' axes: ``--axes``, else what ``view`` finds in the array's
    metadata (None: ``stats_columns``' default)."""
    from ...viewer import _parse_axes, _zarr_axes

    if axes is None:
        found = _zarr_axes(array)
        return None if found is None else list(found)
    try:
        return list(_parse_axes(axes, array.ndim))
    except ValueError as exc:
        raise UsageError(f"--axes {axes}: {exc}") from None


EXTRACT_SUFFIXES = (".npy", ".tif", ".tiff")


@_subcommand("extract", "One label of a Crackle Zarr array as a binary mask over its bounding box "
                        "(only the chunks and slices holding it are decoded).")
def _setup_extract(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="ARRAY", help="a Zarr array whose chunks are Crackle streams")
    p.add_argument("label", type=int, metavar="LABEL")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npy|OUT.tif",
                   help="the mask in the array's axes: .npy (bool) or .tif/.tiff (uint8 0/1, the offset "
                        "and label in its JSON image description; needs tifffile)")
    p.add_argument("--workers", type=_positive_arg, default=os.cpu_count() or 1, metavar="N",
                   help=f"chunks read concurrently (default: all cores, {os.cpu_count() or 1})")
    p.add_argument("-f", "--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    """``extract ARRAY LABEL -o OUT.npy|.tif``: extract_label's mask to a file, its offset on stdout."""
    cc = _codec()
    suffix = _suffix_of(args.output, EXTRACT_SUFFIXES)
    if suffix is None:
        raise UsageError(f"-o {args.output}: the mask is written as {', '.join(EXTRACT_SUFFIXES)} "
                         "(name the file OUT.npy or OUT.tif)")
    if suffix != ".npy":
        _optional_library(suffix)  # tifffile, or how to install it, before any work
    _check_new_output(args.output, args.force)
    array = _open_zarr_array(args.store)
    _check_label_value(args.label, array.dtype, args.store)
    try:
        mask, offset = cc.extract_label(array, args.label, max_workers=args.workers)
    except (ValueError, TypeError, NotImplementedError, cc.DecodeError) as exc:
        raise CLIError(f"{args.store}: {exc}") from exc
    if mask.size == 0:
        raise CLIError(f"{args.store}: label {args.label} is not in the array")
    with _output_file(args.output, args.force) as tmp:
        _write_volume(tmp, suffix, mask, "mask",
                      tiff_metadata={"label": int(args.label), "offset": [int(o) for o in offset]})
    print(f"label {args.label}: {int(mask.sum()):,} voxels, mask of shape {'x'.join(map(str, mask.shape))} "
          f"at offset {','.join(map(str, offset))} written to {args.output}")
    return EXIT_OK
