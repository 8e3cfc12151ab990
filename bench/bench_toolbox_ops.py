#!/usr/bin/env python3
"""Toolbox benchmark, groups 4-6 of issue #13: stream rewrites, assembling, CrackleArray slicing.

For each function: best-of-N wall time of crackle_codec and of the reference crackle-codec 0.55.0
on the same input stream (the reference's own stream, FLAT, markov order 0, unless the row says
otherwise), one thread, on 256^3 crops of the shared real volumes. Prints one table per volume
(function, ours ms, reference ms, ratio = reference / ours) in Markdown.

    flock /tmp/crackle-bench.lock python bench/bench_toolbox_ops.py [--volumes a,b] [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import numpy as np

import crackle
import crackle_codec as cc

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VOLUMES = ["connectomics_512", "flyem_medulla_ws", "atlas_glasser_mni1mm"]


def crop256(name: str) -> np.ndarray:
    with np.load(DATA / f"{name}.npz") as npz:
        vol = npz["labels"]
    shape = [min(256, n) for n in vol.shape]
    off = [(n - s) // 2 for n, s in zip(vol.shape, shape)]
    return np.asfortranarray(vol[tuple(slice(o, o + s) for o, s in zip(off, shape))])


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cases(vol: np.ndarray):
    """(name, ours, reference) callables on the same streams."""
    b = crackle.compress(vol)                      # FLAT, order 0 (the reference's default)
    bp = crackle.compress(vol, allow_pins=True)    # PINS
    bm = crackle.compress(vol, markov_model_order=5)
    labels = crackle.labels(b)
    some = labels[: max(1, len(labels) // 10)].tolist()
    mapping = {int(v): int(v) + 1 for v in labels}
    merge = {int(v): int(v) // 2 for v in labels}
    widen = {int(labels[-1]): 2**40}
    mb = crackle.compress((vol > np.median(labels)).astype(np.uint8))
    parts = crackle.zshatter(b)
    halves = list(crackle.zsplit(b, vol.shape[2] // 2))
    sx, sy, sz = vol.shape
    ours_arr, ref_arr = cc.CrackleArray(b, parallel=1), crackle.CrackleArray(b, parallel=1)
    zc = sz // 2
    yield "remap (+1)", lambda: cc.remap(b, mapping), lambda: crackle.remap(b, mapping, parallel=1)
    yield "remap (merge pairs)", lambda: cc.remap(b, merge), lambda: crackle.remap(b, merge, parallel=1)
    yield "remap (widen to u64)", lambda: cc.remap(b, widen, True), lambda: crackle.remap(b, widen, True, parallel=1)
    yield "remap (pins)", lambda: cc.remap(bp, mapping), lambda: crackle.remap(bp, mapping, parallel=1)
    yield "mask (10% of labels)", lambda: cc.mask(b, some), lambda: crackle.mask(b, some, parallel=1)
    yield "mask_except (10%)", lambda: cc.mask_except(b, some), lambda: crackle.mask_except(b, some, parallel=1)
    yield "apply_binary_mask", lambda: cc.apply_binary_mask(b, mb, parallel=1), lambda: crackle.apply_binary_mask(b, mb, parallel=1)
    yield "add_scalar", lambda: cc.add_scalar(b, 5), lambda: crackle.add_scalar(b, 5)
    yield "subtract_scalar", lambda: cc.subtract_scalar(b, 1), lambda: crackle.subtract_scalar(b, 1)
    yield "multiply_scalar", lambda: cc.multiply_scalar(b, 3), lambda: crackle.multiply_scalar(b, 3)
    yield "floordiv_scalar", lambda: cc.floordiv_scalar(b, 2), lambda: crackle.floordiv_scalar(b, 2)
    yield "astype (uint64)", lambda: cc.astype(b, np.uint64), lambda: crackle.astype(b, np.uint64)
    yield "refit", lambda: cc.refit(b), lambda: crackle.refit(b)
    yield "renumber", lambda: cc.renumber(b, parallel=1), lambda: crackle.renumber(b, parallel=1)
    yield "recompress", lambda: cc.recompress(b, parallel=1), lambda: crackle.recompress(b, parallel=1)
    yield "reencode (0 -> 5)", lambda: cc.reencode(b, 5, parallel=1), lambda: crackle.reencode(b, 5, parallel=1)
    yield "reencode (5 -> 0)", lambda: cc.reencode(bm, 0, parallel=1), lambda: crackle.reencode(bm, 0, parallel=1)
    yield "ascontiguousarray", lambda: cc.ascontiguousarray(b), lambda: crackle.ascontiguousarray(b)
    yield "asfortranarray", lambda: cc.asfortranarray(b), lambda: crackle.asfortranarray(b)
    yield "mode_pooling_2x2x1", lambda: cc.mode_pooling_2x2x1(b, parallel=1), lambda: crackle.mode_pooling_2x2x1(b, parallel=1)
    yield "zstack (sz slices)", lambda: cc.zstack(parts), lambda: crackle.zstack(parts)
    yield "zstack (2 halves)", lambda: cc.zstack(halves[:1] + halves[1:]), lambda: crackle.zstack(halves)
    yield "zsplit (middle)", lambda: cc.zsplit(b, zc), lambda: crackle.zsplit(b, zc)
    yield "zshatter", lambda: cc.zshatter(b), lambda: crackle.zshatter(b)
    yield "full", lambda: cc.full((sx, sy, sz), 7, np.uint32), lambda: crackle.full((sx, sy, sz), 7, np.uint32)
    yield "zeros", lambda: cc.zeros((sx, sy, sz), np.uint32), lambda: crackle.zeros((sx, sy, sz), np.uint32)
    yield "ones", lambda: cc.ones((sx, sy, sz), np.uint32), lambda: crackle.ones((sx, sy, sz), np.uint32)
    yield "compressa", lambda: cc.compressa(vol, parallel=1), lambda: crackle.compressa(vol, parallel=1)
    yield "array_equal (flat vs pins)", lambda: cc.array_equal(b, bp, parallel=1), lambda: crackle.array_equal(b, bp, parallel=1)
    yield "CrackleArray[:, :, z]", lambda: ours_arr[:, :, zc], lambda: ref_arr[:, :, zc]
    yield "CrackleArray[x, y, z]", lambda: ours_arr[10, 20, zc], lambda: ref_arr[10, 20, zc]
    yield "CrackleArray[:, :, z:z+10]", lambda: ours_arr[:, :, zc:zc + 10], lambda: ref_arr[:, :, zc:zc + 10]
    yield "CrackleArray[a:b, :, z:z+10]", lambda: ours_arr[50:60, :, zc:zc + 10], lambda: ref_arr[50:60, :, zc:zc + 10]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", default=",".join(VOLUMES))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated substrings of function names")
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    print(f"Toolbox benchmark {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"crackle_codec {cc.__version__} vs crackle-codec (reference), one thread, best of {args.repeat}\n")
    for name in args.volumes.split(","):
        vol = crop256(name)
        print(f"### {name} {vol.shape[0]}x{vol.shape[1]}x{vol.shape[2]} {vol.dtype}\n")
        print("| function | ours ms | reference ms | ratio |")
        print("|---|---:|---:|---:|")
        for label, ours, ref in cases(vol):
            if only and not any(o in label for o in only):
                continue
            slow = any(k in label for k in ("recompress", "reencode", "pooling", "apply_binary", "compressa", "array_equal"))
            repeat = 2 if slow else args.repeat
            try:
                t_ref = best(ref, repeat)
            except Exception as e:  # the reference fails on some inputs (e.g. PINS)
                t_ref = None
                err = type(e).__name__
            t_ours = best(ours, repeat)
            if t_ref is None:
                print(f"| {label} | {t_ours * 1e3:.3f} | fails ({err}) | - |")
            else:
                print(f"| {label} | {t_ours * 1e3:.3f} | {t_ref * 1e3:.3f} | {t_ref / t_ours:.2f} |")
        print(flush=True)


if __name__ == "__main__":
    main()
