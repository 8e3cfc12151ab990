"""Whole-array label analytics (crackle_codec.zarr.analytics) against numpy on the decoded array.

Every kind of array: format 2 in C and F order and with the legacy axis mapping, with a Crackle
filter before zstd; format 3 plain, legacy, sharded with zstd, with a transpose filter. The volume is
a crop of a real segmentation whose shape is not a multiple of the chunks (edge chunks on every
axis), with a fill value that occurs nowhere else (written into two chunks, which are then never
stored) so that padding or a missing chunk counted wrong shows up.
"""

from __future__ import annotations

import warnings

import numcodecs
import numpy as np
import pytest

from conftest import crop

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:
    pytest.skip(f"zarr {zarr.__version__} < 3", allow_module_level=True)

from zarr.codecs import TransposeCodec, ZstdCodec  # noqa: E402

import crackle_codec  # noqa: E402
from crackle_codec import extract_label, label_stats, point_cloud_array  # noqa: E402
from crackle_codec.zarr.analytics import stats_columns  # noqa: E402
from crackle_codec.layout import stream_axes  # noqa: E402
from crackle_codec.numcodecs_codec import Crackle  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec  # noqa: E402

warnings.filterwarnings("ignore", message=".*sharding_indexed.*")

KINDS = ["v2-C", "v2-F", "v2-legacy", "v2-filter+zstd", "v3", "v3-legacy", "v3-sharded+zstd", "v3-transpose"]
CHUNKS = (16, 16, 16)


def create(kind, path, shape, dtype, fill, chunks=CHUNKS):
    common = dict(shape=shape, chunks=chunks, dtype=dtype, fill_value=fill)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind.startswith("v2"):
            x_axis = None if kind == "v2-legacy" else "fastest"
            if kind == "v2-filter+zstd":
                return zarr.create_array(str(path), zarr_format=2, filters=[Crackle()],
                                         compressors=numcodecs.Zstd(level=3), **common)
            return zarr.create_array(str(path), zarr_format=2, compressors=Crackle(x_axis=x_axis), filters=None,
                                     order="F" if kind == "v2-F" else "C", **common)
        shards = tuple(2 * c for c in chunks) if "sharded" in kind else None
        compressors = ZstdCodec(level=3) if "zstd" in kind else None
        filters = [TransposeCodec(order=tuple(reversed(range(len(shape)))))] if "transpose" in kind else None
        codec = CrackleCodec(x_axis=None) if "legacy" in kind else CrackleCodec()
        return zarr.create_array(str(path), serializer=codec, compressors=compressors,
                                 shards=shards, filters=filters, **common)


def numpy_stats(vol, offset=(0,) * 3):
    """The label_stats table computed with numpy alone (sorting, not per-slice counting)."""
    flat = vol.reshape(-1)
    order = np.argsort(flat, kind="stable")
    sorted_labels = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    coords = [c.reshape(-1)[order] + o for c, o in zip(np.indices(vol.shape), offset)]
    count = np.diff(np.r_[starts, flat.size])
    lo = np.stack([np.minimum.reduceat(c, starts) for c in coords], axis=1)
    hi = np.stack([np.maximum.reduceat(c, starts) for c in coords], axis=1)
    total = np.stack([np.add.reduceat(c.astype(np.int64), starts) for c in coords], axis=1)
    return {"label": sorted_labels[starts], "voxel_count": count, "bbox_min": lo, "bbox_max": hi,
            "centroid": total / count[:, None]}


def assert_same(got, expect):
    assert sorted(got) == sorted(expect)
    assert got["label"].dtype == expect["label"].dtype
    for key in expect:
        assert got[key].shape == expect[key].shape, key
        assert np.array_equal(got[key], expect[key]), key  # exact, centroids included


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
    return request.param, zarr.open_array(str(path), mode="r")


def test_label_stats_exact(stored, volume):
    vol, fill = volume
    kind, z = stored
    assert np.array_equal(z[...], vol)
    if "sharded" not in kind:
        assert z.nchunks_initialized < z.nchunks  # missing chunks are exercised
    calls = []
    got = label_stats(z, max_workers=2, progress=calls.append)
    assert_same(got, numpy_stats(vol))
    assert sum(calls) == 5 * 5 * 4 and len(calls) > 1  # every chunk reported, batch by batch
    assert fill in got["label"]


def test_label_stats_region_and_labels(stored, volume):
    vol, fill = volume
    _, z = stored
    region = (slice(10, 40), slice(3, None), slice(-20, -1))
    sub = vol[region]
    assert_same(label_stats(z, region=region), numpy_stats(sub, offset=(10, 3, 57 - 20)))
    expect = numpy_stats(vol)
    chosen = [int(expect["label"][3]), fill, int(expect["label"][-2]), 2**31 - 7]  # the last one is absent
    got = label_stats(z, labels=chosen)
    keep = np.isin(expect["label"], chosen)
    assert_same(got, {k: v[keep] for k, v in expect.items()})
    none = label_stats(z, labels=[2**31 - 7])
    assert none["label"].size == 0 and none["bbox_min"].shape == (0, 3) and none["centroid"].shape == (0, 3)
    single = label_stats(z, region=(40, 20), labels=[int(vol[40, 20, 5])])
    assert single["label"].tolist() == [vol[40, 20, 5]]
    assert single["bbox_min"][0, :2].tolist() == [40, 20]


def test_extract_label(stored, volume):
    vol, fill = volume
    _, z = stored
    ids, counts = np.unique(vol, return_counts=True)
    for label in [int(ids[np.argmax(counts)]), int(ids[len(ids) // 2]), fill]:
        mask, offset = extract_label(z, label)
        where = np.argwhere(vol == label)
        lo, hi = where.min(axis=0), where.max(axis=0) + 1
        assert offset == tuple(lo.tolist())
        assert mask.dtype == bool
        assert np.array_equal(mask, vol[tuple(slice(a, b) for a, b in zip(lo, hi))] == label)
    region = (slice(20, 60), slice(None), slice(5, 30))
    label = int(vol[30, 30, 10])
    mask, offset = extract_label(z, label, region=region)
    sub = np.zeros_like(vol, dtype=bool)
    sub[region] = vol[region] == label
    where = np.argwhere(sub)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    assert offset == tuple(lo.tolist())
    assert np.array_equal(mask, sub[tuple(slice(a, b) for a, b in zip(lo, hi))])
    empty, offset = extract_label(z, 2**31 - 7)
    assert empty.shape == (0, 0, 0) and offset == (0, 0, 0)


def whole_array_point_cloud(vol, chunks, x_axis, order, label):
    """crackle_codec.point_cloud on the whole array seen as one Crackle volume by the axis rule.

    (Not the reference's: its surface differs and repeats voxels, see docs/api.md.)"""
    axes = stream_axes(chunks, x_axis, order)
    xyz = crackle_codec.point_cloud(crackle_codec.compress(np.asfortranarray(vol.transpose(axes))), label)
    return xyz.astype(np.int64)[:, np.argsort(axes)]


def test_point_cloud_array(stored, volume):
    vol, fill = volume
    kind, z = stored
    ids, counts = np.unique(vol, return_counts=True)
    src_axes = crackle_codec.zarr.sources.source(z)
    for label in [int(ids[np.argmax(counts)]), int(ids[len(ids) // 3]), fill]:
        got = point_cloud_array(z, label)
        expect = whole_array_point_cloud(vol, CHUNKS, src_axes.x_axis, src_axes.order, label)
        assert got.shape == expect.shape
        # same set of voxels, and the same (slice by slice, raster) order
        assert np.array_equal(got, expect), (kind, label)
    with pytest.raises(ValueError, match="not contained"):
        point_cloud_array(z, 2**31 - 7)


def test_nonzero_fill_empty_array_and_2d(tmp_path):
    z = create("v3", tmp_path / "e.zarr", (20, 9, 7), np.uint16, 7, chunks=(8, 8, 8))
    vol = np.full((20, 9, 7), 7, np.uint16)
    assert_same(label_stats(z), numpy_stats(vol))
    mask, offset = extract_label(z, 7)
    assert mask.shape == vol.shape and mask.all() and offset == (0, 0, 0)
    plane = crop("flyem_medulla_ws", (40, 37, 1))[:, :, 0].astype(np.uint32)
    for kind in ("v3", "v2-legacy", "v2-F"):
        z2 = create(kind, tmp_path / f"{kind}.zarr", plane.shape, plane.dtype, 0, chunks=(16, 16))
        z2[...] = plane
        got = label_stats(z2)
        expect = numpy_stats(plane, offset=(0, 0))
        assert_same(got, expect)
        label = int(plane[20, 20])
        mask, offset = extract_label(z2, label)
        where = np.argwhere(plane == label)
        assert offset == tuple(where.min(axis=0).tolist())
        assert mask.sum() == len(where)


def test_stats_columns_and_dataframe(stored, volume):
    _, z = stored
    stats = label_stats(z, region=(slice(0, 16),) * 3)
    cols = stats_columns(stats)
    assert list(cols) == ["label", "voxel_count", "bbox_min_z", "bbox_min_y", "bbox_min_x", "bbox_max_z",
                          "bbox_max_y", "bbox_max_x", "centroid_z", "centroid_y", "centroid_x"]
    assert all(v.ndim == 1 and v.size == stats["label"].size for v in cols.values())
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(cols)
    assert frame["voxel_count"].sum() == 16**3


def test_bad_arguments(stored):
    _, z = stored
    with pytest.raises(TypeError):
        label_stats(z, labels=["a"])
    with pytest.raises(TypeError):
        extract_label(z, 1.5)
    with pytest.raises(ValueError):
        label_stats(z, region=(slice(0, 10, 2),))
    with pytest.raises(TypeError):
        label_stats(np.zeros((4, 4, 4)))


# ------------------------------------------------------------------------------------------ CLI

def test_cli_stats_and_extract(tmp_path, volume, capsys):
    import json

    from crackle_codec import cli

    vol, fill = volume
    path = tmp_path / "cli.zarr"
    create("v3", path, vol.shape, vol.dtype, fill)[...] = vol
    expect = numpy_stats(vol)
    assert cli.main(["stats", str(path), "--json", str(tmp_path / "s.json"), "--workers", "2"]) == 0
    got = json.loads((tmp_path / "s.json").read_text())
    assert got["label"] == expect["label"].tolist()
    assert got["voxel_count"] == expect["voxel_count"].tolist()
    assert got["bbox_max"] == expect["bbox_max"].tolist()
    label = int(expect["label"][5])
    capsys.readouterr()
    assert cli.main(["stats", str(path), "--label", str(label), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("label\tvoxel_count") and lines[1].split("\t")[:2] == [
        str(label), str(expect["voxel_count"][5])]
    assert cli.main(["stats", str(path), "--label", "12345678", "--no-progress"]) == 1  # absent
    assert "12345678" in capsys.readouterr().err
    assert cli.main(["stats", str(path), "--label", "-1"]) == 2  # cannot be in a uint32 array

    out = tmp_path / "mask.npy"
    assert cli.main(["extract", str(path), str(label), "-o", str(out)]) == 0
    mask = np.load(out)
    where = np.argwhere(vol == label)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    assert np.array_equal(mask, vol[tuple(slice(a, b) for a, b in zip(lo, hi))] == label)
    assert ",".join(map(str, lo.tolist())) in capsys.readouterr().out
    assert cli.main(["extract", str(path), str(label), "-o", str(out)]) == 1  # exists, no -f
    assert cli.main(["extract", str(path), "12345678", "-o", str(tmp_path / "m2.npy")]) == 1
    assert cli.main(["extract", str(path), str(label), "-o", str(tmp_path / "m.png")]) == 2


def test_cli_parquet_and_tif(tmp_path, volume, capsys, monkeypatch):
    import json
    import sys

    from crackle_codec import cli

    pq = pytest.importorskip("pyarrow.parquet")
    tifffile = pytest.importorskip("tifffile")
    vol, fill = volume
    path = tmp_path / "cli.zarr"
    create("v3-sharded+zstd", path, vol.shape, vol.dtype, fill)[...] = vol
    expect = numpy_stats(vol)
    out = tmp_path / "s.parquet"
    assert cli.main(["stats", str(path), "--parquet", str(out), "--no-progress"]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["label", "voxel_count"] + [
        f"{k}_{a}" for k in ("bbox_min", "bbox_max", "centroid") for a in "zyx"]
    assert table.column("label").to_pylist() == expect["label"].tolist()
    assert table.column("bbox_max_x").to_pylist() == expect["bbox_max"][:, 2].tolist()
    assert cli.main(["stats", str(path), "--parquet", str(out)]) == 1  # exists, no -f
    assert cli.main(["stats", str(path), "--parquet", str(out), "-f", "--label", str(fill)]) == 0
    assert pq.read_table(out).column("voxel_count").to_pylist() == [int((vol == fill).sum())]
    assert cli.main(["stats", str(path), "--parquet", str(out), "-f", "--axes", "i,j,k", "--no-progress"]) == 0
    assert pq.read_table(out).column_names[-3:] == ["centroid_i", "centroid_j", "centroid_k"]
    assert cli.main(["stats", str(path), "--parquet", str(out), "-f", "--axes", "x,y"]) == 2

    label = int(expect["label"][5])
    assert cli.main(["extract", str(path), str(label), "-o", str(tmp_path / "m.tif")]) == 0
    where = np.argwhere(vol == label)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    with tifffile.TiffFile(tmp_path / "m.tif") as tif:
        assert np.array_equal(tif.asarray(), (vol[tuple(slice(a, b) for a, b in zip(lo, hi))] == label))
        meta = json.loads(tif.pages[0].description)
    assert meta["offset"] == lo.tolist() and meta["label"] == label

    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "tifffile", None)
    assert cli.main(["stats", str(path), "--parquet", str(tmp_path / "t.parquet")]) == 1
    assert "pip install pyarrow" in capsys.readouterr().err
    assert cli.main(["extract", str(path), str(label), "-o", str(tmp_path / "t.tif")]) == 1
    assert "pip install tifffile" in capsys.readouterr().err
    assert not (tmp_path / "t.parquet").exists() and not (tmp_path / "t.tif").exists()


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint64])
def test_signed_and_bool(tmp_path, dtype):
    rng = np.random.default_rng(5)
    vol = rng.integers(-3, 3, (20, 19, 17)).astype(dtype) if dtype != np.bool_ else rng.integers(0, 2, (20, 19, 17)) > 0
    for kind in ("v3", "v2-C", "v3-transpose"):
        z = create(kind, tmp_path / f"{kind}.zarr", vol.shape, vol.dtype, vol.dtype.type(0), chunks=(8, 8, 8))
        z[...] = vol
        assert_same(label_stats(z), numpy_stats(vol))
        mask, offset = extract_label(z, 1)
        where = np.argwhere(vol == 1)
        assert offset == tuple(where.min(axis=0).tolist()) and mask.sum() == len(where)


@pytest.mark.parametrize("name", ["connectomics_512", "flyem_medulla_ws", "atlas_glasser_mni1mm",
                                  "ovule_cells_100", "nuclei2d_stardist"])
def test_real_volumes(tmp_path, name):
    vol = np.ascontiguousarray(crop(name, (90, 100, 110)).T)  # (z, y, x) as Zarr keeps it
    chunks = (32,) * vol.ndim
    z = create("v3-sharded+zstd", tmp_path / "a.zarr", vol.shape, vol.dtype, 0, chunks=chunks)
    z[...] = vol
    expect = numpy_stats(vol, offset=(0,) * vol.ndim)
    assert_same(label_stats(z), expect)
    label = int(expect["label"][np.argsort(expect["voxel_count"])[len(expect["label"]) // 2]])
    mask, offset = extract_label(z, label)
    where = np.argwhere(vol == label)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    assert offset == tuple(lo.tolist())
    assert np.array_equal(mask, vol[tuple(slice(a, b) for a, b in zip(lo, hi))] == label)


def test_corrupt_chunk_raises_decode_error(tmp_path):
    vol = np.ascontiguousarray(crop("ovule_cells_100", (32, 32, 32)).T)
    z = create("v3", tmp_path / "a.zarr", vol.shape, vol.dtype, 0)
    z[...] = vol
    chunk = tmp_path / "a.zarr" / "c" / "1" / "0" / "1"
    good = chunk.read_bytes()
    for bad in (good[:20], good[:-7]):
        chunk.write_bytes(bad)
        label = int(vol[16, 0, 16])
        for call in (lambda: label_stats(z), lambda: extract_label(z, label), lambda: point_cloud_array(z, label)):
            with pytest.raises(crackle_codec.DecodeError, match=r"chunk \(1, 0, 1\)"):
                call()
