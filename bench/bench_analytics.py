#!/usr/bin/env python3
"""Array analytics benchmark (issue #14): ``label_stats`` and ``extract_label`` on a Crackle Zarr
array against zarr + numpy, one thread each.

The array: connectomics_512 (../shared/data) as a Zarr v3 ``(z, y, x)`` array of 128^3 chunks,
Crackle serializer, no compressor after it. Measured, best of ``--reps``:

* ``label_stats(z, max_workers=1)``;
* baseline: ``z[...]`` (zarr decoding the whole array with the codec) then the same table with
  numpy: ``np.unique(return_inverse=True, return_counts=True)``, bounding boxes from per-slice
  ``np.bincount`` presence along each axis, centroids from ``np.bincount`` coordinate sums;
* ``z[...]`` alone (zarr reading the bytes and decoding them with the codec);
* the floor: reading every chunk's bytes and decoding each with the codec alone
  (``crackle_codec.decompress``, one thread), no zarr in between;
* ``extract_label`` of two neurons (the largest nonzero label and one of median size among labels
  over 100,000 voxels) against finding the chunks that hold it (``find_label``), decoding them
  through zarr and masking; with, as a bound, the time to decode (codec alone) only the slices
  holding the label in those chunks (``decompress(label=...)``-style drawing of whole slices).

zarr runs with ``threading.max_workers = 1`` and ``async.concurrency = 1``; answers are compared
before timing.

    flock /tmp/crackle-bench.lock python bench/bench_analytics.py [--reps 3]

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
from crackle_codec import extract_label, find_label, label_stats  # noqa: E402
from crackle_codec.zarr.sources import source  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec  # noqa: E402

CHUNK = 128


def numpy_table(vol):
    """label_stats' table of a decoded array with numpy."""
    labels, inverse, counts = np.unique(vol, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(vol.shape)
    n = labels.size
    lo = np.zeros((n, vol.ndim), np.int64)
    hi = np.zeros((n, vol.ndim), np.int64)
    total = np.zeros((n, vol.ndim), np.int64)
    for a in range(vol.ndim):
        moved = np.moveaxis(inverse, a, 0)
        present = np.stack([np.bincount(moved[i].reshape(-1), minlength=n) for i in range(vol.shape[a])])
        seen = present > 0
        lo[:, a] = np.argmax(seen, axis=0)
        hi[:, a] = vol.shape[a] - 1 - np.argmax(seen[::-1], axis=0)
        total[:, a] = (present * np.arange(vol.shape[a])[:, None]).sum(axis=0)
    return {"label": labels, "voxel_count": counts.astype(np.int64), "bbox_min": lo, "bbox_max": hi,
            "centroid": total / counts[:, None]}


def masked_chunks(z, label):
    """Baseline extract: decode (through zarr) every chunk holding the label and mask it."""
    found = find_label(z, label, max_workers=1)
    pieces = []
    for c in found:
        box = tuple(slice(i * CHUNK, min((i + 1) * CHUNK, s)) for i, s in zip(c, z.shape))
        pieces.append((box, z[box] == label))
    lo = [min(b[a].start for b, _ in pieces) for a in range(3)]
    hi = [max(b[a].stop for b, _ in pieces) for a in range(3)]
    mask = np.zeros([h - l for l, h in zip(lo, hi)], bool)
    for box, m in pieces:
        mask[tuple(slice(s.start - l, s.stop - l) for s, l in zip(box, lo))] = m
    where = np.argwhere(mask.any(axis=(1, 2))), np.argwhere(mask.any(axis=(0, 2))), np.argwhere(mask.any(axis=(0, 1)))
    cut = tuple(slice(int(w[0, 0]), int(w[-1, 0]) + 1) for w in where)
    return mask[cut], tuple(l + s.start for l, s in zip(lo, cut)), len(found)


def read_and_decode(z):
    """The floor of label_stats: every chunk's bytes read and decoded by the codec alone."""
    src = source(z)
    coords = [c for c in np.ndindex(*(-(-s // c) for s, c in zip(z.shape, z.chunks)))]
    voxels = 0
    for batch in src.batches(coords):
        for stream in src.read(batch).values():
            if stream is not None:
                voxels += crackle_codec.decompress(stream, parallel=1).size
    return voxels


def draw_holding_slices(z, label, chunks):
    """The bound of extract_label: in each chunk holding the label, the binary image of the slices
    holding it (whole slices: the crack codes of those slices decoded), nothing assembled."""
    src = source(z)
    drawn = 0
    for stream in src.read(chunks).values():
        image = crackle_codec.decompress(stream, label=label, crop=True)
        drawn += image.shape[2]
    return drawn


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--extract-reps", type=int, default=10,
                   help="repetitions of the (short) extract_label measurements (default 10)")
    p.add_argument("--data", default=None)
    p.add_argument("--size", type=int, default=512, help="crop the volume to SIZE^3 (a smoke run; default 512)")
    args = p.parse_args(argv)
    zarr.config.set({"threading.max_workers": 1, "async.concurrency": 1})
    vol = bench_volumes.load("connectomics_512", bench_volumes.data_dir(args.data)).T  # (z, y, x), C order
    vol = np.ascontiguousarray(vol[:args.size, :args.size, :args.size])
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        z = zarr.create_array(f"{tmp}/a.zarr", shape=vol.shape, chunks=(CHUNK,) * 3, dtype=vol.dtype,
                              serializer=CrackleCodec(), compressors=None, fill_value=0)
        z[...] = vol
        z = zarr.open_array(f"{tmp}/a.zarr", mode="r")

        t_stats, ours = best(lambda: label_stats(z, max_workers=1), args.reps)
        t_read, _ = best(lambda: z[...], args.reps)
        t_floor, _ = best(lambda: read_and_decode(z), args.reps)
        t_base, theirs = best(lambda: numpy_table(z[...]), args.reps)
        for key in theirs:
            assert np.array_equal(ours[key], theirs[key]), key

        counts = dict(zip(ours["label"].tolist(), ours["voxel_count"].tolist()))
        big = [k for k, v in sorted(counts.items(), key=lambda kv: kv[1]) if k != 0 and v > 100_000]
        big = big or [k for k in sorted(counts, key=counts.get) if k != 0]
        picks = {"largest": big[-1], "median of > 100k voxels": big[len(big) // 2]}
        extract_rows = []
        for name, label in picks.items():
            t_ext, (mask, offset) = best(lambda: extract_label(z, label, max_workers=1), args.extract_reps)
            t_mask, (mask2, offset2, nchunks) = best(lambda: masked_chunks(z, label), args.extract_reps)
            assert offset == offset2 and np.array_equal(mask, mask2)
            held = find_label(z, label, max_workers=1)
            t_draw, nslices = best(lambda: draw_holding_slices(z, label, held), args.extract_reps)
            extract_rows.append((name, label, counts[label], nchunks, nslices, mask.shape, t_ext, t_mask, t_draw))

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"bench_analytics, {stamp}, {platform.machine()} {platform.processor() or ''}, "
          f"crackle_codec {crackle_codec.__version__}, zarr {zarr.__version__}, numpy {np.__version__}; "
          f"connectomics_512 ({'x'.join(map(str, vol.shape))}) as (z, y, x) uint32, 128^3 chunks, {ours['label'].size} labels; "
          f"one thread each, best of {args.reps} (extract_label rows: of {args.extract_reps})")
    print()
    print("| operation | time (s) | ratio |")
    print("|---|---:|---:|")
    print(f"| label_stats(z, max_workers=1) | {t_stats:.2f} | 1 |")
    print(f"| z[...] + numpy table (unique, bincount boxes and sums) | {t_base:.2f} | "
          f"{t_base / t_stats:.1f}x slower |")
    print(f"| z[...] alone (zarr: read + decode with the codec) | {t_read:.2f} | label_stats is "
          f"{t_stats / t_read:.2f}x its time |")
    print(f"| read every chunk + decompress (codec alone) | {t_floor:.2f} | label_stats is "
          f"{t_stats / t_floor:.2f}x its time |")
    print()
    print("| extract_label | label | voxels | chunks | slices holding it | box | extract_label (s) | "
          "find + decode chunks + mask (s) | speed-up | draw holding slices only (s) | bound |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, label, n, nchunks, nslices, shape, t_ext, t_mask, t_draw in extract_rows:
        print(f"| {name} | {label} | {n:,} | {nchunks} | {nslices} of {nchunks * CHUNK} | "
              f"{'x'.join(map(str, shape))} | {t_ext:.3f} | {t_mask:.3f} | {t_mask / t_ext:.1f}x | "
              f"{t_draw:.3f} | {t_mask / t_draw:.1f}x |")


if __name__ == "__main__":
    main()
