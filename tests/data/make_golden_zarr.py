"""Write the frozen golden Zarr arrays in tests/data/golden_zarr/ with THIS package's codecs.

They freeze what the first release of the codecs (crackle-zarr 0.1.0, before the axis rule of
docs/zarr-codec-spec.md, whose codec configurations have no ``"x_axis"`` field) wrote, so that
every later release keeps decoding those arrays exactly (tests/test_golden_zarr.py). The committed
files were written at commit 13ade61 (branch issue12, before any change to the codecs):

    python tests/data/make_golden_zarr.py

Each array ``NAME`` is a Zarr directory ``golden_zarr/NAME/`` written by zarr 3.1 (metadata and
chunk files only) and ``golden_zarr/NAME.json`` beside it: the expected array (``shape``,
``dtype``, ``values_b64`` = base64 of the raw little-endian bytes in C order) and how it was
written. Volumes are small deterministic synthetic segmentations with edge chunks on every axis
and one chunk (or inner chunk) that is never written, so that it reads as the fill value.

Re-running this script overwrites the golden files: only do it on purpose, with the release
whose arrays they stand for.
"""

from __future__ import annotations

import base64
import json
import shutil
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden_zarr"


def segmentation(shape, dtype, seed):
    """Boxes of labels over a background, with one label running through every slice."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    arr = np.zeros(shape, dtype=dtype)
    info = np.iinfo(dtype)
    values = [int(v) for v in rng.integers(max(info.min, -300), min(info.max, 70000) + 1, 6)] + [int(info.max)]
    for v in values:
        lo = [int(rng.integers(0, n - 1)) for n in shape]
        hi = [int(rng.integers(l + 1, n + 1)) for l, n in zip(lo, shape)]
        arr[tuple(slice(l, h) for l, h in zip(lo, hi))] = v
    arr[(slice(2, 5),) * (len(shape) - 1)] = 3
    return arr


def cases():
    """name -> (volume, array kwargs, the region written, a description)."""
    import numcodecs  # noqa: F401
    from zarr.codecs import ZstdCodec

    from crackle_codec import Crackle
    from crackle_codec.zarr3 import CrackleCodec

    return {
        # Format 2, C order: chunk axis 0 was Crackle's x, the chunks C-ordered (the C bit set).
        "v2_C_u16": (segmentation((20, 14, 6), "uint16", 1),
                     dict(zarr_format=2, order="C", chunks=(8, 8, 4), compressors=Crackle(), fill_value=0),
                     (slice(0, 20), slice(0, 8), slice(0, 6))),
        # Format 2, F order, Markov model, Crackle as a filter before zstd.
        "v2_F_u32_filter": (np.asfortranarray(segmentation((18, 15, 7), "uint32", 2)),
                            dict(zarr_format=2, order="F", chunks=(8, 8, 4),
                                 filters=[Crackle(markov_model_order=3)],
                                 compressors=numcodecs.Zstd(level=3), fill_value=5),
                            (slice(0, 18), slice(0, 15), slice(0, 4))),
        # Format 3, zarr's defaults (C order in memory), raw Crackle chunks.
        "v3_u32": (segmentation((21, 13, 9), "uint32", 3),
                   dict(chunks=(8, 8, 4), serializer=CrackleCodec(), compressors=None, fill_value=0),
                   (slice(0, 16), slice(0, 13), slice(0, 9))),
        # Format 3, sharded: 4^3 inner chunks in 8^3 shards, zstd after Crackle, signed labels.
        "v3_sharded_i16": (segmentation((14, 11, 10), "int16", 4),
                           dict(chunks=(4, 4, 4), shards=(8, 8, 8), serializer=CrackleCodec(allow_pins=True),
                                compressors=ZstdCodec(level=3), fill_value=-1),
                           (slice(0, 14), slice(4, 11), slice(0, 10))),
        # Format 3, a 2D array (chunk axis 0 was x, axis 1 was y).
        "v3_2d_u8": (segmentation((23, 17), "uint8", 5),
                     dict(chunks=(8, 8), serializer=CrackleCodec(), compressors=None, fill_value=0),
                     (slice(0, 23), slice(0, 12))),
    }


def main() -> None:
    import importlib.metadata

    import zarr

    import crackle_codec

    version = importlib.metadata.version("crackle-zarr")
    warnings.filterwarnings("ignore")
    for name, (vol, kwargs, written) in cases().items():
        path = GOLDEN / name
        shutil.rmtree(path, ignore_errors=True)
        z = zarr.create_array(str(path), shape=vol.shape, dtype=vol.dtype, **kwargs)
        z[written] = vol[written]
        expected = np.full(vol.shape, z.fill_value, dtype=vol.dtype)
        expected[written] = vol[written]
        back = zarr.open_array(str(path), mode="r")[...]
        assert np.array_equal(back, expected), name
        meta = {
            "writer": f"crackle-zarr {version} ({crackle_codec.__file__}), zarr {zarr.__version__}",
            "array": {k: repr(v) for k, v in kwargs.items()},
            "written": repr(written),
            "shape": list(vol.shape),
            "dtype": str(vol.dtype),
            "values_b64": base64.b64encode(np.ascontiguousarray(expected).astype(
                expected.dtype.newbyteorder("<")).tobytes()).decode(),
        }
        (GOLDEN / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(f"{name}: {size} bytes in {sum(1 for p in path.rglob('*') if p.is_file())} files")


if __name__ == "__main__":
    main()
