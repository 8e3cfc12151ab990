"""write_array's own write path (crackle_codec/zarr/writes.py) stores exactly what zarr stores.

Each case writes the same volume into two identical arrays, one with plain ``z[...] = data``
(zarr's path) and one with ``write_array``, and compares every stored object byte for byte:
format 2 (C and F order), format 3, sharded, a bytes-to-bytes codec after Crackle, zarr's
transpose codec before it, edge chunks (the shape is no multiple of the chunks), and chunks
holding only the fill value under both ``write_empty_chunks`` settings, over an array that
already holds data (so a chunk that becomes empty must be deleted).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:  # pragma: no cover - the zarr2 CI env
    pytest.skip("write_array's fast path needs zarr >= 3", allow_module_level=True)

import numcodecs  # noqa: E402
from zarr.codecs import ShardingCodec, TransposeCodec, ZstdCodec  # noqa: E402

from crackle_codec import Crackle  # noqa: E402
from crackle_codec.zarr.writes import chunk_writer  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec, create_array, write_array  # noqa: E402

SHAPE = (21, 37, 30)  # (z, y, x): edge chunks on every axis
CHUNKS = (8, 16, 12)
FILL = 7


def _volume(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 6, size=(6, 10, 8)).astype(np.uint32)
    vol = np.repeat(np.repeat(np.repeat(coarse, 4, 0), 4, 1), 4, 2)[:SHAPE[0], :SHAPE[1], :SHAPE[2]]
    vol = np.ascontiguousarray(vol)
    vol[:16, :16, :24] = FILL  # whole chunks (and a whole inner chunk of the shards) of the fill value
    vol[-1, -1, -1] = FILL     # the last edge chunk: fill value in its data part, padding too
    vol[-5:, -5:, -6:] = FILL
    return vol


def _stored(path: str) -> dict[str, bytes]:
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


CASES = {
    "format 2, C, Crackle + zstd": dict(zarr_format=2, filters=[Crackle()], compressors=numcodecs.Zstd(level=1)),
    "format 2, F, Crackle": dict(zarr_format=2, order="F", compressors=Crackle(), filters=None),
    "format 3, Crackle + zstd": dict(serializer=CrackleCodec(), compressors=ZstdCodec(level=1)),
    "format 3, transpose + Crackle": dict(filters=[TransposeCodec(order=(2, 1, 0))], serializer=CrackleCodec(),
                                         compressors=None),
    "format 3 sharded, Crackle + zstd": dict(shards=(16, 32, 24), serializer=CrackleCodec(),
                                            compressors=ZstdCodec(level=1)),
}


@pytest.mark.parametrize("write_empty", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_write_array_stores_what_zarr_stores(tmp_path, case, write_empty):
    data, before = _volume(1), _volume(2)[::-1].copy()
    before[before == FILL] = 1  # the old data fills every chunk: empty chunks must replace it
    paths = {}
    for way in ("zarr", "ours"):
        paths[way] = str(tmp_path / f"{way}.zarr")
        z = zarr.create_array(paths[way], shape=SHAPE, chunks=CHUNKS, dtype="uint32", fill_value=FILL,
                              config={"write_empty_chunks": write_empty}, **CASES[case])
        z[...] = before
        if way == "zarr":
            z[...] = data
        else:
            assert chunk_writer(z) is not None  # the fast path, not the per-block fallback
            write_array(z, data, max_workers=2)
    theirs, ours = _stored(paths["zarr"]), _stored(paths["ours"])
    assert sorted(ours) == sorted(theirs)
    assert all(ours[key] == theirs[key] for key in theirs), [k for k in theirs if ours[k] != theirs[k]]
    np.testing.assert_array_equal(zarr.open_array(paths["ours"], mode="r")[...], data)


def test_write_array_reads_views_and_casts(tmp_path):
    """A Fortran (x, y, z) volume written as its (z, y, x) view, and data of another integer dtype."""
    xyz = np.asfortranarray(_volume(3).T)
    z = create_array(str(tmp_path / "a.zarr"), data=xyz.T, chunks=CHUNKS, fill_value=0)
    np.testing.assert_array_equal(z[...], xyz.T)
    small = (xyz.T % 200).astype(np.uint8)
    write_array(z, small, max_workers=1)
    np.testing.assert_array_equal(z[...], small.astype(np.uint32))


def test_write_array_other_arrays_fall_back(tmp_path):
    """Arrays that are not Crackle-compressed are written through zarr, block by block."""
    z = zarr.create_array(str(tmp_path / "zstd.zarr"), shape=SHAPE, chunks=CHUNKS, dtype="uint32")
    assert chunk_writer(z) is None
    data = _volume(4)
    write_array(z, data, max_workers=2)
    np.testing.assert_array_equal(z[...], data)
    with pytest.raises(ValueError, match="shape"):
        write_array(z, data[1:])


def test_nested_sharding_falls_back(tmp_path):
    inner = ShardingCodec(chunk_shape=(4, 8, 6), codecs=[CrackleCodec()])
    z = zarr.create_array(str(tmp_path / "nested.zarr"), shape=SHAPE, chunks=(16, 32, 24), dtype="uint32",
                          serializer=ShardingCodec(chunk_shape=CHUNKS, codecs=[inner]), compressors=None)
    assert chunk_writer(z) is None
