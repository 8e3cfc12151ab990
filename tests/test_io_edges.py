"""save/load edges: damaged outer layers, suffixes as the reference handles them, overwriting."""

import bz2
import gzip
import io
import lzma

import numpy as np
import pytest

import crackle_codec
from crackle_codec import DecodeError

LAYERS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".lzma": "xz", ".zst": "zstd"}


@pytest.fixture(scope="module")
def volume():
    vol = np.zeros((24, 20, 6), dtype=np.uint32, order="F")
    vol[3:15, 2:12] = 17
    vol[10:22, 8:19, 2:5] = 42
    return vol


def _damaged(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    body = bytearray(data)
    body[8:] = bytes(len(body) - 8)  # keep the magic bytes, zero the rest
    return bytes(body)


@pytest.mark.parametrize("how", ["truncated", "zeroed"])
@pytest.mark.parametrize("suffix", sorted(LAYERS))
def test_damaged_outer_layer_raises_decode_error_naming_it(tmp_path, volume, suffix, how):
    path = tmp_path / f"v.ckl{suffix}"
    crackle_codec.save(volume, path)
    path.write_bytes(_damaged(path.read_bytes(), how))
    for decode in (True, False):
        with pytest.raises(DecodeError, match=f"^{LAYERS[suffix]} layer: "):
            crackle_codec.load(path, decode=decode)


def test_legacy_lzma_alone_damaged(tmp_path, volume):
    path = tmp_path / "v.lzma"
    path.write_bytes(lzma.compress(crackle_codec.compress(volume), format=lzma.FORMAT_ALONE)[:-20])
    with pytest.raises(DecodeError, match="^xz layer: "):
        crackle_codec.load(path)


@pytest.mark.parametrize("suffix", sorted(LAYERS))
def test_name_asks_for_a_layer_the_file_does_not_have(tmp_path, suffix):
    path = tmp_path / f"v.ckl{suffix}"
    path.write_bytes(b"\x00\x01 neither compressed nor Crackle" * 4)
    with pytest.raises(DecodeError, match=f"^{LAYERS[suffix]} layer: "):
        crackle_codec.load(path)


@pytest.mark.parametrize("name,magic", [
    ("v.gz", b"\x1f\x8b"),            # gzip without .ckl, as the reference does
    ("v.ckl.lzma", b"\xfd7zXZ\x00"),  # .lzma is an .xz container, as the reference writes it
    ("v.lzma", b"\xfd7zXZ\x00"),
    ("v.ckl.bz2", b"BZh"),
    ("v.ckl.zst", b"\x28\xb5\x2f\xfd"),
    ("v.bin", b"crkl"),
])
def test_save_suffixes(tmp_path, volume, name, magic):
    path = tmp_path / name
    crackle_codec.save(volume, path)
    assert path.read_bytes().startswith(magic)
    assert np.array_equal(crackle_codec.load(path), volume)


def test_load_recognises_the_layer_by_its_magic_not_its_name(tmp_path, volume):
    stream = crackle_codec.compress(volume)
    for name, data in [("plain.ckl.bz2", stream), ("plain.ckl.zst", stream), ("plain.ckl.gz", stream),
                       ("gz_named.ckl", gzip.compress(stream)), ("bz2_named.ckl.xz", bz2.compress(stream)),
                       ("alone.ckl.lzma", lzma.compress(stream, format=lzma.FORMAT_ALONE))]:
        (tmp_path / name).write_bytes(data)
        assert crackle_codec.load(tmp_path / name, decode=False) == stream, name


@pytest.mark.parametrize("name", ["v.ckl", "v.ckl.gz", "v.gz", "v.ckl.xz", "v.ckl.lzma", "v.ckl.bz2", "v.ckl.zst"])
def test_files_the_reference_writes_load_here(tmp_path, volume, name):
    crackle = pytest.importorskip("crackle", reason="the reference crackle-codec is the oracle")
    crackle.save(volume, str(tmp_path / name))
    assert np.array_equal(crackle_codec.load(tmp_path / name), volume)


@pytest.mark.parametrize("name", ["v.ckl", "v.ckl.gz", "v.gz", "v.ckl.xz", "v.ckl.lzma"])
def test_files_saved_here_load_in_the_reference(tmp_path, volume, name):
    crackle = pytest.importorskip("crackle", reason="the reference crackle-codec is the oracle")
    crackle_codec.save(volume, tmp_path / name)
    assert np.array_equal(crackle.load(str(tmp_path / name)), volume)


def test_overwrite(tmp_path, volume):
    path = tmp_path / "v.ckl"
    crackle_codec.save(volume, path)
    crackle_codec.save(volume * 2, path)  # the default replaces, as the reference's save does
    assert np.array_equal(crackle_codec.load(path), volume * 2)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        crackle_codec.save(volume, path, overwrite=False)
    assert path.read_bytes() == before
    crackle_codec.save(volume, tmp_path / "new.ckl.gz", overwrite=False)
    assert np.array_equal(crackle_codec.load(tmp_path / "new.ckl.gz"), volume)
    with pytest.raises(TypeError):
        crackle_codec.save(volume, tmp_path / "x.ckl", overwrite="no")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.ckl.gz", "v.ckl"]  # no temporary left


def test_failed_save_keeps_the_old_file(tmp_path, volume):
    path = tmp_path / "v.ckl"
    crackle_codec.save(volume, path)
    before = path.read_bytes()
    with pytest.raises(DecodeError):
        crackle_codec.save(b"not a stream at all", path)
    with pytest.raises(TypeError):
        crackle_codec.save(volume.astype(np.float32), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.ckl"]


def test_file_objects(volume):
    buf = io.BytesIO()
    crackle_codec.save(volume, buf)
    assert buf.getvalue().startswith(b"crkl")
    buf.seek(0)
    assert np.array_equal(crackle_codec.load(buf), volume)
    assert crackle_codec.load(io.BytesIO(gzip.compress(buf.getvalue())), decode=False) == buf.getvalue()


def test_save_into_a_missing_directory_names_the_file(tmp_path, volume):
    target = tmp_path / "no" / "such" / "v.ckl"
    with pytest.raises(FileNotFoundError) as info:
        crackle_codec.save(volume, target)
    assert info.value.filename == str(target)
