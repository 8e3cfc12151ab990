"""Whole-array label rewrites (crackle_codec.zarr.rewrites: mask_array, mask_except_array,
renumber_array; remap_array's own tests are in test_chunk_queries) against numpy on the decoded
array, in place and into new arrays, and against the reference's per-stream mask and renumber.

Every kind of array: format 2 (Crackle as compressor, or as a filter before zstd), format 3 plain,
with zstd after Crackle, sharded, sharded with zstd, with a transpose filter. The volume is a crop
of a real segmentation whose shape is not a multiple of the chunks (edge chunks on every axis),
with a fill value found nowhere else written into two chunks, which are therefore never stored.
"""

from __future__ import annotations

import itertools
import shutil
import warnings

import numpy as np
import pytest

from conftest import create_crackle_array, crop

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:
    pytest.skip(f"zarr {zarr.__version__} < 3: these tests use zarr 3 (see tests/zarr2)", allow_module_level=True)


import crackle_codec  # noqa: E402
from crackle_codec import (  # noqa: E402
    chunk_labels, find_label, mask_array, mask_except_array, remap_array, renumber_array,
)
from crackle_codec.zarr3 import CrackleCodec  # noqa: E402

warnings.filterwarnings("ignore", message=".*sharding_indexed.*")

KINDS = ["v2", "v2-filter+zstd", "v3", "v3+zstd", "v3-sharded", "v3-sharded+zstd", "v3-transpose"]
# Every kind for the two tests that cover the in-place and the new-array paths; the others take
# the kinds that differ most (a bytes codec after Crackle in format 2, sharding, a transpose).
SOME = ["v2-filter+zstd", "v3-sharded+zstd", "v3-transpose"]
CHUNKS = (16, 16, 16)


def create(kind, path, shape, dtype, fill, chunks=CHUNKS):
    return create_crackle_array(kind, path, shape, dtype, fill, chunks)


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
    z.attrs["note"] = "kept"
    z[...] = vol
    return request.param, path


def open_copy(stored, tmp_path):
    """A writable copy of a stored array (module fixtures stay pristine)."""
    shutil.copytree(stored[1], tmp_path / "copy.zarr")
    return zarr.open_array(str(tmp_path / "copy.zarr"), mode="r+")


def chunk_boxes(shape, chunks=CHUNKS):
    for coords in itertools.product(*(range(-(-s // c)) for s, c in zip(shape, chunks))):
        yield tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, chunks))


def some_labels(vol, fill, n=4):
    values, counts = np.unique(vol[vol != fill], return_counts=True)
    return [int(v) for v in values[np.argsort(counts)[-n:]]]


def same_kind(a, b):
    """Both arrays store their chunks alike (format, chunks, shards, codecs), dtypes aside."""
    assert a.metadata.zarr_format == b.metadata.zarr_format
    assert a.chunks == b.chunks and a.shards == b.shards
    assert [type(c) for c in a.filters] == [type(c) for c in b.filters]
    assert type(a.serializer) is type(b.serializer)
    assert [type(c) for c in a.compressors] == [type(c) for c in b.compressors]


# ------------------------------------------------------------------------------------ mask

def test_mask_in_place(stored, volume, tmp_path):
    vol, fill = volume
    z = open_copy(stored, tmp_path)
    labels = some_labels(vol, fill)
    holding = sorted({c for v in labels for c in find_label(z, v)})
    ticks = []
    written = mask_array(z, labels + [fill + 1000, 2**40], progress=ticks.append)  # absent, out of dtype: ignored
    assert written == len(holding)  # only the chunks holding a masked label are rewritten
    assert sum(ticks) == z.nchunks
    expect = np.where(np.isin(vol, labels), 0, vol)
    assert np.array_equal(z[...], expect)
    assert all(np.array_equal(v, np.unique(expect[tuple(slice(i * 16, (i + 1) * 16) for i in c)]))
               for c, v in chunk_labels(z).items())
    assert mask_array(z, labels) == 0  # nothing left to mask: nothing written


@pytest.mark.parametrize("stored", SOME, indirect=True)
def test_mask_fill_value_and_except(stored, volume, tmp_path):
    """Masking the fill value writes the chunks never written as constant chunks of the new value."""
    vol, fill = volume
    z = open_copy(stored, tmp_path)
    mask_array(z, [fill], value=7)
    assert np.array_equal(z[...], np.where(vol == fill, 7, vol))
    assert np.array_equal(chunk_labels(z)[(0, 0, 0)], [7])
    keep = some_labels(vol, fill, 3)
    mask_except_array(z, keep, value=3)
    assert np.array_equal(z[...], np.where(np.isin(vol, keep), vol, 3))


@pytest.mark.parametrize("stored", SOME, indirect=True)
def test_mask_except_into_new_array(stored, volume, tmp_path):
    vol, fill = volume
    src = zarr.open_array(str(stored[1]), mode="r")
    keep = some_labels(vol, fill)
    dest = tmp_path / "out.zarr"
    written = mask_except_array(src, keep, value=2**33, dest=str(dest))  # needs uint64: a new array
    out = zarr.open_array(str(dest), mode="r")
    assert out.dtype == np.uint64 and out.fill_value == 2**33  # the fill value is masked too
    assert np.array_equal(out[...], np.where(np.isin(vol, keep), vol.astype(np.uint64), np.uint64(2**33)))
    stored_chunks = sum(1 for box in chunk_boxes(vol.shape) if (vol[box] != fill).any())
    assert written == stored_chunks  # the chunks never written (all fill) stay unwritten
    same_kind(src, out)
    assert dict(out.attrs) == {"note": "kept"}
    assert np.array_equal(src[...], vol)  # the source is untouched
    with pytest.raises(Exception, match="exist|contain"):
        mask_array(src, keep, dest=str(dest))  # zarr refuses to overwrite an array


def test_mask_into_existing_array(volume, tmp_path):
    """An existing dest with other codecs, a wider dtype and stale chunks: every chunk is replaced."""
    vol, fill = volume
    src = create("v3-sharded", tmp_path / "a.zarr", vol.shape, vol.dtype, fill)
    src[...] = vol
    dest = create("v3+zstd", tmp_path / "b.zarr", vol.shape, np.int64, 5)
    dest[...] = 9  # stale chunks everywhere (chunks of the source never written included)
    labels = some_labels(vol, fill)
    mask_array(src, labels, value=-1, dest=dest)
    assert np.array_equal(dest[...], np.where(np.isin(vol, labels), -1, vol.astype(np.int64)))
    narrow = create("v3", tmp_path / "c.zarr", vol.shape, np.uint8, 0)
    with pytest.raises(ValueError, match="uint8"):
        mask_array(src, labels, dest=narrow)  # the labels kept do not fit (checked before writing)
    assert narrow.nchunks_initialized == 0
    other = create("v3", tmp_path / "d.zarr", vol.shape, vol.dtype, fill, chunks=(16, 16, 8))
    with pytest.raises(ValueError, match="chunks"):
        mask_array(src, labels, dest=other)
    with pytest.raises(ValueError, match="shape"):
        mask_array(src, labels, dest=create("v3", tmp_path / "e.zarr", (10, 10, 10), vol.dtype, 0))
    with pytest.raises(TypeError):
        mask_array(src, labels, dest=np.zeros(vol.shape))


def test_mask_argument_errors_leave_array_untouched(volume, tmp_path):
    vol, fill = volume
    z = create("v3", tmp_path / "a.zarr", vol.shape, vol.dtype, fill)
    z[...] = vol
    first = int(vol[40, 40, 40])
    for call, error in [(lambda: mask_array(z, [first], value=2**32), ValueError),  # beyond uint32 in place
                        (lambda: mask_array(z, [first], value=-1), ValueError),
                        (lambda: mask_array(z, [first], value=1.5), TypeError),
                        (lambda: mask_array(z, [1.5]), TypeError),
                        (lambda: mask_array(z, "12"), TypeError),
                        (lambda: mask_except_array(z, [first], value=None), TypeError),
                        (lambda: mask_array(z, [first], max_workers=0), ValueError)]:
        with pytest.raises(error):
            call()
    assert np.array_equal(z[...], vol)
    read_only = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    with pytest.raises(ValueError, match="read-only"):
        mask_array(read_only, [first])
    assert mask_array(z, np.array([first], dtype=np.uint64)) >= 1


def test_mask_matches_reference_per_stream(tmp_path):
    """One chunk holding the whole volume: the array rewrite is the reference's mask of its stream."""
    crackle = pytest.importorskip("crackle")
    vol = np.ascontiguousarray(crop("flyem_medulla_ws", (40, 48, 56)).T)
    labels = [int(v) for v in np.unique(vol)[::3]]
    stream = crackle.compress(np.asfortranarray(vol.T))
    for fn, ref in [(mask_array, crackle.mask), (mask_except_array, crackle.mask_except)]:
        z = create("v3", tmp_path / f"{fn.__name__}.zarr", vol.shape, vol.dtype, 0, chunks=vol.shape)
        z[...] = vol
        fn(z, labels, value=11)
        assert np.array_equal(z[...], crackle.decompress(ref(stream, labels, value=11)).T)


# -------------------------------------------------------------------------------- renumber

def numpy_renumber(vol, start=0):
    distinct, inverse = np.unique(vol, return_inverse=True)
    return distinct, inverse.reshape(vol.shape) + start


def test_renumber_into_new_array(stored, volume, tmp_path):
    vol, fill = volume
    src = zarr.open_array(str(stored[1]), mode="r")
    ticks = []
    mapping = renumber_array(src, dest=str(tmp_path / "out.zarr"), progress=ticks.append)
    out = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    distinct, expect = numpy_renumber(vol)
    assert mapping == {int(v): i for i, v in enumerate(distinct.tolist())}
    assert out.dtype == (np.uint8 if distinct.size <= 256 else np.uint16)  # the smallest that fits
    assert out.fill_value == mapping[fill]
    assert np.array_equal(out[...], expect)
    assert sum(ticks) == 2 * src.nchunks  # every chunk: its labels read, then rewritten
    same_kind(src, out)
    assert np.array_equal(src[...], vol)


@pytest.mark.parametrize("stored", SOME, indirect=True)
def test_renumber_in_place(stored, volume, tmp_path):
    vol, fill = volume
    z = open_copy(stored, tmp_path)
    mapping = renumber_array(z, 1)
    distinct, expect = numpy_renumber(vol, 1)
    assert mapping == {int(v): i + 1 for i, v in enumerate(distinct.tolist())}
    assert z.dtype == vol.dtype  # in place, the array keeps its dtype
    assert np.array_equal(z[...], expect)
    assert renumber_array(z, 1) == {i + 1: i + 1 for i in range(distinct.size)}  # already consecutive


def test_renumber_errors(volume, tmp_path):
    vol, fill = volume
    z = create("v3", tmp_path / "a.zarr", vol.shape, vol.dtype, fill)
    z[...] = vol
    n = np.unique(vol).size
    with pytest.raises(ValueError, match="dest"):
        renumber_array(z, 2**32 - n + 1)  # the last new label would be 2**32: not in a uint32 array
    with pytest.raises(ValueError):
        renumber_array(z, -1)  # unsigned labels
    with pytest.raises(TypeError):
        renumber_array(z, 1.0)
    with pytest.raises(ValueError, match="uint8"):
        renumber_array(z, 250, dest=create("v3", tmp_path / "b.zarr", vol.shape, np.uint8, 0))
    assert np.array_equal(z[...], vol)
    mapping = renumber_array(z, 2**32 - n, dest=str(tmp_path / "c.zarr"))  # fits uint32 exactly
    assert max(mapping.values()) == 2**32 - 1
    assert zarr.open_array(str(tmp_path / "c.zarr")).dtype == np.uint32


def test_renumber_matches_reference(tmp_path):
    crackle = pytest.importorskip("crackle")
    vol = np.ascontiguousarray(crop("flyem_medulla_ws", (40, 48, 56)).T) + 7
    z = create("v3-sharded+zstd", tmp_path / "a.zarr", vol.shape, vol.dtype, 7, chunks=(16, 16, 16))
    z[...] = vol
    for start in (0, 3):
        stream, ref_mapping = crackle.renumber(crackle.compress(np.asfortranarray(vol.T)), start=start)
        ref = crackle.decompress(stream).T
        dest = tmp_path / f"out{start}.zarr"
        mapping = renumber_array(z, start, dest=str(dest))
        out = zarr.open_array(str(dest), mode="r")
        assert mapping == {int(k): int(v) for k, v in ref_mapping.items()}
        assert out.dtype == ref.dtype and np.array_equal(out[...], ref)


def test_stale_padding_labels(volume, tmp_path):
    """After a shrinking resize, edge chunks hold labels beyond the array: never counted, never in the way."""
    vol, fill = volume
    z = create("v3-sharded", tmp_path / "a.zarr", vol.shape, vol.dtype, fill)
    z[...] = vol
    z.resize((61, 37, 50))
    small = vol[:61, :37, :50]
    distinct, expect = numpy_renumber(small)
    mapping = renumber_array(z, dest=str(tmp_path / "b.zarr"))
    assert list(mapping) == distinct.tolist()
    assert np.array_equal(zarr.open_array(str(tmp_path / "b.zarr"))[...], expect)
    mask_except_array(z, [int(small[30, 30, 30])])
    assert np.array_equal(z[...], np.where(small == small[30, 30, 30], small, 0))


@pytest.mark.parametrize("kind", ["v2", "v3-sharded"])
def test_signed_and_bool(tmp_path, kind):
    rng = np.random.default_rng(3)
    vol = (rng.integers(-4, 4, (40, 35, 20)) * 1000).astype(np.int16)
    vol[:16] = -32768
    z = create(kind, tmp_path / "a.zarr", vol.shape, vol.dtype, -32768)
    z[...] = vol
    mapping = renumber_array(z, -2, dest=str(tmp_path / "b.zarr"))
    distinct, expect = numpy_renumber(vol, -2)
    assert list(mapping.values()) == list(range(-2, distinct.size - 2)) and list(mapping) == distinct.tolist()
    out = zarr.open_array(str(tmp_path / "b.zarr"))
    assert out.dtype == np.int8 and np.array_equal(out[...], expect)
    mask_array(z, [-32768, 3000], value=-1)
    assert np.array_equal(z[...], np.where(np.isin(vol, [-32768, 3000]), -1, vol))

    bits = rng.random((40, 35, 20)) < 0.05
    bits[:16] = False
    b = create(kind, tmp_path / "c.zarr", bits.shape, bool, False)
    b[...] = bits
    assert renumber_array(b) == {False: 0, True: 1}
    mask_array(b, [True], value=False, dest=str(tmp_path / "d.zarr"))
    out = zarr.open_array(str(tmp_path / "d.zarr"))
    assert out.dtype == np.bool_ and not out[...].any()
    mask_except_array(b, [True], value=True)
    assert b[...].all()


def test_pins_streams(volume, tmp_path):
    """Chunks in the PINS label format (background first in the labels section) rewrite alike."""
    vol, fill = volume
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=vol.shape, chunks=(32, 32, 32), dtype=vol.dtype,
                          fill_value=fill, serializer=CrackleCodec(allow_pins=True, markov_model_order=3),
                          compressors=None)
    z[...] = vol
    assert any(crackle_codec.header(s).label_format == "pins" for s in
               (open(p, "rb").read() for p in (tmp_path / "a.zarr" / "c").rglob("*") if p.is_file()))
    distinct, expect = numpy_renumber(vol, 5)
    renumber_array(z, 5, dest=str(tmp_path / "b.zarr"))
    assert np.array_equal(zarr.open_array(str(tmp_path / "b.zarr"))[...], expect)
    labels = some_labels(vol, fill, 6)
    mask_except_array(z, labels, value=1)
    assert np.array_equal(z[...], np.where(np.isin(vol, labels), vol, 1))


@pytest.mark.parametrize("stored", SOME, indirect=True)
def test_remap_into_new_array_widens(stored, volume, tmp_path):
    vol, fill = volume
    src = zarr.open_array(str(stored[1]), mode="r")
    a = some_labels(vol, fill, 1)[0]
    remap_array(src, {a: 2**40, fill: 1}, dest=str(tmp_path / "out.zarr"))
    out = zarr.open_array(str(tmp_path / "out.zarr"))
    assert out.dtype == np.uint64 and out.fill_value == 1
    assert np.array_equal(out[...], np.where(vol == a, np.uint64(2**40), np.where(vol == fill, 1, vol).astype(np.uint64)))


def test_corrupt_chunk_raises_decode_error(tmp_path):
    vol = np.ascontiguousarray(crop("flyem_medulla_ws", (32, 32, 32)).T)
    z = create("v3", tmp_path / "a.zarr", vol.shape, vol.dtype, 0)
    z[...] = vol
    chunk = tmp_path / "a.zarr" / "c" / "1" / "0" / "1"
    chunk.write_bytes(chunk.read_bytes()[:-7])
    with pytest.raises(crackle_codec.DecodeError):
        renumber_array(z)
    with pytest.raises(crackle_codec.DecodeError):
        mask_array(z, np.unique(vol).tolist()[:5], dest=str(tmp_path / "b.zarr"))


# ------------------------------------------------------------------------------------------ CLI

def test_cli_mask_and_renumber(volume, tmp_path, capsys):
    import json

    from crackle_codec import cli

    vol, fill = volume
    path = tmp_path / "a.zarr"
    create("v3-sharded+zstd", path, vol.shape, vol.dtype, fill)[...] = vol
    labels = some_labels(vol, fill)
    out = tmp_path / "masked.zarr"
    assert cli.main(["mask", str(path), *map(str, labels), "--value", "3", "-o", str(out), "--no-progress"]) == 0
    assert np.array_equal(zarr.open_array(str(out))[...], np.where(np.isin(vol, labels), 3, vol))
    keep = some_labels(vol, fill, 5)[0]  # not one of the masked four
    assert cli.main(["mask", str(out), str(keep), "--except", "--in-place", "--workers", "2"]) == 0
    assert np.array_equal(zarr.open_array(str(out))[...], np.where(vol == keep, vol, 0))
    assert "every label but" in capsys.readouterr().out
    assert cli.main(["mask", str(path), "1", "-o", str(out)]) == 1  # exists
    assert cli.main(["mask", str(path), "1", "--value", "-1", "--in-place"]) == 1  # not in uint32
    assert "do not fit" in capsys.readouterr().err
    assert cli.main(["mask", str(path), "1", "--value", "-1", "-o", str(tmp_path / "neg.zarr")]) == 1
    assert not (tmp_path / "neg.zarr").exists()  # nothing left behind
    assert cli.main(["mask", str(path), "1"]) == 2  # -o or --in-place is required

    new = tmp_path / "renumbered.zarr"
    assert cli.main(["renumber", str(path), "-o", str(new), "--mapping", str(tmp_path / "m.json"),
                     "--no-progress"]) == 0
    distinct, expect = numpy_renumber(vol)
    assert np.array_equal(zarr.open_array(str(new))[...], expect)
    assert json.loads((tmp_path / "m.json").read_text()) == {str(v): i for i, v in enumerate(distinct.tolist())}
    assert str(zarr.open_array(str(new)).dtype) in capsys.readouterr().out
    assert cli.main(["renumber", str(path), "--start", "1", "--in-place", "--mapping", str(tmp_path / "m.json"),
                     "-f", "--no-progress"]) == 0
    assert np.array_equal(zarr.open_array(str(path))[...], expect + 1)
    assert cli.main(["renumber", str(path), "--start", str(2**32), "--in-place"]) == 1
