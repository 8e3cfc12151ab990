"""Argument types and shared options of the subcommands (argparse ``type=`` functions)."""

from __future__ import annotations

import argparse

DEMO_MAX_VOXELS = 1 << 30


def _shape_arg(text: str) -> tuple[int, int, int]:
    """'256,256,128' or '256x256x128' (or 2 values, giving sz = 1) -> (sx, sy, sz)."""
    parts = text.replace("x", ",").replace("X", ",").split(",")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SX,SY,SZ (integers), got {text!r}") from None
    if len(dims) not in (2, 3) or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected 2 or 3 positive integers SX,SY[,SZ], got {text!r}")
    if len(dims) == 2:
        dims.append(1)
    if dims[0] * dims[1] * dims[2] > DEMO_MAX_VOXELS:
        raise argparse.ArgumentTypeError(f"{text} is more than {DEMO_MAX_VOXELS:,} voxels")
    return dims[0], dims[1], dims[2]


def _threads_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (0 = all cores), got {text!r}")
    return n


def _max_voxels_arg(text: str) -> int:
    try:
        n = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a voxel count >= 0, got {text!r}")
    return n


def _add_max_voxels(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-voxels", type=_max_voxels_arg, default=None, metavar="N",
                   help="refuse a stream whose header claims more than N voxels (untrusted input), "
                        "before anything is allocated")


def _levels_arg(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated zstd levels, got {text!r}") from None
    if any(not 1 <= lv <= 22 for lv in levels):
        raise argparse.ArgumentTypeError(f"zstd levels are 1..22, got {text!r}")
    return levels



def _markov_arg(text: str) -> int:
    try:
        order = int(text)
    except ValueError:
        order = -1
    if not 0 <= order <= 15:
        raise argparse.ArgumentTypeError(f"expected a markov model order 0..15, got {text!r}")
    return order


def _positive_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return n


def _dims_arg(text: str) -> tuple[int, ...]:
    """'128,128,128' or '128x128x128' or '64' (every axis) -> a tuple of positive ints."""
    parts = text.replace("x", ",").replace("X", ",").split(",")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return dims


COMPRESSOR_LEVELS = {"zstd": (3, 1, 22), "gzip": (6, 1, 9)}  # default, lowest, highest


def _compressor_arg(text: str) -> tuple[str, int | None]:
    """'zstd', 'zstd:5', 'gzip:9' or 'none' -> (name, level); level None for 'none'."""
    name, _, level_text = text.strip().lower().partition(":")
    if name == "none" and not level_text:
        return "none", None
    if name not in COMPRESSOR_LEVELS:
        raise argparse.ArgumentTypeError(f"expected zstd[:LEVEL], gzip[:LEVEL] or none, got {text!r}")
    default, lowest, highest = COMPRESSOR_LEVELS[name]
    try:
        level = int(level_text) if level_text else default
    except ValueError:
        level = lowest - 1
    if not lowest <= level <= highest:
        raise argparse.ArgumentTypeError(f"{name} levels are {lowest}..{highest}, got {text!r}")
    return name, level


def _add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="overwrite OUT if it exists")


def _add_parallel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parallel", type=_threads_arg, default=0, metavar="N",
                   help="threads of the Crackle encoder/decoder, 0 = all cores (default: 0)")

