"""Write the frozen golden streams in tests/data/golden/ with the REFERENCE implementation.

How the committed files were made (run from the repository root):

    python tests/data/make_golden.py                     # crackle-codec 0.55.0 -> v1_*.ckl
    python -m venv /tmp/oldref
    /tmp/oldref/bin/pip install crackle-codec==0.16.0 numpy
    /tmp/oldref/bin/python tests/data/make_golden.py --v0  # crackle-codec 0.16.0 -> v0_*.ckl

* v1 streams (format version 1): PyPI ``crackle-codec==0.55.0``, ``crackle.compress(arr, allow_pins=...,
  markov_model_order=...)`` with the options recorded in each JSON file; the signed stream comes from
  its C++ binding ``fastcrackle.compress(arr, allow_pins=False, f_order, markov_model_order,
  optimize_pins=False, auto_bgcolor=True, manual_bgcolor=0, parallel=1)`` with values whose stored
  width the reference gets right (mixed sign, maximum < 128, so 1 byte with sign extension).
* v0 streams (format version 0): PyPI ``crackle-codec==0.16.0`` (installed from its wheel into a
  separate venv in well under a minute), ``crackle.compress(arr, allow_pins, markov_model_order)``.

Inputs are small deterministic synthetic volumes (seeded numpy), except ``v1_markov5_crop``, which is
the 12x12x4 crop at (256, 256, 256) of ../shared/data/connectomics_512.npz (read in place, never copied).

Each stream ``NAME.ckl`` has ``NAME.json`` beside it: the expected array (``shape``, ``dtype``,
``order``, ``values_b64`` = base64 of the raw little-endian bytes in C order) and the header fields
as read by the *reference's* ``crackle.header`` (the oracle), plus the writer version and options.
No .npy/.npz files are written (the repository forbids them).

The script checks that the reference decodes each stream back to its input before writing it.
Re-running it must only be done on purpose: test_golden.py exists so that the format never drifts.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
SHARED_DATA = HERE.parents[2] / "shared" / "data"


def blobs(shape, dtype, values, seed):
    rng = np.random.default_rng(seed)
    arr = np.full(shape, values[0], dtype=dtype)
    for v in values[1:]:
        lo = [int(rng.integers(0, max(n - 1, 1))) for n in shape]
        hi = [int(rng.integers(l + 1, n + 1)) for l, n in zip(lo, shape)]
        arr[tuple(slice(l, h) for l, h in zip(lo, hi))] = v
    return arr


def columns(shape, dtype, seed):
    """Labels that run through z (pins-friendly) with a few interruptions."""
    rng = np.random.default_rng(seed)
    sx, sy, sz = shape
    base = (np.add.outer(np.arange(sx) // 4, (np.arange(sy) // 5) * 10) + 1).astype(dtype)
    arr = np.repeat(base[:, :, None], sz, axis=2)
    arr[rng.integers(0, sx, 6), rng.integers(0, sy, 6), 2:5] = 99
    arr[:3, :3, 4:] = 0
    return arr


def v1_cases():
    cases = {}
    cases["v1_flat_u16"] = (blobs((12, 10, 4), np.uint16, (0, 5, 300, 7, 65535), 1), dict())
    cases["v1_pins_u32"] = (columns((12, 12, 6), np.uint32, 2), dict(allow_pins=1))
    cases["v1_pins2_m2_u32"] = (columns((12, 10, 6), np.uint32, 3), dict(allow_pins=2, markov_model_order=2))
    cases["v1_F_m3_u8"] = (np.asfortranarray(blobs((9, 14, 3), np.uint8, (1, 2, 3, 4, 250), 4)), dict(markov_model_order=3))
    two_d = blobs((20, 15), np.uint64, (2**40, 3, 2**63 + 5, 0), 5)
    cases["v1_2d_u64"] = (two_d, dict())
    rng = np.random.default_rng(6)
    cases["v1_noise_u8"] = (rng.integers(0, 4, size=(10, 9, 3)).astype(np.uint8), dict())
    if (SHARED_DATA / "connectomics_512.npz").is_file():
        vol = np.load(SHARED_DATA / "connectomics_512.npz")["labels"]
        cases["v1_markov5_crop"] = (np.asfortranarray(vol[256:268, 256:268, 256:260]), dict(markov_model_order=5))
    return cases


def v0_cases():
    return {
        "v0_flat_u32": (blobs((12, 10, 4), np.uint32, (0, 5, 300, 7, 70000), 11), dict()),
        "v0_pins_u16": (columns((12, 12, 6), np.uint16, 12), dict(allow_pins=1)),
        "v0_m3_u8": (np.asfortranarray(blobs((9, 14, 3), np.uint8, (1, 2, 3, 4, 250), 13)), dict(markov_model_order=3)),
    }


def header_fields(crackle, stream: bytes) -> dict:
    h = crackle.header(stream)
    return dict(
        version=int(getattr(h, "format_version", stream[4])),  # 0.16.0 has no such attribute: byte 4
        shape=[int(h.sx), int(h.sy), int(h.sz)],
        dtype=("int" if h.signed else "uint") + str(8 * int(h.data_width)),
        order="F" if h.fortran_order else "C",
        label_format={0: "flat", 2: "pins"}[int(h.label_format)],
        crack_format={0: "impermissible", 1: "permissible"}[int(h.crack_format)],
        markov_model_order=int(h.markov_model_order),
        stored_width=int(h.stored_data_width),
        nbytes=len(stream),
    )


def write(name: str, arr: np.ndarray, stream: bytes, fields: dict, writer: str, options: dict) -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    (GOLDEN / f"{name}.ckl").write_bytes(stream)
    logical = arr.reshape(arr.shape + (1,) * (3 - arr.ndim))
    meta = {
        "writer": writer,
        "options": options,
        "input_shape": list(arr.shape),
        "shape": list(logical.shape),
        "dtype": str(logical.dtype),
        "order": fields["order"],
        "values_b64": base64.b64encode(np.ascontiguousarray(logical).astype(logical.dtype.newbyteorder("<")).tobytes()).decode(),
        "header": fields,
    }
    (GOLDEN / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{name}: {len(stream)} bytes, {fields}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--v0", action="store_true", help="write the version-0 streams (needs crackle-codec 0.16.0)")
    args = parser.parse_args()

    import crackle

    version = importlib.metadata.version("crackle-codec")
    if args.v0:
        assert version == "0.16.0", f"--v0 needs crackle-codec 0.16.0, found {version}"
        cases = v0_cases()
    else:
        assert version == "0.55.0", f"v1 golden files need crackle-codec 0.55.0, found {version}"
        cases = v1_cases()

    for name, (arr, options) in cases.items():
        stream = crackle.compress(arr, **options)
        out = crackle.decompress(stream)
        assert np.array_equal(out, arr.reshape(out.shape)), name
        write(name, arr, stream, header_fields(crackle, stream), f"crackle-codec {version} crackle.compress", options)

    if not args.v0:
        import fastcrackle

        arr = blobs((10, 8, 3), np.int16, (0, -5, 40, -128, 127), 7)
        stream = fastcrackle.compress(np.asfortranarray(arr), False, False, 0, False, True, 0, 1)
        out = crackle.decompress(stream)
        assert np.array_equal(out, arr) and out.dtype == np.int16
        write("v1_signed_i16", arr, stream, header_fields(crackle, stream),
              f"crackle-codec {version} fastcrackle.compress", {"f_order": False, "markov_model_order": 0})


if __name__ == "__main__":
    main()
