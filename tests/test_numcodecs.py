"""The numcodecs codec ``crackle_codec.Crackle`` on its own and in Zarr format 2 arrays (zarr 3.x).

The zarr 2.18 side of the same codec is tested in tests/zarr2/ (run by .ci/zarr2.sh).
"""

from __future__ import annotations

import array
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numcodecs
import numpy as np
import pytest

from conftest import crop

import crackle_codec
from crackle_codec import DecodeError
from crackle_codec.numcodecs_codec import Crackle

zarr = pytest.importorskip("zarr")
ZARR3 = int(zarr.__version__.split(".")[0]) >= 3
needs_zarr3 = pytest.mark.skipif(not ZARR3, reason=f"zarr {zarr.__version__} < 3; zarr 2.18 is tested in tests/zarr2")

INT_DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"]


def blobs(shape, dtype="uint32", nlabels=7, seed=0, order="C"):
    """A small segmentation-like volume: random boxes of labels over a background."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    arr = np.zeros(shape, dtype=dtype)
    if dtype == np.bool_:
        values = [True]
    else:
        info = np.iinfo(dtype)
        values = [int(v) for v in rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, nlabels)]
        values += [int(info.max), int(info.min)]
    for v in values:
        lo = [int(rng.integers(0, n)) for n in shape]
        hi = [int(rng.integers(l + 1, n + 1)) for l, n in zip(lo, shape)]
        arr[tuple(slice(l, h) for l, h in zip(lo, hi))] = v
    return np.asfortranarray(arr) if order == "F" else np.ascontiguousarray(arr)


# ------------------------------------------------------------------------------ the codec alone

def test_config_round_trip():
    codec = Crackle(markov_model_order=5, allow_pins=True)
    config = codec.get_config()
    assert config == {"id": "crackle", "markov_model_order": 5, "allow_pins": True, "x_axis": "fastest"}
    assert json.loads(json.dumps(config)) == config
    again = numcodecs.get_codec(config)
    assert isinstance(again, Crackle) and again == codec
    assert Crackle.from_config({"markov_model_order": 5, "allow_pins": True, "x_axis": "fastest"}) == codec
    assert Crackle.from_config(config) == codec
    with pytest.raises(ValueError):
        Crackle.from_config({"id": "zstd"})
    assert Crackle().get_config() == {"id": "crackle", "markov_model_order": 0, "allow_pins": False,
                                      "x_axis": "fastest"}
    assert pickle.loads(pickle.dumps(codec)) == codec
    assert repr(codec) == "Crackle(markov_model_order=5, allow_pins=True)"


def test_config_without_x_axis_is_the_legacy_mapping():
    """Arrays of the first release have no "x_axis": they keep chunk axis 0 as x, and round-trip so."""
    legacy = numcodecs.get_codec({"id": "crackle", "markov_model_order": 2, "allow_pins": False})
    assert legacy.x_axis is None and legacy != Crackle(markov_model_order=2)
    assert legacy.get_config() == {"id": "crackle", "markov_model_order": 2, "allow_pins": False}
    assert repr(legacy) == "Crackle(markov_model_order=2, allow_pins=False, x_axis=None)"
    assert pickle.loads(pickle.dumps(legacy)) == legacy
    arr = blobs((9, 8, 7), "uint16")
    # legacy: the stream is the (9, 8, 7) chunk itself, in its memory order
    stream = legacy.encode(arr)
    assert crackle_codec.header(stream).shape == (9, 8, 7)
    assert crackle_codec.header(Crackle().encode(arr)).shape == (7, 8, 9)
    assert np.array_equal(legacy.decode(stream), arr)
    for order in ("C", "F"):  # into a chunk-shaped out, either memory order: the logical chunk
        out = np.zeros(arr.shape, arr.dtype, order=order)
        legacy.decode(stream, out=out)
        assert np.array_equal(out, arr)


@pytest.mark.parametrize("config", [{"x_axis": "first"}, {"x_axis": 0}, {"x_axis": "FASTEST"},
                                    {"slicing": "z"}])
def test_unknown_configuration_fails_loudly(config):
    """A mapping this version does not know must not be read with another one."""
    with pytest.raises(ValueError, match="x_axis|newer crackle_codec"):
        Crackle.from_config({"id": "crackle", "markov_model_order": 0, "allow_pins": False, **config})


@pytest.mark.parametrize("kwargs", [{"markov_model_order": -1}, {"markov_model_order": 16},
                                    {"markov_model_order": 1.5}, {"markov_model_order": True}])
def test_bad_markov_order(kwargs):
    with pytest.raises(ValueError):
        Crackle(**kwargs)


def test_bad_allow_pins():
    with pytest.raises(TypeError):
        Crackle(allow_pins="yes")


@pytest.mark.parametrize("dtype", INT_DTYPES + ["bool"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(13, 9, 6), (17, 11), (23,), (1, 8, 9, 5), (7, 1, 6, 1, 5)])
def test_encode_decode_all_ranks(dtype, order, shape):
    arr = blobs(shape, dtype, order=order)
    codec = Crackle()
    stream = codec.encode(arr)
    assert isinstance(stream, bytes)
    stored_dtype = np.uint8 if dtype == "bool" else np.dtype(dtype)
    flat_order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
    in_memory = arr.reshape(-1, order=flat_order)  # the chunk's elements in its memory order

    # The stream is the chunk's memory: x is its fastest axis, z its slowest (length-1 axes dropped).
    long_axes = [n for n in shape if n != 1]
    fastest_first = long_axes[::-1] if flat_order == "C" else long_axes
    assert crackle_codec.header(stream).shape == tuple(fastest_first + [1] * (3 - len(fastest_first)))

    # Without out: the elements in memory order, as an F-ordered (sx, sy, sz) array (zarr reshapes).
    decoded = codec.decode(stream)
    assert decoded.dtype == stored_dtype and decoded.flags.f_contiguous
    assert np.array_equal(decoded.reshape(-1, order="A"), in_memory.astype(stored_dtype))
    assert np.array_equal(decoded.reshape(-1, order="A").reshape(shape, order=flat_order), arr)

    # With out shaped like the chunk: its memory gets the elements in the chunk's memory order.
    out = np.zeros(arr.shape, dtype=arr.dtype, order=flat_order)
    assert codec.decode(stream, out=out) is out
    assert np.array_equal(out, arr)
    # ... whatever its shape and order (numcodecs semantics: out is memory)
    other = "F" if flat_order == "C" else "C"
    out = np.zeros(arr.shape[::-1] + (1,), dtype=arr.dtype, order=other)
    codec.decode(stream, out=out)
    assert np.array_equal(out.reshape(-1, order="A"), in_memory)

    # With a flat byte buffer: the elements in the chunk's memory order.
    raw = bytearray(arr.nbytes)
    codec.decode(stream, out=raw)
    expect = np.ascontiguousarray(in_memory).view(np.uint8)
    assert bytes(raw) == expect.tobytes()


def test_encode_and_decode_make_no_copy(monkeypatch):
    """A C-ordered (z, y, x) chunk goes to compress as its own memory, seen as F-ordered (x, y, z),
    and decode writes straight into zarr's chunk-shaped destination."""
    import crackle_codec.layout as layout

    chunk = blobs((6, 20, 30), "uint32")  # (z, y, x), C order
    seen = []
    real = layout.compress

    def spy(volume, **kwargs):
        seen.append(volume)
        return real(volume, **kwargs)

    monkeypatch.setattr(layout, "compress", spy)
    stream = Crackle().encode(chunk)
    (volume,) = seen
    assert volume.shape == (30, 20, 6) and volume.flags.f_contiguous
    assert np.shares_memory(volume, chunk) and volume.ctypes.data == chunk.ctypes.data
    assert crackle_codec.header(stream).order == "F"

    written = []
    real_into = crackle_codec._crackle.decompress_into

    def spy_into(buf, z0, z1, out, threads):
        written.append(out)
        return real_into(buf, z0, z1, out, threads)

    monkeypatch.setattr(crackle_codec._crackle, "decompress_into", spy_into)
    dest = np.zeros_like(chunk)
    Crackle().decode(stream, out=dest)
    (target,) = written
    assert np.shares_memory(target, dest) and target.ctypes.data == dest.ctypes.data
    assert target.shape == (30, 20, 6) and target.flags.f_contiguous
    assert np.array_equal(dest, chunk)


@pytest.mark.parametrize("options", [dict(markov_model_order=5), dict(allow_pins=True),
                                     dict(markov_model_order=3, allow_pins=True)])
def test_options_round_trip(options):
    arr = crop("ovule_cells_100", (64, 64, 48))
    codec = Crackle(**options)
    assert np.array_equal(codec.decode(codec.encode(arr)).reshape(arr.shape, order="A"), arr)  # arr is F


def test_input_buffer_types():
    arr = blobs((10, 11, 12), "uint16")
    stream = Crackle().encode(arr)
    for buf in (stream, bytearray(stream), memoryview(stream), np.frombuffer(stream, np.uint8),
                np.frombuffer(stream, np.uint8).reshape(1, -1), np.frombuffer(stream, np.uint8)[::1],
                array.array("B", stream)):
        assert np.array_equal(Crackle().decode(buf).reshape(-1, order="A"), arr.reshape(-1))


@pytest.mark.parametrize("buf", [lambda s: array.array("b", s), lambda s: np.frombuffer(s, np.int8),
                                 lambda s: np.frombuffer(s[:len(s) // 4 * 4], np.uint32),
                                 lambda s: memoryview(s).cast("b"), lambda s: 12345])
def test_decode_non_byte_input_raises_type_error(buf):
    stream = Crackle().encode(blobs((10, 11, 12), "uint16"))
    with pytest.raises(TypeError):
        Crackle().decode(buf(stream))


def test_out_of_wrong_size_raises_decode_error():
    arr = blobs((10, 11, 12))
    stream = Crackle().encode(arr)
    for out in (np.zeros((10, 11, 13), dtype=arr.dtype), np.zeros(10 * 11 * 11, dtype=arr.dtype),
                bytearray(arr.nbytes + 4), bytearray(arr.nbytes - 4)):
        with pytest.raises(DecodeError, match="voxels"):
            Crackle().decode(stream, out=out)


@pytest.mark.parametrize("stored,out_dtype", [("uint64", "float64"), ("uint32", "int8"), ("uint32", "int32"),
                                              ("int16", "uint16"), ("uint8", "uint16"), ("uint16", "uint8"),
                                              ("uint32", ">u4")])
def test_out_of_another_dtype_raises_type_error(stored, out_dtype):
    arr = blobs((8, 7, 6), stored)
    stream = Crackle().encode(arr)
    out = np.full(arr.shape, 99, dtype=out_dtype)
    with pytest.raises(TypeError, match="cannot decode"):
        Crackle().decode(stream, out=out)
    assert np.all(out == 99), "nothing is written on error"


def test_out_of_object_dtype_raises_type_error():
    from numcodecs.tests.common import check_err_decode_object_buffer, check_err_encode_object_buffer

    check_err_decode_object_buffer(Crackle())
    check_err_encode_object_buffer(Crackle())
    stream = Crackle().encode(blobs((4, 5, 6), "int64"))
    with pytest.raises(TypeError):
        Crackle().decode(stream, out=np.empty((4, 5, 6), dtype=object))


def test_out_bool_and_non_contiguous():
    arr = blobs((8, 7, 6), "bool")
    stream = Crackle().encode(arr)
    out = np.zeros(arr.shape, bool)
    Crackle().decode(stream, out=out)
    assert np.array_equal(out, arr)
    with pytest.raises(ValueError, match="contiguous"):
        Crackle().decode(stream, out=np.zeros((16, 7, 6), bool)[::2])
    frozen = np.zeros(arr.shape, bool)
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        Crackle().decode(stream, out=frozen)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 4), np.float32), np.zeros((4, 4), np.float64),
                                 np.zeros(3, np.complex64), np.array(["a", "b"])])
def test_encode_non_integer_raises_type_error(bad):
    with pytest.raises(TypeError, match="integer"):
        Crackle().encode(bad)


def test_encode_bytes_raises_type_error():
    with pytest.raises(TypeError):
        Crackle().encode(b"\x00" * 64)


def test_encode_big_endian_raises_type_error():
    with pytest.raises(TypeError, match="byte-order"):
        Crackle().encode(np.zeros((4, 4, 4), dtype=">u4"))


def test_encode_too_many_long_axes_raises():
    with pytest.raises(ValueError, match="at most 3 axes"):
        Crackle().encode(np.zeros((2, 3, 4, 5), dtype=np.uint8))


def test_decode_corrupt_stream_raises_decode_error():
    arr = blobs((20, 20, 20))
    stream = bytearray(Crackle().encode(arr))
    with pytest.raises(DecodeError):
        Crackle().decode(bytes(stream[: len(stream) // 2]))
    stream[len(stream) // 2] ^= 0xFF
    with pytest.raises(DecodeError):
        Crackle().decode(bytes(stream))
    with pytest.raises(DecodeError):
        Crackle().decode(b"not a crackle stream at all")


def test_numcodecs_registry_knows_crackle():
    assert numcodecs.registry.codec_registry["crackle"] is Crackle


# --------------------------------------------------------------------- in zarr format 2 arrays

def open_v2(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zarr.open(str(path), mode="w", compressor=Crackle(), zarr_format=2, **kwargs)


@needs_zarr3
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("name,chunks", [("flyem_medulla_ws", (48, 40, 36)),
                                         ("atlas_glasser_mni1mm", (64, 50, 70)),
                                         ("nuclei2d_stardist", (100, 120))])
def test_zarr_v2_real_volume_round_trip(tmp_path, order, name, chunks):
    """Edge chunks on every axis (no shape is a multiple of the chunks), both memory orders."""
    vol = crop(name, (150, 130, 110))
    assert all(s % c for s, c in zip(vol.shape, chunks))
    z = open_v2(tmp_path / "a.zarr", shape=vol.shape, chunks=chunks, dtype=vol.dtype, order=order)
    z[...] = vol
    back = zarr.open(str(tmp_path / "a.zarr"), mode="r")
    assert isinstance(back.metadata.compressor, Crackle)
    assert back.metadata.order == order
    got = back[...]
    assert got.dtype == vol.dtype and np.array_equal(got, vol)
    # partial region reads across chunk borders
    sel = tuple(slice(s // 3, s - 5) for s in vol.shape)
    assert np.array_equal(back[sel], vol[sel])
    meta = json.loads((tmp_path / "a.zarr" / ".zarray").read_text())
    assert meta["compressor"] == {"id": "crackle", "markov_model_order": 0, "allow_pins": False,
                                  "x_axis": "fastest"}


@needs_zarr3
@pytest.mark.parametrize("dtype", INT_DTYPES + ["bool"])
def test_zarr_v2_dtypes_and_fill_value(tmp_path, dtype):
    vol = blobs((40, 33, 21), dtype, seed=3)
    fill = True if dtype == "bool" else (-5 if dtype.startswith("int") else 7)
    z = open_v2(tmp_path / "a.zarr", shape=vol.shape, chunks=(16, 16, 16), dtype=dtype, fill_value=fill)
    z[:20, :, :] = vol[:20]  # the rest is never written: it reads as the fill value
    back = zarr.open(str(tmp_path / "a.zarr"), mode="r")
    expect = vol.copy()
    expect[20:] = fill
    got = back[...]
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, expect)


@needs_zarr3
def test_zarr_v2_four_dimensional_chunks(tmp_path):
    """Chunks of rank 4 with a length-1 axis (e.g. a channel axis) are stored squeezed."""
    vol = np.stack([blobs((30, 20, 10), "uint16", seed=s) for s in range(3)])
    z = open_v2(tmp_path / "a.zarr", shape=vol.shape, chunks=(1, 16, 16, 8), dtype=vol.dtype)
    z[...] = vol
    assert np.array_equal(zarr.open(str(tmp_path / "a.zarr"), mode="r")[...], vol)


@needs_zarr3
def test_zarr_v2_float_array_raises(tmp_path):
    z = open_v2(tmp_path / "a.zarr", shape=(8, 8, 8), chunks=(4, 4, 4), dtype="float32")
    with pytest.raises(TypeError, match="integer"):
        z[...] = np.ones((8, 8, 8), np.float32)


@needs_zarr3
def test_zarr_v2_corrupt_chunk_raises_decode_error(tmp_path):
    vol = blobs((32, 32, 32))
    z = open_v2(tmp_path / "a.zarr", shape=vol.shape, chunks=(16, 16, 16), dtype=vol.dtype)
    z[...] = vol
    chunk = tmp_path / "a.zarr" / "0.0.0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x5A
    chunk.write_bytes(bytes(data))
    (tmp_path / "a.zarr" / "1.1.1").write_bytes(b"garbage")
    back = zarr.open(str(tmp_path / "a.zarr"), mode="r")
    with pytest.raises(DecodeError):
        back[:16, :16, :16]
    with pytest.raises(DecodeError):
        back[16:, 16:, 16:]
    assert np.array_equal(back[16:, :16, :16], vol[16:, :16, :16])  # other chunks still read


@needs_zarr3
def test_zarr_v2_open_in_fresh_process(tmp_path):
    """The numcodecs.codecs entry point lets zarr open the array without importing crackle_codec."""
    vol = crop("flyem_medulla_ws", (70, 60, 50))
    z = open_v2(tmp_path / "a.zarr", shape=vol.shape, chunks=(32, 32, 32), dtype=vol.dtype, order="F")
    z[...] = vol
    script = textwrap.dedent(f"""
        import sys, warnings
        warnings.simplefilter("ignore")
        import zarr, numcodecs
        assert "crackle_codec" not in sys.modules
        a = zarr.open({str(tmp_path / "a.zarr")!r}, mode="r")[...]
        assert "crackle_codec" in sys.modules
        print(a.dtype, a.shape == {vol.shape!r}, int(a.astype("uint64").sum()))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(vol.dtype), "True", str(int(vol.astype("uint64").sum()))]


def test_import_does_not_need_zarr():
    script = "import sys, crackle_codec; from crackle_codec import numcodecs_codec; " \
             "from crackle_codec.zarr import analytics, pyramids, queries, rewrites, sources; " \
             "print('zarr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
