"""Interoperability with the reference implementation (PyPI ``crackle-codec`` 0.55.0, ``import crackle``).

Both directions, for every option: the reference decodes our streams to the same logical array, and we
decode the reference's streams exactly. Label queries agree on the same streams.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crackle_codec
from conftest import (
    SIGNED,
    UNSIGNED,
    assert_decoded_equal,
    crop,
    expected_order,
    label_volumes,
    logical_3d,
)

crackle = pytest.importorskip("crackle", reason="reference package crackle-codec not installed")
try:
    import fastcrackle  # the reference's C++ binding (accepts signed input)
except ImportError:  # pragma: no cover
    fastcrackle = None

HYP = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# (our kwargs, reference kwargs)
OPTIONS = {
    "flat": ({}, {}),
    "pins": ({"allow_pins": True}, {"allow_pins": 1}),
    "m1": ({"markov_model_order": 1}, {"markov_model_order": 1}),
    "m3": ({"markov_model_order": 3}, {"markov_model_order": 3}),
    "m5": ({"markov_model_order": 5}, {"markov_model_order": 5}),
    "m8": ({"markov_model_order": 8}, {"markov_model_order": 8}),
    "pins_m3": ({"allow_pins": True, "markov_model_order": 3}, {"allow_pins": 1, "markov_model_order": 3}),
    "pins_m5": ({"allow_pins": True, "markov_model_order": 5}, {"allow_pins": 1, "markov_model_order": 5}),
}
REF_ONLY_OPTIONS = {  # the reference's optimised pins (allow_pins=2); we only decode those
    "pins2": {"allow_pins": 2},
    "pins2_m5": {"allow_pins": 2, "markov_model_order": 5},
}

CROPS = [
    ("connectomics_512", (96, 96, 32)),
    ("flyem_medulla_ws", (64, 64, 64)),
    ("atlas_glasser_mni1mm", (96, 96, 32)),
    ("ovule_cells_100", (64, 64, 64)),
    ("nuclei2d_stardist", (512, 512)),
]


def _crop_ids(c):
    return f"{c[0]}-{'x'.join(map(str, c[1]))}"


def _ref_pins_float_bug(stream: bytes) -> bool:
    """Reference bug: its Python ``labels()`` for PINS streams concatenates the background colour (a
    Python int) with the unique array, which goes through float64, so uint64 labels above 2^53 come
    out rounded. ``decompress`` of a single-label volume uses that list, so it is wrong there too.
    """
    h = crackle.header(stream)
    return int(h.label_format) == 2 and h.stored_data_width == 8


def ref_decompress(stream: bytes) -> np.ndarray:
    """``crackle.decompress``, except where its Python layer has the float64 bug above: then the
    reference's C++ decoder is called directly (same steps as crackle.codec.decompress_range)."""
    if not (_ref_pins_float_bug(stream) and crackle.num_labels(stream) == 1):
        return crackle.decompress(stream)
    h = crackle.header(stream)
    order = "F" if h.fortran_order else "C"
    out = fastcrackle.decompress(stream, 0, h.sz, 1, None, True)
    return out.reshape((h.sx, h.sy, h.sz), order=order)


def ref_decodes_ours(arr: np.ndarray, ours_kwargs: dict, what: str = "") -> bytes:
    stream = crackle_codec.compress(arr, **ours_kwargs)
    out = ref_decompress(stream)
    assert_decoded_equal(out, logical_3d(arr), expected_order(arr), what=f"reference decoding ours {what}")
    return stream


def ours_decodes_ref(arr: np.ndarray, ref_kwargs: dict, what: str = "") -> bytes:
    stream = crackle.compress(arr, **ref_kwargs)
    out = crackle_codec.decompress(stream)
    order = "F" if crackle.header(stream).fortran_order else "C"
    assert_decoded_equal(out, logical_3d(arr), order, what=f"ours decoding reference {what}")
    # and the z-range path on the reference's stream
    sz = out.shape[2]
    if sz > 2:
        part = crackle_codec.decompress(stream, z=slice(1, sz - 1))
        assert_decoded_equal(part, out[:, :, 1:sz - 1], None, what=f"z-range of reference {what}")
    crackle_codec.verify(stream)
    return stream


def assert_label_queries_agree(stream: bytes, arr: np.ndarray) -> None:
    """crackle.labels/num_labels and ours agree with each other and with the array (fresh streams)."""
    truth = np.unique(logical_3d(arr))
    ours = crackle_codec.labels(stream)
    if not (_ref_pins_float_bug(stream) and truth.size and int(truth.max()) > 2**53):
        np.testing.assert_array_equal(np.unique(np.asarray(crackle.labels(stream))), truth)
    np.testing.assert_array_equal(ours, truth)
    assert ours.dtype == truth.dtype
    assert crackle_codec.num_labels(stream) == crackle.num_labels(stream) == truth.size
    for v in truth[:50]:
        assert crackle_codec.contains(stream, int(v))
        assert crackle.contains(stream, int(v))
    info = np.iinfo(truth.dtype)
    absent = [v for v in (0, 1, int(info.max), int(truth.max()) + 1 if truth.size else 0) if v not in set(truth.tolist())]
    for v in absent:
        if info.min <= v <= info.max:
            assert not crackle_codec.contains(stream, v), v
            assert not crackle.contains(stream, v), v


# ----------------------------------------------------------------------------- real crops

@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("source", CROPS, ids=_crop_ids)
def test_reference_decodes_ours_real(source, option):
    arr = crop(*source)
    stream = ref_decodes_ours(arr, OPTIONS[option][0], f"{source} {option}")
    assert_label_queries_agree(stream, arr)
    if option == "flat":  # C-ordered input too
        ref_decodes_ours(np.ascontiguousarray(arr), OPTIONS[option][0], f"{source} {option} C")


@pytest.mark.parametrize("option", list(OPTIONS) + list(REF_ONLY_OPTIONS))
@pytest.mark.parametrize("source", CROPS, ids=_crop_ids)
def test_ours_decodes_reference_real(source, option):
    arr = crop(*source)
    ref_kwargs = OPTIONS[option][1] if option in OPTIONS else REF_ONLY_OPTIONS[option]
    stream = ours_decodes_ref(arr, ref_kwargs, f"{source} {option}")
    assert_label_queries_agree(stream, arr)
    if option == "flat":
        ours_decodes_ref(np.ascontiguousarray(arr), ref_kwargs, f"{source} {option} C")


@pytest.mark.parametrize("option", ["flat", "pins", "m5", "pins_m5"])
def test_options_give_expected_format(option):
    """Both encoders choose the same label format and crack format for the same input and options."""
    arr = crop("connectomics_512", (64, 64, 16))
    ours = crackle_codec.header(crackle_codec.compress(arr, **OPTIONS[option][0]))
    ref = crackle.header(crackle.compress(arr, **OPTIONS[option][1]))
    assert ours.label_format == {0: "flat", 2: "pins"}[int(ref.label_format)]
    assert ours.crack_format == {0: "impermissible", 1: "permissible"}[int(ref.crack_format)]
    assert ours.markov_model_order == ref.markov_model_order
    assert ours.dtype == ref.dtype
    assert ours.stored_width == ref.stored_data_width
    assert ours.version == 1


def test_flat_byte_identity_report():
    """Informational only (FORMAT 9.3 says FLAT output *can* be byte-identical): never asserted.

    Run with ``-rP`` or ``-s`` to see the result; the test checks only decodability both ways.
    """
    arr = crop("connectomics_512", (64, 64, 16))
    same = {}
    for order in (0, 1, 3, 5, 8):
        ours = crackle_codec.compress(arr, markov_model_order=order)
        ref = crackle.compress(arr, markov_model_order=order)
        same[order] = ours == ref
        np.testing.assert_array_equal(crackle.decompress(ours), crackle_codec.decompress(ref))
    print("FLAT byte-identical to reference, by markov order:", same)


# -------------------------------------------------------------------------- synthetic cases

def _many_ccs():
    """Hundreds of two-slice pieces of one label (the reference's NPW overflow case, FORMAT 9.5)."""
    arr = np.zeros((40, 40, 6), dtype=np.uint8)
    arr[::2, ::2, 1:3] = 1
    arr[1::2, 1::2, 3:5] = 2
    return arr


def _u_under_long_run():
    rows = ["11111111111111111111111111111111111111111111111111111110011111100",
            "11111111111111111111111111111111111111111111111111111111111111110",
            "11111111111111111111111111111111111111111111111111111111111111111"]
    return np.array([[int(c) for c in row] for row in rows], dtype=np.uint32).T[:, :, None]


def _long_runs(rng):
    """Rows of random runs, 1 to 150 pixels long, of 3 labels: long runs under several others."""
    sx, sy, sz = 300, 40, 3
    arr = np.empty((sx, sy, sz), dtype=np.uint16)
    for z in range(sz):
        for y in range(sy):
            x = 0
            while x < sx:
                n = int(rng.integers(1, 151)) if rng.random() < 0.3 else int(rng.integers(1, 9))
                arr[x:x + n, y, z] = rng.integers(0, 3)
                x += n
    return arr


SYNTHETIC = {
    "noise4": lambda rng: rng.integers(0, 4, size=(24, 20, 6)).astype(np.uint16),
    "noise1000": lambda rng: rng.integers(0, 1000, size=(24, 20, 6)).astype(np.uint32),
    "u64_big": lambda rng: (rng.integers(0, 3, size=(16, 16, 8)).astype(np.uint64) * np.uint64(2**40 + 3)),
    "u8_max": lambda rng: np.where(rng.random((16, 12, 4)) < 0.5, 255, 0).astype(np.uint8).cumsum(axis=0, dtype=np.uint8),
    "wide": lambda rng: np.repeat((np.arange(300) // 37).astype(np.uint32)[:, None, None], 30, 1).repeat(3, 2),
    "tall": lambda rng: np.repeat((np.arange(300) // 41).astype(np.uint32)[None, :, None], 30, 0).repeat(3, 2),
    "sx1": lambda rng: (np.arange(64 * 16).reshape(1, 64, 16) // 50).astype(np.uint32),
    "sy1": lambda rng: (np.arange(64 * 16).reshape(64, 1, 16) // 50).astype(np.uint32),
    "sz1": lambda rng: (np.arange(64 * 64).reshape(64, 64, 1) // 300).astype(np.uint32),
    "one_col": lambda rng: np.array([1, 1, 2, 2, 2, 3, 1, 1], dtype=np.uint32).reshape(1, 1, 8),
    "one_voxel": lambda rng: np.full((1, 1, 1), 9, dtype=np.uint32),
    "zeros": lambda rng: np.zeros((20, 30, 5), dtype=np.uint32),
    "1d": lambda rng: (np.arange(64) // 10).astype(np.uint32),
    "2d": lambda rng: (np.add.outer(np.arange(40), np.arange(33)) // 9).astype(np.uint16),
    "4d_trailing": lambda rng: (np.arange(12 * 10 * 3) // 17).astype(np.uint8).reshape(12, 10, 3, 1),
    "bool": lambda rng: (rng.random((16, 16, 4)) < 0.3),
    "many_ccs": lambda rng: _many_ccs(),
    # Runs longer than 64 pixels with more than one run of their label above them (the vector
    # labelling's fallback), and rows of up to 5 words with more or fewer than 16 runs.
    "u_under_long_run": lambda rng: _u_under_long_run(),
    "long_runs": lambda rng: _long_runs(rng),
    # 6000 distinct labels, multiples of 2^32: the encoder's label table grows several times.
    "labels_6000": lambda rng: (rng.permutation(48 * 50 * 5) % 6000).astype(np.uint64).reshape(48, 50, 5) << np.uint64(32),
    "deep_pins": lambda rng: np.repeat(rng.integers(0, 3, size=(8, 8, 1)), 300, axis=2).astype(np.uint16),
}


@pytest.mark.parametrize("option", ["flat", "pins", "m3", "pins_m5"])
@pytest.mark.parametrize("case", list(SYNTHETIC))
def test_synthetic_both_directions(case, option):
    arr = SYNTHETIC[case](np.random.default_rng(zlib.crc32(case.encode())))
    for layout in (np.asfortranarray, np.ascontiguousarray):
        a = layout(arr)
        if a.ndim < 3 or a.ndim > 3 or case == "bool":
            ref_input = logical_3d(a)
            ref_input = np.asfortranarray(ref_input) if layout is np.asfortranarray else np.ascontiguousarray(ref_input)
        else:
            ref_input = a
        ref_decodes_ours(a, OPTIONS[option][0], f"{case} {option}")
        ours_decodes_ref(ref_input, OPTIONS[option][1], f"{case} {option}")


def test_empty_both_directions():
    for shape in [(0, 5, 5), (5, 0, 5), (5, 5, 0)]:
        arr = np.zeros(shape, dtype=np.uint16)
        ours = crackle_codec.compress(arr)
        out = crackle.decompress(ours)
        assert out.shape == shape and out.dtype == np.uint16
        ref = crackle.compress(arr)
        out2 = crackle_codec.decompress(ref)
        assert out2.shape == shape and out2.dtype == np.uint16


# ---------------------------------------------------------------------------------- signed

def _ref_signed_decodes_to(arr: np.ndarray) -> np.ndarray:
    """What a correct decoder must return for a reference (fastcrackle) signed stream of ``arr``.

    The reference picks the stored width from the maximum read as *unsigned* (FORMAT 5.3) and stores
    each value wrapped to that width; decoding sign-extends it. Computed independently of any decoder.
    """
    mx = int(arr.max()) if arr.size else 0
    mx_u = mx % (1 << (8 * arr.itemsize))
    width = 1 if mx_u <= 0xFF else 2 if mx_u <= 0xFFFF else 4 if mx_u <= 0xFFFFFFFF else 8
    bits = 8 * width
    v = arr.astype(np.int64).astype(object)
    wrapped = np.vectorize(lambda x: ((int(x) + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1)), otypes=[object])(v)
    return wrapped.astype(arr.dtype)


def _fast_compress(arr: np.ndarray, markov: int = 0) -> bytes:
    if fastcrackle is None:
        pytest.skip("reference C++ binding fastcrackle not importable")
    f_order = arr.flags.f_contiguous
    return fastcrackle.compress(np.asfortranarray(arr), False, f_order, markov, False, True, 0, 1)


SIGNED_VALUES = [(-1,), (-5, -3, -1), (0, -1), (-2, 5), (0, 100), (0, 127), (0, 200), (-200, 100), (-(2**15), 2**15 - 1),
                 (-(2**31), 7), (-(2**63), 2**63 - 1), (2**40, 3)]


def _signed_volume(dtype, values):
    info = np.iinfo(dtype)
    vals = [v for v in values if info.min <= v <= info.max]
    if not vals:
        return None
    rng = np.random.default_rng(len(vals))
    arr = np.full((12, 10, 4), vals[0], dtype=dtype)
    for v in vals[1:]:
        arr[rng.integers(0, 12, 20), rng.integers(0, 10, 20), :] = v
        arr[:5, :3, 1:3] = v
    return arr


@pytest.mark.parametrize("values", SIGNED_VALUES, ids=str)
@pytest.mark.parametrize("dtype", SIGNED, ids=lambda d: np.dtype(d).name)
def test_signed_reference_decodes_ours(dtype, values):
    arr = _signed_volume(dtype, values)
    if arr is None:
        pytest.skip("values do not fit")
    for kwargs in ({}, {"markov_model_order": 2}):
        stream = crackle_codec.compress(arr, **kwargs)
        out = crackle.decompress(stream)
        assert_decoded_equal(out, arr, None, what=f"reference decoding our signed {arr.dtype} {values}")
        # (crackle.labels returns the raw unsigned stored values for signed streams: not compared)
        np.testing.assert_array_equal(crackle_codec.labels(stream), np.unique(arr))
        assert crackle_codec.labels(stream).dtype == arr.dtype


@pytest.mark.parametrize("values", SIGNED_VALUES, ids=str)
@pytest.mark.parametrize("dtype", SIGNED, ids=lambda d: np.dtype(d).name)
def test_signed_ours_decodes_reference(dtype, values):
    arr = _signed_volume(dtype, values)
    if arr is None:
        pytest.skip("values do not fit")
    expected = _ref_signed_decodes_to(arr)
    for markov in (0, 3):
        stream = _fast_compress(arr, markov)
        out = crackle_codec.decompress(stream)
        assert_decoded_equal(out, expected, None, what=f"ours decoding reference signed {arr.dtype} {values}")
        if np.unique(expected).size > 1:  # the reference's Python single-label shortcut differs (FORMAT 10.6)
            np.testing.assert_array_equal(crackle.decompress(stream), expected)


# ------------------------------------------------------------------------------ hypothesis

@settings(max_examples=60, **HYP)
@given(label_volumes(dtypes=tuple(UNSIGNED) + (np.bool_,), min_dims=3), st.sampled_from(list(OPTIONS)))
def test_hypothesis_reference_decodes_ours(arr, option):
    stream = ref_decodes_ours(arr, OPTIONS[option][0], option)
    if arr.size:
        assert_label_queries_agree(stream, arr)


@settings(max_examples=60, **HYP)
@given(label_volumes(dtypes=tuple(UNSIGNED), min_dims=3), st.sampled_from(list(OPTIONS) + list(REF_ONLY_OPTIONS)))
def test_hypothesis_ours_decodes_reference(arr, option):
    ref_kwargs = OPTIONS[option][1] if option in OPTIONS else REF_ONLY_OPTIONS[option]
    stream = ours_decodes_ref(arr, ref_kwargs, option)
    if arr.size:
        assert_label_queries_agree(stream, arr)


@settings(max_examples=40, **HYP)
@given(label_volumes(dtypes=tuple(SIGNED), min_dims=3, min_side=1))
def test_hypothesis_signed_reference_decodes_ours(arr):
    stream = crackle_codec.compress(arr)
    assert_decoded_equal(crackle.decompress(stream), arr, None, what="reference decoding our signed stream")
