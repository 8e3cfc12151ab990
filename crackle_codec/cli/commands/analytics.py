"""Commands answering questions about a whole Crackle Zarr array: stats (every label's voxel count,
bounding box and centroid) and extract (one label's mask)."""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ..args import _positive_arg
from ..errors import EXIT_OK, CLIError, UsageError, _codec
from ..progress import Progress
from ..registry import _subcommand
from .zarr_arrays import _check_label_value, _open_zarr_array


@_subcommand("stats", "Voxel count, bounding box and centroid of every label of a Crackle Zarr array "
                      "(computed chunk by chunk from the streams).")
def _setup_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="ARRAY", help="a Zarr array whose chunks are Crackle streams")
    p.add_argument("--label", type=int, action="append", metavar="N",
                   help="only label N (repeat for several; default: every label)")
    p.add_argument("--json", metavar="OUT", help="write the table as JSON columns to OUT ('-': stdout)")
    p.add_argument("--workers", type=_positive_arg, default=os.cpu_count() or 1, metavar="N",
                   help=f"chunks measured concurrently (default: all cores, {os.cpu_count() or 1})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    """``stats ARRAY``: label_stats as a text table on stdout, or JSON columns."""
    cc = _codec()
    from ...zarr.sources import _region_chunks
    from ...zarr.sources import source as _source

    array = _open_zarr_array(args.store)
    for label in args.label or []:
        _check_label_value(label, array.dtype, args.store)
    try:
        total = len(_region_chunks(_source(array), None))
        with Progress(total, "chunk", enabled=not args.no_progress, desc="stats") as bar:
            stats = cc.label_stats(array, labels=args.label, max_workers=args.workers,
                                   progress=lambda n: bar.update(n))
    except (ValueError, TypeError, NotImplementedError, cc.DecodeError) as exc:
        raise CLIError(f"{args.store}: {exc}") from exc
    if args.json is not None:
        columns = {k: v.tolist() for k, v in stats.items()}
        text = json.dumps(columns)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
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


@_subcommand("extract", "One label of a Crackle Zarr array as a binary mask over its bounding box "
                        "(only the chunks and slices holding it are decoded).")
def _setup_extract(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="ARRAY", help="a Zarr array whose chunks are Crackle streams")
    p.add_argument("label", type=int, metavar="LABEL")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npy",
                   help="the mask (bool, the array's axes) as a .npy file")
    p.add_argument("--workers", type=_positive_arg, default=os.cpu_count() or 1, metavar="N",
                   help=f"chunks read concurrently (default: all cores, {os.cpu_count() or 1})")
    p.add_argument("-f", "--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    """``extract ARRAY LABEL -o OUT.npy``: extract_label's mask to a file, its offset on stdout."""
    cc = _codec()
    if not args.output.endswith(".npy"):
        raise UsageError(f"-o {args.output}: the mask is written as .npy (name the file OUT.npy)")
    if os.path.exists(args.output) and not args.force:
        raise CLIError(f"{args.output} exists (use -f to replace it)")
    array = _open_zarr_array(args.store)
    _check_label_value(args.label, array.dtype, args.store)
    try:
        mask, offset = cc.extract_label(array, args.label, max_workers=args.workers)
    except (ValueError, TypeError, NotImplementedError, cc.DecodeError) as exc:
        raise CLIError(f"{args.store}: {exc}") from exc
    if mask.size == 0:
        raise CLIError(f"{args.store}: label {args.label} is not in the array")
    np.save(args.output, mask)
    print(f"label {args.label}: {int(mask.sum()):,} voxels, mask of shape {'x'.join(map(str, mask.shape))} "
          f"at offset {','.join(map(str, offset))} written to {args.output}")
    return EXIT_OK
