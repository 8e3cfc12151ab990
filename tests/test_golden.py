"""Frozen golden streams written by the reference (see tests/data/make_golden.py): the format must
never drift. Each ``NAME.ckl`` must decode to the array in ``NAME.json`` and have the header fields
the reference read from it."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import crackle_codec
from conftest import GOLDEN_DIR, assert_decoded_equal

NAMES = sorted(p.stem for p in GOLDEN_DIR.glob("*.ckl"))


def load_golden(name: str) -> tuple[bytes, dict, np.ndarray]:
    data = (GOLDEN_DIR / f"{name}.ckl").read_bytes()
    meta = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    dtype = np.dtype(meta["dtype"]).newbyteorder("<")
    raw = base64.b64decode(meta["values_b64"])
    expected = np.frombuffer(raw, dtype=dtype).reshape(meta["shape"]).astype(np.dtype(meta["dtype"]))
    return data, meta, expected


def test_golden_set_present():
    assert len(NAMES) >= 6, f"golden streams missing from {GOLDEN_DIR}"
    for name in NAMES:
        assert (GOLDEN_DIR / f"{name}.json").is_file(), name
    versions = {json.loads((GOLDEN_DIR / f"{n}.json").read_text())["header"]["version"] for n in NAMES}
    assert versions == {0, 1}
    kinds = {json.loads((GOLDEN_DIR / f"{n}.json").read_text())["header"]["label_format"] for n in NAMES}
    assert kinds == {"flat", "pins"}
    assert not list(GOLDEN_DIR.glob("*.np[yz]"))


@pytest.mark.parametrize("name", NAMES)
def test_golden_decodes(name):
    data, meta, expected = load_golden(name)
    assert len(data) < 4096 and (GOLDEN_DIR / f"{name}.json").stat().st_size < 8192, "keep golden files tiny"
    out = crackle_codec.decompress(data)
    assert_decoded_equal(out, expected, meta["order"], what=f"golden {name}")
    crackle_codec.verify(data)
    np.testing.assert_array_equal(crackle_codec.labels(data), np.unique(expected))
    assert crackle_codec.num_labels(data) == np.unique(expected).size
    sz = expected.shape[2]
    if sz > 1:
        np.testing.assert_array_equal(crackle_codec.decompress(data, z=slice(1, sz)), expected[:, :, 1:])


@pytest.mark.parametrize("name", NAMES)
def test_golden_header(name):
    data, meta, expected = load_golden(name)
    want = meta["header"]
    h = crackle_codec.header(data)
    assert h.version == want["version"]
    assert list(h.shape) == want["shape"] == list(expected.shape)
    assert h.dtype == np.dtype(want["dtype"]) == expected.dtype
    assert h.order == want["order"]
    assert h.label_format == want["label_format"]
    assert h.crack_format == want["crack_format"]
    assert h.markov_model_order == want["markov_model_order"]
    assert h.stored_width == want["stored_width"]
    assert h.nbytes == want["nbytes"] == len(data)
    assert h.has_crcs == (want["version"] == 1)
    assert h.header_bytes == (29 if want["version"] == 1 else 24)
    assert h.unsorted is False and h.remapped is False


@pytest.mark.parametrize("name", NAMES)
def test_golden_reencode_roundtrip(name):
    """Our encoder reproduces each golden volume (all options), and those streams decode identically."""
    _, meta, expected = load_golden(name)
    arr = np.asfortranarray(expected) if meta["order"] == "F" else np.ascontiguousarray(expected)
    opts = meta["options"]
    stream = crackle_codec.compress(arr, allow_pins=bool(opts.get("allow_pins", 0)),
                                    markov_model_order=int(opts.get("markov_model_order", 0)))
    assert_decoded_equal(crackle_codec.decompress(stream), expected, meta["order"], what=f"re-encoded {name}")
