"""What checking the labels section costs the label queries, relative to a decode.

    flock /tmp/crackle-bench.lock python bench/label_query_cost.py

For each volume of ../shared/data (FLAT and PINS): the time of labels() (which now checks the
labels CRC32C), of the structure parse alone (what labels() read before), of the CRC check alone,
and of a full decompress, all in one run, best of N.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import crackle_codec as cc
from crackle_codec import _crackle

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def best(fn, n: int) -> float:
    t = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def main() -> None:
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not present")
    print(f"{'volume':28} {'kind':5} {'stream':>9} {'labels sec':>10} | {'parse':>8} {'+CRC':>8} {'labels()':>9} {'decode':>9} | labels()/decode")
    for path in sorted(DATA.glob("*.npz")):
        vol = np.load(path)["labels"]
        for kind, kw in (("flat", {}), ("pins", {"allow_pins": True})):
            s = cc.compress(vol, **kw)
            buf = memoryview(s)
            h = cc.header(s)
            parse = best(lambda: _crackle.info(buf), 20)
            checked = best(lambda: _crackle.info(buf, True), 20)
            lab = best(lambda: cc.labels(s), 20)
            dec = best(lambda: cc.decompress(s), 3)
            print(f"{path.stem:28} {kind:5} {len(s):9,} {h.label_bytes:10,} | {parse * 1e3:7.3f}ms {checked * 1e3:7.3f}ms "
                  f"{lab * 1e3:8.3f}ms {dec * 1e3:8.1f}ms | {lab / dec:.2%} (CRC adds {(checked - parse) / dec:.2%})")


if __name__ == "__main__":
    main()
