"""Concurrency: 16 threads encoding and decoding 1,000 different chunks at once give bit-identical
results to a serial run, through the public API and through zarr arrays (v3 serializer and v2
numcodecs compressor).

Chunks are 32 x 32 x 8 crops of the real connectomics volume (../shared/data) at 1,000 offsets,
or synthetic blobs when that folder is absent (the test still runs, on other data). Options vary
per chunk (FLAT/PINS, markov orders 0..5, the encoder's own threads 1 or 2) so that the threads
mix every code path; a barrier releases all 16 threads at the same moment.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import crackle_codec as cc
from fuzz import seeds

THREADS = 16
CHUNK = (32, 32, 8)
GRID = (10, 10, 10)  # 1,000 chunks
SHAPE = tuple(c * g for c, g in zip(CHUNK, GRID))


def _volume() -> np.ndarray:
    path = seeds.DATA_DIR / "connectomics_512.npz"
    if path.is_file():
        with np.load(path) as npz:
            vol = npz["labels"]
        out = np.asfortranarray(vol[96:96 + SHAPE[0], 96:96 + SHAPE[1], 200:200 + SHAPE[2]])
        del vol
    else:
        rng = np.random.default_rng(7)  # synthetic: boxes of labels over a background
        out = np.zeros(SHAPE, np.uint32, order="F")
        for v in range(1, 4000):
            lo = [int(rng.integers(0, n)) for n in SHAPE]
            size = [int(rng.integers(1, 24)) for _ in SHAPE]
            out[tuple(slice(a, a + s) for a, s in zip(lo, size))] = v
    # Make every chunk different: a few voxels of a label of its own, at a place of its own.
    n = 0
    for i in range(GRID[0]):
        for j in range(GRID[1]):
            for k in range(GRID[2]):
                x, y = i * CHUNK[0] + n % 29, j * CHUNK[1] + (n // 29) % 29
                out[x:x + 3, y:y + 2, k * CHUNK[2] + n % 7] = 4_000_000_000 - n
                n += 1
    return out


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return _volume()


def _chunks(volume: np.ndarray) -> list[np.ndarray]:
    out = []
    for i in range(GRID[0]):
        for j in range(GRID[1]):
            for k in range(GRID[2]):
                sl = tuple(slice(n * c, (n + 1) * c) for n, c in zip((i, j, k), CHUNK))
                out.append(np.asfortranarray(volume[sl]) if (i + j + k) % 2 else np.ascontiguousarray(volume[sl]))
    return out


def _options(i: int) -> dict:
    return {"allow_pins": i % 3 == 1, "markov_model_order": (0, 0, 1, 3, 5)[i % 5], "parallel": 1 + (i % 7 == 0)}


def _work(i: int, chunk: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray, bytes]:
    """Everything one task does through the public API, in a fixed order."""
    opts = _options(i)
    stream = cc.compress(chunk, **opts)
    full = cc.decompress(stream, parallel=opts["parallel"])
    part = cc.decompress(stream, z=slice(2, 6))
    cc.verify(stream)
    labels = cc.labels(stream)
    assert cc.num_labels(stream) == len(labels)
    remapped = cc.remap(stream, {int(v): int(v) + 1 for v in labels})
    return stream, full, part, labels, remapped


def test_public_api_16_threads_match_serial(volume):
    chunks = _chunks(volume)
    assert len(chunks) == 1000 and len({c.tobytes() for c in chunks}) == 1000, "chunks must differ"
    serial = [_work(i, c) for i, c in enumerate(chunks)]
    for c, (stream, full, part, _, _) in zip(chunks, serial):
        np.testing.assert_array_equal(full, c)
        np.testing.assert_array_equal(part, c[:, :, 2:6])

    barrier = threading.Barrier(THREADS)
    per_thread = [list(range(t, len(chunks), THREADS)) for t in range(THREADS)]

    def run(indices):
        barrier.wait()
        # interleave: encode/decode of different chunks in every thread, half in reverse order
        order = indices if indices[0] % 2 else indices[::-1]
        return {i: _work(i, chunks[i]) for i in order}

    results: dict[int, tuple] = {}
    with ThreadPoolExecutor(THREADS) as ex:
        for part in ex.map(run, per_thread):
            results.update(part)
    assert len(results) == len(chunks)
    for i, want in enumerate(serial):
        got = results[i]
        assert got[0] == want[0], f"chunk {i}: stream differs from the serial run"
        assert got[4] == want[4], f"chunk {i}: remapped stream differs from the serial run"
        for a, b in zip(got[1:4], want[1:4]):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), f"chunk {i} differs"
            assert a.flags.f_contiguous == b.flags.f_contiguous


def test_concurrent_decode_errors_stay_per_call(volume):
    """Half the threads decode corrupted streams while the others decode good ones: every good
    call returns the right volume, every bad call raises DecodeError, nothing leaks across."""
    chunks = _chunks(volume)[:200]
    streams = [cc.compress(c, markov_model_order=i % 3) for i, c in enumerate(chunks)]
    bad = []
    for s in streams:
        b = bytearray(s)
        b[len(b) // 2] ^= 0x10
        bad.append(bytes(b))
    barrier = threading.Barrier(THREADS)

    def run(t):
        barrier.wait()
        errors = 0
        for i in range(t, len(streams), THREADS):
            np.testing.assert_array_equal(cc.decompress(streams[i], parallel=1 + t % 2), chunks[i])
            try:
                cc.decompress(bad[i], parallel=1 + (t + 1) % 2)
            except cc.DecodeError:
                errors += 1
        return errors

    with ThreadPoolExecutor(THREADS) as ex:
        counts = list(ex.map(run, range(THREADS)))
    assert sum(counts) > 0.9 * len(bad)


def _zarr_arrays(kind: str):
    zarr = pytest.importorskip("zarr", reason="zarr is not installed")
    store = zarr.storage.MemoryStore()
    if kind == "v3":
        try:
            from crackle_codec.zarr3 import CrackleCodec
        except ImportError as e:  # pragma: no cover
            pytest.skip(f"crackle_codec.zarr3.CrackleCodec is not importable yet: {e}")
        arr = zarr.create_array(store=store, shape=SHAPE, chunks=CHUNK, dtype="uint32",
                                serializer=CrackleCodec(markov_model_order=2), compressors=None, fill_value=0)
    else:
        try:
            from crackle_codec.numcodecs_codec import Crackle
        except ImportError as e:  # pragma: no cover
            pytest.skip(f"crackle_codec.numcodecs_codec.Crackle is not importable yet: {e}")
        arr = zarr.create_array(store=store, shape=SHAPE, chunks=CHUNK, dtype="uint32", zarr_format=2,
                                compressors=Crackle(allow_pins=True), fill_value=0)
    return arr, store


def _chunk_bytes(store) -> dict[str, bytes]:
    return {k: v.to_bytes() for k, v in store._store_dict.items() if not k.endswith(("zarr.json", ".zarray", ".zattrs"))}


@pytest.mark.parametrize("kind", ["v3", "v2"])
def test_zarr_16_threads_match_serial(volume, kind):
    serial, serial_store = _zarr_arrays(kind)
    regions = [tuple(slice(n * c, (n + 1) * c) for n, c in zip((i, j, k), CHUNK))
               for i in range(GRID[0]) for j in range(GRID[1]) for k in range(GRID[2])]
    for r in regions:
        serial[r] = volume[r]
    conc, conc_store = _zarr_arrays(kind)
    barrier = threading.Barrier(THREADS)

    def write(t):
        barrier.wait()
        for r in regions[t::THREADS]:
            conc[r] = volume[r]

    def read(t):
        barrier.wait()
        return {n: conc[regions[n]] for n in range(t, len(regions), THREADS)}

    with ThreadPoolExecutor(THREADS) as ex:
        list(ex.map(write, range(THREADS)))
    a, b = _chunk_bytes(serial_store), _chunk_bytes(conc_store)
    assert len(a) == 1000 and a.keys() == b.keys()
    diff = [k for k in a if a[k] != b[k]]
    assert not diff, f"{len(diff)} chunks differ from the serial run, e.g. {diff[:3]}"
    with ThreadPoolExecutor(THREADS) as ex:
        parts = {}
        for p in ex.map(read, range(THREADS)):
            parts.update(p)
    for n, r in enumerate(regions):
        np.testing.assert_array_equal(parts[n], volume[r])
    np.testing.assert_array_equal(serial[:], volume)
