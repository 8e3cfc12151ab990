"""Bombs: tiny hostile streams that used to buy gigabytes of memory or seconds of CPU.

Each stream is built here (``bombs.py``) and run through the decoding entry points in a child
process whose address space is capped 64 MB above its size at start (``RLIMIT_AS``). Every call
must raise ``DecodeError`` (MemoryError would mean the decoder tried to allocate by a claim the
stream's bytes do not back). The time bound asserted is generous for a loaded CI machine; the
measured times and memory are in docs/robustness.md ("Bounded work").
"""

from __future__ import annotations

import numpy as np
import pytest

import crackle_codec as cc
from crackle_codec import DecodeError

import bombs
from bombs import run_capped

MAX_SECONDS = 1.0  # measured: < 0.03 s each (docs/robustness.md); the bound leaves room for CI load

ALL = ("header", "labels", "decompress", "decompress_z", "verify", "verify_parallel")
DECODE = ("decompress", "decompress_z", "verify", "verify_parallel")


def _pattern_stream() -> bytes:
    """A 14 KB FLAT stream of a 256 x 256 x 4 pattern (the size of the issue's flipped-sx case)."""
    x, y, z = np.meshgrid(np.arange(256), np.arange(256), np.arange(4), indexing="ij")
    a = ((x // 9 + y // 13 + z) % 5).astype(np.uint8)
    a[(x - 128) ** 2 + (y - 128) ** 2 < 50 ** 2] = 7
    return cc.compress(np.asfortranarray(a))


def bomb_cases() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    c: dict[str, tuple[bytes, tuple[str, ...]]] = {}
    for v in (1, 0):
        c[f"markov branch bomb 4096^2 v{v}"] = (bombs.branch_bomb(4096, version=v), DECODE)
        c[f"markov branch bomb 8192^2 v{v}"] = (bombs.branch_bomb(8192, version=v), ("verify", "verify_parallel"))
        c[f"markov branch bomb 4096^2, 64 move bytes v{v}"] = (bombs.branch_bomb(4096, move_bytes=64, version=v), DECODE)
        c[f"PINS component bomb 4096^2 x 64 v{v}"] = (bombs.pins_component_bomb(4096, 64, version=v), ALL)
        c[f"PINS component bomb 65535^2 x 64 v{v}"] = (bombs.pins_component_bomb(65535, 64, version=v), ALL)
    c["PINS permissible, a component per pixel, 1024^2 x 8 (slice CRC wrong)"] = (
        bombs.pins_component_bomb(1024, 8, permissible=True), DECODE)
    c["4096^2 x 30000 uniform slices, last slice CRC wrong"] = (
        bombs.many_uniform_slices(4096, 30000), ("verify", "verify_parallel"))
    return c


@pytest.fixture(scope="module")
def bomb_results():
    return run_capped(bomb_cases())


@pytest.mark.parametrize("name", list(bomb_cases()))
def test_bomb_refused_cheaply(bomb_results, name):
    row = bomb_results[name]
    bad = {fn: r for fn, (r, _, _) in row.items() if r != "DecodeError"}
    assert not bad, f"{name}: expected DecodeError, got {bad}"
    slow = {fn: round(t, 3) for fn, (_, t, _) in row.items() if t > MAX_SECONDS}
    assert not slow, f"{name}: refused too slowly {slow}"


def test_bomb_sizes():
    """The bombs are as small as the issue's: the point is their ratio of work to bytes."""
    assert len(bombs.branch_bomb(4096)) == 75
    assert len(bombs.pins_component_bomb(4096, 64)) == 1199
    assert len(bombs.many_uniform_slices(4096, 30000)) < 600_000


def test_flipped_sx_bits_refused_cheaply():
    """Every single-bit flip of sx (CRC8 re-signed) of a 14 KB stream: DecodeError from verify and
    decompress, within the caps (the issue: verify ran 1-11 s on such flips)."""
    good = _pattern_stream()
    assert 10_000 < len(good) < 30_000
    cases = {f"sx bit {b}": (bombs.flipped_sx(good, b), ("verify", "decompress")) for b in range(32)}
    res = run_capped(cases)
    for name, row in res.items():
        bad = {fn: r for fn, (r, _, _) in row.items() if r != "DecodeError"}
        assert not bad, f"{name}: {bad}"
        slow = {fn: round(t, 3) for fn, (_, t, _) in row.items() if t > MAX_SECONDS}
        assert not slow, f"{name}: too slow {slow}"


def test_markov_code_ending_early_is_an_error():
    """A markov move stream that stops inside a chain is a DecodeError at once: no symbols are read
    past the end (they used to read as zeros, i.e. as rank-0 symbols)."""
    a = np.zeros((8, 8, 1), np.uint8)
    a[2:5, 3:6] = 1
    full = cc.compress(a, markov_model_order=2)
    np.testing.assert_array_equal(cc.decompress(full), a)
    from fuzz.seeds import Sections

    s = Sections.parse(full)
    code = s.codes
    boc_bytes = int.from_bytes(code[:4], "little")
    for cut in range(4 + boc_bytes + 1, len(code)):
        s2 = Sections.parse(full)
        s2.codes = code[:cut]
        s2.index = [cut]
        with pytest.raises(DecodeError):
            cc.verify(s2.build())


def test_valid_streams_still_decode_after_the_bounds():
    """The new bounds are necessary conditions, not heuristics: every encoder output passes them
    (markov orders, both crack formats, PINS, narrow and wide slices)."""
    rng = np.random.default_rng(7)
    vols = [
        np.zeros((1, 300, 3), np.uint8),
        (rng.integers(0, 3, (40, 30, 3))).astype(np.uint16),   # noise: permissible
        np.repeat(np.arange(64, dtype=np.uint32).reshape(8, 8, 1), 4, axis=2),
        np.pad(np.ones((5, 5, 4), np.uint8), 3),
    ]
    for a in vols:
        for kw in ({}, {"markov_model_order": 1}, {"markov_model_order": 5}, {"allow_pins": True}):
            s = cc.compress(a, **kw)
            np.testing.assert_array_equal(cc.decompress(s), a)
            cc.verify(s)


# -------------------------------------------------------------- memory of a valid decode

def _narrow_stream(sx: int, sy: int, kind: str) -> bytes:
    """A valid uint8 slice: "pairs", a component per two rows (cracks on every other row; for
    sx > 1 neighbouring columns differ); "per_pixel", a component per pixel (a permissible stream
    with no cracks); "uniform", one label."""
    a = np.zeros((sx, sy, 1), np.uint8)
    if kind == "pairs":
        a[:, :, 0] = (np.arange(sy) // 2 % 2)[None, :]
        a[1::2] ^= 1
    elif kind == "per_pixel":
        a[:, 1::2] = 1
        a[1::2] ^= 1
    return cc.compress(np.asfortranarray(a))


NARROW_CASES = {  # name: (sx, sy, kind, entry points)
    "1 x 2^20, a component per 2 rows": (1, 1 << 20, "pairs", ("decompress", "verify")),
    "1 x 2^20, a component per pixel": (1, 1 << 20, "per_pixel", ("decompress",)),
    "2 x 2^19, a component per 2 rows": (2, 1 << 19, "pairs", ("decompress", "verify")),
    "3 x 2^18, a component per 2 rows": (3, 1 << 18, "pairs", ("decompress",)),
    "2^20 x 1, one label": (1 << 20, 1, "uniform", ("decompress",)),
}
# Measured 2.0-4.0 bytes per pixel beyond the output (docs/robustness.md, "Memory of a valid
# decode"); labelled whole, these slices cost 10-56 (a 1-pixel-wide one: a crack grid row of two
# words, and each row's runs, sentinel and start bits; one very wide row: 4 bytes per pixel of
# reserved runs and of CRC ids).
NARROW_BYTES_PER_PIXEL = 8


def test_narrow_slices_decode_in_little_memory():
    """Peak RSS growth beyond the output, per pixel, of decoding valid slices one to three pixels
    wide (and one pixel tall), in a child process (issue 17: at most the output plus O(one slice),
    and not 16 bytes per pixel of crack grid for narrow slices)."""
    for name, (sx, sy, kind, fns) in NARROW_CASES.items():
        stream = _narrow_stream(sx, sy, kind)
        for fn in fns:
            # A child per call: memory freed by one call stays resident and would hide the next's.
            r, _, peak_mb = run_capped({name: (stream, (fn,))}, cap_mb=256)[name][fn]
            assert r == "ok", f"{name} {fn}: {r}"
            output = sx * sy if fn == "decompress" else 0
            per_pixel = (peak_mb * 2**20 - output) / (sx * sy)
            assert per_pixel <= NARROW_BYTES_PER_PIXEL, f"{name} {fn}: {per_pixel:.1f} bytes/pixel beyond the output"
