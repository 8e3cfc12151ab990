#!/usr/bin/env python3
"""Label pyramid benchmark (issue #14): ``downsample`` of a Crackle Zarr array against decode +
numpy mode pooling + encode, one thread each.

The array: connectomics_512 (../shared/data) as a Zarr v3 ``(z, y, x)`` array of 128^3 chunks,
Crackle serializer, no compressor after it. Measured, best of ``--reps``, for 1 and 3 levels of
the default factor (1, 2, 2) (the reference's 2x2x1):

* ``downsample(z, group, levels=N, max_workers=1)``;
* baseline: ``z[...]`` (zarr decoding the whole array with the codec), numpy mode pooling with the
  same rule (vectorized: ``np.where`` over the four pixels of each block, the reference's tie
  rule), each level pooled from the one before in memory, and every level written into an array
  of the same codec and chunks (``level[...] = pooled``, zarr encoding with the codec).

zarr runs with ``threading.max_workers = 1`` and ``async.concurrency = 1``; every level is compared
with the baseline's before timing.

    flock /tmp/crackle-bench.lock python bench/bench_pyramids.py [--reps 3]

A script, not a test: it never asserts speed.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_volumes  # noqa: E402
from bench_volumes import best  # noqa: E402

import zarr  # noqa: E402

import crackle_codec  # noqa: E402
from crackle_codec import downsample  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec  # noqa: E402

CHUNK = 128


def numpy_pool_2x2(vol):
    """2x2 mode pooling of the last two axes of an even-sized (z, y, x) array, the reference's rule:
    of a, b, c, d (C order) a if it equals b or c, else b if it equals c, else d."""
    a, b = vol[:, 0::2, 0::2], vol[:, 0::2, 1::2]
    c, d = vol[:, 1::2, 0::2], vol[:, 1::2, 1::2]
    return np.where((a == b) | (a == c), a, np.where(b == c, b, d))


def baseline(z, group, levels):
    """Decode with zarr, pool with numpy, encode with zarr: every level written."""
    current = z[...]
    out = []
    for k in range(1, levels + 1):
        current = numpy_pool_2x2(current)
        level = group.create_array(str(k), shape=current.shape, dtype=current.dtype, chunks=z.chunks,
                                   serializer=CrackleCodec(), compressors=None, fill_value=0, overwrite=True,
                                   config={"write_empty_chunks": True})
        level[...] = current
        out.append(level)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--data", default=None)
    p.add_argument("--size", type=int, default=512, help="crop the volume to SIZE^3 (a smoke run; default 512)")
    args = p.parse_args(argv)
    zarr.config.set({"threading.max_workers": 1, "async.concurrency": 1})
    vol = bench_volumes.load("connectomics_512", bench_volumes.data_dir(args.data)).T  # (z, y, x), C order
    vol = np.ascontiguousarray(vol[:args.size, :args.size, :args.size])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pyramids-") as tmp:
        z = zarr.create_array(f"{tmp}/a.zarr", shape=vol.shape, chunks=(CHUNK,) * 3, dtype=vol.dtype,
                              serializer=CrackleCodec(), compressors=None, fill_value=0)
        z[...] = vol
        z = zarr.open_array(f"{tmp}/a.zarr", mode="r")
        ours_group = zarr.open_group(f"{tmp}/ours.zarr", mode="w")
        base_group = zarr.open_group(f"{tmp}/base.zarr", mode="w")
        for levels in (1, 3):
            t_ours, ours = best(lambda: downsample(z, ours_group, levels=levels, max_workers=1, overwrite=True),
                                args.reps)
            t_base, theirs = best(lambda: baseline(z, base_group, levels), args.reps)
            for mine, other in zip(ours, theirs):
                assert np.array_equal(mine[...], other[...])
            rows.append((levels, t_ours, t_base))

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"bench_pyramids, {stamp}, {platform.machine()} {platform.processor() or ''}, "
          f"crackle_codec {crackle_codec.__version__}, zarr {zarr.__version__}, numpy {np.__version__}; "
          f"connectomics_512 ({'x'.join(map(str, vol.shape))}) as (z, y, x) uint32, 128^3 chunks, factor (1, 2, 2); "
          f"one thread each, best of {args.reps}")
    print()
    print("| levels | downsample (s) | zarr decode + numpy pooling + zarr encode (s) | speed-up |")
    print("|---:|---:|---:|---:|")
    for levels, t_ours, t_base in rows:
        print(f"| {levels} | {t_ours:.2f} | {t_base:.2f} | {t_base / t_ours:.1f}x |")


if __name__ == "__main__":
    main()
