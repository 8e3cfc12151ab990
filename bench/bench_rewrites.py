#!/usr/bin/env python3
"""Whole-array label rewrites benchmark (issue #14): ``renumber_array`` and ``mask_array`` into a
new array against what a user does without them, one thread each.

The array: connectomics_512 (../shared/data) as a Zarr v3 ``(z, y, x)`` array of 128^3 chunks,
Crackle serializer, no compressor after it. Measured, best of ``--reps``:

* ``renumber_array(z, dest=new, max_workers=1)`` against ``z[...]`` (zarr decoding the array with
  the codec), ``np.unique(return_inverse=True)`` cast to the smallest dtype, written to a new
  Crackle array through zarr (``new[...] = result``);
* ``mask_array(z, labels, dest=new, max_workers=1)`` (every tenth nonzero label masked) against
  ``z[...]``, ``np.where(np.isin(...), 0, ...)``, written through zarr;
* ``mask_array`` in place on a copy of the array (only the chunks holding a masked label are
  rewritten; timed once, as a second run has nothing left to mask).

zarr runs with ``threading.max_workers = 1`` and ``async.concurrency = 1``; results are compared
before timing.

    flock /tmp/crackle-bench.lock python bench/bench_rewrites.py [--reps 2]

A script, not a test: it never asserts speed.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_volumes  # noqa: E402
from bench_volumes import best  # noqa: E402

import zarr  # noqa: E402

import crackle_codec  # noqa: E402
from crackle_codec import mask_array, renumber_array  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec  # noqa: E402

CHUNK = 128


def smallest_unsigned(n):
    return next(np.dtype(f"u{w}") for w in (1, 2, 4, 8) if n - 1 <= np.iinfo(f"u{w}").max)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--data", default=None)
    p.add_argument("--size", type=int, default=512, help="crop the volume to SIZE^3 (a smoke run; default 512)")
    args = p.parse_args(argv)
    zarr.config.set({"threading.max_workers": 1, "async.concurrency": 1})
    vol = bench_volumes.load("connectomics_512", bench_volumes.data_dir(args.data)).T  # (z, y, x), C order
    vol = np.ascontiguousarray(vol[:args.size, :args.size, :args.size])
    counter = itertools.count()
    with tempfile.TemporaryDirectory(prefix="bench-rewrites-") as tmp:
        def new_path():
            return f"{tmp}/out{next(counter)}.zarr"

        def create(dtype):
            return zarr.create_array(new_path(), shape=vol.shape, chunks=(CHUNK,) * 3, dtype=dtype,
                                     serializer=CrackleCodec(), compressors=None, fill_value=0)

        z = create(vol.dtype)
        z[...] = vol
        path = str(z.store_path.store.root)
        z = zarr.open_array(path, mode="r")
        labels = np.unique(vol)
        masked = labels[1::10]  # every tenth nonzero label

        def ours_renumber():
            dest = new_path()
            renumber_array(z, dest=dest, max_workers=1)
            return dest

        def numpy_renumber():
            distinct, inverse = np.unique(z[...], return_inverse=True)
            out = create(smallest_unsigned(distinct.size))
            out[...] = inverse.reshape(vol.shape).astype(out.dtype)
            return out

        def ours_mask():
            dest = new_path()
            mask_array(z, masked, dest=dest, max_workers=1)
            return dest

        def numpy_mask():
            block = z[...]
            out = create(vol.dtype)
            out[...] = np.where(np.isin(block, masked), 0, block)
            return out

        t_ren, dest = best(ours_renumber, args.reps)
        t_ren_np, base = best(numpy_renumber, args.reps)
        renumbered = zarr.open_array(dest)
        assert renumbered.dtype == base.dtype and np.array_equal(renumbered[...], base[...])
        t_mask, dest = best(ours_mask, args.reps)
        t_mask_np, base = best(numpy_mask, args.reps)
        assert np.array_equal(zarr.open_array(dest)[...], base[...])
        copy = new_path()
        shutil.copytree(path, copy)
        in_place = zarr.open_array(copy, mode="r+")
        t0 = time.perf_counter()
        written = mask_array(in_place, masked, max_workers=1)
        t_in_place = time.perf_counter() - t0
        assert np.array_equal(in_place[...], base[...])
        t_read, _ = best(lambda: z[...], args.reps)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"bench_rewrites, {stamp}, {platform.machine()} {platform.processor() or ''}, "
          f"crackle_codec {crackle_codec.__version__}, zarr {zarr.__version__}, numpy {np.__version__}; "
          f"connectomics_512 ({'x'.join(map(str, vol.shape))}) as (z, y, x) {vol.dtype}, 128^3 chunks, "
          f"{labels.size} labels ({masked.size} masked); one thread each, best of {args.reps}")
    print()
    print("| operation | ours (s) | decode + numpy + encode (s) | speed-up |")
    print("|---|---:|---:|---:|")
    print(f"| renumber into a new array ({renumbered.dtype}) | {t_ren:.2f} | {t_ren_np:.2f} | {t_ren_np / t_ren:.1f}x |")
    print(f"| mask into a new array | {t_mask:.2f} | {t_mask_np:.2f} | {t_mask_np / t_mask:.1f}x |")
    print(f"| mask in place ({written} of {z.nchunks} chunks rewritten) | {t_in_place:.2f} | {t_mask_np:.2f} | "
          f"{t_mask_np / t_in_place:.1f}x |")
    print(f"| (z[...] alone: read + decode with the codec) | | {t_read:.2f} | |")


if __name__ == "__main__":
    main()
