"""Shared helpers for the crackle_codec test suite.

* Paths to the sibling ``../shared`` folder (real volumes and reference streams) and skip helpers
  for a fresh clone where it is absent. Nothing from there is ever copied into the repository.
* ``load_volume`` / ``crop``: real segmentations from ``../shared/data`` (cached per process).
* ``assert_roundtrip``: THE round-trip assertion used by every round-trip test.
* Hypothesis strategies for small label volumes (importable: ``from conftest import ...``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

try:  # hypothesis is a test dependency; keep conftest importable without it
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # pragma: no cover
    st = hnp = None

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA_DIR = SHARED / "data"
STREAMS_DIR = SHARED / "streams"
VALID_DIR = STREAMS_DIR / "valid"
REF_BUGS_DIR = STREAMS_DIR / "reference-bugs"
GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "golden"

UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]
SIGNED = [np.int8, np.int16, np.int32, np.int64]
ALL_INT = UNSIGNED + SIGNED


# ------------------------------------------------------------------------------ shared folder

def require_data() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip("../shared/data not present (fresh clone)")
    return DATA_DIR


def require_streams(sub: str = "valid") -> Path:
    path = STREAMS_DIR / sub
    if not path.is_dir():
        pytest.skip(f"../shared/streams/{sub} not present (fresh clone)")
    return path


def shared_stream_names(sub: str) -> list[str]:
    """Stream names (without .ckl) in ../shared/streams/<sub>; empty when absent (collection time)."""
    path = STREAMS_DIR / sub
    if not path.is_dir():
        return []
    return sorted(p.stem for p in path.glob("*.ckl"))


def read_shared_stream(sub: str, name: str) -> tuple[bytes, np.ndarray]:
    path = require_streams(sub)
    data = (path / f"{name}.ckl").read_bytes()
    with np.load(path / f"{name}.npz") as npz:
        expected = npz["expected"]
    return data, expected


def data_volume_names() -> list[str]:
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.stem for p in DATA_DIR.glob("*.npz"))


@functools.lru_cache(maxsize=None)
def _load_volume_cached(name: str) -> np.ndarray:
    with np.load(DATA_DIR / f"{name}.npz") as npz:
        arr = npz["labels"]
    arr.setflags(write=False)
    return arr


def load_volume(name: str) -> np.ndarray:
    """A whole real volume from ../shared/data (read-only, cached); skips when absent."""
    require_data()
    if not (DATA_DIR / f"{name}.npz").is_file():
        pytest.skip(f"../shared/data/{name}.npz not present")
    return _load_volume_cached(name)


def crop(name: str, shape: tuple[int, ...], offset: tuple[int, ...] | None = None) -> np.ndarray:
    """A Fortran-ordered copy of a crop of a real volume; centred unless ``offset`` is given.

    ``shape`` entries are clipped to the volume; a 2D volume takes a 2D crop (extra entries ignored).
    """
    vol = load_volume(name)
    shape = tuple(min(s, n) for s, n in zip(shape, vol.shape))
    if offset is None:
        offset = tuple((n - s) // 2 for s, n in zip(shape, vol.shape))
    sl = tuple(slice(o, o + s) for o, s in zip(offset, shape))
    return np.asfortranarray(vol[sl])


# ------------------------------------------------------------------------------- round trip

def memory_order(arr: np.ndarray) -> str:
    """'F', 'C', 'both' (1-wide / empty arrays) or 'none' (not contiguous)."""
    c, f = arr.flags.c_contiguous, arr.flags.f_contiguous
    if c and f:
        return "both"
    if f:
        return "F"
    if c:
        return "C"
    return "none"


def logical_3d(arr: np.ndarray) -> np.ndarray:
    """The (sx, sy, sz) array a stream of ``arr`` must decode to (values only, not layout).

    Trailing length-1 axes beyond the third are dropped, 1D/2D get trailing length-1 axes, bool
    becomes uint8.
    """
    out = arr
    while out.ndim > 3 and out.shape[-1] == 1:
        out = out[..., 0]
    assert out.ndim <= 3, f"not a valid codec input shape: {arr.shape}"
    out = out.reshape(out.shape + (1,) * (3 - out.ndim))
    if out.dtype == np.bool_:
        out = out.astype(np.uint8)
    return out


def expected_order(arr: np.ndarray) -> str | None:
    """The memory order the decoded array must have, or None when the API leaves it open.

    Matches the reference: F iff the input is F-contiguous (so arrays that are both C- and
    F-contiguous, e.g. empty or 1-wide, are F), C for C-contiguous input. For non-contiguous
    views, the docstring says the header records whether the input was Fortran- or C-ordered:
    a view of a C-ordered array (largest stride on axis 0) must come back C, a view of an
    F-ordered array (largest stride on the last axis) F.
    """
    if arr.flags.f_contiguous:
        return "F"
    if arr.flags.c_contiguous:
        return "C"
    strides = [abs(s) for s, n in zip(arr.strides, arr.shape) if n > 1]
    if len(strides) < 2:
        return None
    if strides[0] == max(strides):
        return "C"
    if strides[-1] == max(strides):
        return "F"
    return None


def assert_decoded_equal(out: np.ndarray, expected: np.ndarray, order: str | None = None, what: str = "") -> None:
    """Decoded ``out`` equals logical ``expected`` in shape, dtype, values and (if given) order."""
    assert isinstance(out, np.ndarray), f"{what}: decode returned {type(out).__name__}"
    assert out.shape == expected.shape, f"{what}: shape {out.shape} != expected {expected.shape}"
    assert out.dtype == expected.dtype, f"{what}: dtype {out.dtype} != expected {expected.dtype}"
    if not np.array_equal(out, expected):
        diff = np.argwhere(out != expected)
        first = tuple(int(i) for i in diff[0])
        raise AssertionError(
            f"{what}: {len(diff)} of {out.size} voxels differ; first at {first}: "
            f"got {out[first]!r}, expected {expected[first]!r}"
        )
    if order is not None and out.size > 0:
        if order == "F":
            assert out.flags.f_contiguous, f"{what}: expected a Fortran-ordered result, flags:\n{out.flags}"
        elif order == "C":
            assert out.flags.c_contiguous, f"{what}: expected a C-ordered result, flags:\n{out.flags}"
        else:
            raise ValueError(order)


def assert_roundtrip(arr: np.ndarray, **kwargs) -> bytes:
    """Compress ``arr`` with crackle_codec, decompress with crackle_codec and compare.

    Checks values, dtype (bool -> uint8), the 3D shape rule (2D -> (sx, sy, 1), 1D -> (n, 1, 1),
    trailing length-1 axes beyond 3 dropped), the memory order (``expected_order``), that the input
    is left untouched, and that ``header()`` agrees. Returns the stream.
    """
    import crackle_codec

    before = arr.copy(order="K")
    stream = crackle_codec.compress(arr, **kwargs)
    assert isinstance(stream, bytes), f"compress returned {type(stream).__name__}"
    assert np.array_equal(arr, before), "compress modified its input"

    expected = logical_3d(arr)
    order = expected_order(arr)
    out = crackle_codec.decompress(stream)
    assert_decoded_equal(out, expected, order, what=f"round trip of {arr.dtype}{arr.shape} {kwargs}")
    assert out.flags.c_contiguous or out.flags.f_contiguous, "decoded array is not contiguous"

    head = crackle_codec.header(stream)
    assert head.shape == expected.shape
    assert head.dtype == expected.dtype
    assert head.nbytes == len(stream)
    if order is not None and expected.size > 0:
        assert head.order == order, f"header order {head.order} != {order}"
    return stream


# ---------------------------------------------------------------------------- hypothesis

def _blobs(draw, shape, nlabels, dtype, rng_seed):
    """A volume of a few axis-aligned boxes of random labels over a background, plus some noise."""
    rng = np.random.default_rng(rng_seed)
    info = np.iinfo(dtype)
    # label palette: include extremes of the dtype sometimes
    palette_choices = [0, 1, 2, 3, 7, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
                       -1, -2, -128, -129, -32768, -(2**31), -(2**63)]
    palette_choices = [v for v in palette_choices if info.min <= v <= info.max]
    palette = draw(st.lists(st.sampled_from(palette_choices) | st.integers(int(info.min), int(info.max)),
                            min_size=1, max_size=nlabels))
    arr = np.full(shape, palette[0], dtype=dtype)
    if arr.size == 0:
        return arr
    for value in palette[1:]:
        lo = [int(rng.integers(0, n)) for n in shape]
        hi = [int(rng.integers(l + 1, n + 1)) for l, n in zip(lo, shape)]
        arr[tuple(slice(l, h) for l, h in zip(lo, hi))] = value
    noise = draw(st.sampled_from([0.0, 0.0, 0.05, 0.5]))
    if noise:
        mask = rng.random(shape) < noise
        arr[mask] = rng.choice(np.array(palette, dtype=dtype), size=int(mask.sum()))
    return arr


if st is not None:

    @st.composite
    def label_volumes(draw, dtypes=tuple(ALL_INT) + (np.bool_,), max_side=12, min_side=0, max_dims=3,
                      min_dims=1, max_labels=6, orders=("C", "F")):
        """Small label volumes: blobs of a few labels plus optional noise, any listed dtype."""
        dtype = np.dtype(draw(st.sampled_from(dtypes)))
        ndim = draw(st.integers(min_dims, max_dims))
        shape = tuple(draw(st.lists(st.integers(min_side, max_side), min_size=ndim, max_size=ndim)))
        seed = draw(st.integers(0, 2**32 - 1))
        if dtype == np.bool_:
            arr = _blobs(draw, shape, 2, np.uint8, seed).astype(bool)
        else:
            arr = _blobs(draw, shape, max_labels, dtype.type, seed)
        order = draw(st.sampled_from(orders))
        return np.asfortranarray(arr) if order == "F" else np.ascontiguousarray(arr)

else:  # pragma: no cover
    label_volumes = None


def create_crackle_array(kind, path, shape, dtype, fill, chunks):
    """A Crackle Zarr array of one kind (the kinds of the array-level tests): "v2" (Crackle as the
    compressor), "v2-filter+zstd" (a filter, zstd after it), and format 3 "v3" plus any of
    "+zstd", "-sharded" (shards of two chunks a side), "-transpose" (a transpose codec before it)."""
    import warnings

    import numcodecs
    import zarr
    from zarr.codecs import TransposeCodec, ZstdCodec

    from crackle_codec.numcodecs_codec import Crackle
    from crackle_codec.zarr3 import CrackleCodec

    common = dict(shape=shape, chunks=chunks, dtype=dtype, fill_value=fill)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "v2":
            return zarr.create_array(str(path), zarr_format=2, compressors=Crackle(), filters=None, **common)
        if kind == "v2-filter+zstd":
            return zarr.create_array(str(path), zarr_format=2, filters=[Crackle()],
                                     compressors=numcodecs.Zstd(level=3), **common)
        shards = tuple(2 * c for c in chunks) if "sharded" in kind else None
        compressors = ZstdCodec(level=3) if "zstd" in kind else None
        filters = [TransposeCodec(order=tuple(reversed(range(len(shape)))))] if "transpose" in kind else None
        names = ("z", "y", "x")[-len(shape):] if len(shape) <= 3 else None
        return zarr.create_array(str(path), serializer=CrackleCodec(), compressors=compressors,
                                 shards=shards, filters=filters, dimension_names=names, **common)
