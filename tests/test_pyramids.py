"""Label pyramids (issue #14): crackle_codec.downsample, its C++ kernel, the OME-Zarr label images of
``convert --levels N --ome`` and the ``downsample`` command.

Every level is compared with ``numpy_mode_pool`` (the documented rule, written in numpy) of the
decoded level below, and the default factor with the reference's ``mode_pooling_2x2x1``.
"""

from __future__ import annotations

import itertools
import json

import numcodecs
import numpy as np
import pytest

from conftest import crop, data_volume_names

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:  # pragma: no cover - the zarr 2.18 environment
    pytest.skip("downsample writes levels with zarr >= 3", allow_module_level=True)

from zarr.codecs import TransposeCodec, ZstdCodec  # noqa: E402

import crackle_codec  # noqa: E402
from crackle_codec import _crackle, downsample  # noqa: E402
from crackle_codec.numcodecs_codec import Crackle  # noqa: E402
from crackle_codec.zarr.pyramids import level_shapes, pyramid_factor, write_ome_label_metadata  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec, create_array  # noqa: E402

FACTORS_3D = [(1, 2, 2), (2, 2, 2), (2, 1, 1), (1, 1, 2), (2, 2, 1), (2, 1, 2), (1, 2, 1)]


def numpy_mode_pool(volume: np.ndarray, factor) -> np.ndarray:
    """The module's rule in numpy: the mode of each block (voxels in C order), ties to the first;
    a whole 4-voxel block takes the reference's rule (a if a == b or a == c, else b if b == c, else d)."""
    factor = tuple(factor)
    out_shape = tuple(-(-s // f) for s, f in zip(volume.shape, factor))
    values, valid = [], []
    for offset in itertools.product(*(range(f) for f in factor)):  # C order
        part = volume[tuple(slice(o, None, f) for o, f in zip(offset, factor))]
        inside = tuple(slice(0, n) for n in part.shape)
        v, m = np.zeros(out_shape, volume.dtype), np.zeros(out_shape, bool)
        v[inside], m[inside] = part, True
        values.append(v)
        valid.append(m)
    V, M = np.stack(values), np.stack(valid)
    counts = np.stack([((V == V[i]) & M).sum(axis=0) for i in range(len(V))])
    counts[~M] = -1
    result = np.take_along_axis(V, counts.argmax(axis=0)[None], axis=0)[0]  # argmax: the first of the ties
    if len(V) == 4:
        a, b, c, d = V
        result = np.where(M.all(axis=0), np.where((a == b) | (a == c), a, np.where(b == c, b, d)), result)
    return result


def check_pyramid(array, group, levels, factor=None, **kwargs):
    """downsample ``array`` into ``group``; every level equals numpy pooling of the level below."""
    out = downsample(array, group, factor=factor, levels=levels, max_workers=kwargs.pop("max_workers", 3), **kwargs)
    fac = pyramid_factor(array.ndim, factor)
    assert [lv.shape for lv in out] == level_shapes(array.shape, fac, levels)
    below = array[...]
    for k, level in enumerate(out, start=1):
        expected = numpy_mode_pool(below, fac)
        got = level[...]
        assert got.dtype == below.dtype
        np.testing.assert_array_equal(got, expected, err_msg=f"level {k}")
        assert level.chunks == array.chunks and level.fill_value == array.fill_value
        below = got
    return out


def memory_group(zarr_format=3):
    return zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=zarr_format)


# ---------------------------------------------------------------------------- the kernel

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint64])
def test_kernel_matches_numpy_rule(dtype):
    rng = np.random.default_rng(7)
    for shape in [(5, 7, 9), (4, 4, 4), (3, 1, 6), (1, 5, 5), (6, 6, 1), (2, 3, 2)]:
        for factor in FACTORS_3D:
            for order in "CF":
                volume = np.asarray(rng.integers(0, 3, shape).astype(dtype), order=order)
                out = np.empty(tuple(-(-s // f) for s, f in zip(shape, factor)), dtype, order=order)
                _crackle.mode_pool_blocks_into(volume, out, factor)
                np.testing.assert_array_equal(out, numpy_mode_pool(volume, factor), err_msg=f"{shape} {factor}")


def test_rule_on_hand_made_blocks():
    """The ties, spelled out: 4-voxel blocks as the reference, 8-voxel blocks to the first in C order."""
    def pool(block, factor):
        out = np.empty(tuple(-(-s // f) for s, f in zip(block.shape, factor)), block.dtype)
        return _crackle.mode_pool_blocks_into(np.ascontiguousarray(block), out, factor).reshape(-1)[0]

    four = lambda a, b, c, d: pool(np.array([[[a, b], [c, d]]], np.uint8), (1, 2, 2))  # noqa: E731
    assert four(1, 1, 2, 2) == 1 and four(1, 2, 1, 2) == 1  # a's pair
    assert four(1, 2, 2, 1) == 2  # a pairs with d: b's pair (not the first in C order)
    assert four(1, 2, 3, 4) == 4  # all different: d
    assert four(1, 2, 3, 3) == 3 and four(1, 2, 3, 2) == 2
    eight = np.array([[[5, 6], [6, 5]], [[7, 7], [5, 6]]], np.uint8)  # 5 and 6 three times each: 5 first
    assert pool(eight, (2, 2, 2)) == 5
    assert pool(np.array([[[4, 9]]], np.uint8), (1, 1, 2)) == 4  # two voxels, a tie: the first


def test_default_factor_is_the_references_2x2x1():
    crackle = pytest.importorskip("crackle", reason="the reference crackle-codec is the oracle")
    rng = np.random.default_rng(3)
    for shape in [(5, 7, 9), (4, 8, 6), (3, 3, 1)]:  # (z, y, x), odd sizes included
        volume = rng.integers(0, 3, shape).astype(np.uint32)
        array = create_array(zarr.storage.MemoryStore(), data=volume, chunks=(2, 4, 4))
        (level,) = downsample(array, memory_group(), max_workers=1)
        reference = crackle.decompress(crackle.mode_pooling_2x2x1(crackle.compress(np.asfortranarray(volume.T))))
        np.testing.assert_array_equal(level[...], reference.T)


# -------------------------------------------------------------------------- the arrays

@pytest.mark.parametrize("chunks", [(4, 6, 5), (5, 5, 5), (8, 8, 8)])
@pytest.mark.parametrize("factor", [None, (2, 2, 2), (1, 1, 2)])
def test_format3_odd_sizes_and_edge_chunks(chunks, factor):
    volume = np.random.default_rng(1).integers(0, 4, (13, 22, 19)).astype(np.uint16)
    array = create_array(zarr.storage.MemoryStore(), data=volume, chunks=chunks, fill_value=7)
    check_pyramid(array, memory_group(), 2, factor)


def test_missing_chunks_hold_the_fill_value_and_stay_missing():
    volume = np.random.default_rng(2).integers(0, 4, (13, 22, 19)).astype(np.uint16)
    store = zarr.storage.MemoryStore()
    array = zarr.create_array(store, shape=volume.shape, dtype=volume.dtype, chunks=(4, 6, 4), fill_value=3,
                              serializer=CrackleCodec(), compressors=None)
    array[4:8, 6:12, 4:8] = volume[4:8, 6:12, 4:8]  # one chunk written, the others never
    group = memory_group()
    levels = check_pyramid(array, group, 3, (2, 2, 2))
    assert levels[0].nchunks_initialized == 1 and levels[2].nchunks_initialized == 1


def test_sparse_array_touches_only_its_written_chunks():
    """A 1024^3 array with two chunks written: the levels hold one chunk each, read back exactly."""
    store = zarr.storage.MemoryStore()
    array = zarr.create_array(store, shape=(1024, 1024, 1024), dtype=np.uint32, chunks=(64, 64, 64),
                              fill_value=0, serializer=CrackleCodec(), compressors=None)
    block = np.random.default_rng(5).integers(0, 5, (64, 64, 64)).astype(np.uint32)
    array[0:64, 0:64, 0:64] = block
    array[64:128, 960:1024, 960:1024] = block[::-1]
    levels = downsample(array, memory_group(), levels=2, factor=(2, 2, 2), max_workers=2)
    assert [lv.nchunks_initialized for lv in levels] == [2, 2]
    np.testing.assert_array_equal(levels[0][0:32, 0:32, 0:32], numpy_mode_pool(block, (2, 2, 2)))
    np.testing.assert_array_equal(levels[0][32:64, 480:512, 480:512], numpy_mode_pool(block[::-1], (2, 2, 2)))
    second = levels[1][...]
    twice = [numpy_mode_pool(numpy_mode_pool(b, (2, 2, 2)), (2, 2, 2)) for b in (block, block[::-1])]
    np.testing.assert_array_equal(second[0:16, 0:16, 0:16], twice[0])
    np.testing.assert_array_equal(second[16:32, 240:256, 240:256], twice[1])
    assert np.count_nonzero(second) == sum(np.count_nonzero(t) for t in twice)  # fill everywhere else


def test_sharded_with_zstd():
    volume = np.random.default_rng(3).integers(0, 4, (13, 22, 19)).astype(np.uint32)
    array = zarr.create_array(zarr.storage.MemoryStore(), shape=volume.shape, dtype=volume.dtype, chunks=(4, 6, 4),
                              shards=(8, 12, 8), serializer=CrackleCodec(markov_model_order=2),
                              compressors=ZstdCodec(level=1))
    array[...] = volume
    array[0:8, 12:24, 8:16] = 0
    levels = check_pyramid(array, memory_group(), 2)
    assert levels[0].shards == array.shards and levels[0].metadata.codecs == array.metadata.codecs


@pytest.mark.parametrize("order", ["C", "F"])
def test_format2(order):
    volume = np.random.default_rng(4).integers(0, 4, (13, 22, 19)).astype(np.uint16)
    array = zarr.create_array(zarr.storage.MemoryStore(), shape=volume.shape, dtype=volume.dtype, chunks=(4, 6, 4),
                              zarr_format=2, order=order, filters=[Crackle()], compressors=numcodecs.Zstd(level=1),
                              fill_value=2)
    array[...] = volume
    levels = check_pyramid(array, memory_group(2), 2, (2, 2, 2))
    assert levels[0].order == order and levels[0].filters == array.filters


def test_transpose_codec_before_crackle():
    volume = np.random.default_rng(6).integers(0, 4, (9, 10, 11)).astype(np.uint8)
    array = zarr.create_array(zarr.storage.MemoryStore(), shape=volume.shape, dtype=volume.dtype, chunks=(4, 6, 4),
                              filters=[TransposeCodec(order=(2, 1, 0))], serializer=CrackleCodec(), compressors=None)
    array[...] = volume
    check_pyramid(array, memory_group(), 2)


def test_2d_and_5d_arrays():
    rng = np.random.default_rng(8)
    flat = create_array(zarr.storage.MemoryStore(), data=rng.integers(0, 3, (9, 11)).astype(np.uint32), chunks=(4, 4))
    check_pyramid(flat, memory_group(), 2)
    tczyx = create_array(zarr.storage.MemoryStore(), data=rng.integers(0, 3, (2, 1, 5, 6, 7)).astype(np.uint8),
                         chunks=(1, 1, 4, 4, 4))
    check_pyramid(tczyx, memory_group(), 2, (1, 1, 2, 2, 2))


@pytest.mark.parametrize("name", data_volume_names())
def test_real_volumes(name):
    volume = crop(name, (96, 96, 96)).T  # (z, y, x) view
    chunks = (32,) * volume.ndim
    array = create_array(zarr.storage.MemoryStore(), data=np.ascontiguousarray(volume), chunks=chunks)
    check_pyramid(array, memory_group(), 2)
    if volume.ndim == 3:
        check_pyramid(array, memory_group(), 1, (2, 2, 2), overwrite=True)


def test_progress_counts_every_output_chunk():
    volume = np.random.default_rng(9).integers(0, 3, (16, 32, 32)).astype(np.uint8)
    array = create_array(zarr.storage.MemoryStore(), data=volume, chunks=(4, 8, 8))
    calls = []
    downsample(array, memory_group(), levels=2, max_workers=2, progress=calls.append)
    total = sum(-(-s[0] // 4) * -(-s[1] // 8) * -(-s[2] // 8) for s in [(16, 16, 16), (16, 8, 8)])
    assert sum(calls) == total and len(calls) > 1


def test_argument_errors():
    array = create_array(zarr.storage.MemoryStore(), data=np.zeros((4, 4, 4), np.uint8), chunks=(2, 2, 2))
    group = memory_group()
    for factor, error in [((2, 2), ValueError), ((3, 1, 1), ValueError), ((1, 1, 1), ValueError),
                          ("2x2x1", TypeError), ((2.0, 2, 2), TypeError)]:
        with pytest.raises(error):
            downsample(array, group, factor=factor)
    with pytest.raises(ValueError, match="only the last three"):
        pyramid_factor(4, (2, 1, 1, 1))
    for levels, error in [(0, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(error):
            downsample(array, group, levels=levels)
    downsample(array, group)
    with pytest.raises(ValueError, match="already holds '1'"):
        downsample(array, group)
    downsample(array, group, overwrite=True)
    with pytest.raises(ValueError, match="is '1' of the destination group"):
        downsample(group["1"], group, overwrite=True)
    plain = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 4, 4), dtype=np.uint8, chunks=(2, 2, 2))
    with pytest.raises(ValueError, match="not Crackle-compressed"):
        downsample(plain, group, overwrite=True)


# -------------------------------------------------------------------- OME-Zarr and the CLI

@pytest.mark.parametrize("zarr_format, version", [(2, "0.4"), (3, "0.5")])
def test_convert_levels_ome_reads_back_with_ome_zarr(tmp_path, zarr_format, version):
    ome_io = pytest.importorskip("ome_zarr.io", reason="ome-zarr (a test extra) reads the label image back")
    from ome_zarr.reader import Label, Multiscales, Reader

    from crackle_codec import cli

    volume = np.asfortranarray(np.random.default_rng(10).integers(0, 5, (40, 30, 20)).astype(np.uint32))  # (x, y, z)
    np.save(tmp_path / "v.npy", volume)
    dest = str(tmp_path / "labels.zarr")
    assert cli.main(["convert", str(tmp_path / "v.npy"), dest, "--levels", "2", "--ome", "--chunks", "16",
                     "--zarr-format", str(zarr_format), "--no-progress"]) == 0
    location = ome_io.parse_url(dest)
    assert location.version == version
    (node,) = [n for n in Reader(location)() if any(isinstance(s, Label) for s in n.specs)]
    assert any(isinstance(s, Multiscales) for s in node.specs)
    assert [a["name"] for a in node.metadata["axes"]] == ["z", "y", "x"]
    scales = [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]
    assert scales == [[1.0, 1.0, 1.0], [1.0, 2.0, 2.0], [1.0, 4.0, 4.0]]
    levels = [np.asarray(d) for d in node.data]
    np.testing.assert_array_equal(levels[0], volume.T)  # the (x, y, z) source written as (z, y, x)
    for below, level in zip(levels, levels[1:]):
        np.testing.assert_array_equal(level, numpy_mode_pool(below, (1, 2, 2)))


def test_ome_metadata_axes_and_errors():
    group = memory_group()
    attrs = write_ome_label_metadata(group, levels=1, factor=(1, 1, 2, 2, 2))
    multiscale = attrs["ome"]["multiscales"][0]
    assert [a["type"] for a in multiscale["axes"]] == ["time", "channel", "space", "space", "space"]
    assert multiscale["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, 1.0, 2.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="2 to 5 axes"):
        write_ome_label_metadata(group, levels=1, factor=(2,))
    with pytest.raises(ValueError, match="named from"):
        write_ome_label_metadata(group, levels=1, factor=(1, 2, 2), axes=("z", "y", "w"))


def test_cli_downsample(tmp_path, capsys):
    from crackle_codec import cli

    volume = np.random.default_rng(11).integers(0, 4, (10, 20, 30)).astype(np.uint16)
    src = str(tmp_path / "a.zarr")
    create_array(src, data=volume, chunks=(4, 8, 8))
    dest = str(tmp_path / "pyr.zarr")
    assert cli.main(["downsample", src, dest, "--levels", "2", "--factor", "2,2,2", "--no-progress"]) == 0
    assert "levels 1 5x10x15, 2 3x5x8" in capsys.readouterr().out
    group = zarr.open_group(dest, mode="r")
    np.testing.assert_array_equal(group["1"][...], numpy_mode_pool(volume, (2, 2, 2)))
    assert cli.main(["downsample", src, dest, "--no-progress"]) == 1
    assert "use --force" in capsys.readouterr().err
    assert cli.main(["downsample", src, dest, "--no-progress", "-f"]) == 0
    assert cli.main(["downsample", src, dest, "--factor", "2,2", "-f"]) == 2
    assert "--factor" in capsys.readouterr().err
    assert cli.main(["downsample", src, src]) == 1  # an array is not a group
    assert "not a Zarr group" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("keep me")
    assert cli.main(["downsample", src, str(tmp_path / "junk")]) == 1
    assert (tmp_path / "junk" / "notes.txt").read_text() == "keep me"
    assert cli.main(["downsample", str(tmp_path / "missing.zarr"), dest]) == 1
    meta = json.loads((tmp_path / "pyr.zarr" / "1" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "crackle"
    assert crackle_codec.downsample is downsample
