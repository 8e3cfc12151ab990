"""The numcodecs ``Crackle`` codec and the chunk queries with zarr 2.18 (run by .ci/zarr2.sh).

These tests need zarr 2.x; under zarr 3 they skip (the same features are tested there by
tests/test_numcodecs.py and tests/test_chunk_queries.py). Self-contained: no conftest helpers, so
that .ci/zarr2.sh can run them in a small environment.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) != 2:
    pytest.skip(f"zarr {zarr.__version__} is installed; these tests need zarr 2.18 (run .ci/zarr2.sh)",
                allow_module_level=True)

import numcodecs  # noqa: E402

import crackle_codec  # noqa: E402
from crackle_codec.zarr import chunk_labels, find_label, label_index, mask_array, remap_array, renumber_array  # noqa: E402
from crackle_codec.numcodecs_codec import Crackle  # noqa: E402

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
GOLDEN_ZARR = Path(__file__).resolve().parents[1] / "data" / "golden_zarr"
INT_DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"]


def load(name, shape):
    """A Fortran-ordered centred crop of a real volume from ../shared/data; skips when absent."""
    path = DATA_DIR / f"{name}.npz"
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared/data is absent in a fresh clone)")
    with np.load(path) as npz:
        vol = npz["labels"]
    shape = tuple(min(s, n) for s, n in zip(shape, vol.shape))
    offset = tuple((n - s) // 2 for s, n in zip(shape, vol.shape))
    return np.asfortranarray(vol[tuple(slice(o, o + s) for o, s in zip(offset, shape))])


def blobs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    arr = np.zeros(shape, dtype=dtype)
    values = [True] if dtype == "bool" else [int(v) for v in rng.integers(-100 if dtype.startswith("int") else 0, 100, 6)]
    for v in values:
        lo = [int(rng.integers(0, n)) for n in shape]
        hi = [int(rng.integers(l + 1, n + 1)) for l, n in zip(lo, shape)]
        arr[tuple(slice(l, h) for l, h in zip(lo, hi))] = v
    return arr


def truth(vol, chunks):
    grid = [range(-(-s // c)) for s, c in zip(vol.shape, chunks)]
    return {c: np.unique(vol[tuple(slice(i * k, (i + 1) * k) for i, k in zip(c, chunks))])
            for c in itertools.product(*grid)}


@pytest.fixture
def decode_calls(monkeypatch):
    """Records, for every Crackle.decode call, whether zarr passed ``out``."""
    calls = []
    real = Crackle.decode

    def spy(self, buf, out=None):
        calls.append(out is not None)
        return real(self, buf, out)

    monkeypatch.setattr(Crackle, "decode", spy)
    return calls


# ------------------------------------------------------------------------------------- codec

@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("name,chunks", [("flyem_medulla_ws", (48, 40, 36)), ("atlas_glasser_mni1mm", (64, 50, 70)),
                                         ("nuclei2d_stardist", (100, 120))])
def test_real_volume_round_trip(tmp_path, order, name, chunks):
    vol = load(name, (150, 130, 110))
    z = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=vol.shape, chunks=chunks, dtype=vol.dtype,
                  compressor=Crackle(), order=order)
    z[...] = vol
    back = zarr.open(str(tmp_path / "a.zarr"), mode="r")
    assert isinstance(back.compressor, Crackle) and back.order == order
    assert np.array_equal(back[...], vol)
    sel = tuple(slice(s // 3, s - 5) for s in vol.shape)
    assert np.array_equal(back[sel], vol[sel])
    meta = json.loads((tmp_path / "a.zarr" / ".zarray").read_text())
    assert meta["compressor"] == {"id": "crackle", "markov_model_order": 0, "allow_pins": False,
                                  "x_axis": "fastest"}


@pytest.mark.parametrize("order,shape", [("C", (64, 16, 16)), ("F", (16, 16, 64))])
@pytest.mark.parametrize("dtype", ["uint32", "int8", "bool"])
def test_decode_into_out(tmp_path, decode_calls, order, shape, dtype):
    """zarr 2.18 decodes whole chunks straight into the result (``decode(buf, out)``) when it can."""
    vol = blobs(shape, dtype, seed=1)
    vol = np.asfortranarray(vol) if order == "F" else vol
    z = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=shape, chunks=(16, 16, 16), dtype=dtype,
                  compressor=Crackle(), order=order)
    z[...] = vol
    decode_calls.clear()
    back = zarr.open(str(tmp_path / "a.zarr"), mode="r")
    got = back[...]
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, vol)
    assert decode_calls and all(decode_calls), "zarr did not pass out="
    decode_calls.clear()
    assert np.array_equal(back[:16, :16, :16], vol[:16, :16, :16])
    assert decode_calls == [True]
    decode_calls.clear()
    assert np.array_equal(back[3:9, :, 2], vol[3:9, :, 2])  # partial chunk: decode without out
    assert decode_calls == [False]


@pytest.mark.parametrize("dtype", INT_DTYPES + ["bool"])
def test_dtypes_fill_value_and_missing_chunks(tmp_path, dtype):
    vol = blobs((40, 33, 21), dtype, seed=3)
    fill = True if dtype == "bool" else (-5 if dtype.startswith("int") else 7)
    z = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=vol.shape, chunks=(16, 16, 16), dtype=dtype,
                  compressor=Crackle(markov_model_order=2), fill_value=fill)
    z[:20] = vol[:20]
    expect = vol.copy()
    expect[20:] = fill
    got = zarr.open(str(tmp_path / "a.zarr"), mode="r")[...]
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, expect)


def test_float_array_raises(tmp_path):
    z = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=(8, 8, 8), chunks=(4, 4, 4), dtype="f4",
                  compressor=Crackle())
    with pytest.raises(TypeError, match="integer"):
        z[...] = 1.0


def test_corrupt_chunk_raises_decode_error(tmp_path):
    vol = blobs((32, 32, 32), "uint32")
    z = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=vol.shape, chunks=(16, 16, 16), dtype="uint32",
                  compressor=Crackle())
    z[...] = vol
    chunk = tmp_path / "a.zarr" / "0.0.0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x5A
    chunk.write_bytes(bytes(data))
    back = zarr.open(str(tmp_path / "a.zarr"), mode="r")
    with pytest.raises(crackle_codec.DecodeError):
        back[...]
    assert np.array_equal(back[16:, 16:, 16:], vol[16:, 16:, 16:])


def test_open_in_fresh_process(tmp_path):
    vol = load("flyem_medulla_ws", (70, 60, 50))
    z = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=vol.shape, chunks=(32, 32, 32), dtype=vol.dtype,
                  compressor=Crackle(), order="F")
    z[...] = vol
    script = textwrap.dedent(f"""
        import sys
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


@pytest.mark.parametrize("name", ["v2_C_u16", "v2_F_u32_filter"])
def test_golden_arrays_of_the_first_release(name, decode_calls):
    """The frozen format-2 arrays of tests/data/golden_zarr (legacy axis mapping) read bit-exact."""
    import base64

    meta = json.loads((GOLDEN_ZARR / f"{name}.json").read_text())
    dtype = np.dtype(meta["dtype"])
    want = np.frombuffer(base64.b64decode(meta["values_b64"]), dtype.newbyteorder("<")).reshape(meta["shape"])
    z = zarr.open(str(GOLDEN_ZARR / name), mode="r")
    assert np.array_equal(z[...], want)
    assert decode_calls
    assert np.array_equal(z[1:-1, 2, :], want[1:-1, 2, :])
    assert chunk_labels(z)[(0, 0, 0)].tolist() == np.unique(want[:8, :8, :4]).tolist()


# ------------------------------------------------------------------------------ chunk queries

@pytest.mark.parametrize("layout", ["compressor", "filter+zstd"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_chunk_queries_and_remap(tmp_path, layout, order):
    vol = load("flyem_medulla_ws", (75, 66, 57)).copy()
    fill = int(vol.max()) + 5
    vol[:16, :16, :16] = fill
    chunks = (16, 16, 16)
    codecs = dict(compressor=Crackle()) if layout == "compressor" else \
        dict(filters=[Crackle()], compressor=numcodecs.Zstd(level=3))
    z = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=vol.shape, chunks=chunks, dtype=vol.dtype,
                  fill_value=fill, order=order, write_empty_chunks=False, **codecs)
    z[...] = vol
    assert "0.0.0" not in os.listdir(tmp_path / "a.zarr")
    expect = truth(vol, chunks)
    got = chunk_labels(z)
    assert list(got) == list(expect) and all(np.array_equal(got[c], expect[c]) for c in expect)
    index = label_index(z)
    assert list(index) == np.unique(vol).tolist()
    label = int(vol[40, 40, 40])
    assert find_label(z, label) == index[label] == sorted(c for c, v in expect.items() if label in v)
    assert find_label(z, fill) == index[fill]

    # exact after shrinking (stale labels beyond the new edge)
    z.resize(61, 37, 50)
    small = vol[:61, :37, :50]
    got = chunk_labels(z)
    expect = truth(small, chunks)
    assert list(got) == list(expect) and all(np.array_equal(got[c], expect[c]) for c in expect)

    # remap: a merge, then the fill value
    holding = find_label(z, label)
    assert holding and remap_array(z, {label: 3}) >= len(holding)  # stale padding may hold it too
    small = np.where(small == label, 3, small)
    assert np.array_equal(zarr.open(str(tmp_path / "a.zarr"), mode="r")[...], small)
    remap_array(z, {fill: 1})
    assert np.array_equal(zarr.open(str(tmp_path / "a.zarr"), mode="r")[...], np.where(small == fill, 1, small))
    with pytest.raises(KeyError):
        remap_array(z, {1: 2}, preserve_missing_labels=False)

    # whole-array rewrites: renumber into a new array (created with zarr 2.18), mask in place
    small = np.where(small == fill, 1, small)
    distinct, inverse = np.unique(small, return_inverse=True)
    mapping = renumber_array(z, dest=str(tmp_path / "r.zarr"))
    assert mapping == {int(v): i for i, v in enumerate(distinct.tolist())}
    r = zarr.open(str(tmp_path / "r.zarr"), mode="r")
    assert r.dtype == (np.uint8 if distinct.size <= 256 else np.uint16) and r.order == order
    assert r.compressor == z.compressor and r.filters == z.filters
    assert np.array_equal(r[...], inverse.reshape(small.shape))
    masked = [int(v) for v in distinct[::2]]
    mask_array(z, masked, value=2)
    assert np.array_equal(zarr.open(str(tmp_path / "a.zarr"), mode="r")[...], np.where(np.isin(small, masked), 2, small))


def test_chunks_are_read_concurrently(tmp_path):
    """chunk_labels reads a zarr 2 store on a thread pool: several reads are in flight at once."""
    import threading
    import time
    from collections.abc import MutableMapping

    class SlowStore(MutableMapping):
        def __init__(self):
            self.data, self.lock, self.in_flight, self.most = {}, threading.Lock(), 0, 0

        def __getitem__(self, key):
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            try:
                time.sleep(0.005)
                return self.data[key]
            finally:
                with self.lock:
                    self.in_flight -= 1

        def __setitem__(self, key, value):
            self.data[key] = value

        def __delitem__(self, key):
            del self.data[key]

        def __iter__(self):
            return iter(self.data)

        def __len__(self):
            return len(self.data)

    vol = blobs((64, 64, 64), "uint32", seed=5)
    store = SlowStore()
    z = zarr.open(store, mode="w", shape=vol.shape, chunks=(8, 8, 32), dtype="uint32", compressor=Crackle())
    z[...] = vol
    got = chunk_labels(z)
    expect = truth(vol, (8, 8, 32))
    assert list(got) == list(expect) and all(np.array_equal(got[c], expect[c]) for c in expect)
    assert store.most > 1
