"""The Zarr v3 codec ``crackle_codec.zarr3.CrackleCodec`` (zarr >= 3)."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from conftest import crop

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:
    pytest.skip(f"zarr {zarr.__version__} < 3: the v3 codec needs zarr 3", allow_module_level=True)

from zarr.codecs import TransposeCodec, ZstdCodec  # noqa: E402
from zarr.core.array_spec import ArrayConfig, ArraySpec  # noqa: E402
from zarr.core.buffer import default_buffer_prototype  # noqa: E402
from zarr.core.dtype import parse_dtype  # noqa: E402
from zarr.storage import LocalStore, WrapperStore  # noqa: E402

import crackle_codec as cc  # noqa: E402
import crackle_codec.zarr3 as cz3  # noqa: E402
from crackle_codec import DecodeError  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec, write_array  # noqa: E402

from test_numcodecs import INT_DTYPES, blobs  # noqa: E402

warnings.filterwarnings("ignore", message=".*sharding_indexed.*")


def create(path, shape, chunks, dtype, *, shards=None, compressors=None, codec=None, **kwargs):
    return zarr.create_array(str(path), shape=shape, chunks=chunks, shards=shards, dtype=dtype,
                             serializer=codec or CrackleCodec(), compressors=compressors, **kwargs)


# ------------------------------------------------------------------------------ the codec alone

def test_to_dict_from_dict_and_pickle():
    codec = CrackleCodec(markov_model_order=5, allow_pins=True)
    d = codec.to_dict()
    assert d == {"name": "crackle", "configuration": {"markov_model_order": 5, "allow_pins": True,
                                                      "x_axis": "fastest"}}
    assert CrackleCodec.from_dict(json.loads(json.dumps(d))) == codec
    assert pickle.loads(pickle.dumps(codec)) == codec
    with pytest.raises(ValueError):
        CrackleCodec(markov_model_order=99)
    with pytest.raises(TypeError):
        CrackleCodec(allow_pins=1)
    with pytest.raises(ValueError):
        CrackleCodec.from_dict({"name": "zstd", "configuration": {}})


def test_metadata_without_x_axis_is_the_legacy_mapping():
    """Metadata of the first release has no "x_axis": chunk axis 0 stays x, and round-trips so."""
    legacy = CrackleCodec.from_dict({"name": "crackle", "configuration": {"markov_model_order": 0,
                                                                          "allow_pins": False}})
    assert legacy.x_axis is None and legacy != CrackleCodec()
    assert legacy.to_dict() == {"name": "crackle", "configuration": {"markov_model_order": 0, "allow_pins": False}}
    assert CrackleCodec.from_dict({"name": "crackle"}) == legacy
    assert pickle.loads(pickle.dumps(legacy)) == legacy


@pytest.mark.parametrize("config", [{"x_axis": "first"}, {"x_axis": None}, {"x_axis": 2}, {"axes": "zyx"}])
def test_unknown_configuration_fails_loudly(config):
    with pytest.raises((ValueError, TypeError)):
        CrackleCodec.from_dict({"name": "crackle", "configuration": {"markov_model_order": 0, **config}})


def test_registered_under_its_name():
    from zarr.registry import get_codec_class

    assert get_codec_class("crackle") is CrackleCodec


def _spec(shape, dtype, order="C"):
    return ArraySpec(shape=shape, dtype=parse_dtype(np.dtype(dtype), zarr_format=3), fill_value=0,
                     config=ArrayConfig(order=order, write_empty_chunks=False), prototype=default_buffer_prototype())


@pytest.mark.parametrize("shape", [(12, 10, 8), (15, 9), (21,), (1, 10, 6, 4)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_sync_and_async_encode_decode(shape, order):
    arr = blobs(shape, "int32", order=order)
    spec = _spec(shape, arr.dtype, order)
    codec = CrackleCodec()
    nd = spec.prototype.nd_buffer.from_numpy_array(arr)
    data = codec._encode_sync(nd, spec)
    back = codec._decode_sync(data, spec).as_numpy_array()
    assert back.shape == shape and back.dtype == arr.dtype and np.array_equal(back, arr)

    async def both():
        enc = await codec._encode_single(nd, spec)
        assert enc.to_bytes() == data.to_bytes()
        return await codec._decode_single(enc, spec)

    assert np.array_equal(asyncio.run(both()).as_numpy_array(), arr)
    batch = asyncio.run(codec.decode([(data, spec), (None, spec)]))
    assert np.array_equal(batch[0].as_numpy_array(), arr) and batch[1] is None


def test_decode_wrong_shape_raises_decode_error():
    arr = blobs((12, 10, 8))
    spec = _spec(arr.shape, arr.dtype)
    data = CrackleCodec()._encode_sync(spec.prototype.nd_buffer.from_numpy_array(arr), spec)
    with pytest.raises(DecodeError):
        CrackleCodec()._decode_sync(data, _spec((12, 10, 9), arr.dtype))


# ------------------------------------------------------------------------------ in zarr arrays

@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "datetime64[s]"])
def test_unsupported_dtype_refused_at_creation(tmp_path, dtype):
    with pytest.raises(TypeError, match="integer or bool"):
        create(tmp_path / "a.zarr", (8, 8, 8), (4, 4, 4), dtype)


def test_too_many_long_chunk_axes_refused_at_creation(tmp_path):
    with pytest.raises(ValueError, match="at most 3 axes"):
        create(tmp_path / "a.zarr", (4, 4, 4, 4), (2, 2, 2, 2), "uint8")


@pytest.mark.parametrize("compressors", [None, ZstdCodec(level=3)], ids=["raw", "zstd"])
@pytest.mark.parametrize("name,chunks", [("flyem_medulla_ws", (48, 40, 36)), ("nuclei2d_stardist", (100, 120))])
def test_real_volume_round_trip(tmp_path, compressors, name, chunks):
    vol = crop(name, (150, 130, 110))
    z = create(tmp_path / "a.zarr", vol.shape, chunks, vol.dtype, compressors=compressors)
    z[...] = vol
    meta = json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())
    assert meta["codecs"][0] == {"name": "crackle", "configuration": {"markov_model_order": 0, "allow_pins": False,
                                                                      "x_axis": "fastest"}}
    back = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    assert isinstance(back.serializer, CrackleCodec)
    assert np.array_equal(back[...], vol)
    sel = tuple(slice(s // 3, s - 5) for s in vol.shape)
    assert np.array_equal(back[sel], vol[sel])


@pytest.mark.parametrize("dtype", INT_DTYPES + ["bool"])
def test_dtypes_fill_value_and_missing_chunks(tmp_path, dtype):
    vol = blobs((40, 33, 21), dtype, seed=4)
    fill = True if dtype == "bool" else (-3 if dtype.startswith("int") else 9)
    z = create(tmp_path / "a.zarr", vol.shape, (16, 16, 16), dtype, fill_value=fill)
    z[:, :17, :] = vol[:, :17, :]
    expect = vol.copy()
    expect[:, 17:, :] = fill
    got = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...]
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, expect)


def test_options_and_memory_order_f(tmp_path):
    vol = crop("ovule_cells_100", (100, 100, 100))
    codec = CrackleCodec(markov_model_order=5, allow_pins=True)
    z = create(tmp_path / "a.zarr", vol.shape, (64, 64, 64), vol.dtype, codec=codec, config={"order": "F"})
    z[...] = vol
    back = zarr.open_array(str(tmp_path / "a.zarr"), mode="r", config={"order": "F"})
    assert back.serializer == codec
    assert np.array_equal(back[...], vol)


def test_partial_decode_reads_only_needed_z_slices(tmp_path, monkeypatch):
    vol = np.ascontiguousarray(crop("flyem_medulla_ws", (64, 64, 64)).T)  # (z, y, x)
    z = create(tmp_path / "a.zarr", vol.shape, (32, 32, 32), vol.dtype)
    z[...] = vol
    calls = []
    real = cz3.decode_chunk

    def spy(data, shape, x_axis, order, z_range=None):
        calls.append(z_range)
        return real(data, shape, x_axis, order, z_range)

    monkeypatch.setattr(cz3, "decode_chunk", spy)
    back = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    assert np.array_equal(back[37], vol[37])
    assert calls and all(c == (5, 6) for c in calls)
    calls.clear()
    assert np.array_equal(back[33:60:7, 10:20, 3:50], vol[33:60:7, 10:20, 3:50])
    assert calls and all(c == (1, 23) for c in calls)  # z = 33, 40, 47, 54
    calls.clear()
    assert np.array_equal(back[:, :, 37], vol[:, :, 37])  # x is not sliced: whole chunks
    assert calls and all(c is None for c in calls)

    # every other selection kind gives the same answer as numpy
    rng = np.random.default_rng(0)
    xs, ys, zs = (np.sort(rng.choice(64, 9, replace=False)) for _ in range(3))
    assert np.array_equal(back.oindex[zs, :, xs], vol[np.ix_(zs, np.arange(64), xs)])
    assert np.array_equal(back.oindex[40:44, 5, xs], vol[40:44, 5, xs])
    assert np.array_equal(back.vindex[zs, ys, xs], vol[zs, ys, xs])
    mask = rng.random(64) < 0.3
    assert np.array_equal(back.oindex[mask], vol[mask])
    assert np.array_equal(back[5, 6, 7], vol[5, 6, 7])
    assert np.array_equal(back[-1, :, -1], vol[-1, :, -1])
    assert np.array_equal(back[31:33], vol[31:33])


def test_partial_decode_of_five_dimensional_chunks(tmp_path):
    """(t, c, z, y, x) with chunks of length 1 in t and c: z is axis 2, sliced alone."""
    vol = blobs((2, 3, 20, 18, 16), "uint16", seed=8)
    z = create(tmp_path / "a.zarr", vol.shape, (1, 1, 8, 18, 16), vol.dtype)
    z[...] = vol
    back = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    assert np.array_equal(back[...], vol)
    assert np.array_equal(back[1, 2, 13], vol[1, 2, 13])
    assert np.array_equal(back[:, 1, 3:11, ::3, 5], vol[:, 1, 3:11, ::3, 5])
    chunk = tmp_path / "a.zarr" / "c" / "1" / "2" / "1" / "0" / "0"
    assert cc.header(chunk.read_bytes()).shape == (16, 18, 8)


class CountingStore(WrapperStore):
    """Records every read: (key, byte_range)."""

    def __init__(self, store):
        super().__init__(store)
        self.reads = []

    async def get(self, key, prototype, byte_range=None):
        self.reads.append((key, byte_range))
        return await self._store.get(key, prototype, byte_range)


@pytest.mark.parametrize("compressors", [None, ZstdCodec(level=3)], ids=["raw", "zstd"])
def test_sharding_with_partial_reads(tmp_path, compressors):
    vol = crop("flyem_medulla_ws", (130, 120, 100))
    z = create(tmp_path / "a.zarr", vol.shape, (32, 32, 32), vol.dtype, shards=(64, 64, 64),
               compressors=compressors, fill_value=0)
    z[...] = vol
    assert z.shards == (64, 64, 64) and z.chunks == (32, 32, 32)
    store = CountingStore(LocalStore(str(tmp_path / "a.zarr"), read_only=True))
    back = zarr.open_array(store, mode="r")
    assert np.array_equal(back[...], vol)

    # A small read inside one shard fetches the shard index and one inner chunk, not the shard.
    store.reads.clear()
    assert np.array_equal(back[70:80, 70:80, 70:80], vol[70:80, 70:80, 70:80])
    ranges = [r for k, r in store.reads if k == "c/1/1/1"]
    assert len(ranges) == 2 and all(r is not None for r in ranges), store.reads
    # A z slice across shards
    assert np.array_equal(back[:, :, 99], vol[:, :, 99])
    assert np.array_equal(back[10:120:3, 5, :], vol[10:120:3, 5, :])


def test_sharding_edge_and_missing_inner_chunks(tmp_path):
    vol = blobs((70, 50, 45), "uint16", seed=2)
    z = create(tmp_path / "a.zarr", vol.shape, (16, 16, 16), vol.dtype, shards=(32, 32, 32), fill_value=11)
    z[:20, :, :30] = vol[:20, :, :30]
    expect = np.full(vol.shape, 11, vol.dtype)
    expect[:20, :, :30] = vol[:20, :, :30]
    assert np.array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], expect)


def test_transpose_filter_before_crackle(tmp_path):
    vol = blobs((30, 20, 10), "uint32", seed=5)
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=vol.shape, chunks=(16, 16, 8), dtype=vol.dtype,
                          filters=[TransposeCodec(order=(2, 1, 0))], serializer=CrackleCodec(), compressors=None)
    z[...] = vol
    assert np.array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], vol)


def test_float_write_into_integer_array_is_cast_by_zarr(tmp_path):
    z = create(tmp_path / "a.zarr", (8, 8, 8), (4, 4, 4), "uint8")
    z[...] = np.full((8, 8, 8), 3.0)
    assert np.array_equal(z[...], np.full((8, 8, 8), 3, np.uint8))


def test_corrupt_chunk_raises_decode_error(tmp_path):
    vol = blobs((32, 32, 32))
    z = create(tmp_path / "a.zarr", vol.shape, (16, 16, 16), vol.dtype)
    z[...] = vol
    chunk = tmp_path / "a.zarr" / "c" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x5A
    chunk.write_bytes(bytes(data))
    truncated = tmp_path / "a.zarr" / "c" / "1" / "1" / "1"
    truncated.write_bytes(truncated.read_bytes()[:-7])
    back = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    with pytest.raises(DecodeError):
        back[:16, :16, :16]
    with pytest.raises(DecodeError):
        back[16:, 16:, 20]  # the partial-decode path too
    assert np.array_equal(back[16:, :16, :16], vol[16:, :16, :16])


def test_open_in_fresh_process(tmp_path):
    """The zarr.codecs entry point lets zarr open the array without importing crackle_codec."""
    vol = crop("ovule_cells_100", (100, 100, 100))
    z = create(tmp_path / "a.zarr", vol.shape, (64, 64, 64), vol.dtype, shards=(128, 128, 128),
               compressors=ZstdCodec(level=3))
    z[...] = vol
    script = textwrap.dedent(f"""
        import sys, warnings
        warnings.simplefilter("ignore")
        import zarr
        assert "crackle_codec" not in sys.modules
        a = zarr.open({str(tmp_path / "a.zarr")!r}, mode="r")[...]
        assert "crackle_codec" in sys.modules
        print(a.dtype, a.shape == {vol.shape!r}, int(a.astype("uint64").sum()))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(vol.dtype), "True", str(int(vol.astype("uint64").sum()))]



# ------------------------------------------------------------------ axis rule: size and no copy

def em_stack(shape_zyx, seed=0):
    """A synthetic anisotropic EM segmentation (z, y, x), C order: wavy cells that move a few pixels
    from slice to slice, like a ssTEM stack whose sections are much thicker than its pixels."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape_zyx
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij", sparse=True)
    phase = rng.uniform(0, 6, 4)
    u = x + 10 * np.sin(y / 13 + z / 2 + phase[0]) + 3 * np.sin(y / 5 + phase[1])
    v = y + 10 * np.cos(x / 17 - z / 2 + phase[2]) + 3 * np.cos(x / 7 + phase[3])
    labels = (np.floor(u / 30).astype(np.int64) + 3) * 1000 + np.floor(v / 25).astype(np.int64) + 3
    labels = labels.astype(np.uint32)
    labels[(np.sin(x / 9.0) * np.cos(y / 11.0) + 0.02 * z) > 0.93] = 0  # extracellular space
    return np.ascontiguousarray(labels)


def _stored_bytes(path):
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name not in (".zarray", "zarr.json"))


@pytest.mark.parametrize("name,shape_zyx,chunks_zyx", [
    ("ssTEM-like stack (synthetic)", (20, 384, 384), (20, 128, 128)),
    ("thin stack (synthetic)", (6, 200, 320), (6, 100, 160)),
    ("flyem_medulla_ws", (48, 96, 96), (24, 48, 48)),
    ("ovule_cells_100", (100, 100, 100), (50, 50, 50)),
    ("atlas_glasser_mni1mm", (60, 80, 70), (30, 40, 35)),
])
def test_zyx_c_order_array_is_as_small_as_xyz_fortran(tmp_path, name, shape_zyx, chunks_zyx):
    """zarr's defaults on a (z, y, x) volume store the same streams as the (x, y, z) Fortran layout."""
    if "synthetic" in name:
        vol = em_stack(shape_zyx)
    else:
        vol = np.ascontiguousarray(crop(name, shape_zyx[::-1]).T)  # (x, y, z) -> (z, y, x)
        shape_zyx, chunks_zyx = vol.shape, tuple(min(c, s) for c, s in zip(chunks_zyx, vol.shape))
    xyz = vol.T  # Fortran-ordered (x, y, z): the same memory
    zyx_path, xyz_path, xyz3_path, old_path = (tmp_path / n for n in ("zyx", "xyz_v2F", "xyz_v3T", "legacy"))
    zyx = zarr.create_array(str(zyx_path), shape=vol.shape, chunks=chunks_zyx, dtype=vol.dtype,
                            serializer=CrackleCodec(), compressors=None)
    zyx[...] = vol
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v2 = zarr.create_array(str(xyz_path), shape=xyz.shape, chunks=chunks_zyx[::-1], dtype=vol.dtype,
                               zarr_format=2, order="F", compressors=cz3_numcodec(), filters=None)
    v2[...] = xyz
    v3t = zarr.create_array(str(xyz3_path), shape=xyz.shape, chunks=chunks_zyx[::-1], dtype=vol.dtype,
                            filters=[TransposeCodec(order=(2, 1, 0))], serializer=CrackleCodec(), compressors=None)
    v3t[...] = xyz
    old = zarr.create_array(str(old_path), shape=vol.shape, chunks=chunks_zyx, dtype=vol.dtype,
                            serializer=CrackleCodec(x_axis=None), compressors=None)
    old[...] = vol

    size_zyx, size_xyz = _stored_bytes(zyx_path), _stored_bytes(xyz_path)
    assert size_zyx <= 1.02 * size_xyz, (name, size_zyx, size_xyz)
    assert _stored_bytes(xyz3_path) == size_zyx
    # The streams are the same bytes: chunk (i, j, k) of (z, y, x) is chunk (k, j, i) of (x, y, z).
    grid = [-(-s // c) for s, c in zip(vol.shape, chunks_zyx)]
    i, j, k = (g // 2 for g in grid)
    assert (zyx_path / "c" / str(i) / str(j) / str(k)).read_bytes() == (xyz_path / f"{k}.{j}.{i}").read_bytes()
    for path in (zyx_path, xyz_path, xyz3_path, old_path):
        back = zarr.open_array(str(path), mode="r")[...]
        assert np.array_equal(back, xyz if path in (xyz_path, xyz3_path) else vol)
    if name.startswith("ssTEM"):
        # The first release's mapping sliced such a stack along x: the reason for the rule.
        assert _stored_bytes(old_path) > 1.5 * size_zyx


def cz3_numcodec():
    from crackle_codec import Crackle

    return Crackle()


def test_format3_codec_receives_and_returns_views(tmp_path, monkeypatch):
    """Through zarr, the encoder reads each C-ordered chunk's own memory (as F-ordered (x, y, z)) and the
    decoder writes into F-ordered (x, y, z) memory that zarr gets back as the C-ordered (z, y, x) chunk."""
    vol = em_stack((8, 64, 48))
    codec = CrackleCodec()
    spec = _spec((8, 32, 48), vol.dtype)
    chunk = np.ascontiguousarray(vol[:, :32])
    seen = []
    real = cc._crackle.compress

    def spy(volume, *args, **kwargs):  # what the C++ encoder reads
        seen.append(volume)
        return real(volume, *args, **kwargs)

    monkeypatch.setattr(cc._crackle, "compress", spy)
    data = codec._encode_sync(spec.prototype.nd_buffer.from_numpy_array(chunk), spec)
    assert seen[-1].shape == (48, 32, 8) and seen[-1].flags.f_contiguous
    assert seen[-1].ctypes.data == chunk.ctypes.data and np.shares_memory(seen[-1], chunk)

    written = []
    real_into = cc._crackle.decompress_into

    def spy_into(buf, z0, z1, out, threads):
        written.append(out)
        return real_into(buf, z0, z1, out, threads)

    monkeypatch.setattr(cc._crackle, "decompress_into", spy_into)
    back = codec._decode_sync(data, spec).as_numpy_array()
    assert written[-1].shape == (48, 32, 8) and written[-1].flags.f_contiguous
    assert back.flags.c_contiguous and back.ctypes.data == written[-1].ctypes.data
    assert np.array_equal(back, chunk)

    # The same through a whole zarr write and read: every chunk handed over without a copy.
    seen.clear()
    written.clear()
    z = create(tmp_path / "a.zarr", vol.shape, (8, 32, 48), vol.dtype)
    z[...] = vol
    assert len(seen) == 2 and all(v.flags.f_contiguous and not v.flags.owndata for v in seen)
    assert np.array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], vol)
    assert len(written) == 2 and all(w.flags.f_contiguous and w.shape == (48, 32, 8) for w in written)

    # write_array: the encoder reads each chunk straight out of the caller's volume (strided views).
    seen.clear()
    write_array(z, vol, max_workers=1)
    assert len(seen) == 2 and all(np.shares_memory(v, vol) and not v.flags.f_contiguous for v in seen)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], vol)


def test_create_array_and_write_array(tmp_path):
    from crackle_codec import Crackle
    from crackle_codec.zarr3 import create_array, write_array

    vol = em_stack((9, 70, 50))  # no axis a multiple of the chunks: edge chunks everywhere
    z = create_array(str(tmp_path / "a.zarr"), data=vol, chunks=(4, 32, 32), fill_value=0)
    assert z.config.write_empty_chunks and isinstance(z.serializer, CrackleCodec)
    assert np.array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], vol)
    s = create_array(str(tmp_path / "s.zarr"), data=vol, chunks=(4, 16, 16), shards=(8, 32, 32),
                     compressors=ZstdCodec(level=3), markov_model_order=2, max_workers=3)
    assert np.array_equal(zarr.open_array(str(tmp_path / "s.zarr"), mode="r")[...], vol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v2 = zarr.create_array(str(tmp_path / "v2.zarr"), shape=vol.shape, chunks=(4, 32, 32), dtype=vol.dtype,
                               zarr_format=2, compressors=Crackle(), config={"write_empty_chunks": True})
    write_array(v2, vol, max_workers=1)
    assert np.array_equal(zarr.open_array(str(tmp_path / "v2.zarr"), mode="r")[...], vol)
    with pytest.raises(ValueError, match="shape"):
        write_array(v2, vol[:5])
