"""The public API: argument checking, header(), label queries, remap, verify, save/load."""

from __future__ import annotations

import bz2
import gzip
import lzma

import numpy as np
import pytest

import crackle_codec
from crackle_codec import DecodeError
from conftest import assert_decoded_equal, assert_roundtrip, crop

# FORMAT.md 12.1: real reference output for a 4x4x1 uint8 C-order image (transcribed from the spec)
SPEC_12_1 = bytes.fromhex(
    "63726b6c01" "0000" "04000000" "04000000" "01000000" "1f" "0f00000000000000" "55"
    "0c000000" "d21901c5"
    "0300000000000000" "010203" "03" "000102"
    "04000000" "01000102" "9204ce02"
    "558e9a90" "663c7067"
)
SPEC_12_1_IMAGE = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 2], [3, 3, 3, 2]], dtype=np.uint8)  # rows = y


def small_volume(dtype=np.uint16) -> np.ndarray:
    arr = np.zeros((10, 9, 4), dtype=dtype)
    arr[2:6, 1:5, :] = 3
    arr[0, :, 1:3] = 7
    arr[7:, 6:, 2:] = 9
    arr[5, 8, 0] = 11
    return arr


def mapped(arr: np.ndarray, mapping: dict, preserve: bool = False) -> np.ndarray:
    """The array with ``mapping`` applied voxel by voxel (the expectation for remap)."""
    if arr.size == 0:
        return arr.copy()
    f = (lambda v: mapping.get(v, v)) if preserve else mapping.__getitem__
    return np.vectorize(lambda v: f(int(v)), otypes=[object])(arr).astype(arr.dtype)


def sections(stream: bytes) -> dict:
    h = crackle_codec.header(stream)
    idx0 = h.header_bytes
    lab0 = idx0 + h.index_bytes
    mod0 = lab0 + h.label_bytes
    cc0 = mod0 + h.markov_model_bytes
    end = cc0 + h.crack_code_bytes
    sz = h.shape[2]
    return dict(
        index=stream[idx0:lab0],
        labels=stream[lab0:mod0],
        model=stream[mod0:cc0],
        codes=stream[cc0:end],
        slice_crcs=stream[len(stream) - 4 * sz:] if h.has_crcs else b"",
    )


# ------------------------------------------------------------------------ argument checking

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.complex64, np.complex128, object, "U3", "S2", "datetime64[s]"], ids=str)
def test_compress_rejects_non_integer_dtypes(dtype):
    arr = np.zeros((4, 4, 2), dtype=dtype)
    with pytest.raises(TypeError):
        crackle_codec.compress(arr)


@pytest.mark.parametrize("obj", [[[1, 2], [3, 4]], (1, 2, 3), 5, "abc", b"\x00\x01", None])
def test_compress_rejects_non_arrays(obj):
    with pytest.raises(TypeError):
        crackle_codec.compress(obj)


@pytest.mark.parametrize("shape", [(2, 2, 2, 2), (2, 2, 2, 2, 1), (2, 2, 1, 2), (1, 2, 2, 2), (3, 1, 1, 1, 2)], ids=str)
def test_compress_rejects_4d(shape):
    with pytest.raises(ValueError):
        crackle_codec.compress(np.zeros(shape, dtype=np.uint8))


def test_compress_rejects_0d():
    with pytest.raises(ValueError):
        crackle_codec.compress(np.array(3, dtype=np.uint8))


@pytest.mark.parametrize("order", [-1, 16, 17, 100, 1.5, "3", None, True, 3.0])
def test_bad_markov_order(order):
    with pytest.raises((ValueError, TypeError)):
        crackle_codec.compress(small_volume(), markov_model_order=order)


def test_markov_order_numpy_int_ok():
    assert_roundtrip(small_volume(), markov_model_order=np.int64(3))


@pytest.mark.parametrize("parallel", [-1, -8, 1.5, "2", None, True])
def test_bad_parallel(parallel):
    stream = crackle_codec.compress(small_volume())
    with pytest.raises((ValueError, TypeError)):
        crackle_codec.compress(small_volume(), parallel=parallel)
    with pytest.raises((ValueError, TypeError)):
        crackle_codec.decompress(stream, parallel=parallel)
    with pytest.raises((ValueError, TypeError)):
        crackle_codec.verify(stream, parallel=parallel)


def test_negative_parallel_is_value_error():
    with pytest.raises(ValueError):
        crackle_codec.compress(small_volume(), parallel=-1)


def test_many_threads_ok():
    arr = small_volume()
    assert crackle_codec.compress(arr, parallel=64) == crackle_codec.compress(arr)
    np.testing.assert_array_equal(crackle_codec.decompress(crackle_codec.compress(arr), parallel=64), arr)


def test_bad_z():
    stream = crackle_codec.compress(small_volume())  # sz = 4
    for z in (4, 5, -5, 10**12, -(10**12)):
        with pytest.raises(IndexError):
            crackle_codec.decompress(stream, z=z)
    for z in (slice(0, 4, 2), slice(None, None, -1), slice(0, 2, 0)):
        with pytest.raises(ValueError):
            crackle_codec.decompress(stream, z=z)
    for z in (1.5, "1", [0, 1], (0, 2), True):
        with pytest.raises(TypeError):
            crackle_codec.decompress(stream, z=z)


def test_z_numpy_int_ok():
    arr = small_volume()
    stream = crackle_codec.compress(arr)
    np.testing.assert_array_equal(crackle_codec.decompress(stream, z=np.int64(2)), arr[:, :, 2:3])
    np.testing.assert_array_equal(crackle_codec.decompress(stream, z=slice(np.int32(1), np.int32(3))), arr[:, :, 1:3])


@pytest.mark.parametrize("data", [123, 1.5, "crkl", None, [99, 114, 107, 108], np.zeros(40, dtype=np.float64),
                                  np.zeros((5, 8), dtype=np.uint8), np.zeros(40, dtype=np.uint16)],
                         ids=lambda d: type(d).__name__ + str(getattr(d, "dtype", "")))
def test_non_bytes_data(data):
    for fn in (crackle_codec.decompress, crackle_codec.header, crackle_codec.labels, crackle_codec.num_labels,
               crackle_codec.verify):
        with pytest.raises(TypeError):
            fn(data)
    with pytest.raises(TypeError):
        crackle_codec.contains(data, 1)
    with pytest.raises(TypeError):
        crackle_codec.remap(data, {1: 2})


@pytest.mark.parametrize("data", [b"", b"crkl", b"\x00" * 100, b"CRKL" + bytes(60), b"crkl\x02" + bytes(60)], ids=repr)
def test_not_a_stream(data):
    for fn in (crackle_codec.decompress, crackle_codec.header, crackle_codec.labels, crackle_codec.verify):
        with pytest.raises(DecodeError):
            fn(data)


def test_decode_error_is_value_error():
    assert issubclass(DecodeError, ValueError)
    with pytest.raises(ValueError):
        crackle_codec.decompress(b"not a crackle stream at all")


def test_bytes_like_inputs():
    arr = small_volume()
    stream = crackle_codec.compress(arr)
    for obj in (bytearray(stream), memoryview(stream), np.frombuffer(stream, dtype=np.uint8),
                np.frombuffer(stream + b"xx", dtype=np.uint8)[:-2], memoryview(b"ab" + stream)[2:]):
        np.testing.assert_array_equal(crackle_codec.decompress(obj), arr)
        assert crackle_codec.header(obj).shape == arr.shape
        np.testing.assert_array_equal(crackle_codec.labels(obj), np.unique(arr))
    # a non-contiguous uint8 view is copied, not misread
    doubled = np.repeat(np.frombuffer(stream, dtype=np.uint8), 2)[::2]
    np.testing.assert_array_equal(crackle_codec.decompress(doubled), arr)


# ------------------------------------------------------------------------------- header

def test_header_on_spec_example():
    h = crackle_codec.header(SPEC_12_1)
    assert h.version == 1
    assert h.shape == (4, 4, 1)
    assert h.dtype == np.dtype(np.uint8)
    assert h.order == "C"
    assert h.label_format == "flat"
    assert h.crack_format == "impermissible"
    assert h.markov_model_order == 0
    assert h.stored_width == 1
    assert h.unsorted is False and h.remapped is False
    assert h.has_crcs is True
    assert (h.header_bytes, h.index_bytes, h.label_bytes, h.markov_model_bytes, h.crack_code_bytes, h.crc_bytes) == (29, 8, 15, 0, 12, 8)
    assert h.nbytes == len(SPEC_12_1) == 72
    assert h.voxels == 16
    out = crackle_codec.decompress(SPEC_12_1)
    assert_decoded_equal(out, SPEC_12_1_IMAGE.T[:, :, None], "C", what="FORMAT 12.1")
    crackle_codec.verify(SPEC_12_1)
    np.testing.assert_array_equal(crackle_codec.labels(SPEC_12_1), [1, 2, 3])


def test_header_fields_of_our_streams():
    arr = np.asfortranarray(crop("connectomics_512", (32, 30, 6)).astype(np.uint64) + np.uint64(2**33))
    for kwargs, fmt in (({}, "flat"), ({"allow_pins": True, "markov_model_order": 5}, "pins")):
        s = crackle_codec.compress(arr, **kwargs)
        h = crackle_codec.header(s)
        assert h.version == 1 and h.has_crcs
        assert h.shape == (32, 30, 6) and h.order == "F" and h.dtype == np.uint64
        assert h.stored_width == 8 and h.label_format == fmt
        assert h.markov_model_order == kwargs.get("markov_model_order", 0)
        assert h.markov_model_bytes == (640 if h.markov_model_order == 5 else 0)
        assert h.index_bytes == 4 * 6 + 4 and h.crc_bytes == 4 * 7
        assert h.nbytes == len(s)
    h = crackle_codec.header(crackle_codec.compress(np.zeros((3, 4, 5), dtype=np.int32)))
    assert h.dtype == np.int32 and h.stored_width == 1 and h.order == "C"
    h = crackle_codec.header(crackle_codec.compress(np.full((3, 4, 5), -1, dtype=np.int16)))
    assert h.dtype == np.int16 and h.stored_width == 2  # FORMAT 5.3 corrected rule: min < 0 -> SS = DD
    h = crackle_codec.header(crackle_codec.compress(np.full((3, 4, 5), 200, dtype=np.int16)))
    assert h.stored_width == 2  # 200 does not fit a signed byte
    h = crackle_codec.header(crackle_codec.compress(np.full((3, 4, 5), 100, dtype=np.int16)))
    assert h.stored_width == 1


def test_header_rejects_bad_crc8():
    bad = bytearray(SPEC_12_1)
    bad[28] ^= 0x01
    with pytest.raises(DecodeError):
        crackle_codec.header(bytes(bad))


# --------------------------------------------------------------------------- label queries

def test_labels_queries_unsigned():
    arr = small_volume(np.uint8)
    for kwargs in ({}, {"allow_pins": True}):
        s = crackle_codec.compress(arr, **kwargs)
        got = crackle_codec.labels(s)
        np.testing.assert_array_equal(got, [0, 3, 7, 9, 11])
        assert got.dtype == np.uint8
        assert crackle_codec.num_labels(s) == 5
        assert isinstance(crackle_codec.num_labels(s), int)
        for v in (0, 3, 7, 9, 11, np.uint8(9), np.int64(11)):
            assert crackle_codec.contains(s, v), v
        for v in (1, 8, 10, 12, 255, -1, -256, 256, 2**64, -(2**70), 11 + 256):
            assert not crackle_codec.contains(s, v), v


def test_labels_queries_signed():
    arr = np.zeros((8, 8, 3), dtype=np.int16)
    arr[:4] = -5
    arr[6:, 6:] = 7
    arr[0, 0, 0] = -32768
    arr[7, 0, 2] = 32767
    s = crackle_codec.compress(arr)
    got = crackle_codec.labels(s)
    np.testing.assert_array_equal(got, [-32768, -5, 0, 7, 32767])
    assert got.dtype == np.int16
    assert crackle_codec.num_labels(s) == 5
    for v in (-32768, -5, 0, 7, 32767):
        assert crackle_codec.contains(s, v)
    for v in (-4, -6, 1, 6, 8, 65531, 2**15, -(2**15) - 1, 2**40, -(2**40), 2**64 - 5):
        assert not crackle_codec.contains(s, v), v


def test_labels_queries_uint64_extremes():
    arr = np.zeros((5, 5, 2), dtype=np.uint64)
    arr[1] = 2**64 - 1
    arr[3] = 2**63
    arr[4, 4, 1] = 2**53 + 1
    for kwargs in ({}, {"allow_pins": True}):
        s = crackle_codec.compress(arr, **kwargs)
        np.testing.assert_array_equal(crackle_codec.labels(s), np.array([0, 2**53 + 1, 2**63, 2**64 - 1], dtype=np.uint64))
        assert crackle_codec.contains(s, 2**64 - 1) and crackle_codec.contains(s, 2**53 + 1)
        assert not crackle_codec.contains(s, 2**53) and not crackle_codec.contains(s, 2**64)
        assert not crackle_codec.contains(s, -1)


def test_contains_rejects_non_integers():
    s = crackle_codec.compress(small_volume())
    for v in (1.0, 3.5, "3", None, [3], True):
        with pytest.raises(TypeError):
            crackle_codec.contains(s, v)


def test_labels_empty_volume():
    s = crackle_codec.compress(np.zeros((0, 4, 4), dtype=np.int32))
    assert crackle_codec.labels(s).size == 0
    assert crackle_codec.labels(s).dtype == np.int32
    assert crackle_codec.num_labels(s) == 0
    assert not crackle_codec.contains(s, 0)


# ---------------------------------------------------------------------------------- remap

REMAP_CASES = [
    ("flat", {}),
    ("pins", {"allow_pins": True}),
    ("flat_m3", {"markov_model_order": 3}),
    ("pins_m5", {"allow_pins": True, "markov_model_order": 5}),
]


@pytest.mark.parametrize("name,kwargs", REMAP_CASES, ids=[c[0] for c in REMAP_CASES])
def test_remap_permutation(name, kwargs):
    arr = crop("connectomics_512", (40, 40, 10))
    s = crackle_codec.compress(arr, **kwargs)
    uniq = np.unique(arr)
    rng = np.random.default_rng(0)
    mapping = {int(k): int(v) for k, v in zip(uniq, rng.permutation(len(uniq)) + 1000)}
    r = crackle_codec.remap(s, mapping)
    assert isinstance(r, bytes)
    expected = mapped(arr, mapping)
    assert_decoded_equal(crackle_codec.decompress(r), expected, "F", what="remap")
    crackle_codec.verify(r)
    np.testing.assert_array_equal(crackle_codec.labels(r), np.unique(expected))
    # crack codes, index, model and slice CRCs untouched
    a, b = sections(s), sections(r)
    for part in ("index", "model", "codes", "slice_crcs"):
        assert a[part] == b[part], f"remap changed the {part}"
    # the reference reads it
    crackle = pytest.importorskip("crackle")
    np.testing.assert_array_equal(crackle.decompress(r), expected)


@pytest.mark.parametrize("name,kwargs", REMAP_CASES, ids=[c[0] for c in REMAP_CASES])
def test_remap_merge(name, kwargs):
    arr = small_volume(np.uint32)
    s = crackle_codec.compress(arr, **kwargs)
    mapping = {0: 0, 3: 7, 7: 7, 9: 5, 11: 0}
    r = crackle_codec.remap(s, mapping)
    expected = mapped(arr, mapping)
    assert_decoded_equal(crackle_codec.decompress(r), expected, "C", what="remap merge")
    crackle_codec.verify(r)
    np.testing.assert_array_equal(crackle_codec.labels(r), [0, 5, 7])
    assert crackle_codec.num_labels(r) == 3
    assert crackle_codec.contains(r, 5) and not crackle_codec.contains(r, 3) and not crackle_codec.contains(r, 9)
    assert sections(s)["codes"] == sections(r)["codes"]
    crackle = pytest.importorskip("crackle")
    np.testing.assert_array_equal(crackle.decompress(r), expected)
    # remap twice
    r2 = crackle_codec.remap(r, {0: 1, 5: 2, 7: 3})
    np.testing.assert_array_equal(crackle_codec.decompress(r2), mapped(expected, {0: 1, 5: 2, 7: 3}))
    crackle_codec.verify(r2)


def test_remap_missing_key():
    arr = small_volume()
    for kwargs in ({}, {"allow_pins": True}):
        s = crackle_codec.compress(arr, **kwargs)
        with pytest.raises(ValueError, match="missing from the mapping"):
            crackle_codec.remap(s, {0: 1, 3: 4})
        r = crackle_codec.remap(s, {0: 1, 3: 4}, preserve_missing_labels=True)
        np.testing.assert_array_equal(crackle_codec.decompress(r), mapped(arr, {0: 1, 3: 4}, preserve=True))
        crackle_codec.verify(r)
        # extra keys that are not labels are fine
        r = crackle_codec.remap(s, {0: 0, 3: 3, 7: 7, 9: 9, 11: 12, 5000: 1})
        np.testing.assert_array_equal(crackle_codec.decompress(r), mapped(arr, {11: 12}, preserve=True))
        r = crackle_codec.remap(s, {}, preserve_missing_labels=True)
        np.testing.assert_array_equal(crackle_codec.decompress(r), arr)


@pytest.mark.parametrize("dtype,bad", [(np.uint8, -1), (np.uint64, 2**64), (np.uint64, -1), (np.int64, 2**63),
                                       (np.int64, -(2**63) - 1)])
def test_remap_value_out_of_dtype(dtype, bad):
    arr = small_volume(dtype)
    s = crackle_codec.compress(arr)
    with pytest.raises(ValueError):
        crackle_codec.remap(s, {3: bad}, preserve_missing_labels=True)


@pytest.mark.parametrize("dtype,big,widened", [(np.uint8, 256, np.uint16), (np.int8, 128, np.int16),
                                               (np.int8, -129, np.int16), (np.uint16, 2**16, np.uint32),
                                               (np.int32, 2**31, np.int64), (np.uint32, 2**40, np.uint64)])
def test_remap_widens_the_dtype_like_the_reference(dtype, big, widened):
    arr = small_volume(dtype)
    r = crackle_codec.remap(crackle_codec.compress(arr), {3: big}, preserve_missing_labels=True)
    out = crackle_codec.decompress(r)
    assert out.dtype == widened
    np.testing.assert_array_equal(out, np.where(arr == 3, np.array(big, dtype=widened), arr.astype(widened)))


def test_remap_bad_mapping_types():
    s = crackle_codec.compress(small_volume())
    with pytest.raises(TypeError):
        crackle_codec.remap(s, [(0, 1)])
    with pytest.raises(TypeError):
        crackle_codec.remap(s, {3: 1.5}, preserve_missing_labels=True)


def test_remap_widening_and_narrowing():
    arr = small_volume(np.uint64)
    s = crackle_codec.compress(arr)
    assert crackle_codec.header(s).stored_width == 1
    big = {3: 2**40, 7: 2**64 - 1}
    r = crackle_codec.remap(s, big, preserve_missing_labels=True)
    expected = mapped(arr, big, preserve=True)
    np.testing.assert_array_equal(crackle_codec.decompress(r), expected)
    assert crackle_codec.header(r).stored_width == 8
    crackle_codec.verify(r)
    back = crackle_codec.remap(r, {2**40: 3, 2**64 - 1: 7}, preserve_missing_labels=True)
    np.testing.assert_array_equal(crackle_codec.decompress(back), arr)
    crackle_codec.verify(back)
    crackle = pytest.importorskip("crackle")
    np.testing.assert_array_equal(crackle.decompress(r), expected)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64], ids=lambda d: np.dtype(d).name)
def test_remap_signed(dtype):
    info = np.iinfo(dtype)
    arr = small_volume(np.uint8).astype(dtype) - 5  # labels -5, -2, 2, 4, 6
    s = crackle_codec.compress(arr)
    mapping = {-5: int(info.min), -2: -1, 2: int(info.max), 4: 0, 6: -1}
    r = crackle_codec.remap(s, mapping)
    expected = mapped(arr, mapping)
    assert_decoded_equal(crackle_codec.decompress(r), expected, "C", what="remap signed")
    np.testing.assert_array_equal(crackle_codec.labels(r), np.unique(expected))
    crackle_codec.verify(r)
    assert sections(s)["codes"] == sections(r)["codes"]
    # to all non-negative small values (stored width may shrink) and back to negatives
    r2 = crackle_codec.remap(r, {int(info.min): 1, -1: 2, int(info.max): 3, 0: 4})
    expected2 = mapped(expected, {int(info.min): 1, -1: 2, int(info.max): 3, 0: 4})
    np.testing.assert_array_equal(crackle_codec.decompress(r2), expected2)
    crackle_codec.verify(r2)
    crackle = pytest.importorskip("crackle")
    np.testing.assert_array_equal(crackle.decompress(r), expected)
    np.testing.assert_array_equal(crackle.decompress(r2), expected2)


def test_remap_reference_pins_stream():
    crackle = pytest.importorskip("crackle")
    arr = crop("connectomics_512", (48, 48, 12))
    for kwargs in ({"allow_pins": 1}, {"allow_pins": 2, "markov_model_order": 3}, {}):
        s = crackle.compress(arr, **kwargs)
        uniq = np.unique(arr)
        mapping = {int(k): i % 5 for i, k in enumerate(uniq)}  # heavy merging
        r = crackle_codec.remap(s, mapping)
        expected = mapped(arr, mapping)
        np.testing.assert_array_equal(crackle_codec.decompress(r), expected)
        np.testing.assert_array_equal(crackle.decompress(r), expected)
        np.testing.assert_array_equal(crackle_codec.labels(r), np.unique(expected))
        assert crackle_codec.num_labels(r) == np.unique(expected).size
        crackle_codec.verify(r)
        assert sections(s)["codes"] == sections(r)["codes"]


def test_remap_empty_and_single():
    s = crackle_codec.compress(np.zeros((0, 3, 3), dtype=np.uint8))
    assert crackle_codec.decompress(crackle_codec.remap(s, {0: 5})).shape == (0, 3, 3)
    s = crackle_codec.compress(np.full((3, 3, 3), 4, dtype=np.uint16))
    r = crackle_codec.remap(s, {4: 9})
    np.testing.assert_array_equal(crackle_codec.decompress(r), np.full((3, 3, 3), 9, dtype=np.uint16))


def test_remap_corrupt_labels_rejected():
    arr = small_volume()
    s = bytearray(crackle_codec.compress(arr))
    h = crackle_codec.header(bytes(s))
    s[h.header_bytes + h.index_bytes + 8] ^= 0x02  # first unique label value
    with pytest.raises(DecodeError):
        crackle_codec.remap(bytes(s), {0: 1}, preserve_missing_labels=True)


# ---------------------------------------------------------------------------------- verify

def test_verify_good_streams():
    arr = crop("connectomics_512", (40, 40, 8))
    for kwargs in ({}, {"allow_pins": True}, {"markov_model_order": 5}, {"allow_pins": True, "markov_model_order": 2}):
        assert crackle_codec.verify(crackle_codec.compress(arr, **kwargs)) is None


def test_verify_detects_corruption_everywhere():
    arr = crop("connectomics_512", (40, 40, 8))
    for kwargs in ({}, {"allow_pins": True, "markov_model_order": 3}):
        s = crackle_codec.compress(arr, **kwargs)
        h = crackle_codec.header(s)
        cc0 = h.header_bytes + h.index_bytes + h.label_bytes + h.markov_model_bytes
        boc0 = int.from_bytes(s[cc0:cc0 + 4], "little")
        offsets = {
            "magic": 1, "version": 4, "format": 6, "sx": 8, "crc8": 28,
            "index": h.header_bytes + 1, "labels": h.header_bytes + h.index_bytes + 3,
            "boc_rows": cc0 + 4,  # slice 0: number of BOC rows
            "first_move": cc0 + 4 + boc0,  # slice 0: first byte of the move stream
            "labels_crc": len(s) - h.crc_bytes, "slice_crc": len(s) - 2,
        }
        if h.markov_model_bytes:
            offsets["model"] = h.header_bytes + h.index_bytes + h.label_bytes + 5
        for what, off in offsets.items():
            bad = bytearray(s)
            bad[off] ^= 0x01 if what == "first_move" else 0x10
            with pytest.raises(DecodeError):
                crackle_codec.verify(bytes(bad))
                pytest.fail(f"verify accepted a flip in {what}")
        with pytest.raises(DecodeError):
            crackle_codec.verify(s[:-1])
        with pytest.raises(DecodeError):
            crackle_codec.verify(s + b"\x00")
        with pytest.raises(DecodeError):
            crackle_codec.verify(s[:len(s) // 2])


def test_decode_checks_crcs():
    arr = crop("connectomics_512", (40, 40, 8))
    s = crackle_codec.compress(arr)
    bad = bytearray(s)
    bad[-1] ^= 0x01  # last slice CRC
    with pytest.raises(DecodeError):
        crackle_codec.decompress(bytes(bad))
    with pytest.raises(DecodeError):
        crackle_codec.decompress(bytes(bad), z=-1)
    # slices not covered by the bad CRC still decode on their own
    np.testing.assert_array_equal(crackle_codec.decompress(bytes(bad), z=slice(0, 7)), arr[:, :, :7])


# ------------------------------------------------------------------------------ save/load

EXTS = [".ckl", ".ckl.gz", ".ckl.bz2", ".ckl.xz", ".ckl.zst"]
MAGIC = {".gz": b"\x1f\x8b", ".bz2": b"BZh", ".xz": b"\xfd7zXZ", ".zst": b"\x28\xb5\x2f\xfd", ".ckl": b"crkl"}


@pytest.mark.parametrize("ext", EXTS)
def test_save_load_array(tmp_path, ext):
    if ext.endswith(".zst"):
        pytest.importorskip("numcodecs", reason="numcodecs (Zstd) not installed")
    arr = small_volume(np.uint32)
    path = tmp_path / f"vol{ext}"
    crackle_codec.save(arr, path)
    raw = path.read_bytes()
    assert raw.startswith(MAGIC["." + ext.rsplit(".", 1)[-1]]), f"{ext}: wrong file magic {raw[:6]!r}"
    out = crackle_codec.load(path)
    assert_decoded_equal(out, arr, "C", what=f"load {ext}")
    stream = crackle_codec.load(str(path), decode=False)
    assert isinstance(stream, bytes)
    assert stream == crackle_codec.compress(arr)
    if ext == ".ckl.gz":
        assert gzip.decompress(raw) == stream
    elif ext == ".ckl.bz2":
        assert bz2.decompress(raw) == stream
    elif ext == ".ckl.xz":
        assert lzma.decompress(raw) == stream


@pytest.mark.parametrize("ext", EXTS)
def test_save_load_bytes(tmp_path, ext):
    if ext.endswith(".zst"):
        pytest.importorskip("numcodecs", reason="numcodecs (Zstd) not installed")
    arr = np.asfortranarray(small_volume(np.int16) - 3)
    stream = crackle_codec.compress(arr, allow_pins=True, markov_model_order=2)
    for obj in (stream, bytearray(stream), memoryview(stream)):
        path = tmp_path / f"s{ext}"
        crackle_codec.save(obj, str(path))
        assert crackle_codec.load(path, decode=False) == stream
        assert_decoded_equal(crackle_codec.load(path), arr, "F", what=f"load {ext}")


def test_save_passes_compress_options(tmp_path):
    arr = crop("connectomics_512", (32, 32, 8))
    path = tmp_path / "x.ckl"
    crackle_codec.save(arr, path, markov_model_order=3, allow_pins=True)
    h = crackle_codec.header(crackle_codec.load(path, decode=False))
    assert h.markov_model_order == 3 and h.label_format == "pins"
    np.testing.assert_array_equal(crackle_codec.load(path), arr)
    with pytest.raises(TypeError):
        crackle_codec.save(crackle_codec.compress(arr), tmp_path / "y.ckl", markov_model_order=3)


def test_save_rejects_non_stream(tmp_path):
    with pytest.raises(DecodeError):
        crackle_codec.save(b"definitely not crackle", tmp_path / "z.ckl")
    assert not (tmp_path / "z.ckl").exists() or (tmp_path / "z.ckl").stat().st_size == 0


def test_load_rejects_corrupt_file(tmp_path):
    path = tmp_path / "bad.ckl.gz"
    path.write_bytes(gzip.compress(b"crkl\x07" + bytes(40)))
    with pytest.raises(DecodeError):
        crackle_codec.load(path)
    with pytest.raises(DecodeError):
        crackle_codec.load(path, decode=False)
