"""Chunk-level label queries and remap on Crackle Zarr arrays (zarr 3.x; zarr 2.18 in tests/zarr2/).

Every kind of array: format 2 (Crackle as compressor, or as a filter before a zstd compressor),
format 3 raw / with zstd after Crackle / sharded / sharded with zstd / with a transpose filter.
Volumes are crops of real segmentations whose shapes are not multiples of the chunks (edge chunks
on every axis), with a fill value that occurs nowhere else (so an edge chunk's padding would add a
wrong label), chunks that were never written, and stale labels beyond the edge after a resize.
"""

from __future__ import annotations

import itertools
import warnings

import numcodecs
import numpy as np
import pytest

from conftest import create_crackle_array, crop

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:
    pytest.skip(f"zarr {zarr.__version__} < 3: these tests use zarr 3 (see tests/zarr2)", allow_module_level=True)


import crackle_codec  # noqa: E402
from crackle_codec.zarr import chunk_labels, find_label, label_index, remap_array, zarr_demo  # noqa: E402

warnings.filterwarnings("ignore", message=".*sharding_indexed.*")

KINDS = ["v2", "v2-filter+zstd", "v3", "v3+zstd", "v3-sharded", "v3-sharded+zstd", "v3-transpose"]
CHUNKS = (16, 16, 16)


def create(kind, path, shape, dtype, fill, chunks=CHUNKS):
    return create_crackle_array(kind, path, shape, dtype, fill, chunks)


def chunk_boxes(shape, chunks):
    grid = [range(-(-s // c)) for s, c in zip(shape, chunks)]
    for coords in itertools.product(*grid):
        yield coords, tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(coords, chunks, shape))


def truth(vol, chunks=CHUNKS):
    return {coords: np.unique(vol[box]) for coords, box in chunk_boxes(vol.shape, chunks)}


@pytest.fixture(scope="module")
def volume():
    vol = crop("flyem_medulla_ws", (75, 66, 57)).copy()
    fill = int(vol.max()) + 5  # a label found nowhere in the volume
    vol[:16, :16, :16] = fill  # chunk (0, 0, 0) is all fill: never written
    vol[16:32, 48:, 48:] = fill  # an edge chunk that is all fill: never written
    return vol, fill


@pytest.fixture(scope="module", params=KINDS)
def stored(request, volume, tmp_path_factory):
    vol, fill = volume
    path = tmp_path_factory.mktemp(request.param) / "a.zarr"
    z = create(request.param, path, vol.shape, vol.dtype, fill)
    z[...] = vol
    return request.param, path


def open_copy(stored, tmp_path):
    """A writable copy of a stored array (module fixtures stay pristine)."""
    import shutil

    kind, path = stored
    shutil.copytree(path, tmp_path / "copy.zarr")
    return zarr.open_array(str(tmp_path / "copy.zarr"), mode="r+")


# --------------------------------------------------------------------------------- queries

def test_chunks_were_skipped(stored, volume):
    kind, path = stored
    z = zarr.open_array(str(path), mode="r")
    assert np.array_equal(z[...], volume[0])
    if "sharded" not in kind:
        assert z.nchunks_initialized < z.nchunks


def test_chunk_labels_exact(stored, volume):
    vol, fill = volume
    z = zarr.open_array(str(stored[1]), mode="r")
    got = chunk_labels(z)
    expect = truth(vol)
    assert list(got) == list(expect)
    for coords in expect:
        assert got[coords].dtype == vol.dtype
        assert np.array_equal(got[coords], expect[coords]), coords
    assert np.array_equal(got[(0, 0, 0)], [fill])


def test_chunk_labels_region(stored, volume):
    vol, _ = volume
    z = zarr.open_array(str(stored[1]), mode="r")
    expect = truth(vol)
    got = chunk_labels(z, region=(slice(10, 40), 20, slice(-10, None)))
    assert sorted(got) == [(i, 1, k) for i in range(3) for k in (2, 3)]
    assert all(np.array_equal(v, expect[c]) for c, v in got.items())
    assert chunk_labels(z, region=(slice(5, 5),)) == {}
    assert len(chunk_labels(z, region=slice(0, 16))) == 5 * 4
    with pytest.raises(ValueError):
        chunk_labels(z, region=(slice(0, 10, 2),))
    with pytest.raises(IndexError):
        chunk_labels(z, region=(100,))


def test_find_label_and_label_index(stored, volume):
    vol, fill = volume
    z = zarr.open_array(str(stored[1]), mode="r")
    expect = truth(vol)
    index = label_index(z)
    values = np.unique(vol)
    assert list(index) == values.tolist()
    for value in values.tolist():
        assert index[value] == sorted(c for c, v in expect.items() if value in v)
    rng = np.random.default_rng(1)
    for value in [fill, int(vol[40, 40, 40])] + rng.choice(values, 5).tolist():
        assert find_label(z, value) == index[value]
    assert find_label(z, np.uint32(values[0])) == index[int(values[0])]
    assert find_label(z, fill + 1) == []
    assert find_label(z, -1) == []  # outside the dtype
    assert find_label(z, 2**70) == []
    with pytest.raises(TypeError):
        find_label(z, 1.5)


def test_exact_after_shrinking_resize(stored, volume, tmp_path):
    """Shrinking leaves stale labels in the padding of the new edge chunks: answers stay exact."""
    vol, _ = volume
    z = open_copy(stored, tmp_path)
    z.resize((61, 37, 50))
    small = vol[:61, :37, :50]
    assert np.array_equal(z[...], small)
    got = chunk_labels(z)
    expect = truth(small)
    assert list(got) == list(expect)
    assert all(np.array_equal(got[c], expect[c]) for c in expect)
    stale = int(vol[62, 38, 51])
    if stale not in np.unique(small):
        assert find_label(z, stale) == []


def test_async_array_accepted(stored, volume):
    z = zarr.open_array(str(stored[1]), mode="r")
    got = chunk_labels(z._async_array)
    assert all(np.array_equal(got[c], v) for c, v in truth(volume[0]).items())


# ----------------------------------------------------------------------------------- remap

def test_remap_merge(stored, volume, tmp_path):
    vol, fill = volume
    z = open_copy(stored, tmp_path)
    values, counts = np.unique(vol[vol != fill], return_counts=True)
    a, b = (int(v) for v in values[np.argsort(counts)[-2:]])
    holding_a = find_label(z, a)
    written = remap_array(z, {a: b})
    assert written == len(holding_a)
    expect = np.where(vol == a, b, vol)
    back = zarr.open_array(str(tmp_path / "copy.zarr"), mode="r")
    assert np.array_equal(back[...], expect)
    assert find_label(back, a) == []
    assert find_label(back, b) == sorted(set(holding_a) | set(find_label(zarr.open_array(str(stored[1]), mode="r"), b)))
    assert all(np.array_equal(v, truth(expect)[c]) for c, v in chunk_labels(back).items())
    assert remap_array(back, {a + 10**6: 1}) == 0  # nothing holds that label: nothing written


def test_remap_changes_fill_value(stored, volume, tmp_path):
    """Chunks never written hold the fill value; when it is remapped they are written as constants."""
    vol, fill = volume
    z = open_copy(stored, tmp_path)
    remap_array(z, {fill: 7})
    back = zarr.open_array(str(tmp_path / "copy.zarr"), mode="r")
    expect = np.where(vol == fill, 7, vol)
    assert np.array_equal(back[...], expect)
    assert np.array_equal(chunk_labels(back)[(0, 0, 0)], [7])


def test_remap_errors_leave_array_untouched(stored, volume, tmp_path):
    vol, fill = volume
    z = open_copy(stored, tmp_path)
    first = int(vol[40, 40, 40])
    with pytest.raises(crackle_codec.MissingLabelsError):  # a KeyError, as before
        remap_array(z, {first: 1}, preserve_missing_labels=False)
    with pytest.raises(ValueError):
        remap_array(z, {first: 2**32})
    with pytest.raises(TypeError):
        remap_array(z, {first: 1.5})
    with pytest.raises(TypeError):
        remap_array(z, [(first, 1)])
    # Every key is checked, as crackle_codec.remap checks them (issue 17 point 6): a key the
    # uint32 array cannot hold used to be dropped silently, and any truthy value passed for a bool.
    for key in (-1, 2**32, 2**70):
        with pytest.raises(ValueError, match="not a value of the array's dtype"):
            remap_array(z, {first: 1, key: 2})
    for key in ("a", None, 1.0):
        with pytest.raises(TypeError, match="keys must be integers"):
            remap_array(z, {first: 1, key: 2})
    with pytest.raises(TypeError, match="preserve_missing_labels must be a bool"):
        remap_array(z, {first: 1}, preserve_missing_labels="no")
    assert np.array_equal(z[...], vol)


def test_remap_full_mapping_without_preserve(stored, volume, tmp_path):
    vol, fill = volume
    z = open_copy(stored, tmp_path)
    values = np.unique(vol).tolist()
    mapping = {v: (v * 7 + 3) % 1000 for v in values}
    remap_array(z, mapping, preserve_missing_labels=False)
    lut = np.vectorize(lambda v: mapping[int(v)], otypes=[vol.dtype])
    assert np.array_equal(z[...], lut(vol))


# --------------------------------------------------------------------------- other arrays

@pytest.mark.parametrize("kind", ["v2", "v3", "v3-sharded"])
@pytest.mark.parametrize("dtype", ["int16", "bool"])
def test_signed_and_bool(tmp_path, kind, dtype):
    rng = np.random.default_rng(3)
    if dtype == "bool":
        vol = rng.random((40, 35, 20)) < 0.02
        vol[:16] = False
        fill = False
    else:
        vol = (rng.integers(-4, 4, (40, 35, 20)) * 1000).astype(dtype)
        vol[:16] = -32768
        fill = -32768
    z = create(kind, tmp_path / "a.zarr", vol.shape, dtype, fill)
    z[...] = vol
    got = chunk_labels(z)
    expect = truth(vol)
    assert all(got[c].dtype == vol.dtype and np.array_equal(got[c], expect[c]) for c in expect)
    index = label_index(z)
    assert list(index) == np.unique(vol).tolist()
    if dtype == "bool":
        remap_array(z, {True: False})
        assert not z[...].any()
    else:
        remap_array(z, {-4000: 5, -32768: -1})
        assert np.array_equal(z[...], np.where(vol == -4000, 5, np.where(vol == -32768, -1, vol)))


@pytest.mark.parametrize("kind", ["v2", "v3+zstd", "v3-sharded"])
def test_two_dimensional_array(tmp_path, kind):
    vol = crop("nuclei2d_stardist", (300, 250))
    z = create(kind, tmp_path / "a.zarr", vol.shape, vol.dtype, 0, chunks=(64, 48))
    z[...] = vol
    got = chunk_labels(z)
    expect = truth(vol, (64, 48))
    assert list(got) == list(expect) and all(np.array_equal(got[c], expect[c]) for c in expect)
    label = int(vol[150, 120])
    assert find_label(z, label) == sorted(c for c, v in expect.items() if label in v)


@pytest.mark.parametrize("kind", ["v2", "v3"])
def test_four_dimensional_array(tmp_path, kind):
    vol = np.stack([crop("ovule_cells_100", (50, 45, 40), offset=(o, o, o)) for o in (0, 30)])
    chunks = (1, 16, 16, 16)
    z = create(kind, tmp_path / "a.zarr", vol.shape, vol.dtype, 0, chunks=chunks)
    z[...] = vol
    got = chunk_labels(z)
    expect = truth(vol, chunks)
    assert list(got) == list(expect) and all(np.array_equal(got[c], expect[c]) for c in expect)


def test_not_a_crackle_array(tmp_path):
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=(8, 8), chunks=(4, 4), dtype="uint8")
    with pytest.raises(ValueError, match="not Crackle"):
        chunk_labels(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z2 = zarr.create_array(str(tmp_path / "b.zarr"), shape=(8, 8), chunks=(4, 4), dtype="uint8",
                               zarr_format=2, compressors=numcodecs.Zstd())
    with pytest.raises(ValueError, match="not Crackle"):
        chunk_labels(z2)
    with pytest.raises(TypeError):
        chunk_labels(np.zeros((4, 4)))


def test_corrupt_chunk_raises_decode_error(tmp_path):
    vol = crop("ovule_cells_100", (32, 32, 32))
    z = create("v3", tmp_path / "a.zarr", vol.shape, vol.dtype, 0)
    z[...] = vol
    chunk = tmp_path / "a.zarr" / "c" / "1" / "0" / "1"
    chunk.write_bytes(chunk.read_bytes()[:20])
    with pytest.raises(crackle_codec.DecodeError):
        chunk_labels(z)


def test_zarr_demo():
    vol = crop("ovule_cells_100", (100, 90, 80))
    report = zarr_demo(vol, chunks=(32, 32, 32))
    assert "read back bit-exact" in report and "chunk_labels" in report and "find_label" in report


class SlowStore(zarr.storage.WrapperStore):
    """A store with latency that records how many reads were in flight at once."""

    def __init__(self, store):
        super().__init__(store)
        self.in_flight = 0
        self.most = 0

    async def get(self, key, prototype, byte_range=None):
        import asyncio

        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.005)
            return await self._store.get(key, prototype, byte_range)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("kind", ["v3", "v3-sharded"])
def test_chunks_are_read_concurrently(tmp_path, volume, kind):
    vol, fill = volume
    create(kind, tmp_path / "a.zarr", vol.shape, vol.dtype, fill)[...] = vol
    store = SlowStore(zarr.storage.LocalStore(str(tmp_path / "a.zarr"), read_only=True))
    z = zarr.open_array(store, mode="r")
    got = chunk_labels(z)
    assert all(np.array_equal(got[c], v) for c, v in truth(vol).items())
    assert store.most > 1
