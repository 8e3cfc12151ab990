"""Every truncation and single-bit flip of small streams through the toolbox entry points
(issue #13, groups 4-6): each either raises DecodeError or gives what the operation applied to
the stream's decode gives; a stream that does not decode never comes out as one that does
(tests/fuzz/toolbox_oracles.py). The fuzz harness runs the same oracles on random mutations.
"""

from __future__ import annotations

import numpy as np
import pytest

import crackle_codec as cc
from fuzz import oracles, seeds, toolbox_oracles


def _volume() -> np.ndarray:
    vol = np.zeros((7, 6, 4), dtype=np.uint16, order="F")
    vol[1:4, 2:5, :] = 300
    vol[5:, :3, 1:3] = 9
    vol[0, 5, 3] = 4
    return vol


CASES = {
    "flat": dict(),
    "pins-m2": dict(allow_pins=True, markov_model_order=2),
}


def _mutants(stream: bytes):
    for n in range(0, len(stream), 3):
        yield f"truncated to {n} bytes", stream[:n]
    for i in range(len(stream)):
        for bit in (0, 3, 7):
            m = bytearray(stream)
            m[i] ^= 1 << bit
            yield f"byte {i} bit {bit} flipped", bytes(m)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("resign", [False, True], ids=["as-is", "resigned"])
def test_toolbox_on_every_mutant(case, resign):
    stream = cc.compress(_volume(), **CASES[case])
    failures = []
    for k, (what, m) in enumerate(_mutants(stream)):
        if resign:  # CRC8, index and labels CRCs redone: mutations reach the parsers behind them
            try:
                m = seeds.resign(m)
            except Exception:
                continue
        try:
            vol = oracles.call(cc.decompress, m)
            toolbox_oracles.check_toolbox(m, vol, zsel=k)
        except (oracles.Finding, AssertionError) as e:
            failures.append(f"{what}: {e}")
    assert not failures, f"{len(failures)} failures, e.g. {failures[:5]}"
