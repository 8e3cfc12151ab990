"""Round trips through crackle_codec alone: compress -> decompress gives back the input exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crackle_codec
from conftest import ALL_INT, SIGNED, UNSIGNED, assert_decoded_equal, assert_roundtrip, crop, label_volumes

HYP = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def blocks(shape=(13, 11, 5), dtype=np.uint32, values=(0, 1, 2, 3, 4), seed=0) -> np.ndarray:
    """A deterministic piecewise-constant volume with a few labels (boxes) and a diagonal stripe."""
    rng = np.random.default_rng(seed)
    arr = np.full(shape, values[0], dtype=dtype)
    for v in values[1:]:
        lo = [int(rng.integers(0, max(n - 1, 1))) for n in shape]
        hi = [int(rng.integers(l + 1, n + 1)) for l, n in zip(lo, shape)]
        arr[tuple(slice(l, h) for l, h in zip(lo, hi))] = v
    if arr.ndim >= 2 and len(values) > 1:
        n = min(arr.shape[0], arr.shape[1])
        arr[np.arange(n), np.arange(n)] = values[1]
    return arr


def extremes(dtype) -> list[int]:
    info = np.iinfo(dtype)
    vals = {int(info.min), int(info.min) + 1, 0, 1, int(info.max) - 1, int(info.max)}
    if info.min < 0:
        vals |= {-1, -2}
    for w in (8, 16, 32):  # values just around narrower widths
        for v in (2 ** (w - 1) - 1, 2 ** (w - 1), 2**w - 1, 2**w, -(2 ** (w - 1)), -(2 ** (w - 1)) - 1):
            if info.min <= v <= info.max:
                vals.add(v)
    return sorted(vals)


# ------------------------------------------------------------------------------------ dtypes

@pytest.mark.parametrize("dtype", ALL_INT, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("order", ["C", "F"])
def test_dtypes_small_values(dtype, order):
    arr = np.asarray(blocks(dtype=dtype), order=order)
    assert_roundtrip(arr)


@pytest.mark.parametrize("dtype", ALL_INT, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("markov", [0, 3])
def test_dtypes_extreme_values(dtype, markov):
    vals = extremes(dtype)
    arr = blocks(shape=(12, 9, 4), dtype=dtype, values=tuple(vals))
    assert_roundtrip(arr, markov_model_order=markov)
    assert_roundtrip(np.asfortranarray(arr), markov_model_order=markov)


@pytest.mark.parametrize("dtype", SIGNED, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "values",
    [(-1,), (-5, -3, -1), (0, -1), (-2, 5), (0, 100), (0, 127), (0, 128), (-129, 3), (-200, 100)],
    ids=str,
)
def test_signed_values(dtype, values):
    info = np.iinfo(dtype)
    vals = tuple(v for v in values if info.min <= v <= info.max)
    if not vals:
        pytest.skip("values do not fit this dtype")
    assert_roundtrip(blocks(shape=(9, 7, 3), dtype=dtype, values=vals))


@pytest.mark.parametrize("dtype", SIGNED, ids=lambda d: np.dtype(d).name)
def test_signed_single_label(dtype):
    info = np.iinfo(dtype)
    for value in (-1, int(info.min), int(info.max), 200 if info.max >= 200 else 100):
        assert_roundtrip(np.full((6, 5, 3), value, dtype=dtype))


@pytest.mark.parametrize("dtype", UNSIGNED, ids=lambda d: np.dtype(d).name)
def test_unsigned_single_label(dtype):
    info = np.iinfo(dtype)
    for value in (0, 1, int(info.max)):
        assert_roundtrip(np.full((6, 5, 3), value, dtype=dtype))
        assert_roundtrip(np.full((6, 5, 3), value, dtype=dtype), allow_pins=True)


def test_bool():
    arr = blocks(dtype=np.uint8, values=(0, 1)).astype(bool)
    stream = assert_roundtrip(arr)
    assert crackle_codec.header(stream).dtype == np.uint8
    assert_roundtrip(np.asfortranarray(arr), allow_pins=True, markov_model_order=2)
    assert_roundtrip(np.ones((4, 4, 4), dtype=bool))
    assert_roundtrip(np.zeros((4, 4, 4), dtype=bool))


# --------------------------------------------------------------------------- layouts & shapes

@pytest.mark.parametrize("base_order", ["C", "F"])
@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[::2, 1:, ::-1],
        lambda a: a[1:-1, ::3, :],
        lambda a: a[::-1, ::-1, ::-1],
        lambda a: a[:, :, 2],
        lambda a: a[3, :, :],
        lambda a: a.transpose(1, 0, 2),
        lambda a: a.transpose(2, 1, 0),
        lambda a: a[..., ::2],
    ],
    ids=["step2_rev", "step3", "reversed", "zslice", "xslice", "T102", "T210", "zstep"],
)
def test_noncontiguous_views(base_order, view):
    base = np.asarray(blocks(shape=(14, 12, 6), dtype=np.uint16, values=(0, 5, 9, 300, 7)), order=base_order)
    assert_roundtrip(view(base))
    assert_roundtrip(view(base), allow_pins=True, markov_model_order=1)


def test_readonly_input():
    arr = blocks(dtype=np.uint32)
    ro = arr.copy()
    ro.setflags(write=False)
    assert_roundtrip(ro)


@pytest.mark.parametrize(
    "shape",
    [(17,), (1,), (300,), (9, 7), (1, 9), (9, 1), (300, 4), (5, 4, 3), (5, 4, 3, 1), (5, 4, 3, 1, 1),
     (5, 4, 1, 1), (5, 1, 1, 1, 1)],
    ids=str,
)
@pytest.mark.parametrize("order", ["C", "F"])
def test_ranks(shape, order):
    arr = np.asarray(np.random.default_rng(1).integers(0, 3, size=shape, dtype=np.uint8), order=order)
    arr = np.asarray(np.cumsum(arr, axis=0) % 4, dtype=np.uint8, order=order)  # some runs
    assert_roundtrip(arr)


def test_2d_comes_back_3d():
    arr = blocks(shape=(10, 8, 1), dtype=np.uint32)[..., 0]
    out = crackle_codec.decompress(crackle_codec.compress(arr))
    assert out.shape == (10, 8, 1)
    np.testing.assert_array_equal(out[..., 0], arr)


@pytest.mark.parametrize(
    "shape", [(0, 5, 5), (5, 0, 5), (5, 5, 0), (0, 0, 0), (0,), (0, 4), (4, 0), (0, 3, 4, 1)], ids=str
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint64, np.int16, np.bool_], ids=lambda d: np.dtype(d).name)
def test_empty(shape, dtype):
    arr = np.zeros(shape, dtype=dtype)
    for kwargs in ({}, {"allow_pins": True}, {"markov_model_order": 5}):
        stream = assert_roundtrip(arr, **kwargs)
        assert len(stream) == 29, "an empty volume is the 29-byte header only (FORMAT 1)"
        assert crackle_codec.num_labels(stream) == 0
        assert crackle_codec.labels(stream).size == 0
        crackle_codec.verify(stream)


@pytest.mark.parametrize("dtype", ALL_INT + [np.bool_], ids=lambda d: np.dtype(d).name)
def test_one_voxel(dtype):
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    values = [0, 1] if info is None else [0, 1, int(info.max), int(info.min)]
    for v in values:
        arr = np.full((1, 1, 1), v, dtype=dtype)
        assert_roundtrip(arr)
        assert_roundtrip(arr, allow_pins=True, markov_model_order=2)
        assert_roundtrip(arr.reshape(1))
        assert_roundtrip(arr.reshape(1, 1))


@pytest.mark.parametrize("shape", [(1, 64, 16), (64, 1, 16), (64, 64, 1), (1, 1, 16), (1, 1, 1), (1, 37, 1), (37, 1, 1)], ids=str)
@pytest.mark.parametrize("kwargs", [{}, {"allow_pins": True}, {"markov_model_order": 3}, {"allow_pins": True, "markov_model_order": 5}], ids=str)
def test_unit_axes(shape, kwargs):
    rng = np.random.default_rng(7)
    arr = (np.cumsum(rng.random(shape) < 0.2, axis=None).reshape(shape) % 5).astype(np.uint32)
    assert_roundtrip(arr, **kwargs)
    assert_roundtrip(np.asfortranarray(arr), **kwargs)


@pytest.mark.parametrize("shape", [(300, 30, 2), (30, 300, 2), (254, 3, 2), (255, 3, 2), (3, 254, 2), (3, 255, 2),
                                   (256, 256, 2), (260, 1, 2), (1, 260, 2), (70000, 1, 1), (1, 70000, 1)], ids=str)
@pytest.mark.parametrize("kwargs", [{}, {"allow_pins": True}, {"markov_model_order": 2}], ids=str)
def test_wide_slices(shape, kwargs):
    """sx+1 or sy+1 over 255 makes the BOC fields 2 bytes wide (FORMAT 6.3, 10.3)."""
    rng = np.random.default_rng(3)
    arr = np.zeros(shape, dtype=np.uint16)
    sx, sy, _ = shape
    arr[: sx // 2, :, 0] = 1
    arr[:, sy // 3:, 1:] = 2
    arr[rng.integers(0, sx, 50), rng.integers(0, sy, 50), 0] = 3  # chains starting far right / down
    arr[sx - 1, sy - 1, :] = 4
    assert_roundtrip(arr, **kwargs)


@pytest.mark.parametrize("nlabels", [2, 3, 1000, 2**20])
@pytest.mark.parametrize("kwargs", [{}, {"allow_pins": True}, {"markov_model_order": 1}, {"markov_model_order": 4}], ids=str)
def test_random_noise(nlabels, kwargs):
    """Noise: few equal neighbours, so the PERMISSIBLE crack format (FORMAT 9.1)."""
    rng = np.random.default_rng(nlabels)
    arr = rng.integers(0, nlabels, size=(23, 19, 5), dtype=np.uint32)
    assert_roundtrip(arr, **kwargs)


def test_noise_unique_per_voxel_uint64():
    rng = np.random.default_rng(11)
    arr = rng.permutation(np.arange(2**40, 2**40 + 16 * 16 * 4, dtype=np.uint64)).reshape(16, 16, 4)
    assert_roundtrip(arr)
    assert_roundtrip(arr, markov_model_order=2)


def test_checkerboard_and_stripes():
    x, y, z = np.indices((16, 15, 4))
    assert_roundtrip(((x + y + z) % 2).astype(np.uint8))
    assert_roundtrip(((x + y) % 2).astype(np.uint8), allow_pins=True)
    assert_roundtrip((x % 3).astype(np.uint8), markov_model_order=2)
    assert_roundtrip((y % 2).astype(np.uint8), allow_pins=True, markov_model_order=1)
    assert_roundtrip((x * 100 + y).astype(np.uint16))  # all distinct per slice, same across z
    assert_roundtrip((x * 100 + y).astype(np.uint16), allow_pins=True)


def test_nested_and_holes():
    """Rings, holes and labels enclosed by others: chains with many branches."""
    x, y = np.indices((32, 32))
    r = np.hypot(x - 15.5, y - 15.5)
    ring = (r // 3).astype(np.uint32)
    vol = np.stack([ring, (ring + 1) * (ring % 2), ring[::-1]], axis=2)
    assert_roundtrip(vol)
    assert_roundtrip(vol, markov_model_order=3)
    assert_roundtrip(vol, allow_pins=True)
    spiral = np.zeros((31, 31), dtype=np.uint8)
    for i in range(0, 16, 2):
        spiral[i:31 - i, i] = spiral[i, i:31 - i] = spiral[i:31 - i, 30 - i] = 1
        spiral[30 - i, i + 2:31 - i] = 1
    assert_roundtrip(np.repeat(spiral[:, :, None], 3, axis=2))


def test_same_label_disconnected_components():
    arr = np.zeros((12, 12, 3), dtype=np.uint8)
    arr[::3, ::3, :] = 7  # many separate CCs with the same label
    arr[1, 1, 1] = 9
    for kwargs in ({}, {"allow_pins": True}, {"markov_model_order": 2}):
        assert_roundtrip(arr, **kwargs)


# -------------------------------------------------------------------------------- options

MARKOV_TINY = np.array(
    [[[1, 1, 2], [1, 2, 2], [3, 3, 3], [0, 3, 1]],
     [[1, 1, 2], [4, 4, 2], [3, 0, 3], [0, 0, 1]],
     [[5, 1, 2], [4, 4, 2], [3, 0, 0], [2, 0, 1]],
     [[5, 5, 2], [4, 5, 5], [3, 3, 0], [2, 2, 2]],
     [[5, 5, 5], [1, 1, 5], [3, 3, 3], [2, 2, 2]]],
    dtype=np.uint8,
)


def _compress_any_order(arr: np.ndarray, order: int) -> bytes:
    """compress() refuses orders above 10 (model over 1 MiB); the core still writes them, so that
    decoding such streams (which other writers make) stays tested."""
    if order <= crackle_codec.core.MAX_WRITTEN_MARKOV_ORDER:
        return crackle_codec.compress(arr, markov_model_order=order)
    from crackle_codec import _crackle
    return _crackle.compress(np.asfortranarray(arr), False, order, False, 1)


@pytest.mark.parametrize("order", range(16))
def test_all_markov_orders_tiny(order):
    stream = _compress_any_order(MARKOV_TINY, order)
    assert_decoded_equal(crackle_codec.decompress(stream), MARKOV_TINY, "C", what=f"order {order}")
    head = crackle_codec.header(stream)
    assert head.markov_model_order == order
    if order:
        assert head.markov_model_bytes == (5 * 4**order + 7) // 8
    crackle_codec.verify(stream)


@pytest.mark.parametrize("order", [0, 1, 3, 5, 8])
@pytest.mark.parametrize("pins", [False, True])
def test_markov_orders_real_crop(order, pins):
    arr = crop("connectomics_512", (64, 64, 16))
    assert_roundtrip(arr, markov_model_order=order, allow_pins=pins)


@pytest.mark.parametrize("name,shape", [
    ("connectomics_512", (96, 96, 24)),
    ("flyem_medulla_ws", (64, 64, 32)),
    ("atlas_glasser_mni1mm", (96, 96, 24)),
    ("ovule_cells_100", (100, 100, 100)),
    ("nuclei2d_stardist", (512, 512)),
])
@pytest.mark.parametrize("kwargs", [{}, {"allow_pins": True}, {"markov_model_order": 5}, {"allow_pins": True, "markov_model_order": 3}], ids=str)
def test_real_volumes(name, shape, kwargs):
    arr = crop(name, shape)
    assert_roundtrip(arr, **kwargs)
    assert_roundtrip(np.ascontiguousarray(arr), **kwargs)


def test_pins_are_used_when_requested():
    """allow_pins on a volume of long columns must produce a PINS stream (and FLAT without it)."""
    arr = crop("connectomics_512", (48, 48, 16))
    flat = assert_roundtrip(arr)
    pins = assert_roundtrip(arr, allow_pins=True)
    assert crackle_codec.header(flat).label_format == "flat"
    assert crackle_codec.header(pins).label_format == "pins"


def test_pins_not_used_for_signed_or_single_slice():
    arr = blocks(shape=(10, 10, 4), dtype=np.int32, values=(0, -1, 5))
    s = assert_roundtrip(arr, allow_pins=True)
    assert crackle_codec.header(s).label_format == "flat"
    arr1 = blocks(shape=(10, 10, 1), dtype=np.uint32)
    s1 = assert_roundtrip(arr1, allow_pins=True)
    assert crackle_codec.header(s1).label_format == "flat"


def test_deep_pins():
    """Pins through hundreds of slices (2-byte depth) and many pins per label."""
    arr = np.zeros((8, 8, 300), dtype=np.uint16)
    arr[2:5, 2:5, :] = 1
    arr[0, 0, 10:290] = 2
    arr[7, :, :150] = 3
    arr[6, 6, ::2] = 4  # 150 single-voxel CCs of one label
    assert_roundtrip(arr, allow_pins=True)
    assert_roundtrip(arr, allow_pins=True, markov_model_order=3)


def test_many_ccs_one_label_pins():
    """A label with many short (two-slice) pieces: the reference overflows NPW here (FORMAT 9.5)."""
    arr = np.zeros((40, 40, 6), dtype=np.uint8)
    arr[::2, ::2, 1:3] = 1
    arr[1::2, 1::2, 3:5] = 2
    assert_roundtrip(arr, allow_pins=True)


@pytest.mark.parametrize("kwargs", [{}, {"allow_pins": True}, {"markov_model_order": 3}, {"allow_pins": True, "markov_model_order": 5}], ids=str)
def test_parallel_gives_identical_bytes(kwargs):
    arr = crop("connectomics_512", (64, 64, 24))
    streams = [crackle_codec.compress(arr, parallel=p, **kwargs) for p in (1, 2, 0)]
    assert streams[0] == streams[1] == streams[2]
    outs = [crackle_codec.decompress(streams[0], parallel=p) for p in (1, 2, 0)]
    for out in outs[1:]:
        assert_decoded_equal(out, outs[0], "F", what="parallel decode")
    np.testing.assert_array_equal(outs[0], arr)


def test_parallel_identical_bytes_synthetic():
    arr = np.asfortranarray(np.random.default_rng(5).integers(0, 4, size=(20, 20, 9), dtype=np.uint8))
    for kwargs in ({}, {"allow_pins": True}, {"markov_model_order": 2}):
        streams = {crackle_codec.compress(arr, parallel=p, **kwargs) for p in (1, 2, 3, 0)}
        assert len(streams) == 1


def test_deterministic():
    arr = crop("connectomics_512", (32, 32, 8))
    for kwargs in ({}, {"allow_pins": True}, {"markov_model_order": 5}):
        assert crackle_codec.compress(arr, **kwargs) == crackle_codec.compress(arr.copy(order="K"), **kwargs)
        # memory order changes only the F bit (and so the header CRC8)
        a = crackle_codec.compress(np.asfortranarray(arr), **kwargs)
        b = crackle_codec.compress(np.ascontiguousarray(arr), **kwargs)
        assert len(a) == len(b) and a[29:] == b[29:]


# ------------------------------------------------------------------------------- z ranges

Z_SELECTIONS = [0, 1, 5, -1, -6, slice(None), slice(0, 6), slice(1, 3), slice(2, None), slice(None, 4),
                slice(-2, None), slice(-3, -1), slice(3, 3), slice(4, 2), slice(5, 100), slice(-100, 2),
                slice(6, 10), slice(None, None, 1)]


def _z_expected(full: np.ndarray, z) -> np.ndarray:
    if isinstance(z, int):
        zi = z + full.shape[2] if z < 0 else z
        return full[:, :, zi:zi + 1]
    return full[:, :, z]


@pytest.mark.parametrize("kwargs", [{}, {"allow_pins": True}, {"markov_model_order": 3}, {"allow_pins": True, "markov_model_order": 2}], ids=str)
@pytest.mark.parametrize("order", ["C", "F"])
def test_z_range_decode(kwargs, order):
    arr = np.asarray(crop("connectomics_512", (40, 36, 6)), order=order)
    stream = crackle_codec.compress(arr, **kwargs)
    full = crackle_codec.decompress(stream)
    np.testing.assert_array_equal(full, arr)
    for z in Z_SELECTIONS:
        part = crackle_codec.decompress(stream, z=z)
        assert_decoded_equal(part, _z_expected(full, z), order, what=f"z={z!r}")
        part2 = crackle_codec.decompress(stream, z=z, parallel=2)
        assert_decoded_equal(part2, part, None, what=f"z={z!r} parallel=2")


def test_z_range_pins_crossing_range():
    """Pins that start before and end after the requested range must be clipped correctly."""
    arr = np.zeros((9, 9, 12), dtype=np.uint32)
    arr[2:7, 2:7, :] = 5
    arr[3, 3, 1:11] = 8
    arr[0, :, 4:9] = 9
    arr[8, 8, 6] = 2
    stream = crackle_codec.compress(arr, allow_pins=True)
    assert crackle_codec.header(stream).label_format == "pins"
    for z0 in range(12):
        for z1 in range(z0, 13):
            part = crackle_codec.decompress(stream, z=slice(z0, z1))
            assert_decoded_equal(part, arr[:, :, z0:z1], None, what=f"z={z0}:{z1}")


def test_z_range_empty_volume():
    stream = crackle_codec.compress(np.zeros((4, 4, 0), dtype=np.uint8))
    out = crackle_codec.decompress(stream, z=slice(0, 3))
    assert out.shape == (4, 4, 0)


# ------------------------------------------------------------------------------ hypothesis

@settings(max_examples=150, **HYP)
@given(label_volumes())
def test_hypothesis_roundtrip(arr):
    assert_roundtrip(arr)


@settings(max_examples=80, **HYP)
@given(label_volumes(min_dims=3), st.booleans(), st.sampled_from([0, 1, 2, 3, 5]))
def test_hypothesis_roundtrip_options(arr, pins, order):
    assert_roundtrip(arr, allow_pins=pins, markov_model_order=order)


@settings(max_examples=40, **HYP)
@given(label_volumes(min_dims=3, min_side=1, dtypes=tuple(UNSIGNED)), st.data())
def test_hypothesis_z_range(arr, data):
    pins = data.draw(st.booleans())
    stream = crackle_codec.compress(arr, allow_pins=pins, markov_model_order=data.draw(st.sampled_from([0, 2])))
    sz = arr.shape[2]
    z0 = data.draw(st.integers(-sz - 1, sz + 1))
    z1 = data.draw(st.integers(-sz - 1, sz + 1))
    part = crackle_codec.decompress(stream, z=slice(z0, z1))
    expected = arr[:, :, z0:z1].astype(np.uint8 if arr.dtype == bool else arr.dtype)
    assert_decoded_equal(part, expected, None, what=f"z={z0}:{z1}")
