"""The CLI's rough edges a new lab hits: options, refusals and messages that say what to do."""

import json
import subprocess

import numpy as np
import pytest

import crackle_codec
from crackle_codec import cli
from crackle_codec.cli.text import _ratio_text


@pytest.fixture
def run_main(capsys):
    """``cli.main(args)`` in this process, as a CompletedProcess (exit code, stdout, stderr)."""

    def run(*args):
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def one_line_error(proc, *fragments):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("crackle-zarr: error:"), err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture(scope="module")
def volume():
    vol = cli.synthetic_segmentation((40, 36, 10), seed=3)
    vol.setflags(write=False)
    return vol


@pytest.fixture
def seg_npy(tmp_path, volume):
    path = tmp_path / "seg.npy"
    np.save(path, volume)
    return path


def _zarr():
    zarr = pytest.importorskip("zarr", reason="convert and query write and read Zarr arrays")
    if int(zarr.__version__.split(".")[0]) < 3:
        pytest.skip("convert needs zarr >= 3")
    return zarr


# ----------------------------------------------------------------------------- convert --compressor

@pytest.mark.parametrize("spec,fmt,name,level", [
    ("zstd", 3, "zstd", 3),
    ("zstd:7", 3, "zstd", 7),
    ("gzip:9", 3, "gzip", 9),
    ("zstd:5", 2, "zstd", 5),
    ("gzip", 2, "gzip", 6),
    ("none", 3, None, None),
    ("none", 2, None, None),
])
def test_convert_compressor(tmp_path, seg_npy, volume, spec, fmt, name, level, run_main):
    zarr = _zarr()
    dest = tmp_path / "out.zarr"
    proc = run_main("convert", seg_npy, dest, "--chunks", "16,16,10", "--zarr-format", fmt, "--compressor", spec)
    assert proc.returncode == 0, proc.stderr
    z = zarr.open_array(dest, mode="r")
    assert np.array_equal(z[...], volume)
    if fmt == 3:
        codecs = [c.to_dict() for c in z.metadata.codecs]
        names = [c["name"] for c in codecs]
        assert "crackle" in names  # after the transpose codec that a Fortran-ordered source gets
        tail = codecs[names.index("crackle") + 1:]
        assert [c["name"] for c in tail] == ([name] if name else [])
        if name:
            assert tail[0]["configuration"]["level"] == level
    else:
        meta = json.loads((dest / ".zarray").read_text())
        if name:
            assert [f["id"] for f in meta["filters"]] == ["crackle"]
            assert meta["compressor"]["id"] == name and meta["compressor"]["level"] == level
        else:
            assert meta["filters"] is None and meta["compressor"]["id"] == "crackle"
    label = int(volume[5, 5, 5])  # label queries still read the label tables under the second stage
    found = crackle_codec.find_label(z, label)
    assert (0, 0, 0) in found
    assert run_main("query", dest, "--label", label).returncode == 0


@pytest.mark.parametrize("spec", ["lz4", "zstd:0", "zstd:23", "gzip:10", "zstd:x", "none:3"])
def test_convert_compressor_bad_values_are_usage_errors(tmp_path, seg_npy, spec, run_main):
    proc = run_main("convert", seg_npy, tmp_path / "out.zarr", "--compressor", spec)
    assert proc.returncode == 2 and "--compressor" in proc.stderr
    assert not (tmp_path / "out.zarr").exists()


# -------------------------------------------------------------------------------- query --label

@pytest.fixture
def store(tmp_path, seg_npy):
    _zarr()
    dest = tmp_path / "seg.zarr"
    assert cli.main(["convert", str(seg_npy), str(dest), "--chunks", "16,16,10", "--no-progress"]) == 0
    return dest


def test_query_absent_label_says_so_and_exits_1(store, volume, run_main):
    absent = int(volume.max()) + 1
    proc = run_main("query", store, "--label", absent)
    one_line_error(proc, str(store), f"label {absent} is in none of its chunks")
    assert proc.stdout == ""
    proc = run_main("query", store, "--label", absent, "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["chunks"] == []
    assert f"label {absent} is in none" in proc.stderr


@pytest.mark.parametrize("label", [-1, 2**32, 2**70])
def test_query_label_the_dtype_cannot_hold_is_a_usage_error(store, label, run_main):
    proc = run_main("query", store, "--label", label)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "usage: crackle-zarr query" in proc.stderr
    assert f"--label {label}: " in proc.stderr and "uint32 labels (0..4294967295)" in proc.stderr
    assert proc.stdout == ""


# ---------------------------------------------------------------------------- 4D and length-1 axes

def test_convert_4d_names_the_file_and_the_fix(tmp_path, run_main):
    zarr = _zarr()
    vol = np.zeros((2, 20, 18, 6), dtype=np.uint16)
    vol[1, 3:9] = 7
    src = tmp_path / "stack4d.npy"
    np.save(src, vol)
    one_line_error(run_main("convert", src, tmp_path / "a.zarr"), str(src), "4D", "--chunks 1,128,128,128")
    assert not (tmp_path / "a.zarr").exists()
    assert run_main("convert", src, tmp_path / "a.zarr", "--chunks", "1,128,128,128").returncode == 0
    assert np.array_equal(zarr.open_array(tmp_path / "a.zarr", mode="r")[...], vol)


def test_convert_4d_fortran_hint_puts_the_1_last(tmp_path, run_main):
    _zarr()
    src = tmp_path / "xyzt.npy"
    np.save(src, np.asfortranarray(np.zeros((20, 18, 6, 3), dtype=np.uint8)))
    one_line_error(run_main("convert", src, tmp_path / "a.zarr"), "--chunks 128,128,128,1")


def test_compress_accepts_a_leading_length_1_axis(tmp_path, volume, run_main):
    src = tmp_path / "one.npy"
    np.save(src, volume[np.newaxis])
    proc = run_main("compress", src)
    assert proc.returncode == 0, proc.stderr
    assert "length-1 axes [0] dropped" in proc.stdout
    stream = crackle_codec.load(tmp_path / "one.ckl", decode=False)
    assert crackle_codec.header(stream).shape == volume.shape
    assert np.array_equal(crackle_codec.decompress(stream), volume)


def test_compress_4d_names_the_file_and_the_fix(tmp_path, run_main):
    src = tmp_path / "four.npy"
    np.save(src, np.zeros((2, 8, 8, 4), dtype=np.uint8))
    one_line_error(run_main("compress", src), str(src), "4D", "crackle-zarr convert", "--chunks 1,128,128,128")
    assert not (tmp_path / "four.ckl").exists()


# ----------------------------------------------------------------------------- corrupt outer layers

@pytest.mark.parametrize("suffix,layer", [(".gz", "gzip"), (".bz2", "bz2"), (".xz", "xz"), (".zst", "zstd")])
def test_corrupt_outer_layer_names_the_file_and_the_layer(tmp_path, volume, suffix, layer, run_main):
    path = tmp_path / f"seg.ckl{suffix}"
    crackle_codec.save(volume, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # zero the second half
    path.write_bytes(bytes(data))
    for command in (["info", path], ["decompress", path, "-o", tmp_path / "o.npy"], ["labels", path]):
        err = one_line_error(run_main(*command), str(path), f"{layer} layer")
        for raw in ("Error -3", "RuntimeError", "EOFError", "LZMAError", "OSError"):
            assert raw not in err
    proc = run_main("verify", path)
    assert proc.returncode == 1 and f"FAIL  {path}: " in proc.stdout and f"{layer} layer" in proc.stdout


# ----------------------------------------------------------------------------------- tiny chunks

def test_convert_refuses_one_voxel_chunks_with_the_reason(tmp_path, seg_npy, run_main):
    _zarr()
    err = one_line_error(run_main("convert", seg_npy, tmp_path / "a.zarr", "--chunks", "1"),
                         "--chunks 1,1,1: chunks of 1 voxel", "14,400 chunks", "at least 64 voxels")
    assert "header" in err
    assert not (tmp_path / "a.zarr").exists()


def test_convert_small_chunks_warn_and_report_larger_honestly(tmp_path, run_main):
    _zarr()
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 3, size=(16, 16, 8), dtype=np.uint8)  # noise: Crackle's worst case
    src = tmp_path / "noise.npy"
    np.save(src, vol)
    proc = run_main("convert", src, tmp_path / "a.zarr", "--chunks", "4,4,8")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("crackle-zarr: warning: --chunks 4,4,8: chunks of 128 voxels make 16 chunks")
    assert "x larger than raw" in proc.stdout and "smaller" not in proc.stdout


def test_ratio_text():
    assert _ratio_text(1000, 100) == "10.0x smaller"
    assert _ratio_text(100, 780, "than raw") == "7.8x larger than raw"
    assert _ratio_text(100, 100) == "1.0x smaller"
    assert _ratio_text(0, 40) == "40.0x larger"


# ------------------------------------------------------------------------------------ info, demo

def test_info_says_what_the_crack_codes_are_without_jargon(tmp_path, volume, run_main):
    path = tmp_path / "seg.ckl"
    crackle_codec.save(volume, path)
    out = run_main("info", path).stdout
    assert "impermissible" not in out and "permissible" not in out
    assert "boundaries between different labels, no markov model (compress --markov 5" in out
    info = json.loads(run_main("info", path, "--json").stdout)
    assert info["crack_format"] == "impermissible"  # scripts keep the format's own term


def test_demo_zarr_part_says_1_chunk():
    _zarr()
    from crackle_codec.zarr import zarr_demo

    text = zarr_demo(cli.synthetic_segmentation((64, 64, 32), seed=0))
    assert "1 chunk)" in text and "1 chunks" not in text
    assert "its 1 chunk in" in text and "of 1 chunk," in text
