"""The ``crackle-zarr`` command line.

Subcommands (``crackle-zarr COMMAND --help`` for each):

* ``demo``: build a synthetic 3D segmentation in memory, compress it with Crackle and zstd, print
  sizes and speeds, then answer label queries on the compressed stream without decoding it.
* ``info FILE``: header fields, section sizes, label count and compression ratio of a stream.
* ``verify FILE...``: check streams completely (every CRC and structural rule).
* ``compress IN``: a volume (``.npy``, ``.npz``, ``.tif``, ``.nii``...) to a ``.ckl`` stream.
* ``decompress IN``: a ``.ckl`` stream back to a volume file.
* ``labels FILE``: the label values of a stream, read from its labels section.
* ``remap FILE MAPPING.json -o OUT``: rewrite a stream's label values without decoding voxels.
* ``convert SRC DST.zarr``: a volume, stream or Zarr array into a new Crackle Zarr array, chunk by
  chunk (or shard by shard) on a thread pool, with bounded memory.
* ``downsample SRC DEST``: levels of a label pyramid of a Crackle Zarr array, by mode pooling
  (``convert --levels N --ome`` writes a whole OME-Zarr label image).
* ``query STORE.zarr``: which chunks hold a label, or the labels of every chunk, without decoding.
* ``stats ARRAY``: voxel count, bounding box and centroid of every label (text, JSON or Parquet).
* ``extract ARRAY LABEL -o OUT.npy|.tif``: one label's mask over its bounding box.
* ``mask ARRAY LABEL... (-o DST.zarr | --in-place)``: set some labels (or, ``--except``, all
  others) to one value, from the chunks' label tables.
* ``renumber ARRAY (-o DST.zarr | --in-place)``: relabel the array 0, 1, 2, ... (one mapping for
  all chunks; a new array gets the smallest dtype that fits).
* ``view PATH``: show a Crackle Zarr array or stream in Neuroglancer, served from this machine.

See docs/cli.md for every option with examples.

Layout: ``commands/`` holds the subcommands, one module per group (``demo``, ``streams``: info,
verify, compress, decompress, labels, remap; ``zarr_arrays``: convert, query; ``analytics``: stats, extract;
``rewrites``: mask, renumber; ``pyramids``: downsample; ``view``). The pieces
they share live in one module each: ``errors`` (CLIError, exit codes), ``args`` (argument types), ``files``
(volume and stream files), ``progress``, ``pool`` (the thread pool), ``text`` (formatting),
``synthetic`` (the demo's segmentation), ``registry``.

Adding a subcommand is a one-module change: in a module of ``commands/`` (a new one is picked up by
``registry.load_commands``), write a ``_setup_NAME(parser)`` function decorated with
``@_subcommand(name, summary)`` that adds its arguments and sets ``run`` to a function
``run(args) -> int``. Errors are raised as exceptions; ``main`` prints them as one line on stderr (a
traceback only with ``--debug``); a ``UsageError`` (an option value wrong for this input) exits 2
with the command's usage. A long command runs its per-chunk tasks with ``pool.ThreadPool.run(tasks,
on_done)`` and reports each completed task to a ``progress.Progress`` (items and voxels), so its
progress moves with the work and shows the throughput.

Exit codes: 0 success, 1 failure (including a stream that fails to verify), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, PROG, CLIError, UsageError, _one_line
from .registry import load_commands
from .synthetic import DEMO_SHAPE, synthetic_segmentation

__all__ = ["main", "build_parser", "CLIError", "UsageError", "synthetic_segmentation", "PROG",
           "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "DEMO_SHAPE"]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("crackle-zarr")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser: global options, then one subparser per registered subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Crackle codec for 3D dense segmentations (integer label volumes).",
        epilog=f"Run '{PROG} COMMAND --help' for the options of a command.",
    )
    debug_help = "show the full traceback on errors"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    # --debug is also accepted after the subcommand name; SUPPRESS keeps a subcommand from
    # resetting a --debug given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for name, summary, setup in load_commands():
        p = sub.add_parser(name, parents=[common], help=summary, description=summary)
        setup(p)
        p.set_defaults(parser=p)  # for UsageError: the subcommand's own usage line
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    try:
        return int(args.run(args) or EXIT_OK)
    except UsageError as exc:
        if args.debug:
            raise
        try:
            args.parser.error(str(exc))  # prints the usage and the message, raises SystemExit(2)
        except SystemExit:
            pass
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        try:
            sys.stdout = open(os.devnull, "w")  # silence the flush at exit
        except OSError:
            pass
        return EXIT_FAILURE
    except Exception as exc:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
