"""Seed streams and stream surgery for the hardening tests and the fuzz harness.

* ``shared_streams``: the real reference streams in ``../shared/streams/`` (read in place, never
  copied). ``SHARED`` is ``None``-safe: everything returns empty lists when the folder is absent.
* ``corruption_cases``: small real streams for the exhaustive corruption tests, written at run time
  from crops of the real volumes in ``../shared/data`` by crackle_codec and by the reference
  ``crackle`` (safe on valid input), FLAT / PINS / markov.
* ``Sections``: split a stream into its sections and rebuild it with correct CRCs, so that tests and
  the fuzzer can plant a hostile value behind valid checksums.

Used by tests/test_corruption.py, tests/test_hostile.py and tests/fuzz/fuzz_decoder.py.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from pathlib import Path
from typing import Iterable

import numpy as np

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATA_DIR = SHARED / "data"
VALID_DIR = SHARED / "streams" / "valid"
REF_BUGS_DIR = SHARED / "streams" / "reference-bugs"


# ------------------------------------------------------------------------------------ CRCs
# Written here from FORMAT.md section 0, independently of the C++ core under test.

def crc8(data: bytes) -> int:
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xE7 if crc & 1 else crc >> 1
    return crc


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_T32 = _crc32c_table()


def crc32c(data: bytes) -> int:
    try:  # the extension's CRC is fast; the pure-Python one is the independent fallback
        from crackle_codec import _crackle

        return int(_crackle.crc32c(bytes(data)))
    except Exception:  # pragma: no cover
        crc = 0xFFFFFFFF
        for b in data:
            crc = (crc >> 8) ^ _T32[(crc ^ b) & 0xFF]
        return crc ^ 0xFFFFFFFF


def crc32c_py(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _T32[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


# ------------------------------------------------------------------------- stream sections

def markov_model_bytes(order: int) -> int:
    return 0 if order == 0 else (5 * 4 ** order + 7) // 8


@dataclasses.dataclass
class Sections:
    """A stream cut into its sections (FORMAT.md section 1). ``build`` puts it back together.

    Header fields are plain attributes; change any of them (or the byte sections) and call
    ``build(fix_crcs=True)`` to get a stream whose CRC8, index CRC and labels CRC are correct
    for the new content (the slice CRCs are kept as they were: they cover decoded components).
    """

    version: int
    format_field: int
    sx: int
    sy: int
    sz: int
    grid_log2: int
    num_label_bytes: int
    index: list[int]
    labels: bytes
    model: bytes
    codes: bytes
    has_crcs: bool
    index_crc: int = 0
    labels_crc: int = 0
    slice_crcs: list[int] = dataclasses.field(default_factory=list)
    crc8: int = 0

    @classmethod
    def parse(cls, stream: bytes) -> "Sections":
        """Split a *valid* stream (raises AssertionError on anything else)."""
        assert stream[:4] == b"crkl", "not a Crackle stream"
        version = stream[4]
        ff, sx, sy, sz, g = struct.unpack_from("<HIIIB", stream, 5)
        H = 24 if version == 0 else 29
        nlb = struct.unpack_from("<I" if version == 0 else "<Q", stream, 20)[0]
        c8 = stream[28] if version == 1 else 0
        order = (ff >> 9) & 0xF
        if sx * sy * sz == 0:
            return cls(version, ff, sx, sy, sz, g, nlb, [], b"", b"", b"", False, crc8=c8)
        index = list(struct.unpack_from(f"<{sz}I", stream, H))
        mb = markov_model_bytes(order)
        body = H + 4 * sz + nlb + mb + sum(index)
        has_crcs = version == 1 and len(stream) == body + 4 + 4 * (sz + 1)
        assert has_crcs or len(stream) == body, "section lengths do not add up"
        at = H + 4 * sz
        index_crc = 0
        if has_crcs:
            index_crc = struct.unpack_from("<I", stream, at)[0]
            at += 4
        labels = stream[at:at + nlb]
        at += nlb
        model = stream[at:at + mb]
        at += mb
        codes = stream[at:at + sum(index)]
        at += sum(index)
        labels_crc, slice_crcs = 0, []
        if has_crcs:
            labels_crc = struct.unpack_from("<I", stream, at)[0]
            slice_crcs = list(struct.unpack_from(f"<{sz}I", stream, at + 4))
        return cls(version, ff, sx, sy, sz, g, nlb, index, labels, model, codes, has_crcs,
                   index_crc, labels_crc, slice_crcs, c8)

    @property
    def header_bytes(self) -> int:
        return 24 if self.version == 0 else 29

    def header(self, fix_crc: bool = True) -> bytes:
        if self.version == 0:
            return b"crkl" + struct.pack("<BHIIIBI", 0, self.format_field, self.sx, self.sy, self.sz,
                                         self.grid_log2, self.num_label_bytes & 0xFFFFFFFF)
        body = struct.pack("<HIIIBQ", self.format_field, self.sx, self.sy, self.sz, self.grid_log2,
                           self.num_label_bytes)
        c8 = crc8(body) if fix_crc else self.crc8
        return b"crkl" + bytes([self.version]) + body + bytes([c8])

    def build(self, fix_crcs: bool = True, trailer: bool | None = None) -> bytes:
        """The stream. ``trailer``: write the index CRC and the CRC trailer (default: as parsed)."""
        crcs = self.has_crcs if trailer is None else trailer
        index = struct.pack(f"<{len(self.index)}I", *self.index)
        parts = [self.header(fix_crcs), index]
        if crcs:
            parts.append(struct.pack("<I", crc32c(index) if fix_crcs else self.index_crc))
        parts += [self.labels, self.model, self.codes]
        if crcs:
            parts.append(struct.pack("<I", crc32c(self.labels) if fix_crcs else self.labels_crc))
            slice_crcs = list(self.slice_crcs) + [0] * max(0, len(self.index) - len(self.slice_crcs))
            parts.append(struct.pack(f"<{len(self.index)}I", *slice_crcs[:len(self.index)]))
        return b"".join(parts)

    def fit_lengths(self) -> "Sections":
        """Make ``num_label_bytes`` agree with the labels bytes (after editing them)."""
        self.num_label_bytes = len(self.labels)
        return self


def resign(stream: bytes) -> bytes:
    """Recompute the CRC8, index CRC and labels CRC of a v1 stream from its declared layout.

    Used by the fuzzer so that mutations get past the checksums. Returns the input unchanged when
    the layout cannot be read (that input is still a valid test case as it is).
    """
    try:
        if len(stream) < 29 or stream[:4] != b"crkl" or stream[4] != 1:
            return stream
        b = bytearray(stream)
        b[28] = crc8(bytes(b[5:28]))
        ff, sx, sy, sz = struct.unpack_from("<HIII", b, 5)
        nlb = struct.unpack_from("<Q", b, 20)[0]
        if sx * sy * sz == 0 or 29 + 4 * sz + 4 > len(b):
            return bytes(b)
        index = bytes(b[29:29 + 4 * sz])
        b[29 + 4 * sz:29 + 4 * sz + 4] = struct.pack("<I", crc32c(index))
        lab0 = 29 + 4 * sz + 4
        trailer = len(b) - 4 * (sz + 1)
        if lab0 + nlb <= trailer:
            b[trailer:trailer + 4] = struct.pack("<I", crc32c(bytes(b[lab0:lab0 + nlb])))
        return bytes(b)
    except Exception:  # pragma: no cover - surgery on garbage must never stop a fuzz run
        return stream


def strip_crcs(stream: bytes) -> bytes:
    """A v1 stream turned into a version-0 stream (24-byte header, no CRC fields at all).

    Without any checksum every structural check of the decoder is exercised by a mutation.
    Returns the input unchanged when it is not a v1 stream with a readable layout.
    """
    try:
        if len(stream) < 29 or stream[:4] != b"crkl" or stream[4] != 1:
            return stream
        ff, sx, sy, sz, g = struct.unpack_from("<HIIIB", stream, 5)
        nlb = struct.unpack_from("<Q", stream, 20)[0]
        head = b"crkl" + struct.pack("<BHIIIBI", 0, ff, sx, sy, sz, g, nlb & 0xFFFFFFFF)
        if sx * sy * sz == 0:
            return head + stream[29:]
        end_index = 29 + 4 * sz
        trailer = 4 + 4 * sz
        body = stream[end_index + 4:]
        if len(body) >= trailer:
            body = body[:len(body) - trailer]
        return head + stream[29:end_index] + body
    except Exception:  # pragma: no cover
        return stream


# ----------------------------------------------------------------------------- real streams

def shared_streams(sub: str = "valid", max_bytes: int | None = None) -> list[tuple[str, bytes]]:
    """(name, stream) for every ``.ckl`` in ../shared/streams/<sub>, smallest first; [] if absent."""
    folder = SHARED / "streams" / sub
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.ckl")):
        data = path.read_bytes()
        if max_bytes is None or len(data) <= max_bytes:
            out.append((path.stem, data))
    out.sort(key=lambda t: (len(t[1]), t[0]))
    return out


def shared_expected(sub: str, name: str) -> np.ndarray:
    with np.load(SHARED / "streams" / sub / f"{name}.npz") as npz:
        return npz["expected"]


# Small crops of real volumes with many labels per voxel (found by scanning random offsets).
CROPS = {
    "conn16": ("connectomics_512", (59, 428, 41), (16, 16, 4)),
    "flyem16": ("flyem_medulla_ws", (130, 5, 158), (16, 16, 4)),
    "conn8": ("connectomics_512", (256, 256, 256), (8, 8, 4)),
    "ovule12": ("ovule_cells_100", (44, 44, 48), (12, 12, 4)),
}

# (writer, name, kwargs). "ours" = crackle_codec.compress, "ref" = reference crackle.compress.
ENCODINGS = [
    ("ours", "flat", {}),
    ("ours", "pins", {"allow_pins": True}),
    ("ours", "flat_m2", {"markov_model_order": 2}),
    ("ours", "pins_m3", {"allow_pins": True, "markov_model_order": 3}),
    ("ref", "flat", {}),
    ("ref", "pins", {"allow_pins": 1}),
    ("ref", "pins_opt", {"allow_pins": 2}),
    ("ref", "flat_m3", {"markov_model_order": 3}),
]
# One larger markov model per writer, on one crop (the order-5 model alone is 640 bytes).
EXTRA_ENCODINGS = [
    ("ours", "conn8", "flat_m5", {"markov_model_order": 5}),
    ("ref", "conn8", "pins_m5", {"allow_pins": 1, "markov_model_order": 5}),
]


@functools.lru_cache(maxsize=None)
def _volume(name: str) -> np.ndarray:
    with np.load(DATA_DIR / f"{name}.npz") as npz:
        return npz["labels"]


def release_volumes() -> None:
    """Drop the cached full volumes (hundreds of MB) once the small crops have been made."""
    _volume.cache_clear()


def crop(key: str) -> np.ndarray:
    name, off, shape = CROPS[key]
    vol = _volume(name)
    sl = tuple(slice(o, o + s) for o, s in zip(off, shape))
    return np.asfortranarray(vol[sl])


def signed_crop() -> np.ndarray:
    """An int16 crop with negative labels (only crackle_codec writes signed streams)."""
    a = crop("conn8").astype(np.int64)
    _, inv = np.unique(a, return_inverse=True)
    return np.asfortranarray((inv.reshape(a.shape) * 300 - 500).astype(np.int16))


def _encode(writer: str, arr: np.ndarray, kwargs: dict) -> bytes | None:
    if writer == "ours":
        import crackle_codec

        return crackle_codec.compress(arr, **kwargs)
    try:
        import crackle
    except ImportError:
        return None
    return bytes(crackle.compress(arr, **kwargs))


@functools.lru_cache(maxsize=1)
def corruption_cases() -> tuple[tuple[str, bytes, np.ndarray], ...]:
    """(id, stream, expected volume) for the exhaustive corruption tests; () without ../shared/data.

    Reference-written cases are left out when the reference package is not installed.
    """
    if not DATA_DIR.is_dir():
        return ()
    cases = []
    for key in CROPS:
        arr = crop(key)
        for writer, enc, kwargs in ENCODINGS:
            stream = _encode(writer, arr, kwargs)
            if stream is not None:
                cases.append((f"{writer}-{key}-{enc}", stream, arr))
    for writer, key, enc, kwargs in EXTRA_ENCODINGS:
        arr = crop(key)
        stream = _encode(writer, arr, kwargs)
        if stream is not None:
            cases.append((f"{writer}-{key}-{enc}", stream, arr))
    s = signed_crop()
    import crackle_codec

    cases.append(("ours-conn8-int16", crackle_codec.compress(s), s))
    cases.append(("ours-conn8-int16_m2", crackle_codec.compress(s, markov_model_order=2), s))
    return tuple(cases)


# Small shared streams covered exhaustively as well (v1 with CRCs: exact-or-DecodeError;
# v0 and the 0.17 form: DecodeError-or-any-result, never another exception).
SHARED_EXHAUSTIVE = [
    "v055__tall_pins", "v055__2d", "v055__sz1", "v055__one_col", "v055__i16_single_neg",
    "v016__tall_pins", "v072__2d", "v016__one_col",
]


def narrow_volume(sx: int, sy: int) -> np.ndarray:
    """A slice narrow and tall enough for the decoder's band-wise path (sx < 32, more than 16 Ki
    pixels): two columns joined only at the bottom (a component whose parts meet many bands below
    its first row), short blocks between them, and a bar across every band boundary."""
    a = np.zeros((sx, sy, 2), np.uint16)
    y = np.arange(sy)
    a[:, :, 0] = (y // 37 % 3 + 1)[None, :]
    a[0, :, 0] = 7
    a[-1, :, 0] = 7
    a[:, -1, 0] = 7
    band = max(1, (1 << 14) // sx)
    a[:, band - 1 :: band, 0] = 9
    a[:, :, 1] = ((np.arange(sx)[:, None] // 3 + y[None, :] // 5) % 4).astype(np.uint16)
    return np.asfortranarray(a)


NARROW_SHAPES = ((31, 600), (16, 1100), (3, 5500))


@functools.lru_cache(maxsize=1)
def narrow_cases() -> tuple[tuple[str, bytes, np.ndarray], ...]:
    """(id, stream, volume) for slices that take the decoder's narrow-slice path (FLAT, markov,
    PINS; written by crackle_codec); no shared data needed."""
    import crackle_codec

    cases = []
    for sx, sy in NARROW_SHAPES:
        arr = narrow_volume(sx, sy)
        for enc, kwargs in (("flat", {}), ("m2", {"markov_model_order": 2})):
            cases.append((f"ours-narrow{sx}x{sy}-{enc}", crackle_codec.compress(arr, **kwargs), arr))
        deep = np.asfortranarray(np.repeat(arr[:, :, :1], 4, axis=2))  # labels through z: PINS pay
        pins = crackle_codec.compress(deep, allow_pins=True)
        if crackle_codec.header(pins).label_format == "pins":  # the encoder may find FLAT smaller
            cases.append((f"ours-narrow{sx}x{sy}-pins", pins, deep))
    return tuple(cases)


def fuzz_seeds(max_bytes: int = 4096) -> list[tuple[str, bytes]]:
    """Seeds for the fuzzer: small shared streams, reference-bug streams, the corruption cases and
    narrow slices (the band-wise decoding path)."""
    seeds = [(f"valid-{n}", d) for n, d in shared_streams("valid", max_bytes)]
    seeds += [(f"refbug-{n}", d) for n, d in shared_streams("reference-bugs")]
    seeds += [(cid, s) for cid, s, _ in corruption_cases()]
    seeds += [(cid, s) for cid, s, _ in narrow_cases()]
    return seeds


def write_corpus(folder: Path, seeds: Iterable[tuple[str, bytes]]) -> int:
    """Write each seed three times (mode byte 0 raw, 1 re-signed, 2 CRCs stripped); returns count."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for name, data in seeds:
        for mode in (0, 1, 2):
            (folder / f"{name}.m{mode}").write_bytes(bytes([mode]) + data)
            n += 1
    return n
