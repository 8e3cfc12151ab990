"""Malformed input: the codec must raise DecodeError (and nothing else) and never return wrong data.

* Every truncation of a few small real streams (ours, the reference's, version 0) is rejected.
* A seeded sample of single-bit flips: a version-1 stream either raises DecodeError or decodes to
  exactly the original (CRCs); a version-0 stream (no CRCs) may decode to something else, but may
  only ever raise DecodeError.
* Random byte strings, and random bodies behind a valid-looking header (correct CRC8).
* Hand-made structural faults (FORMAT 10.12) with all CRCs recomputed, so that only the decoder's
  structural checks can catch them, in version 1 and version 0.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

import crackle_codec
from crackle_codec import DecodeError
from conftest import VALID_DIR, read_shared_stream

try:
    import crackle  # reference implementation
except ImportError:  # pragma: no cover
    crackle = None


# ------------------------------------------------------------------------- CRCs (FORMAT 0)

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_T32 = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ _T32[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def crc8(data: bytes) -> int:
    c = 0xFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0xE7 if c & 1 else c >> 1
    return c


def test_crc_helpers_match_spec():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc8(b"123456789") == 0x51


# --------------------------------------------------------------------------------- streams

def _volume(shape=(20, 18, 5), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = np.zeros(shape, dtype=np.uint32)
    for v in range(1, 9):
        lo = [int(rng.integers(0, n - 1)) for n in shape]
        hi = [int(rng.integers(l + 1, n + 1)) for l, n in zip(lo, shape)]
        arr[tuple(slice(l, h) for l, h in zip(lo, hi))] = v * 1000
    arr[rng.integers(0, shape[0], 6), rng.integers(0, shape[1], 6), :] = 77
    return arr


VOLUME = _volume()

STREAM_SOURCES = ["ours_flat", "ours_pins", "ours_m3", "ours_pins_m2", "ref_flat", "ref_pins", "ref_m3",
                  "v016__cropC_u32_m2", "v016__tall_pins", "v016__sz1", "v0173__v1_nocrc"]


def make_stream(name: str) -> tuple[bytes, np.ndarray]:
    arr = VOLUME
    if name == "ours_flat":
        return crackle_codec.compress(arr), arr
    if name == "ours_pins":
        s = crackle_codec.compress(arr, allow_pins=True)
        assert crackle_codec.header(s).label_format == "pins"
        return s, arr
    if name == "ours_m3":
        return crackle_codec.compress(arr, markov_model_order=3), arr
    if name == "ours_pins_m2":
        return crackle_codec.compress(arr, allow_pins=True, markov_model_order=2), arr
    if name.startswith("ref_"):
        if crackle is None:
            pytest.skip("reference package crackle-codec not installed")
        kwargs = {"ref_flat": {}, "ref_pins": {"allow_pins": 1}, "ref_m3": {"markov_model_order": 3}}[name]
        return crackle.compress(arr, **kwargs), arr
    data, expected = read_shared_stream("valid", name)
    return data, expected.reshape(expected.shape + (1,) * (3 - expected.ndim))


def has_crcs(data: bytes) -> bool:
    return crackle_codec.header(data).has_crcs


class Unexpected:
    """An exception other than DecodeError raised by the codec (always a test failure)."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def __repr__(self):
        return f"{type(self.exc).__name__}({self.exc})"


def _swap_mapping(data) -> dict:
    """Swap 1000 and 1001, or 1 and 2 where the stream's dtype cannot hold 1000 (remap refuses
    keys outside the dtype); the header is read here only to choose, its errors surface in remap."""
    try:
        small = crackle_codec.header(data).dtype.itemsize == 1
    except DecodeError:
        small = True
    return {1: 2, 2: 1} if small else {1000: 1001, 1001: 1000}


def call_all(data: bytes) -> dict:
    """Call every reading function on ``data``; return {name: result, DecodeError or Unexpected}.

    Use ``assert_only_decode_errors`` on the result: only DecodeError may ever be raised.
    """
    results = {}
    calls = {
        "header": lambda: crackle_codec.header(data),
        "labels": lambda: crackle_codec.labels(data),
        "num_labels": lambda: crackle_codec.num_labels(data),
        "contains": lambda: crackle_codec.contains(data, 1000),
        "verify": lambda: crackle_codec.verify(data),
        "decompress": lambda: crackle_codec.decompress(data),
        "decompress_z": lambda: crackle_codec.decompress(data, z=slice(1, 3)),
        "remap": lambda: crackle_codec.remap(data, _swap_mapping(data), preserve_missing_labels=True),
    }
    for key, fn in calls.items():
        try:
            results[key] = fn()
        except DecodeError as exc:
            results[key] = exc
        except Exception as exc:  # noqa: BLE001 - reported by assert_only_decode_errors
            results[key] = Unexpected(exc)
    return results


def assert_only_decode_errors(res: dict, where: str) -> None:
    bad = {k: v for k, v in res.items() if isinstance(v, Unexpected)}
    assert not bad, f"{where}: exceptions other than DecodeError: {bad}"


# ------------------------------------------------------------------------------ truncation

@pytest.mark.parametrize("source", STREAM_SOURCES)
def test_every_truncation_rejected(source):
    data, _ = make_stream(source)
    for n in range(len(data)):
        cut = data[:n]
        for fn in (crackle_codec.decompress, crackle_codec.header, crackle_codec.labels, crackle_codec.verify,
                   crackle_codec.num_labels):
            try:
                fn(cut)
            except DecodeError:
                continue
            pytest.fail(f"{source}: {fn.__name__} accepted the stream truncated to {n} of {len(data)} bytes")


@pytest.mark.parametrize("source", ["ours_flat", "ours_pins", "v016__tall_pins"])
def test_extra_bytes_rejected(source):
    data, _ = make_stream(source)
    for extra in (b"\x00", b"\x00" * 4, b"junk-junk"):
        for fn in (crackle_codec.decompress, crackle_codec.verify, crackle_codec.header):
            with pytest.raises(DecodeError):
                fn(data + extra)
    # one byte cut out of the middle
    mid = len(data) // 2
    with pytest.raises(DecodeError):
        crackle_codec.decompress(data[:mid] + data[mid + 1:])


# ------------------------------------------------------------------------------- bit flips

N_FLIPS = 500


@pytest.mark.parametrize("source", STREAM_SOURCES)
def test_single_bit_flips(source):
    data, original = make_stream(source)
    crcs = has_crcs(data)
    rng = np.random.default_rng(len(data) * 7919 + len(source))
    positions = rng.integers(0, len(data) * 8, size=min(N_FLIPS, len(data) * 8))
    # always include the header and the first bytes of each section
    positions = np.unique(np.concatenate([positions, np.arange(0, min(len(data), 40) * 8, 3)]))
    n_rejected = 0
    unexpected = []
    for bit in positions.tolist():
        bad = bytearray(data)
        bad[bit // 8] ^= 1 << (bit % 8)
        bad = bytes(bad)
        res = call_all(bad)
        where = f"{source}: flip of bit {bit % 8} of byte {bit // 8}"
        unexpected += [f"{where}: {k} raised {v!r}" for k, v in res.items() if isinstance(v, Unexpected)]
        out = res["decompress"]
        if isinstance(out, DecodeError):
            n_rejected += 1
        if not crcs:
            assert isinstance(out, (np.ndarray, DecodeError, Unexpected))
            continue
        if isinstance(out, Unexpected):
            continue
        if isinstance(out, np.ndarray):
            assert out.shape == original.shape, where
            assert np.array_equal(out, original), f"{where} decoded without error to different voxels"
            assert out.dtype == original.dtype, where
        if not isinstance(res["verify"], DecodeError):
            assert isinstance(out, np.ndarray), f"{where}: verify passed but decompress failed"
        z = res["decompress_z"]
        if isinstance(z, np.ndarray):
            assert np.array_equal(z, original[:, :, 1:3]), f"{where}: z-range decoded to different voxels"
    assert not unexpected, f"{len(unexpected)} flips raised exceptions other than DecodeError, e.g.:\n" + "\n".join(unexpected[:5])
    assert n_rejected > len(positions) // 4, "implausibly few flips rejected"


# --------------------------------------------------------------------------- random bytes

def test_random_byte_strings():
    rng = np.random.default_rng(12345)
    for i in range(400):
        n = int(rng.integers(0, 300))
        data = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
        if i % 2:
            data = b"crkl" + bytes([i % 3]) + data
        res = call_all(data)
        assert_only_decode_errors(res, f"random bytes {data[:40]!r}")
        for key in ("header", "labels", "verify", "decompress"):
            assert isinstance(res[key], DecodeError), f"{key} accepted random bytes {data[:40]!r}..."


def make_header(version: int, ff: int, sx: int, sy: int, sz: int, nlb: int, grid: int = 31) -> bytes:
    body = struct.pack("<HIIIB", ff, sx, sy, sz, grid) + (struct.pack("<I", nlb) if version == 0 else struct.pack("<Q", nlb))
    head = b"crkl" + bytes([version]) + body
    if version == 1:
        head += bytes([crc8(body)])
    return head


def test_random_bodies_after_valid_header():
    rng = np.random.default_rng(777)
    for i in range(400):
        version = int(rng.integers(0, 2))
        dd, ss = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        ff = dd | (ss << 2) | (int(rng.integers(0, 2)) << 4) | (int(rng.choice([0, 2])) << 5) \
            | (int(rng.integers(0, 2)) << 7) | (int(rng.integers(0, 2)) << 8) | (int(rng.choice([0, 0, 1, 3])) << 9)
        sx, sy, sz = (int(rng.integers(1, 40)) for _ in range(3))
        body = rng.integers(0, 256, size=int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        nlb = int(rng.integers(0, len(body) + 2))
        data = make_header(version, ff, sx, sy, sz, nlb) + body
        res = call_all(data)
        assert_only_decode_errors(res, f"random body after header {data[:29].hex()}")
        if version == 1:
            for key in ("labels", "verify", "decompress"):
                assert isinstance(res[key], DecodeError), f"v1 random body accepted by {key}: {data[:48].hex()}"
        else:
            # no CRCs: random bodies are rejected in practice, but only DecodeError may be raised
            out = res["decompress"]
            assert isinstance(out, DecodeError) or out.shape == (sx, sy, sz)


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("dims", [(2**32 - 1, 2**32 - 1, 2**32 - 1), (2**32 - 1, 2**32 - 1, 1), (2**16, 2**16, 1),
                                  (1, 1, 2**32 - 1), (2**31, 3, 2**20)], ids=str)
def test_huge_dimensions_rejected_without_allocating(version, dims):
    sx, sy, sz = dims
    for nlb in (0, 30, 2**32 - 1) if version == 0 else (0, 30, 2**40, 2**64 - 1):
        data = make_header(version, 2, sx, sy, sz, nlb) + bytes(64)
        res = call_all(data)
        assert_only_decode_errors(res, f"huge dims {dims} nlb={nlb}")  # e.g. MemoryError, OverflowError
        for key in ("labels", "verify", "decompress", "decompress_z"):
            assert isinstance(res[key], DecodeError), key


def test_empty_volume_with_body_rejected():
    for version in (0, 1):
        data = make_header(version, 0, 0, 5, 5, 0)
        crackle_codec.decompress(data)  # valid: header alone
        for extra in (b"\x00", bytes(20)):
            with pytest.raises(DecodeError):
                crackle_codec.decompress(data + extra)


# ------------------------------------------------------------------- hand-made faults

# FORMAT.md 12.1 (real reference output): 4x4x1 uint8, labels [1,2,3], one chain.
SPEC_12_1 = bytes.fromhex(
    "63726b6c01" "0000" "04000000" "04000000" "01000000" "1f" "0f00000000000000" "55"
    "0c000000" "d21901c5"
    "0300000000000000" "010203" "03" "000102"
    "04000000" "01000102" "9204ce02"
    "558e9a90" "663c7067"
)
SPEC_12_1_IMAGE = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 2], [3, 3, 3, 2]], dtype=np.uint8).T[:, :, None]


class Parts:
    """A stream split into its sections (independent of the codec); ``build`` re-signs every CRC."""

    def __init__(self, data: bytes):
        self.version = data[4]
        assert self.version == 1
        self.ff, self.sx, self.sy, self.sz, self.grid = struct.unpack("<HIIIB", data[5:20])
        nlb = struct.unpack("<Q", data[20:28])[0]
        pos = 29
        self.index = list(struct.unpack(f"<{self.sz}I", data[pos:pos + 4 * self.sz]))
        pos += 4 * self.sz + 4
        self.labels = data[pos:pos + nlb]
        pos += nlb
        order = (self.ff >> 9) & 15
        mb = (5 * 4**order + 7) // 8 if order else 0
        self.model = data[pos:pos + mb]
        pos += mb
        self.codes = []
        for n in self.index:
            self.codes.append(data[pos:pos + n])
            pos += n
        self.slice_crcs = data[len(data) - 4 * self.sz:]
        assert pos + 4 * (self.sz + 1) == len(data)

    def build(self, version: int = 1, slice_crcs: bytes | None = None, index: list | None = None) -> bytes:
        index = [len(c) for c in self.codes] if index is None else index
        head = make_header(version, self.ff, self.sx, self.sy, self.sz, len(self.labels), self.grid)
        idx = struct.pack(f"<{len(index)}I", *index)
        body = idx + (struct.pack("<I", crc32c(idx)) if version == 1 else b"")
        body += self.labels + self.model + b"".join(self.codes)
        if version == 1:
            body += struct.pack("<I", crc32c(self.labels))
            body += self.slice_crcs if slice_crcs is None else slice_crcs
        return head + body


def test_parts_builder_reproduces_stream():
    p = Parts(SPEC_12_1)
    assert p.build() == SPEC_12_1
    np.testing.assert_array_equal(crackle_codec.decompress(SPEC_12_1), SPEC_12_1_IMAGE)
    # the v0 form of the same stream decodes too (proves the builder's v0 path is valid)
    np.testing.assert_array_equal(crackle_codec.decompress(p.build(version=0)), SPEC_12_1_IMAGE)


def _assert_rejected(parts: Parts, what: str):
    for version in (1, 0):
        data = parts.build(version=version)
        res = call_all(data)
        problems = [f"{key} returned {res[key]!r:.80}" for key in ("verify", "decompress")
                    if not isinstance(res[key], DecodeError)]
        problems += [f"{k} raised {v!r}" for k, v in res.items() if isinstance(v, Unexpected)]
        assert not problems, f"{what} (v{version}): " + "; ".join(problems)


FLAT_FAULTS = {
    # labels section: N(8) unique[3] cc_per_grid[1] keys[3]
    "key >= N": lambda p: setattr(p, "labels", p.labels[:-1] + b"\x03"),
    "key 255": lambda p: setattr(p, "labels", p.labels[:-3] + b"\xff\x00\x01"),
    "N too large": lambda p: setattr(p, "labels", struct.pack("<Q", 4) + p.labels[8:]),
    "N huge": lambda p: setattr(p, "labels", struct.pack("<Q", 2**62) + p.labels[8:]),
    "N zero": lambda p: setattr(p, "labels", struct.pack("<Q", 0) + p.labels[8:]),
    "cc_per_grid 4": lambda p: setattr(p, "labels", p.labels[:11] + b"\x04" + p.labels[12:] + b"\x00"),
    "cc_per_grid 2": lambda p: setattr(p, "labels", p.labels[:11] + b"\x02" + p.labels[12:14]),
    "cc_per_grid 0": lambda p: setattr(p, "labels", p.labels[:11] + b"\x00"),
    "cc_per_grid 17 > sx*sy": lambda p: setattr(p, "labels", p.labels[:11] + b"\x11" + p.labels[12:] + bytes(14)),
    "labels section short": lambda p: setattr(p, "labels", p.labels[:-1]),
    "labels section long": lambda p: setattr(p, "labels", p.labels + b"\x00"),
    # crack code: B(4) BOC[num_rows dy count dx] moves
    "B too large": lambda p: p.codes.__setitem__(0, struct.pack("<I", 1000) + p.codes[0][4:]),
    "B just past end": lambda p: p.codes.__setitem__(0, struct.pack("<I", 9) + p.codes[0][4:]),
    "B zero": lambda p: p.codes.__setitem__(0, struct.pack("<I", 0) + p.codes[0][4:]),
    "BOC num_rows 2": lambda p: p.codes.__setitem__(0, p.codes[0][:4] + b"\x02" + p.codes[0][5:]),
    "BOC num_rows 255": lambda p: p.codes.__setitem__(0, p.codes[0][:4] + b"\xff" + p.codes[0][5:]),
    "BOC dy off grid": lambda p: p.codes.__setitem__(0, p.codes[0][:5] + b"\x05" + p.codes[0][6:]),
    "BOC dx off grid": lambda p: p.codes.__setitem__(0, p.codes[0][:7] + b"\x05" + p.codes[0][8:]),
    "BOC dx 255": lambda p: p.codes.__setitem__(0, p.codes[0][:7] + b"\xff" + p.codes[0][8:]),
    "BOC count 200": lambda p: p.codes.__setitem__(0, p.codes[0][:6] + b"\xc8" + p.codes[0][7:]),
    "moves all UP (off grid)": lambda p: p.codes.__setitem__(0, p.codes[0][:8] + b"\x00\x00\x00\x00"),
    "moves all DOWN (off grid)": lambda p: p.codes.__setitem__(0, p.codes[0][:8] + b"\x02\x00\x00\x00"),
    "moves missing": lambda p: p.codes.__setitem__(0, p.codes[0][:8]),
    "moves cut short": lambda p: p.codes.__setitem__(0, p.codes[0][:9]),
    "moves R then left forever": lambda p: p.codes.__setitem__(0, p.codes[0][:8] + b"\x01\x00\x00\x00"),
    # header
    "label format 1": lambda p: setattr(p, "ff", p.ff | (1 << 5)),
    "label format 3": lambda p: setattr(p, "ff", p.ff | (3 << 5)),
    "grid size 1": lambda p: setattr(p, "grid", 0),
    "grid size 2": lambda p: setattr(p, "grid", 1),
    "sz mismatch": lambda p: setattr(p, "sz", 2),
    "sx too small for the chain": lambda p: setattr(p, "sx", 3),
    "markov order 1, model entries 31": lambda p: (setattr(p, "ff", p.ff | (1 << 9)), setattr(p, "model", b"\xff\xff\x0f")),
    "markov order 2, model missing": lambda p: setattr(p, "ff", p.ff | (2 << 9)),
}


@pytest.mark.parametrize("fault", list(FLAT_FAULTS))
def test_structural_faults_flat(fault):
    p = Parts(SPEC_12_1)
    FLAT_FAULTS[fault](p)
    _assert_rejected(p, fault)


def _pins_example() -> bytes:
    """FORMAT 12.3: the reference's PINS stream of a 3x3x3 volume (checked against the spec bytes)."""
    if crackle is None:
        pytest.skip("reference package crackle-codec not installed")
    a = np.zeros((3, 3, 3), dtype=np.uint8)
    a[1, 1, :] = 5
    a[0, 0, 1] = 7
    a[2, 2, 0] = 7
    a[2, 2, 2] = 7
    data = crackle.compress(a, allow_pins=1)
    assert Parts(data).labels == bytes.fromhex("07" "0200000000000000" "0005" "030303" "00" "01060200" "01040200")
    np.testing.assert_array_equal(crackle_codec.decompress(data), a)
    return data


# pins labels: bg(1) N(8) unique[2] cc_per_grid[3] fmt(1) | rec0: np=1 idx=6 depth=2 ncc=0 | rec1: np=1 idx=4 depth=2 ncc=0
PINS_FAULTS = {
    "pin depth past last slice": lambda l: l[:17] + b"\x03" + l[18:],
    "pin depth 255": lambda l: l[:17] + b"\xff" + l[18:],
    "pin index beyond volume": lambda l: l[:16] + b"\x1b" + l[17:],
    "pin index 255": lambda l: l[:20] + b"\xff" + l[21:],
    "pin deep from last slice": lambda l: l[:16] + b"\x18" + l[17:],
    "cc id >= T": lambda l: l[:18] + b"\x01\x09" + l[19:],
    "cc id 255": lambda l: l[:18] + b"\x01\xff" + l[19:],
    "num_pins 200": lambda l: l[:15] + b"\xc8" + l[16:],
    "num_cc 200": lambda l: l[:18] + b"\xc8" + l[19:],
    "fmt reserved bits": lambda l: l[:14] + b"\xc0" + l[15:],
    "fmt widths 8": lambda l: l[:14] + b"\x3f" + l[15:],
    "N 3": lambda l: l[:1] + struct.pack("<Q", 3) + l[9:],
    "N huge": lambda l: l[:1] + struct.pack("<Q", 2**61) + l[9:],
    "record missing": lambda l: l[:19],
    "extra record bytes": lambda l: l + b"\x00",
    "cc_per_grid 0": lambda l: l[:11] + b"\x00" + l[12:],
    "cc_per_grid 10 > sx*sy": lambda l: l[:11] + b"\x0a" + l[12:],
}


@pytest.mark.parametrize("fault", list(PINS_FAULTS))
def test_structural_faults_pins(fault):
    p = Parts(_pins_example())
    p.labels = PINS_FAULTS[fault](p.labels)
    _assert_rejected(p, fault)


def test_pins_fault_variants_are_really_changed():
    """Guard against typos in the fault table: every variant differs from the valid section."""
    labels = Parts(_pins_example()).labels
    for name, fn in PINS_FAULTS.items():
        assert fn(labels) != labels, name


def test_flat_fault_variants_are_really_changed():
    ref = Parts(SPEC_12_1).build()
    for name, fn in FLAT_FAULTS.items():
        p = Parts(SPEC_12_1)
        fn(p)
        assert p.build() != ref, name


def test_index_crc_and_slice_crc_checked():
    p = Parts(SPEC_12_1)
    good = p.build()
    bad_slice = p.build(slice_crcs=b"\x00\x00\x00\x00")
    with pytest.raises(DecodeError):
        crackle_codec.decompress(bad_slice)
    with pytest.raises(DecodeError):
        crackle_codec.verify(bad_slice)
    bad_index = bytearray(good)
    bad_index[33] ^= 0xFF  # index CRC
    with pytest.raises(DecodeError):
        crackle_codec.decompress(bytes(bad_index))


def test_v0_surgery_on_real_stream():
    """Version 0 has no CRCs: out-of-range keys in a real v0 stream must still be caught."""
    if not VALID_DIR.is_dir():
        pytest.skip("../shared/streams/valid not present (fresh clone)")
    data, _ = read_shared_stream("valid", "v016__cropC_u32")
    h = crackle_codec.header(data)
    assert h.version == 0 and h.label_format == "flat"
    lab0 = h.header_bytes + h.index_bytes
    n = struct.unpack("<Q", data[lab0:lab0 + 8])[0]
    keys_end = lab0 + h.label_bytes
    kw = 1 if n <= 256 else 2
    bad = bytearray(data)
    bad[keys_end - kw:keys_end] = (n + 3).to_bytes(kw, "little") if n + 3 < 256**kw else b"\xff" * kw
    with pytest.raises(DecodeError):
        crackle_codec.decompress(bytes(bad))
    with pytest.raises(DecodeError):
        crackle_codec.verify(bytes(bad))
