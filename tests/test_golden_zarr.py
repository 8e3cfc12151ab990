"""Frozen Zarr arrays written by the first release of the codecs (tests/data/make_golden_zarr.py).

Their codec configurations have no ``"x_axis"`` field: chunk axis 0 is Crackle's x (the legacy
mapping of docs/zarr-codec-spec.md). Every release must keep reading them exactly, through every
path: whole reads, region reads (partial decoding), the chunk queries and ``remap_array``.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:
    pytest.skip("these tests read format-3 arrays with zarr 3 (tests/zarr2 reads the format-2 ones)",
                allow_module_level=True)

import crackle_codec  # noqa: E402
from crackle_codec import chunk_labels, find_label, remap_array  # noqa: E402

GOLDEN_ZARR = Path(__file__).resolve().parent / "data" / "golden_zarr"
NAMES = sorted(p.stem for p in GOLDEN_ZARR.glob("*.json"))

warnings.filterwarnings("ignore", message=".*sharding_indexed.*")


def expected(name: str) -> np.ndarray:
    meta = json.loads((GOLDEN_ZARR / f"{name}.json").read_text())
    dtype = np.dtype(meta["dtype"])
    raw = base64.b64decode(meta["values_b64"])
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(meta["shape"]).astype(dtype)


def test_golden_set_present():
    assert set(NAMES) == {"v2_C_u16", "v2_F_u32_filter", "v3_u32", "v3_sharded_i16", "v3_2d_u8"}
    for name in NAMES:
        files = [p for p in (GOLDEN_ZARR / name).rglob("*") if p.is_file()]
        assert files and sum(p.stat().st_size for p in files) < 8192, "keep golden arrays tiny"
        meta_file = GOLDEN_ZARR / name / (".zarray" if name.startswith("v2") else "zarr.json")
        assert '"x_axis"' not in meta_file.read_text(), "golden arrays stand for the legacy mapping"


@pytest.mark.parametrize("name", NAMES)
def test_golden_array_reads_bit_exact(name):
    want = expected(name)
    z = zarr.open_array(str(GOLDEN_ZARR / name), mode="r")
    got = z[...]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    # Region reads: partial chunks, single slices along each axis (the z-slice partial decode).
    for axis in range(want.ndim):
        index = [slice(None)] * want.ndim
        index[axis] = want.shape[axis] - 2
        np.testing.assert_array_equal(z[tuple(index)], want[tuple(index)])
    box = tuple(slice(1, s - 1, 2) for s in want.shape)
    np.testing.assert_array_equal(z[box], want[box])
    # Both memory orders give the same logical array.
    if z.metadata.zarr_format == 3:
        zf = zarr.open_array(str(GOLDEN_ZARR / name), mode="r", config={"order": "F"})
        np.testing.assert_array_equal(zf[...], want)


def _truth(vol, chunks):
    grid = [range(-(-s // c)) for s, c in zip(vol.shape, chunks)]
    return {c: np.unique(vol[tuple(slice(i * k, (i + 1) * k) for i, k in zip(c, chunks))])
            for c in itertools.product(*grid)}


@pytest.mark.parametrize("name", NAMES)
def test_golden_array_chunk_queries_and_remap(tmp_path, name):
    want = expected(name)
    path = tmp_path / name
    shutil.copytree(GOLDEN_ZARR / name, path)
    z = zarr.open_array(str(path), mode="r+")
    truth = _truth(want, z.chunks)
    got = chunk_labels(z)
    assert list(got) == list(truth) and all(np.array_equal(got[c], truth[c]) for c in truth)
    label = int(want.flat[want.size // 2])
    assert find_label(z, label) == sorted(c for c, v in truth.items() if label in v)

    # Merge a label, then change the fill value: never-written chunks become constant chunks,
    # which must be written with the array's own (legacy) axis mapping.
    fill = want.dtype.type(z.fill_value)
    other = want.dtype.type(7)
    assert remap_array(z, {label: int(other)}) >= 1
    want = np.where(want == label, other, want)
    np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[...], want)

    # Writing into it extends it with its own mapping: chunk axis 0 is still Crackle's x.
    box = (slice(1, 6),) * want.ndim
    z[box] = 42
    want[box] = 42
    np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[...], want)
    if name == "v3_u32":
        assert crackle_codec.header((path / "c" / "0" / "0" / "0").read_bytes()).shape == tuple(z.chunks)
    new_fill = want.dtype.type(9)
    remap_array(z, {int(fill): int(new_fill)})
    want = np.where(want == fill, new_fill, want)
    np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[...], want)

    # Rewriting the metadata (a resize, attributes) keeps the array's mapping: still no x_axis.
    z.attrs["touched"] = True
    z.resize(want.shape)
    meta_file = path / (".zarray" if name.startswith("v2") else "zarr.json")
    assert '"x_axis"' not in meta_file.read_text()
    np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[...], want)
