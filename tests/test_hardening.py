"""Exact answers and exact exception types (issue 17): label queries on corrupted streams, remap's
mapping validation, argument errors, decoding limits, and the version-0 labelling rule."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import crackle_codec as cc
from crackle_codec import DecodeError, SliceOutOfRange
from fuzz.seeds import Sections, strip_crcs


def _volume() -> np.ndarray:
    a = np.zeros((8, 6, 3), np.uint16, order="F")
    a[1:4, 1:3, :] = 2
    a[5:, :, 1] = 300
    return a


# ------------------------------------------------------------------------ label queries

def test_labels_never_answer_from_a_corrupted_labels_section():
    """One flipped bit anywhere in the labels section of a v1 stream: labels, num_labels,
    contains and remap raise DecodeError (they used to answer e.g. [28] for [2])."""
    for kw in ({}, {"allow_pins": True}):
        stream = cc.compress(_volume(), **kw)
        h = cc.header(stream)
        lo = h.header_bytes + h.index_bytes
        for i in range(lo, lo + h.label_bytes):
            for bit in range(8):
                m = bytearray(stream)
                m[i] ^= 1 << bit
                m = bytes(m)
                # remap without preserve_missing_labels: the flipped value is not in the mapping,
                # and a corrupted stream must say so (DecodeError), not blame the mapping.
                for fn in (cc.labels, cc.num_labels, lambda s: cc.contains(s, 2),
                           lambda s: cc.remap(s, {}, preserve_missing_labels=True),
                           lambda s: cc.remap(s, {0: 1, 2: 3, 300: 301})):
                    with pytest.raises(DecodeError):
                        fn(m)


def test_chunk_label_helpers_use_the_verified_section():
    """The chunk queries answer through core.labels, which checks the labels CRC."""
    from crackle_codec.zarr import queries

    assert queries.stream_labels is cc.labels


# -------------------------------------------------------------------------------- remap

@pytest.mark.parametrize("mapping, exc", [
    ({0.0: 9}, TypeError),
    ({2.0: 9}, TypeError),
    ({"a": 1}, TypeError),
    ({"17": 5}, TypeError),
    ({None: 1}, TypeError),
    ({True: 1}, TypeError),
    ({2: 1.5}, TypeError),
    ({2: None}, TypeError),
    ({2**70: 1}, ValueError),
    ({-1: 1}, ValueError),
    ({2: -1}, ValueError),
    ({2: 2**64}, ValueError),  # no unsigned dtype holds it (2**16 widens to uint32, as the reference does)
])
@pytest.mark.parametrize("preserve", [False, True])
def test_remap_refuses_bad_mappings(mapping, exc, preserve):
    stream = cc.compress(_volume())
    full = {0: 0, 2: 2, 300: 300}  # added where the bad entry leaves a label unmapped
    merged = dict(mapping)
    merged.update({k: v for k, v in full.items() if k not in mapping})
    with pytest.raises(exc):
        cc.remap(stream, merged, preserve_missing_labels=preserve)


def test_remap_string_keys_hint():
    stream = cc.compress(_volume())
    with pytest.raises(TypeError, match="JSON"):
        cc.remap(stream, {"2": 5}, preserve_missing_labels=True)


def test_remap_preserve_missing_labels_must_be_bool():
    stream = cc.compress(_volume())
    for bad in ("no", 0, 1, None, "False"):
        with pytest.raises(TypeError):
            cc.remap(stream, {2: 5}, preserve_missing_labels=bad)
    assert cc.labels(cc.remap(stream, {2: 5}, preserve_missing_labels=np.bool_(True))).tolist() == [0, 5, 300]


def test_remap_missing_labels_is_a_clear_value_error():
    stream = cc.compress(_volume())
    with pytest.raises(ValueError, match=r"missing from the mapping: 0, 300") as e:
        cc.remap(stream, {2: 5})
    # Also a KeyError (a failed mapping lookup), but never a bare one: its text is the message.
    assert isinstance(e.value, cc.MissingLabelsError) and isinstance(e.value, KeyError)
    assert str(e.value).startswith("2 label(s) of the stream are missing from the mapping: 0, 300")


def test_remap_numpy_integer_keys_and_values():
    stream = cc.compress(_volume())
    out = cc.remap(stream, {np.uint16(2): np.int64(7)}, preserve_missing_labels=True)
    assert cc.labels(out).tolist() == [0, 7, 300]


# ------------------------------------------------------------------------ argument errors

def test_parallel_out_of_range_is_a_value_error():
    stream = cc.compress(_volume())
    for p in (2**31, 2**63, 10**30, 1025, -1):
        for fn in (lambda: cc.decompress(stream, parallel=p), lambda: cc.verify(stream, parallel=p),
                   lambda: cc.compress(_volume(), parallel=p)):
            with pytest.raises(ValueError):
                fn()


def test_z_outside_a_forged_header_is_a_decode_error():
    """A header whose sz was forged smaller than the slice asked for: DecodeError (and still an
    IndexError, as before)."""
    s = Sections.parse(cc.compress(_volume()))
    for z in (3, 5, -4):
        with pytest.raises(DecodeError):
            cc.decompress(s.build(), z=z)
        with pytest.raises(IndexError):
            cc.decompress(s.build(), z=z)
    assert issubclass(SliceOutOfRange, DecodeError) and issubclass(SliceOutOfRange, IndexError)


# ------------------------------------------------------------------------- decoding limit

def test_max_voxels_refuses_before_allocating(tmp_path):
    stream = cc.compress(_volume())  # 8 * 6 * 3 = 144 voxels
    np.testing.assert_array_equal(cc.decompress(stream, max_voxels=144), _volume())
    cc.verify(stream, max_voxels=144)
    for fn in (lambda: cc.decompress(stream, max_voxels=143), lambda: cc.verify(stream, max_voxels=0),
               lambda: cc.decompress(stream, z=0, max_voxels=100)):
        with pytest.raises(DecodeError, match="max_voxels"):
            fn()
    for bad, exc in ((-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(exc):
            cc.decompress(stream, max_voxels=bad)
    path = tmp_path / "v.ckl"
    cc.save(_volume(), path)
    with pytest.raises(DecodeError):
        cc.load(path, max_voxels=10)
    np.testing.assert_array_equal(cc.load(path, max_voxels=None), _volume())


def test_max_voxels_refuses_a_huge_consistent_stream():
    """A consistent 65535 x 65535 uniform slice is a few dozen bytes; max_voxels refuses it from
    the header alone."""
    from bombs import _flat, _empty_code

    stream = _flat(65535, 65535, [_empty_code(65535)], [1])
    with pytest.raises(DecodeError, match="max_voxels"):
        cc.decompress(stream, max_voxels=10**8)


def test_check_header_shape_helper():
    from crackle_codec.core import _check_header_shape

    stream = cc.compress(_volume())
    _check_header_shape(stream, (8, 6, 3))
    with pytest.raises(DecodeError, match="declares shape"):
        _check_header_shape(stream, (8, 6, 4))


# ------------------------------------------------------------- version 0: the FORMAT rule

def _v0_dangling(cc_count: int) -> bytes:
    """A 4 x 4 version-0 slice whose only chain is one vertical crack from (1, 0) down to (1, 1),
    ended by a terminating R,L pair: a crack with a dangling end (no encoder writes one)."""
    boc = bytes([1, 0, 1, 1])                        # one row, y = 0, one start, x = 1
    moves = bytes([2 | 3 << 2 | 2 << 4])              # differences: D (+2), R (+3), L (+2)
    code = struct.pack("<I", len(boc)) + boc + moves
    labels = struct.pack("<Q", 2) + bytes([5, 9]) + bytes([cc_count]) + bytes(range(cc_count))
    s = Sections(1, 0, 4, 4, 1, 31, len(labels), [len(code)], labels, b"", code, True, slice_crcs=[0])
    return strip_crcs(s.build())


def test_v0_dangling_crack_follows_format_6_6():
    """Version 0 has no CRC to arbitrate, and the reference labels a vertical crack with a
    dangling end as if it ran on to the slice's bottom border (docs/robustness.md, "Version 0").
    FORMAT 6.6 says each drawn crack separates exactly the two pixels it lies between: so the
    slice is one component, and a stream claiming two is refused."""
    np.testing.assert_array_equal(cc.decompress(_v0_dangling(1))[:, :, 0], np.full((4, 4), 5, np.uint8))
    with pytest.raises(DecodeError, match="yields 1 components"):
        cc.decompress(_v0_dangling(2))
    try:
        import crackle
    except ImportError:
        return
    ref = crackle.decompress(_v0_dangling(2))[:, :, 0]
    assert ref[0].tolist() == [5, 5, 5, 5] and ref[1:].tolist() == [[9, 9, 9, 9]] * 3, ref


def test_chunk_queries_refuse_a_corrupted_chunk(tmp_path):
    """chunk_labels / find_label / label_index on a zarr array with one chunk whose labels section
    has a flipped bit: DecodeError, never a wrong label list."""
    zarr = pytest.importorskip("zarr")
    if int(zarr.__version__.split(".")[0]) < 3:
        pytest.skip("zarr 3 needed for this test (tests/zarr2 covers zarr 2)")
    from crackle_codec import Crackle, chunk_labels, find_label, label_index

    vol = np.zeros((16, 16, 16), np.uint16)
    vol[2:9, 3:7, :] = 2
    arr = zarr.create_array(str(tmp_path / "a.zarr"), zarr_format=2, compressors=Crackle(), filters=None,
                            shape=vol.shape, chunks=(8, 16, 16), dtype=vol.dtype, fill_value=0)
    arr[:] = vol
    assert {c: v.tolist() for c, v in chunk_labels(arr).items()} == {(0, 0, 0): [0, 2], (1, 0, 0): [0, 2]}
    chunk = next(p for p in (tmp_path / "a.zarr").rglob("*") if p.is_file() and p.name in ("0.0.0", "0"))
    data = bytearray(chunk.read_bytes())
    h = cc.header(bytes(data))
    data[h.header_bytes + h.index_bytes + 8] ^= 0x04  # the first unique label value
    chunk.write_bytes(bytes(data))
    for query in (lambda: chunk_labels(arr), lambda: find_label(arr, 2), lambda: label_index(arr)):
        with pytest.raises(DecodeError, match="labels"):
            query()


def test_pins_applied_per_slice_keep_record_order():
    """PINS maps are built per slice (issue 17); two records pinning one component: the later
    record wins (FORMAT 5.2), as in the reference, whatever the thread count or z range."""
    from test_hostile import pins_base

    s = pins_base()
    # bg 0; N = 2; unique [5, 6]; cc_per_grid [2, 2, 2]; fmt 0; record 0: one pin at pixel 5,
    # z 0..2; record 1: pins at pixel 5, z 0 and z 1 (index 21), depth 0; no cc ids.
    s.labels = bytes([0]) + struct.pack("<Q", 2) + bytes([5, 6, 2, 2, 2, 0, 1, 5, 2, 0, 2, 5, 16, 0, 0, 0])
    stream = s.fit_lengths().build()
    out = cc.decompress(stream)
    assert out[1, 1, :].tolist() == [6, 6, 5]
    np.testing.assert_array_equal(cc.decompress(stream, parallel=2), out)
    np.testing.assert_array_equal(cc.decompress(stream, z=slice(1, 3)), out[:, :, 1:3])
    try:
        import crackle
    except ImportError:
        return
    np.testing.assert_array_equal(crackle.decompress(stream), out)
