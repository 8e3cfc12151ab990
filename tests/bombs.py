"""Hostile streams that buy work or memory out of proportion to their size ("bombs").

Each builder returns a small stream (CRCs recomputed, so only the decoder's own bounds can stop
it). ``tests/test_bombs.py`` runs them in a child process under an address-space and time cap.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from fuzz.seeds import Sections, crc8  # noqa: F401


def _w(v: int) -> int:
    return 1 if v <= 0xFF else 2 if v <= 0xFFFF else 4 if v <= 0xFFFFFFFF else 8


def _flat(sx: int, sy: int, codes: list[bytes], counts: list[int], *, order: int = 0, model: bytes = b"",
          keys: bytes | None = None, permissible: bool = False, version: int = 1) -> bytes:
    """A FLAT uint8 stream with one label (0) and the given per-slice crack codes and cc counts."""
    sz = len(codes)
    cw = _w(sx * sy)
    total = sum(counts)
    labels = struct.pack("<Q", 1) + b"\x00" + b"".join(c.to_bytes(cw, "little") for c in counts)
    labels += keys if keys is not None else b"\x00" * total
    ff = (1 if permissible else 0) << 4 | order << 9
    s = Sections(1, ff, sx, sy, sz, 31, len(labels), [len(c) for c in codes], labels, model, b"".join(codes),
                 True, slice_crcs=[0] * sz)
    stream = s.build()
    if version == 0:
        from fuzz.seeds import strip_crcs
        stream = strip_crcs(stream)
    return stream


def _empty_code(sy: int) -> bytes:
    """A slice with no chains: B = YW, num_rows = 0, no move bytes."""
    yw = _w(sy + 1)
    return struct.pack("<I", yw) + b"\x00" * yw


def _boc_one_start(sx: int, sy: int, x: int, y: int) -> bytes:
    xw, yw = _w(sx + 1), _w(sy + 1)
    return (1).to_bytes(yw, "little") + y.to_bytes(yw, "little") + (1).to_bytes(xw, "little") + x.to_bytes(xw, "little")


def _markov_model(order: int, entry: int) -> bytes:
    """A model whose every context holds permutation ``entry`` (5-bit entries, LSB-first)."""
    n = 4 ** order
    bits = 0
    for i in range(n):
        bits |= entry << (5 * i)
    return bits.to_bytes((5 * n + 7) // 8, "little")


def branch_bomb(side: int = 4096, move_bytes: int = 1, version: int = 1) -> bytes:
    """Markov order 1 whose most likely symbol is a difference of 2 (permutation 12 = 2,0,1,3), a
    first direction UP, and one zero byte of moves: read on past the end as zeros, every symbol is
    the second half of an UP,DOWN pair, a BRANCH, and the branch stack grows without end."""
    boc = _boc_one_start(side, side, 0, 0)
    code = struct.pack("<I", len(boc)) + boc + b"\x00" * move_bytes
    return _flat(side, side, [code], [1], order=1, model=_markov_model(1, 12), version=version)


def pins_component_bomb(side: int = 4096, sz: int = 64, permissible: bool = False, version: int = 1) -> bytes:
    """A PINS stream with no pin records and no cracks whose cc_per_grid claims every pixel of
    every slice is its own component (background everywhere)."""
    sxy = side * side
    cw = _w(sxy)
    labels = b"\x00" + struct.pack("<Q", 0) + sxy.to_bytes(cw, "little") * sz + b"\x00"
    codes = [_empty_code(side)] * sz
    ff = 2 << 5 | (1 if permissible else 0) << 4
    s = Sections(1, ff, side, side, sz, 31, len(labels), [len(c) for c in codes], labels, b"", b"".join(codes),
                 True, slice_crcs=[0] * sz)
    stream = s.build()
    if version == 0:
        from fuzz.seeds import strip_crcs
        stream = strip_crcs(stream)
    return stream


def many_uniform_slices(side: int = 4096, sz: int = 30000, bad_last: bool = True) -> bytes:
    """Uniform slices (no cracks, one component each): a consistent stream for a huge volume. With
    ``bad_last`` the last slice's CRC is wrong, so verify must walk every slice to find it."""
    codes = [_empty_code(side)] * sz
    stream = bytearray(_flat(side, side, codes, [1] * sz))
    # Slice CRCs of sxy zero ids: computed once (all equal), the last one broken if asked.
    from crackle_codec import _crackle
    block = bytes(1 << 20)
    zero, left = 0, 4 * side * side
    while left:
        zero = _crackle.crc32c(block[:min(left, len(block))], zero)
        left -= min(left, len(block))
    for z in range(sz):
        stream[len(stream) - 4 * (sz - z):len(stream) - 4 * (sz - z) + 4] = struct.pack("<I", zero)
    if bad_last:
        stream[-1] ^= 1
    return bytes(stream)


def flipped_sx(stream: bytes, bit: int) -> bytes:
    """``stream`` with one bit of sx flipped and the CRCs re-signed."""
    s = Sections.parse(stream)
    s.sx ^= 1 << bit
    return s.build()


# ------------------------------------------------------------------ running under a cap

SANITIZED = os.environ.get("CRACKLE_SANITIZED") == "1"  # ASan reserves terabytes: no RLIMIT_AS
CAP_MB = 64

_CHILD = textwrap.dedent(r'''
    import json, resource, sys, time
    import crackle_codec as cc
    from crackle_codec import DecodeError
    cases = json.load(sys.stdin)
    cap_mb = int(sys.argv[1])
    def status():
        with open("/proc/self/status") as f:
            return {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f if l.startswith(("VmSize", "VmHWM", "VmRSS"))}
    if cap_mb:
        cap = status()["VmSize"] + (cap_mb << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    measure = sys.argv[3] == "1"  # peak memory per call (two /proc reads a call)
    cpu = int(sys.argv[2])  # a hard stop for the whole batch (SIGXCPU kills the child)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    calls = {
        "header": lambda s: cc.header(s),
        "labels": lambda s: cc.labels(s),
        "decompress": lambda s: cc.decompress(s),
        "decompress_z": lambda s: cc.decompress(s, z=slice(0, 1)),
        "verify": lambda s: cc.verify(s),
        "verify_parallel": lambda s: cc.verify(s, parallel=2),
        "num_labels": lambda s: cc.num_labels(s),
        "contains": lambda s: cc.contains(s, 7),
        "remap": lambda s: cc.remap(s, {}, preserve_missing_labels=True),
    }
    out = {}
    for name, (hexs, fns) in cases.items():
        s = bytes.fromhex(hexs)
        row = {}
        for fn in fns:
            if measure:
                before = status()
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # reset the peak (VmHWM) to the current RSS
            t = time.perf_counter()
            try:
                calls[fn](s)
                r = "ok"
            except DecodeError:
                r = "DecodeError"
            except BaseException as e:
                r = f"{type(e).__name__}: {str(e)[:120]}"
            dt = time.perf_counter() - t
            row[fn] = [r, dt, (status()["VmHWM"] - before["VmRSS"]) / 2**20 if measure else 0.0]
        out[name] = row
    json.dump(out, sys.stdout)
''')


def run_capped(cases: dict[str, tuple[bytes, tuple[str, ...]]], cap_mb: int = CAP_MB, cpu_seconds: int = 300,
               measure: bool = True) -> dict:
    """{case: {fn: [result, seconds, peak RSS growth in MB]}} from a child whose address space is
    capped ``cap_mb`` above its size at start (RLIMIT_AS; not under ASan) and whose CPU time is
    capped at ``cpu_seconds`` for the whole batch (RLIMIT_CPU). ``measure``: record each call's
    peak RSS growth (else 0; the cap still holds)."""
    env = dict(os.environ)
    import crackle_codec as cc

    env["PYTHONPATH"] = os.pathsep.join([str(Path(cc.__file__).resolve().parents[1])] + sys.path)
    payload = {k: [s.hex(), list(fns)] for k, (s, fns) in cases.items()}
    proc = subprocess.run([sys.executable, "-c", _CHILD, "0" if SANITIZED else str(cap_mb), str(cpu_seconds),
                           "1" if measure else "0"],
                          input=json.dumps(payload), capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"child crashed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


