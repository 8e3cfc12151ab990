"""docs/zarr-codec-spec.md and docs/zarr-codec-schema.json against what the codecs write and read."""

from __future__ import annotations

import itertools
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

jsonschema = pytest.importorskip("jsonschema")
zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:
    pytest.skip("the format-3 codec needs zarr 3", allow_module_level=True)

import crackle_codec  # noqa: E402
from crackle_codec import Crackle  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
GOLDEN_ZARR = Path(__file__).resolve().parent / "data" / "golden_zarr"
SCHEMA = json.loads((DOCS / "zarr-codec-schema.json").read_text())
OPTIONS = [dict(markov_model_order=m, allow_pins=p) for m, p in itertools.product((0, 1, 5, 15), (False, True))]


def validate(instance):
    jsonschema.Draft202012Validator(SCHEMA).validate(instance)


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("options", OPTIONS)
def test_every_configuration_the_codecs_write_is_valid(options):
    v3 = CrackleCodec(**options).to_dict()
    v2 = Crackle(**options).get_config()
    assert v3["configuration"]["x_axis"] == v2["x_axis"] == "fastest"
    validate(json.loads(json.dumps(v3)))
    validate(json.loads(json.dumps(v2)))


def test_configurations_in_written_metadata_are_valid(tmp_path):
    vol = np.arange(6 * 8 * 10, dtype=np.uint16).reshape(6, 8, 10) // 7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arrays = [
            zarr.create_array(str(tmp_path / "v3"), data=vol, chunks=(3, 4, 5), serializer=CrackleCodec(),
                              compressors=None),
            zarr.create_array(str(tmp_path / "v3s"), data=vol, chunks=(3, 4, 5), shards=(6, 8, 10),
                              serializer=CrackleCodec(markov_model_order=3), compressors=None),
            zarr.create_array(str(tmp_path / "v2"), data=vol, chunks=(3, 4, 5), zarr_format=2,
                              compressors=Crackle(allow_pins=True)),
        ]
    assert all(np.array_equal(a[...], vol) for a in arrays)
    v3 = json.loads((tmp_path / "v3" / "zarr.json").read_text())["codecs"][0]
    v3s = json.loads((tmp_path / "v3s" / "zarr.json").read_text())["codecs"][0]["configuration"]["codecs"][0]
    v2 = json.loads((tmp_path / "v2" / ".zarray").read_text())["compressor"]
    for codec in (v3, v3s, v2):
        validate(codec)
        assert (codec.get("configuration") or codec)["x_axis"] == "fastest"


def test_legacy_configurations_are_valid():
    """The golden arrays of the first release (no x_axis) are valid, and read with the legacy mapping."""
    for meta_file in GOLDEN_ZARR.rglob("zarr.json"):
        codec = json.loads(meta_file.read_text())["codecs"][0]
        codec = codec["configuration"]["codecs"][0] if codec["name"] == "sharding_indexed" else codec
        validate(codec)
        assert CrackleCodec.from_dict(codec).x_axis is None
    for meta_file in GOLDEN_ZARR.rglob(".zarray"):
        meta = json.loads(meta_file.read_text())
        codec = meta["compressor"] if meta["compressor"]["id"] == "crackle" else meta["filters"][0]
        validate(codec)
        assert Crackle.from_config(codec).x_axis is None


@pytest.mark.parametrize("bad", [
    {"name": "crackle", "configuration": {"x_axis": "first"}},
    {"name": "crackle", "configuration": {"x_axis": None}},
    {"name": "crackle", "configuration": {"markov_model_order": 16}},
    {"name": "crackle", "configuration": {"allow_pins": 1}},
    {"name": "crackle", "configuration": {"axes": "zyx"}},
    {"id": "crackle", "x_axis": "last"},
    {"id": "crackle", "level": 3},
    {"id": "zstd"},
])
def test_schema_and_codecs_refuse_what_the_spec_forbids(bad):
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    with pytest.raises((ValueError, TypeError)):
        if "name" in bad:
            CrackleCodec.from_dict(bad)
        else:
            Crackle.from_config(bad)


def test_spec_example_is_what_the_codec_writes():
    text = (DOCS / "zarr-codec-spec.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    codec = example["codecs"][0]
    validate(codec)
    assert CrackleCodec.from_dict(codec) == CrackleCodec()
    assert codec == CrackleCodec().to_dict()


def test_spec_axis_rule_worked_through():
    """The rule as the spec states it, checked element by element on small chunks of both orders."""
    from crackle_codec.layout import stream_shape

    rng = np.random.default_rng(1)
    for shape, order in [((4, 5, 6), "C"), ((4, 5, 6), "F"), ((2, 1, 3, 4, 1), "C"), ((7, 1), "F")]:
        chunk = rng.integers(0, 5, size=shape).astype(np.uint8)
        chunk = np.asfortranarray(chunk) if order == "F" else np.ascontiguousarray(chunk)
        long_axes = [a for a, n in enumerate(shape) if n > 1]
        fastest_first = long_axes[::-1] if order == "C" else long_axes
        expect_shape = tuple([shape[a] for a in fastest_first] + [1] * (3 - len(fastest_first)))
        assert stream_shape(shape, "fastest", order) == expect_shape
        stream = Crackle().encode(chunk)  # numcodecs: the chunk's memory order is the array's order
        volume = crackle_codec.decompress(stream)
        assert volume.shape == expect_shape
        for index in np.ndindex(*shape):
            xyz = [index[a] for a in fastest_first] + [0] * (3 - len(fastest_first))
            assert volume[tuple(xyz)] == chunk[index]
