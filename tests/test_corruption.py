"""Exhaustive corruption tests: every truncation and every single-bit flip of small real streams.

For each stream (ours and the reference's; FLAT, PINS, markov; unsigned and signed; written at test
time from crops of ../shared/data, plus small streams from ../shared/streams/valid) every mutant
goes through every public entry point (``fuzz/oracles.check_stream``: decompress, z-range
decompress, verify, header, labels, num_labels, contains, remap and a decode of remap's output).

Version-1 streams carry CRCs, so the rule there is strict:

* decompress, z-range decompress, verify: ``DecodeError`` or exactly the original volume
  (values, dtype, shape, memory order) -- zero silent corruptions;
* header: ``DecodeError`` or the original shape, dtype, order and formats;
* labels / num_labels / contains: ``DecodeError`` or the original answer, wherever the mutation
  is (they check the labels section and its CRC before answering);
* remap checks the labels CRC; its output decodes to the mapped original or raises ``DecodeError``.

Version-0 streams (no CRCs at all) can only promise no crash, no exception but ``DecodeError``,
and entry points that agree with each other.

``CRACKLE_EXHAUSTIVE_LONG=1`` adds every v1 stream of ../shared/streams/valid up to 4 KiB and every
byte set to 0x00 and 0xFF (a few minutes; see docs/robustness.md).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import crackle_codec as cc
from fuzz import oracles, seeds

LONG = os.environ.get("CRACKLE_EXHAUSTIVE_LONG") == "1"


def _case_ids() -> list[str]:
    ids = [f"{w}-{k}-{e}" for k in seeds.CROPS for w, e, _ in seeds.ENCODINGS]
    ids += [f"{w}-{k}-{e}" for w, k, e, _ in seeds.EXTRA_ENCODINGS]
    ids += ["ours-conn8-int16", "ours-conn8-int16_m2"]
    return ids


def _case(case_id: str) -> tuple[bytes, np.ndarray]:
    if not seeds.DATA_DIR.is_dir():
        pytest.skip("../shared/data not present (fresh clone): no real volumes to crop")
    if case_id.startswith("ref-"):
        pytest.importorskip("crackle", reason="the reference crackle-codec is not installed")
    cases = {cid: (s, a) for cid, s, a in seeds.corruption_cases()}
    return cases[case_id]


def _mutants(stream: bytes, long: bool = False):
    """(description, offset or None, mutant): every truncation, every single-bit flip."""
    for n in range(len(stream)):
        yield f"truncated to {n} bytes", None, stream[:n]
    for i in range(len(stream)):
        for bit in range(8):
            m = bytearray(stream)
            m[i] ^= 1 << bit
            yield f"byte {i} bit {bit} flipped", i, bytes(m)
    if long:
        for i in range(len(stream)):
            for v in (0x00, 0xFF):
                if stream[i] != v:
                    m = bytearray(stream)
                    m[i] = v
                    yield f"byte {i} set to {v:#04x}", i, bytes(m)


def _same_header(h, ref) -> bool:
    return (h.shape, h.dtype, h.order, h.label_format, h.crack_format, h.markov_model_order) == (
        ref.shape, ref.dtype, ref.order, ref.label_format, ref.crack_format, ref.markov_model_order)


def sweep_exact(stream: bytes, expected: np.ndarray, long: bool = False) -> list[str]:
    """All failures of the strict (CRC-protected) rule over every mutant of ``stream``."""
    FAILED = oracles.FAILED
    ref_head = cc.header(stream)
    assert ref_head.has_crcs, "the strict rule needs a version-1 stream with CRCs"
    original = cc.decompress(stream)
    np.testing.assert_array_equal(original, expected)
    ref_labels = cc.labels(stream)
    mapped = expected ^ expected.dtype.type(1)
    ref_count = cc.num_labels(stream)
    sz = expected.shape[2]
    failures = []
    for k, (what, at, m) in enumerate(_mutants(stream, long)):
        try:
            res = oracles.check_stream(m, parallel=2 if k % 7 == 0 else 1, zsel=k)
            out = res.get("decompress", FAILED)
            if out is not FAILED:
                if out.dtype != expected.dtype or out.shape != expected.shape or not np.array_equal(out, expected):
                    raise oracles.Finding("silent corruption: decompress returned other voxels")
                if ref_head.order == "F" and not out.flags.f_contiguous or ref_head.order == "C" and not out.flags.c_contiguous:
                    raise oracles.Finding("decompress returned another memory order")
                if sz > 2:
                    part = oracles.call(cc.decompress, m, z=slice(1, sz - 1))
                    if part is not FAILED and not np.array_equal(part, expected[:, :, 1:sz - 1]):
                        raise oracles.Finding("silent corruption: z-range decode returned other voxels")
            head = res.get("header", FAILED)
            if head is not FAILED and not _same_header(head, ref_head):
                raise oracles.Finding(f"header() silently changed: {head}")
            labels = res.get("labels", FAILED)
            if labels is not FAILED and not np.array_equal(labels, ref_labels):
                raise oracles.Finding(f"labels() answered from a corrupted stream: {labels}")
            count = res.get("num_labels", FAILED)
            if count is not FAILED and count != ref_count:
                raise oracles.Finding(f"num_labels() answered from a corrupted stream: {count}")
            dec2 = res.get("remap_decoded", FAILED)
            if dec2 is not FAILED and not np.array_equal(dec2, mapped):
                raise oracles.Finding("silent corruption: remap output decodes to other voxels")
            if "remap" not in res and labels is not FAILED:
                raise oracles.Finding("remap was not exercised")
        except (oracles.Finding, AssertionError) as e:
            failures.append(f"{what}: {e}")
    return failures


def sweep_safe(stream: bytes, long: bool = False) -> list[str]:
    """Failures of the weak rule (no CRCs): DecodeError or a result, entry points consistent."""
    failures = []
    for k, (what, _, m) in enumerate(_mutants(stream, long)):
        try:
            oracles.check_stream(m, parallel=2 if k % 7 == 0 else 1, zsel=k)
        except oracles.Finding as e:
            failures.append(f"{what}: {e}")
    return failures


def _assert_none(failures: list[str], label: str) -> None:
    if failures:
        kinds: dict[str, int] = {}
        for f in failures:
            key = f.split(": ", 1)[1][:90]
            kinds[key] = kinds.get(key, 0) + 1
        summary = "\n".join(f"  {n} x {k}" for k, n in sorted(kinds.items(), key=lambda t: -t[1]))
        pytest.fail(f"{label}: {len(failures)} bad mutants\n{summary}\nfirst: " + "\n".join(failures[:5]))


@pytest.mark.parametrize("case_id", _case_ids())
def test_every_truncation_and_bit_flip(case_id):
    stream, expected = _case(case_id)
    assert cc.header(stream).has_crcs
    _assert_none(sweep_exact(stream, expected, LONG), case_id)


def _shared_ids() -> list[str]:
    names = list(seeds.SHARED_EXHAUSTIVE)
    if LONG:
        names += [n for n, _ in seeds.shared_streams("valid", 4096) if n not in names]
    return names


@pytest.mark.parametrize("name", _shared_ids())
def test_shared_stream_every_truncation_and_bit_flip(name):
    if not seeds.VALID_DIR.is_dir():
        pytest.skip("../shared/streams/valid not present (fresh clone)")
    stream = (seeds.VALID_DIR / f"{name}.ckl").read_bytes()
    expected = seeds.shared_expected("valid", name)
    head = cc.header(stream)
    if head.has_crcs and head.voxels and name not in ("v055__op_mode_pool",):
        out = cc.decompress(stream)
        if np.array_equal(out, expected.reshape(out.shape)):
            _assert_none(sweep_exact(stream, out, LONG), name)
            return
    # v0, the 0.17 form without CRCs, empty volumes, and streams whose `expected` nobody can
    # match (the reference's signed-width bug): the weak rule.
    _assert_none(sweep_safe(stream, LONG), name)


def test_fuzz_seeds_pass_the_oracles():
    """Every fuzz seed, raw / re-signed / stripped of CRCs, passes the fuzzer's checks."""
    from fuzz.fuzz_decoder import test_one_input

    corpus = seeds.fuzz_seeds()
    if not corpus:
        pytest.skip("../shared not present (fresh clone): no seeds")
    for name, data in corpus:
        for mode in (0, 1, 2, 0x81):
            test_one_input(bytes([mode]) + data)


def test_narrow_slices_sampled_bit_flips():
    """The band-wise decoding of narrow slices (fewer than 32 pixels a row, more than 16 Ki pixels:
    docs/robustness.md, "Memory of a valid decode"): random single-bit flips in the crack codes of
    each narrow case (every flip would be 8 per byte of 2-10 KB streams), under the strict rule,
    and stripped of CRCs (version 0) under the weak one, so that corrupted codes reach the band
    labelling and its cross-band joins."""
    FAILED = oracles.FAILED
    rng = np.random.default_rng(17)
    failures = []
    for cid, stream, expected in seeds.narrow_cases():
        h = cc.header(stream)
        lo = h.header_bytes + h.index_bytes + h.label_bytes + h.markov_model_bytes
        for k in range(30):
            i = int(rng.integers(lo, lo + h.crack_code_bytes))
            m = bytearray(stream)
            m[i] ^= 1 << int(rng.integers(8))
            m = bytes(m)
            try:
                out = oracles.check_stream(m, parallel=2 if k % 5 == 0 else 1, zsel=k).get("decompress", FAILED)
                if out is not FAILED and not np.array_equal(out, expected):
                    raise oracles.Finding("silent corruption: decompress returned other voxels")
                oracles.check_stream(seeds.strip_crcs(m), parallel=2 if k % 5 == 1 else 1, zsel=k)
            except oracles.Finding as e:
                failures.append(f"{cid} byte {i}: {e}")
    _assert_none(failures, "narrow slices")


def test_short_random_mutation_run():
    """A few seconds of the fuzzer's plain mutation loop (the CI fuzz job runs longer)."""
    from fuzz.fuzz_decoder import mutation_loop

    corpus = [bytes([m]) + d for _, d in seeds.fuzz_seeds() for m in (0, 1, 2)]
    if not corpus:
        pytest.skip("../shared not present (fresh clone): no seeds")
    import tempfile
    from pathlib import Path

    findings = mutation_loop(corpus, seconds=float(os.environ.get("CRACKLE_MUTATION_SECONDS", "5")), runs=0,
                             seed=1, artifacts=Path(tempfile.mkdtemp(prefix="crackle-findings-")))
    assert findings == 0, "the mutation loop found bad inputs (saved, see the output above)"


def _capped_mutants() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """Every truncation and single-bit flip of three small streams (FLAT, markov order 2, PINS), with
    the CRCs re-signed after the mutation (so it reaches the parsers; a flip in sx/sy/sz becomes a
    header claiming a huge volume) and as CRC-free version-0 streams."""
    x, y, z = np.meshgrid(np.arange(20), np.arange(16), np.arange(3), indexing="ij")
    a = np.asfortranarray(((x // 3 + y // 5 + z) % 4).astype(np.uint16))
    p = np.zeros((12, 10, 4), np.uint8, order="F")
    p[2:5, 3:7, :] = 3
    p[7, 1, 1:] = 9
    streams = {"flat": cc.compress(a), "m2": cc.compress(a, markov_model_order=2),
               "pins": cc.compress(p, allow_pins=True)}
    fns = ("header", "labels", "contains", "remap", "decompress", "decompress_z", "verify")
    cases = {}
    for name, s in streams.items():
        for k, (what, _, m) in enumerate(_mutants(s)):
            cases[f"{name} resigned {what}"] = (seeds.resign(m), fns)
            cases[f"{name} v0 {what}"] = (seeds.strip_crcs(m), fns)
    return cases


def test_mutants_under_resource_caps():
    """Each mutant through every entry point in a child process whose address space is capped 64 MB
    above its start (RLIMIT_AS) and whose CPU time is capped (RLIMIT_CPU): only DecodeError or an
    answer, never MemoryError, and each call fast (the bound leaves room for a loaded CI machine;
    the measured figures are in docs/robustness.md)."""
    from bombs import SANITIZED, run_capped

    if SANITIZED:
        pytest.skip("ASan reserves terabytes of address space: RLIMIT_AS cannot cap it (the mutants "
                    "themselves run under ASan in the sweeps above)")
    cases = _capped_mutants()
    res = run_capped(cases, cap_mb=64, cpu_seconds=240, measure=False)
    bad, slow = [], []
    worst_t = 0.0
    for name, row in res.items():
        for fn, (r, t, _) in row.items():
            if r not in ("ok", "DecodeError"):
                bad.append(f"{name}: {fn} -> {r}")
            if t > 0.25:
                slow.append(f"{name}: {fn} {t:.3f} s")
            worst_t = max(worst_t, t)
    assert len(res) == len(cases) > 10_000
    assert not bad, f"{len(bad)} mutants raised something else:\n" + "\n".join(bad[:10])
    assert not slow, f"{len(slow)} slow calls:\n" + "\n".join(slow[:10])
    print(f"{len(cases)} mutants x {len(next(iter(res.values())))} entry points: "
          f"slowest call {worst_t * 1e3:.1f} ms")
