"""Commands rewriting the labels of a whole Crackle Zarr array from its chunks' labels sections (no
voxel decoding): mask (and mask --except) and renumber, in place or into a new array."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

from ..args import _positive_arg
from ..errors import EXIT_OK, CLIError, _codec
from ..files import _METADATA_FILES, _check_new_output, _output_file
from ..progress import Progress
from ..registry import _subcommand
from .zarr_arrays import _open_zarr_array


def _add_target(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", metavar="DST.zarr",
                       help="write the result as a new array like ARRAY (same format, chunks, shards, codecs)")
    where.add_argument("--in-place", action="store_true",
                       help="rewrite ARRAY itself (only the chunks whose labels change)")
    p.add_argument("--workers", type=_positive_arg, default=os.cpu_count() or 1, metavar="N",
                   help=f"chunks rewritten concurrently (default: all cores, {os.cpu_count() or 1})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _rewrite(args: argparse.Namespace, what: str, total_per_chunk: int,
             call: Callable[[Any, Any, Callable[[int], None]], Any]) -> Any:
    """Open ARRAY (writable for --in-place), run ``call(array, dest, progress)`` with a progress bar;
    a new array that fails half-way is removed."""
    cc = _codec()
    dest = args.output
    if dest is not None and "://" not in dest and os.path.exists(dest):
        raise CLIError(f"{dest} already exists (choose a new path for the result)")
    array = _open_zarr_array(args.store, mode="r+" if args.in_place else "r")
    from ...zarr.sources import _region_chunks
    from ...zarr.sources import source as _source

    try:
        total = total_per_chunk * len(_region_chunks(_source(array), None))
        with Progress(total, "chunk", enabled=not args.no_progress, desc=what) as bar:
            return call(array, dest, lambda n: bar.update(n))
    except (ValueError, TypeError, KeyError, NotImplementedError, cc.DecodeError) as exc:
        _remove_new_array(dest)
        raise CLIError(f"{args.store}: {exc}") from exc
    except BaseException:
        _remove_new_array(dest)
        raise


def _remove_new_array(dest: str | None) -> None:
    if dest is not None and "://" not in dest and os.path.isdir(dest) and _METADATA_FILES & set(os.listdir(dest)):
        shutil.rmtree(dest, ignore_errors=True)


def _where(args: argparse.Namespace) -> str:
    return args.store if args.in_place else f"{args.store} -> {args.output}"


# ----------------------------------------------------------------------------------------- mask

@_subcommand("mask", "Set the voxels of some labels of a Crackle Zarr array (or of all other labels, "
                     "with --except) to one value, from the chunks' label tables (no voxel decoding).")
def _setup_mask(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="ARRAY", help="a Zarr array whose chunks are Crackle streams")
    p.add_argument("labels", type=int, nargs="+", metavar="LABEL", help="the labels to mask (or to keep)")
    p.add_argument("--value", type=int, default=0, metavar="V", help="the new value of masked voxels (default: 0)")
    p.add_argument("--except", dest="keep", action="store_true",
                   help="mask every label except LABEL... (mask_except_array)")
    _add_target(p)
    p.set_defaults(run=run_mask)


def run_mask(args: argparse.Namespace) -> int:
    """``mask ARRAY LABEL... (-o DST | --in-place)``: mask_array / mask_except_array."""
    cc = _codec()
    fn = cc.mask_except_array if args.keep else cc.mask_array
    written = _rewrite(args, "mask", 1, lambda array, dest, progress: fn(
        array, args.labels, args.value, dest=dest, max_workers=args.workers, progress=progress))
    shown = ", ".join(map(str, args.labels[:8])) + (f" (and {len(args.labels) - 8} more)" if len(args.labels) > 8 else "")
    which = f"every label but {shown}" if args.keep else f"label{'s' if len(args.labels) != 1 else ''} {shown}"
    print(f"{_where(args)}: {which} set to {args.value}, {written} chunk{'s' if written != 1 else ''} written")
    return EXIT_OK


# ------------------------------------------------------------------------------------- renumber

@_subcommand("renumber", "Relabel a Crackle Zarr array start, start+1, ... in ascending label order "
                         "(one mapping for the whole array; with -o, in the smallest dtype that fits).")
def _setup_renumber(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="ARRAY", help="a Zarr array whose chunks are Crackle streams")
    p.add_argument("--start", type=int, default=0, metavar="N",
                   help="the first new label (default: 0, as crackle_codec.renumber; 0 stays 0 when present)")
    p.add_argument("--mapping", metavar="OUT.json",
                   help='write the mapping as JSON {"old": new, ...} (the input format of remap)')
    p.add_argument("-f", "--force", action="store_true", help="replace the --mapping file if it exists")
    _add_target(p)
    p.set_defaults(run=run_renumber)


def run_renumber(args: argparse.Namespace) -> int:
    """``renumber ARRAY (-o DST | --in-place)``: renumber_array, the mapping optionally to JSON."""
    cc = _codec()
    if args.mapping is not None:
        _check_new_output(args.mapping, args.force)
    mapping = _rewrite(args, "renumber", 2, lambda array, dest, progress: cc.renumber_array(
        array, args.start, dest=dest, max_workers=args.workers, progress=progress))
    if args.mapping is not None:
        with _output_file(args.mapping, args.force) as tmp, open(tmp, "w") as f:
            json.dump({str(int(k)): int(v) for k, v in mapping.items()}, f)
            f.write("\n")
    dtype = _open_zarr_array(args.output if args.output is not None else args.store).dtype
    span = f"{args.start}..{args.start + len(mapping) - 1}" if mapping else "none"
    print(f"{_where(args)}: {len(mapping)} label{'s' if len(mapping) != 1 else ''} renumbered ({span}), {dtype}"
          + (f", mapping written to {args.mapping}" if args.mapping is not None else ""))
    return EXIT_OK
