"""compress(optimize=True): the smallest stream among the modes it considers, read by the reference;
and the refusal of markov orders whose model section is over the limit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import crackle_codec
from crackle_codec import _crackle
from crackle_codec.core import MAX_MARKOV_MODEL_BYTES, MAX_WRITTEN_MARKOV_ORDER, markov_model_bytes
from conftest import UNSIGNED, assert_decoded_equal, assert_roundtrip, crop, label_volumes, logical_3d

crackle = pytest.importorskip("crackle", reason="the reference crackle-codec is the interop oracle")
from test_interop import ref_decodes_ours  # noqa: E402  (the reference's decoder, around its quirks)

# One crop per real volume; 3D crops are deep enough for labels to continue across slices.
REAL_CROPS = [
    ("connectomics_512", (96, 96, 48)),
    ("flyem_medulla_ws", (80, 80, 40)),
    ("atlas_glasser_mni1mm", (90, 90, 40)),
    ("ovule_cells_100", (100, 100, 100)),
    ("nuclei2d_stardist", (256, 256)),
]


def fixed_modes(arr: np.ndarray) -> dict[tuple[bool, int], int]:
    """Stream size of every fixed (allow_pins, markov order) choice that optimize considers."""
    return {(pins, order): len(crackle_codec.compress(arr, allow_pins=pins, markov_model_order=order))
            for pins in (False, True) for order in range(MAX_WRITTEN_MARKOV_ORDER + 1)}


@pytest.mark.parametrize("name,shape", REAL_CROPS, ids=[n for n, _ in REAL_CROPS])
def test_optimize_real_volumes(name, shape):
    arr = crop(name, shape)
    stream = crackle_codec.compress(arr, optimize=True)
    # the reference reads it and so do we
    assert_decoded_equal(crackle.decompress(stream), logical_3d(arr),
                         what=f"reference decode of optimized {name}")
    assert_decoded_equal(crackle_codec.decompress(stream), logical_3d(arr),
                         what=f"decode of optimized {name}")
    crackle_codec.verify(stream)
    sizes = fixed_modes(arr)
    assert len(stream) <= min(sizes.values()), (name, len(stream), min(sizes.items(), key=lambda kv: kv[1]))
    # never larger than the reference's best fixed mode either, on real data
    assert len(stream) <= len(crackle.compress(arr, allow_pins=1, markov_model_order=5))


PINS_CROPS = [("connectomics_512", (96, 96, 48)), ("flyem_medulla_ws", (64, 64, 120)),
              ("atlas_glasser_mni1mm", (90, 90, 40)), ("ovule_cells_100", (100, 100, 100))]


@pytest.mark.parametrize("offset", [None, (0, 0, 0)], ids=["centre", "corner"])
def test_pins_streams_real_volumes_read_by_reference(offset):
    # The pin writer's choices (deepest pixels, cut pins, listed components, background) on data
    # where labels continue across slices, decoded by the reference.
    for name, shape in PINS_CROPS:
        arr = crop(name, shape, offset=offset)
        stream = crackle_codec.compress(arr, allow_pins=True, markov_model_order=3)
        flat = crackle_codec.compress(arr, markov_model_order=3)
        if crackle_codec.header(stream).label_format == "flat":  # pins did not pay
            assert stream == flat
        else:
            assert len(stream) < len(flat)
            assert_decoded_equal(crackle.decompress(stream), arr, what=f"reference decode of pins {name}")
        if offset is None:
            assert crackle_codec.header(stream).label_format == "pins", name


@pytest.mark.parametrize("arr", [
    np.zeros((0, 4, 3), dtype=np.uint8),
    np.zeros((5, 4, 3), dtype=np.uint16),                                     # no cracks at all
    np.arange(60, dtype=np.uint32).reshape(5, 4, 3),                          # every voxel its own label
    np.random.default_rng(3).integers(0, 2, (16, 16, 4)).astype(np.uint8),   # noise: permissible cracks
    np.random.default_rng(4).integers(-3, 3, (12, 9, 5)).astype(np.int16),   # signed: FLAT only
    np.tile(np.arange(7, dtype=np.uint64)[:, None, None] << 40, (1, 6, 9)),  # wide values, pins
    np.array([[1, 2], [2, 1]], dtype=np.uint8),                               # 2D
], ids=["empty", "uniform", "all-distinct", "noise", "signed", "u64-columns", "2d"])
def test_optimize_edge_volumes(arr):
    stream = assert_roundtrip(arr, optimize=True)
    assert len(stream) <= min(fixed_modes(arr).values())
    if arr.size and arr.dtype.kind == "u":
        assert_decoded_equal(crackle.decompress(stream), logical_3d(arr),
                             what="reference decode")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(label_volumes(dtypes=tuple(UNSIGNED) + (np.bool_,), min_dims=3))
def test_hypothesis_reference_decodes_optimized(arr):
    stream = ref_decodes_ours(arr, {"optimize": True}, "optimize")
    assert len(stream) <= min(len(crackle_codec.compress(arr, allow_pins=pins, markov_model_order=order))
                              for pins in (False, True) for order in (0, 1, 2, 3))


def test_optimize_picks_pins_and_an_order():
    arr = crop("connectomics_512", (64, 64, 64))
    stream = crackle_codec.compress(arr, optimize=True)
    h = crackle_codec.header(stream)
    assert h.label_format == "pins" and 1 <= h.markov_model_order <= MAX_WRITTEN_MARKOV_ORDER
    assert crackle_codec.compress(arr, optimize=True, parallel=2) == stream  # threads change nothing


def test_optimize_option_errors():
    arr = np.zeros((4, 4, 2), dtype=np.uint8)
    with pytest.raises(TypeError, match="optimize"):
        crackle_codec.compress(arr, optimize=1)
    with pytest.raises(ValueError, match="optimize=True chooses"):
        crackle_codec.compress(arr, optimize=True, markov_model_order=5)
    with pytest.raises(ValueError, match="optimize=True chooses"):
        crackle_codec.compress(arr, optimize=True, allow_pins=True)


def test_markov_model_limit():
    assert markov_model_bytes(MAX_WRITTEN_MARKOV_ORDER) <= MAX_MARKOV_MODEL_BYTES < markov_model_bytes(
        MAX_WRITTEN_MARKOV_ORDER + 1)
    arr = np.zeros((6, 5, 2), dtype=np.uint8)
    arr[2:, 1:4] = 3
    for order in range(MAX_WRITTEN_MARKOV_ORDER + 1, 16):
        with pytest.raises(ValueError, match=f"markov_model_order={order} writes a .*-byte model section"):
            crackle_codec.compress(arr, markov_model_order=order)
    # Decoding a stream with such a model keeps working (here an order-12 one, 10 MiB of model).
    stream = _crackle.compress(np.asfortranarray(arr), True, 12, False, 1)
    assert crackle_codec.header(stream).markov_model_bytes == markov_model_bytes(12)
    assert_decoded_equal(crackle_codec.decompress(stream), arr, "F", what="order-12 stream")
