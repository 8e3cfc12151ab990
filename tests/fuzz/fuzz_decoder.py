#!/usr/bin/env python3
"""Fuzz harness for the crackle_codec decoder: decompress, z-range decode, verify, header, labels,
num_labels, contains and remap, the toolbox's per-slice queries (``oracles.check_toolbox``), and its
rewrites, z ranges and CrackleArray slicing (``toolbox_oracles.py``), on arbitrary bytes.

Input layout: byte 0 is a mode byte, the rest is the stream.

* ``mode % 3 == 0``: the bytes as they are (CRCs usually stop a mutation early);
* ``mode % 3 == 1``: CRC8, index CRC and labels CRC recomputed (``seeds.resign``), so mutations
  reach the labels, markov and crack-code parsers (the slice CRCs still stand guard);
* ``mode % 3 == 2``: turned into a version-0 stream without any CRC (``seeds.strip_crcs``), so
  every structural check of the decoder is exercised and a stream may decode to other voxels;
* ``mode & 0x80``: decode with 2 threads; bits 2..6 choose the z slice for the z-range check.

What counts as a finding (raised, so atheris/libFuzzer saves the input): see ``oracles.py``. In
short: any exception other than ``DecodeError`` (a crash or sanitizer report ends the process), and
any disagreement between the entry points (verify vs decompress, z-range vs full decode, header,
labels, remap output vs the mapping applied to the decoded voxels).

Run (see tests/fuzz/README.md)::

    python tests/fuzz/fuzz_decoder.py -max_total_time=120          # atheris, seeded corpus
    python tests/fuzz/fuzz_decoder.py --mutate -max_total_time=60  # plain mutation loop, no atheris

Without ``--corpus`` the seed corpus is written to a temporary folder (never into the repo).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `fuzz.seeds`

try:  # atheris instruments crackle_codec's Python layer for coverage when it is available
    import atheris

    with atheris.instrument_imports(include=["crackle_codec"]):
        import crackle_codec as cc
except ImportError:  # the plain mutation loop below needs no atheris
    atheris = None
    import crackle_codec as cc

from fuzz import oracles, seeds, toolbox_oracles  # noqa: E402


def prepare(data: bytes) -> tuple[bytes, int, int]:
    """(stream, parallel, z selector) from a fuzz input (mode byte + stream)."""
    if not data:
        return b"", 1, 0
    mode, stream = data[0], bytes(data[1:])
    kind = mode % 3
    if kind == 1:
        stream = seeds.resign(stream)
    elif kind == 2:
        stream = seeds.strip_crcs(stream)
    return stream, 2 if mode & 0x80 else 1, (mode >> 2) & 0x1F


# CRACKLE_FUZZ_ORACLES=decoder runs only the decoder's entry points and oracles (decompress, z
# ranges, verify, header, labels, num_labels, contains, remap): the toolbox oracles re-encode and
# rewrite every input, which costs ~5x the decoder's share, so a long ASan campaign on the decoder
# runs this way (docs/robustness.md says which campaign used which).
TOOLBOX = os.environ.get("CRACKLE_FUZZ_ORACLES", "all") != "decoder"


def test_one_input(data: bytes) -> None:
    stream, parallel, zsel = prepare(data)
    try:
        res = oracles.check_stream(stream, parallel, zsel, toolbox=TOOLBOX)
        if TOOLBOX and "decompress" in res:  # the toolbox entry points (issue #13): rewrites, z ranges, CrackleArray
            toolbox_oracles.check_toolbox(stream, res["decompress"], zsel)
    except oracles.Known:
        pass


# ------------------------------------------------------------------ plain mutation fallback

_INTERESTING = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 4095, 65535,
                65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1]


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """1..4 random edits: bit flips, bytes, interesting integers, cuts, inserts, splices."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        if not b:
            b = bytearray(rng.choice(pool))
            continue
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            w = rng.choice((1, 2, 4, 8))
            v = rng.choice(_INTERESTING) & ((1 << (8 * w)) - 1)
            b[i:i + w] = v.to_bytes(w, "little")
        elif op == 3:
            del b[rng.randrange(len(b) + 1):]
        elif op == 4:
            j = min(len(b), i + rng.randint(1, 16))
            del b[i:j]
        elif op == 5:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 6:
            other = rng.choice(pool)
            j = rng.randrange(len(other) + 1)
            b = b[:i] + bytearray(other[j:])
        else:
            j = rng.randrange(len(b))
            n = rng.randint(1, 32)
            b[i:i] = b[j:j + n]
    if len(b) > 1 and rng.random() < 0.5:  # the mode byte is an input too
        b[0] = rng.randrange(256)
    return bytes(b)


def mutation_loop(pool: list[bytes], seconds: float, runs: int, seed: int, artifacts: Path) -> int:
    """Fuzz without atheris; returns the number of findings (each saved under ``artifacts``)."""
    rng = random.Random(seed)
    t_end = time.monotonic() + seconds
    execs = findings = 0
    last = time.monotonic()
    for data in pool:  # the seeds themselves first
        execs += 1
        findings += _run_one(data, artifacts)
    while time.monotonic() < t_end and (runs <= 0 or execs < runs):
        data = mutate(rng.choice(pool), rng, pool)
        execs += 1
        findings += _run_one(data, artifacts)
        if time.monotonic() - last > 10:
            last = time.monotonic()
            print(f"#{execs} mutation-loop execs, {findings} findings", flush=True)
    print(f"Done {execs} runs (mutation loop); findings: {findings}", flush=True)
    oracles.report_ignored()
    print(f"stat::number_of_executed_units: {execs}", flush=True)
    return findings


def _run_one(data: bytes, artifacts: Path) -> int:
    try:
        test_one_input(data)
        return 0
    except Exception as e:
        artifacts.mkdir(parents=True, exist_ok=True)
        import hashlib

        path = artifacts / f"finding-{hashlib.sha1(data).hexdigest()}"
        path.write_bytes(data)
        print(f"FINDING {type(e).__name__}: {e}\n  input saved to {path}", flush=True)
        return 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=True)
    parser.add_argument("--corpus", type=Path, help="corpus folder (default: a fresh temporary one)")
    parser.add_argument("--mutate", action="store_true", help="plain mutation loop instead of atheris")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CRACKLE_FUZZ_SEED", "0")))
    parser.add_argument("--as-limit-mb", type=int, default=0,
                        help="mutation loop: cap the address space (RLIMIT_AS) so that an oversized "
                             "allocation becomes a MemoryError finding instead of the OOM killer")
    args, rest = parser.parse_known_args(argv[1:])

    corpus = args.corpus or Path(tempfile.mkdtemp(prefix="crackle-fuzz-corpus-"))
    if not any(corpus.glob("*")) if corpus.exists() else True:
        n = seeds.write_corpus(corpus, seeds.fuzz_seeds())
        print(f"seed corpus: {n} inputs written to {corpus}", flush=True)
    if len(list(corpus.glob("*"))) == 0:
        print("no seeds (../shared absent?): starting from a few synthetic streams", flush=True)
        for i, arr in enumerate([np.zeros((4, 4, 2), np.uint8), np.arange(64, dtype=np.uint16).reshape(4, 4, 4)]):
            (corpus / f"synthetic{i}").write_bytes(b"\x00" + cc.compress(arr))

    if args.mutate or atheris is None:
        if atheris is None and not args.mutate:
            print("atheris is not installed: using the plain mutation loop", flush=True)
        seconds, runs = 60.0, 0
        for opt in rest:
            if opt.startswith("-max_total_time="):
                seconds = float(opt.split("=", 1)[1])
            elif opt.startswith("-runs="):
                runs = int(opt.split("=", 1)[1])
        pool = [p.read_bytes() for p in sorted(corpus.glob("*")) if p.is_file()]
        seeds.release_volumes()
        if args.as_limit_mb:
            import resource

            limit = args.as_limit_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        artifacts = Path(os.environ.get("CRACKLE_FUZZ_ARTIFACTS", tempfile.gettempdir()))
        return 1 if mutation_loop(pool, seconds, runs, args.seed, artifacts) else 0

    seeds.release_volumes()
    lf_args = [argv[0]] + rest + [str(corpus)]
    if not any(a.startswith("-seed=") for a in rest) and args.seed:
        lf_args.insert(1, f"-seed={args.seed}")
    import atexit

    atexit.register(oracles.report_ignored)
    atheris.Setup(lf_args, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
