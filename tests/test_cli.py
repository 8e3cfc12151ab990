"""The crackle-zarr command line: every command, round trips, usage errors and exit codes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import crackle_codec
from crackle_codec import cli

TIMEOUT = 300


def run_cli(*args, cwd=None):
    """Run ``python -m crackle_codec.cli ARGS`` in a subprocess; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "crackle_codec.cli", *args],
        capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, cwd=cwd,
    )


def assert_one_line_error(proc, *fragments):
    """Exit code 1 and exactly one line on stderr, naming each of ``fragments``."""
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("crackle-zarr: error:"), err
    for fragment in fragments:
        assert fragment in err, err


# ----------------------------------------------------------------------------------------- demo

@pytest.fixture(autouse=True)
def _temp_dir_inside_tmp_path(monkeypatch, tmp_path):
    """The demo keeps its Zarr array in a new temporary directory: make that one under tmp_path."""
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_demo_small_runs_and_prints_the_table():
    proc = run_cli("demo", "--shape", "64,64,32", "--zstd-levels", "3")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "64x64x32" in out
    for name in ("raw", "zstd level 3", "crackle flat", "crackle markov 5", "crackle pins + markov 5"):
        assert name in out
    assert "MVx/s" in out
    assert "decoded == input" in out
    assert "labels(stream)" in out and "contains(stream," in out
    assert out.rstrip().splitlines()[-1].strip().startswith("crackle-zarr view ")
    assert proc.stderr == ""


def test_demo_console_script_if_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "crackle-zarr")
    if not os.path.exists(exe):
        pytest.skip("console script crackle-zarr not installed next to this Python")
    proc = subprocess.run([exe, "demo", "--shape", "32,32,8", "--zstd-levels", "1"],
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert "crackle pins + markov 5" in proc.stdout


def test_demo_in_process_2d_shape(capsys):
    assert cli.main(["demo", "--shape", "48x40", "--zstd-levels", "1", "--seed", "7"]) == 0
    assert "48x40x1" in capsys.readouterr().out


def test_synthetic_segmentation_is_deterministic_and_realistic():
    a = cli.synthetic_segmentation((64, 48, 20), seed=5)
    b = cli.synthetic_segmentation((64, 48, 20), seed=5)
    c = cli.synthetic_segmentation((64, 48, 20), seed=6)
    assert a.shape == (64, 48, 20) and a.dtype == np.uint32 and a.flags.f_contiguous
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert 0 not in a  # dense: every voxel belongs to a cell or a tube
    assert len(np.unique(a)) > 5
    # A segmentation, not noise: most neighbouring voxels share their label.
    assert np.mean(a[1:] == a[:-1]) > 0.8


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 30, 5), (70, 1, 3), (33, 17, 1)])
def test_synthetic_segmentation_odd_shapes(shape):
    vol = cli.synthetic_segmentation(shape, seed=1)
    assert vol.shape == shape
    stream = crackle_codec.compress(vol, allow_pins=True, markov_model_order=5)
    assert np.array_equal(crackle_codec.decompress(stream), vol.reshape(shape))


# ------------------------------------------------------------------------------- info / verify

@pytest.fixture
def stream_file(tmp_path):
    vol = cli.synthetic_segmentation((40, 40, 12), seed=2)
    path = tmp_path / "vol.ckl"
    crackle_codec.save(vol, path, markov_model_order=5)
    return path, vol


def test_info(stream_file):
    path, vol = stream_file
    proc = run_cli("info", str(path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "40 x 40 x 12" in out
    assert "uint32" in out
    assert f"{len(np.unique(vol))}, flat" in out
    assert "markov model order 5" in out
    for section in ("header", "crack index", "labels", "markov model", "crack codes", "CRCs"):
        assert section in out


def test_info_gz(tmp_path):
    vol = cli.synthetic_segmentation((24, 24, 6), seed=4)
    path = tmp_path / "vol.ckl.gz"
    crackle_codec.save(vol, path)
    proc = run_cli("info", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "24 x 24 x 6" in proc.stdout


def test_verify_ok_and_corrupt(stream_file, tmp_path):
    path, _ = stream_file
    data = path.read_bytes()
    bad = tmp_path / "bad.ckl"
    flipped = bytearray(data)
    flipped[10] ^= 0x01  # sx: the header CRC8 no longer matches
    bad.write_bytes(bytes(flipped))
    short = tmp_path / "short.ckl"
    short.write_bytes(data[:-1])  # the last slice CRC is cut

    ok = run_cli("verify", str(path))
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout

    mixed = run_cli("verify", str(path), str(bad), str(short))
    assert mixed.returncode == 1
    assert f"OK    {path}" in mixed.stdout
    assert f"FAIL  {bad}" in mixed.stdout
    assert f"FAIL  {short}" in mixed.stdout
    assert "1 ok, 2 failed" in mixed.stdout
    assert "Traceback" not in mixed.stdout + mixed.stderr


@pytest.mark.parametrize("content", [b"", b"not a crackle stream at all", b"crkl\x01" + b"\x00" * 40])
def test_info_garbage_is_one_line_error(tmp_path, content):
    path = tmp_path / "garbage.ckl"
    path.write_bytes(content)
    proc = run_cli("info", str(path))
    assert proc.returncode == 1
    assert_one_line_error(proc)
    assert str(path) in proc.stderr


def test_missing_file_is_one_line_error(tmp_path):
    proc = run_cli("info", str(tmp_path / "nope.ckl"))
    assert proc.returncode == 1
    assert_one_line_error(proc)
    assert "nope.ckl" in proc.stderr

    proc = run_cli("verify", str(tmp_path / "nope.ckl"))
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout


def test_debug_shows_traceback(tmp_path):
    path = tmp_path / "garbage.ckl"
    path.write_bytes(b"garbage")
    proc = run_cli("--debug", "info", str(path))
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    proc = run_cli("info", "--debug", str(path))  # also accepted after the subcommand
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr


# ------------------------------------------------------------------------------ usage and codes

@pytest.mark.parametrize("args", [
    ["bogus"],
    [],
    ["demo", "--shape", "0,1,1"],
    ["demo", "--shape", "a,b,c"],
    ["demo", "--shape", "1,2,3,4"],
    ["demo", "--zstd-levels", "99"],
    ["demo", "--parallel", "-1"],
    ["demo", "--no-such-option"],
    ["info"],
    ["verify"],
])
def test_usage_errors_exit_2(args):
    proc = run_cli(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "usage:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_errors_in_process_return_2(capsys):
    assert cli.main(["bogus"]) == 2
    assert cli.main([]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_and_version_exit_0(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "info", "verify", "compress", "decompress", "labels", "remap", "convert", "query"):
        assert command in out
    assert cli.main(["demo", "--help"]) == 0
    assert "--shape" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert "crackle-zarr" in capsys.readouterr().out


# ------------------------------------------------------------------------------ shared inputs

@pytest.fixture(scope="module")
def volume():
    """A small realistic segmentation, Fortran-ordered (x, y, z), read-only."""
    vol = cli.synthetic_segmentation((40, 36, 10), seed=3)
    vol.setflags(write=False)
    return vol


@pytest.fixture
def seg_npy(tmp_path, volume):
    path = tmp_path / "seg.npy"
    np.save(path, volume)
    return path


@pytest.fixture
def run_main(capsys):
    """Like ``run_cli`` but in this process (``cli.main``): the same exit codes and output, faster."""

    def run(*args):
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def ok(proc):
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc


# ----------------------------------------------------------------------- compress / decompress

@pytest.mark.parametrize("suffix", [".ckl", ".ckl.gz", ".ckl.bz2", ".ckl.xz", ".ckl.zst"])
def test_compress_decompress_round_trip(tmp_path, seg_npy, volume, suffix, run_main):
    run = run_cli if suffix == ".ckl" else run_main  # one real process is enough
    out = tmp_path / f"seg{suffix}"
    args = ["compress", str(seg_npy)] + (["-o", str(out)] if suffix != ".ckl" else [])
    proc = ok(run(*args, "--markov", "5", "--pins"))
    assert out.exists() and "seg.npy ->" in proc.stdout
    h = crackle_codec.header(crackle_codec.load(out, decode=False))
    assert h.markov_model_order == 5 and h.shape == volume.shape and h.order == "F"
    back = tmp_path / "back.npy"
    ok(run("decompress", str(out), "-o", str(back)))
    result = np.load(back)
    assert result.dtype == volume.dtype and np.array_equal(result, volume)
    assert result.flags.f_contiguous


def test_decompress_default_output_and_c_order(tmp_path, run_main):
    vol = np.ascontiguousarray(cli.synthetic_segmentation((12, 10, 6), seed=1)).astype(np.uint16)
    src = tmp_path / "c.npy"
    np.save(src, vol)
    ok(run_main("compress", str(src)))
    (tmp_path / "c.npy").unlink()
    ok(run_main("decompress", str(tmp_path / "c.ckl")))  # default: IN with .ckl -> .npy
    back = np.load(tmp_path / "c.npy")
    assert back.dtype == np.uint16 and back.flags.c_contiguous and np.array_equal(back, vol)


def test_npz_needs_key_when_several(tmp_path, volume, run_main):
    src = tmp_path / "two.npz"
    np.savez(src, a=volume, b=volume[:5])
    proc = run_main("compress", str(src))
    assert_one_line_error(proc, "two.npz", "a, b", "--key")
    ok(run_main("compress", str(src), "--key", "b"))
    assert np.array_equal(crackle_codec.load(tmp_path / "two.ckl"), volume[:5])
    assert_one_line_error(run_main("compress", str(src), "--key", "c", "-f"), "'c'")
    one = tmp_path / "one.npz"
    np.savez_compressed(one, labels=volume)
    ok(run_main("compress", str(one)))
    ok(run_main("decompress", str(tmp_path / "one.ckl"), "-o", str(tmp_path / "back.npz"), "--key", "seg"))
    with np.load(tmp_path / "back.npz") as npz:
        assert npz.files == ["seg"] and np.array_equal(npz["seg"], volume)


def test_tif_round_trip_keeps_axis_order(tmp_path, volume, run_main):
    tifffile = pytest.importorskip("tifffile", reason="tifffile reads and writes .tif volumes")
    stack = np.ascontiguousarray(volume.transpose(2, 1, 0))  # a (z, y, x) stack, as TIFF readers give
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, stack)
    ok(run_cli("compress", str(src)))
    assert crackle_codec.header(crackle_codec.load(tmp_path / "stack.ckl", decode=False)).shape == stack.shape
    ok(run_main("compress", str(src), "-o", str(tmp_path / "xyz.ckl"), "--transpose"))
    assert np.array_equal(crackle_codec.load(tmp_path / "xyz.ckl"), volume)  # the planes are Crackle's z
    ok(run_cli("decompress", str(tmp_path / "stack.ckl"), "-o", str(tmp_path / "back.tif")))
    assert np.array_equal(tifffile.imread(tmp_path / "back.tif"), stack)
    ok(run_main("decompress", str(tmp_path / "xyz.ckl"), "-o", str(tmp_path / "back2.tiff"), "--transpose"))
    assert np.array_equal(tifffile.imread(tmp_path / "back2.tiff"), stack)


@pytest.mark.parametrize("dtype", [np.uint32, np.int16, np.uint64])
def test_nifti_round_trip(tmp_path, volume, dtype, run_main):
    nibabel = pytest.importorskip("nibabel", reason="nibabel reads and writes .nii/.nii.gz volumes")
    vol = (volume % 1000).astype(dtype)
    src = tmp_path / "seg.nii.gz"
    nibabel.save(nibabel.Nifti1Image(vol, np.eye(4), dtype=vol.dtype), src)
    ok(run_main("compress", str(src)))  # seg.nii.gz -> seg.ckl
    assert np.array_equal(crackle_codec.load(tmp_path / "seg.ckl"), vol)
    ok(run_main("decompress", str(tmp_path / "seg.ckl"), "-o", str(tmp_path / "back.nii")))
    back = np.asanyarray(nibabel.load(tmp_path / "back.nii").dataobj)
    assert back.dtype == vol.dtype and np.array_equal(back, vol)


@pytest.mark.parametrize("module,suffix,command", [("tifffile", ".tif", "compress"),
                                                    ("nibabel", ".nii.gz", "decompress")])
def test_missing_optional_library_is_one_clear_line(tmp_path, seg_npy, module, suffix, command, run_main):
    """Without the library, a .tif/.nii input or output fails with the pip command to run."""
    if command == "compress":
        src = tmp_path / f"in{suffix}"
        src.write_bytes(b"never read: the import fails first")
        args = ["compress", str(src)]
    else:
        ok(run_main("compress", str(seg_npy)))
        args = ["decompress", str(tmp_path / "seg.ckl"), "-o", str(tmp_path / f"out{suffix}")]
    code = ("import sys; sys.modules[%r] = None; from crackle_codec.cli import main; "
            "raise SystemExit(main(sys.argv[1:]))" % module)  # the import of MODULE now fails
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert_one_line_error(proc, f"pip install {module}")
    assert not (tmp_path / f"out{suffix}").exists()


def test_compress_refuses_to_overwrite(tmp_path, seg_npy, volume, run_main):
    out = tmp_path / "seg.ckl"
    out.write_bytes(b"precious")
    assert_one_line_error(run_main("compress", str(seg_npy)), "seg.ckl", "already exists", "--force")
    assert out.read_bytes() == b"precious"
    ok(run_main("compress", str(seg_npy), "--force"))
    assert np.array_equal(crackle_codec.load(out), volume)
    assert_one_line_error(run_main("decompress", str(out), "-o", str(seg_npy)), "already exists")


@pytest.mark.parametrize("case", ["missing", "garbage_npy", "float", "unknown_in", "unknown_out", "scalar"])
def test_compress_bad_inputs(tmp_path, seg_npy, case, run_main):
    if case == "missing":
        args, expect = [str(tmp_path / "nope.npy")], ("nope.npy", "no such file")
    elif case == "garbage_npy":
        (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
        args, expect = [str(tmp_path / "bad.npy")], ("bad.npy", ".npy")
    elif case == "float":
        np.save(tmp_path / "f.npy", np.zeros((4, 4, 4), np.float32))
        args, expect = [str(tmp_path / "f.npy")], ("f.npy", "float32", "integer")
    elif case == "unknown_in":
        (tmp_path / "seg.raw").write_bytes(b"\0" * 64)
        args, expect = [str(tmp_path / "seg.raw")], ("seg.raw", "extension", ".npy")
    elif case == "unknown_out":
        args, expect = [str(seg_npy), "-o", str(tmp_path / "seg.bin")], ("seg.bin", "extension", ".ckl.gz")
    else:
        np.save(tmp_path / "s.npy", np.array(3, np.uint8))
        args, expect = [str(tmp_path / "s.npy")], ("s.npy", "0-d")
    assert_one_line_error(run_main("compress", *args), *expect)
    assert not list(tmp_path.glob("*.ckl")) and not list(tmp_path.glob(".crackle-zarr-*"))


@pytest.mark.parametrize("name,content", [
    ("bad.ckl", b"not a crackle stream"),
    ("bad.ckl.gz", b"not gzip"),
    ("bad.ckl.zst", b"not zstd"),
    ("bad.ckl.xz", b"not xz"),
])
def test_decompress_corrupt_input(tmp_path, name, content, run_main):
    (tmp_path / name).write_bytes(content)
    proc = run_main("decompress", str(tmp_path / name), "-o", str(tmp_path / "out.npy"))
    assert_one_line_error(proc, name)
    assert not (tmp_path / "out.npy").exists()


def test_decompress_corrupt_crack_codes_leaves_no_output(tmp_path, volume):
    stream = bytearray(crackle_codec.compress(volume))
    stream[-6] ^= 0x40  # inside the last slice's crack codes or CRC
    (tmp_path / "bad.ckl").write_bytes(bytes(stream))
    proc = run_cli("decompress", str(tmp_path / "bad.ckl"))
    assert_one_line_error(proc, "bad.ckl", "slice z=")
    assert not (tmp_path / "bad.npy").exists()


# ------------------------------------------------------------------------------- info / verify

def test_info_json(stream_file):
    path, vol = stream_file
    proc = ok(run_cli("info", "--json", str(path)))
    assert len(proc.stdout.strip().splitlines()) == 1
    info = json.loads(proc.stdout)
    assert info["shape"] == [40, 40, 12] and info["dtype"] == "uint32" and info["order"] == "F"
    assert info["labels"] == len(np.unique(vol)) and info["label_format"] == "flat"
    assert info["markov_model_order"] == 5 and info["version"] == 1 and info["has_crcs"]
    assert sum(info["sections"].values()) == info["stream_bytes"] == path.stat().st_size
    assert info["ratio"] == pytest.approx(vol.nbytes / info["stream_bytes"])


@pytest.mark.parametrize("where,section", [("labels", "labels"), ("last", "slice z=11")])
def test_verify_names_the_corrupt_section(stream_file, tmp_path, where, section):
    path, _ = stream_file
    data = bytearray(path.read_bytes())
    h = crackle_codec.header(bytes(data))
    offset = h.header_bytes + h.index_bytes + 3 if where == "labels" else len(data) - 3
    data[offset] ^= 0x10
    bad = tmp_path / "bad.ckl"
    bad.write_bytes(bytes(data))
    proc = run_cli("verify", str(bad))
    assert proc.returncode == 1
    (line,) = proc.stdout.splitlines()
    assert line.startswith(f"FAIL  {bad}: ") and f"{section}: " in line, line


# ------------------------------------------------------------------------------ labels / remap

def test_labels_text_and_json(stream_file, run_main):
    path, vol = stream_file
    text = ok(run_main("labels", str(path))).stdout
    assert [int(v) for v in text.split()] == np.unique(vol).tolist()
    assert json.loads(ok(run_main("labels", "--json", str(path))).stdout) == np.unique(vol).tolist()


def test_remap(tmp_path, stream_file, run_main):
    path, vol = stream_file
    labels = np.unique(vol).tolist()
    mapping = {str(labels[0]): 7, str(labels[1]): 7, str(labels[2]): 1}
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    out = tmp_path / "merged.ckl.gz"

    proc = run_cli("remap", str(path), str(tmp_path / "map.json"), "-o", str(out))
    assert_one_line_error(proc, "is not in", "--preserve-missing-labels")
    assert not out.exists()

    ok(run_main("remap", str(path), str(tmp_path / "map.json"), "-o", str(out), "--preserve-missing-labels"))
    expected = vol.copy()
    for old, new in mapping.items():
        expected[vol == int(old)] = new
    assert np.array_equal(crackle_codec.decompress(crackle_codec.load(out, decode=False)), expected)

    full = {str(v): i for i, v in enumerate(labels)}
    (tmp_path / "full.json").write_text(json.dumps(full))
    ok(run_main("remap", str(path), str(tmp_path / "full.json"), "-o", str(out), "--force"))
    assert np.array_equal(crackle_codec.load(out), np.searchsorted(labels, vol).astype(vol.dtype))


@pytest.mark.parametrize("content,expect", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"abc": 1}', "'abc'"),
    ('{"1": 2.5}', "not an integer"),
    ('{"1": true}', "not an integer"),
    ('{"LABEL": -1}', "does not fit"),
])
def test_remap_bad_mapping(tmp_path, stream_file, content, expect, run_main):
    path, vol = stream_file
    (tmp_path / "m.json").write_text(content.replace("LABEL", str(vol[0, 0, 0])))
    proc = run_main("remap", str(path), str(tmp_path / "m.json"), "-o", str(tmp_path / "o.ckl"),
                   "--preserve-missing-labels")
    assert_one_line_error(proc, expect)
    assert not (tmp_path / "o.ckl").exists()


# ------------------------------------------------------------------------------------ convert

def _zarr():
    zarr = pytest.importorskip("zarr", reason="convert and query write and read Zarr arrays")
    if int(zarr.__version__.split(".")[0]) < 3:
        pytest.skip("convert needs zarr >= 3")
    return zarr


@pytest.mark.parametrize("options,fmt,sharded", [
    (["--chunks", "16,16,8"], 3, False),
    (["--chunks", "16", "--zarr-format", "2", "--markov", "5"], 2, False),
    (["--chunks", "8,8,4", "--shards", "16,16,8", "--pins"], 3, True),
])
def test_convert_npy(tmp_path, seg_npy, volume, options, fmt, sharded, run_main):
    zarr = _zarr()
    from crackle_codec.zarr3 import CrackleCodec

    dest = tmp_path / "seg.zarr"
    run = run_cli if fmt == 3 and not sharded else run_main  # one real process is enough
    proc = ok(run("convert", str(seg_npy), str(dest), *options, "--workers", "3", "--verify"))
    assert "voxels" in proc.stdout and "MVx/s" in proc.stdout and "verified" in proc.stdout
    z = zarr.open_array(dest, mode="r")
    assert z.metadata.zarr_format == fmt and z.dtype == volume.dtype
    assert np.array_equal(z[...], volume)
    if fmt == 2:
        assert isinstance(z.metadata.compressor, crackle_codec.Crackle)
        assert z.metadata.compressor.markov_model_order == 5
    elif sharded:
        assert z.shards == (16, 16, 8) and z.chunks == (8, 8, 4)
        assert isinstance(z.metadata.codecs[0].codecs[-1], CrackleCodec)
    else:
        assert isinstance(z.metadata.codecs[-1], CrackleCodec) and z.chunks == (16, 16, 8)
    if fmt == 3 and volume.flags.f_contiguous:
        # An (x, y, z) Fortran volume: zarr's transpose codec hands Crackle (z, y, x) chunks, so
        # Crackle slices along z (the axis rule) and nothing is copied on the way.
        codecs = z.metadata.codecs[0].codecs if sharded else z.metadata.codecs
        assert tuple(codecs[0].order) == (2, 1, 0)
        chunk = next(p for p in dest.rglob("*") if p.is_file() and p.name != "zarr.json")
        if not sharded:
            assert crackle_codec.header(chunk.read_bytes()).shape == (16, 16, 8)


def test_convert_from_other_zarr_and_from_ckl(tmp_path, volume, run_main):
    zarr = _zarr()
    from zarr.codecs import BloscCodec

    src = tmp_path / "blosc.zarr"
    z = zarr.create_array(src, shape=volume.shape, chunks=(13, 11, 7), dtype=volume.dtype,
                          compressors=BloscCodec(cname="zstd"))
    z[...] = volume
    ok(run_cli("convert", str(src), str(tmp_path / "a.zarr"), "--chunks", "16,16,16"))
    a = zarr.open_array(tmp_path / "a.zarr", mode="r")
    assert a.chunks == (16, 16, 10)  # fitted to the volume along z
    assert np.array_equal(a[...], volume)

    crackle_codec.save(volume, tmp_path / "seg.ckl.gz", markov_model_order=3)
    ok(run_main("convert", str(tmp_path / "seg.ckl.gz"), str(tmp_path / "b.zarr"), "--chunks", "16,8,4",
               "--workers", "2"))
    assert np.array_equal(zarr.open_array(tmp_path / "b.zarr", mode="r")[...], volume)


def test_convert_nifti_and_tif(tmp_path, volume, run_main):
    zarr = _zarr()
    nibabel = pytest.importorskip("nibabel", reason="nibabel reads .nii volumes")
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4), dtype=volume.dtype), tmp_path / "seg.nii")
    ok(run_main("convert", str(tmp_path / "seg.nii"), str(tmp_path / "n.zarr"), "--chunks", "16"))
    assert np.array_equal(zarr.open_array(tmp_path / "n.zarr", mode="r")[...], volume)
    tifffile = pytest.importorskip("tifffile", reason="tifffile reads .tif volumes")
    tifffile.imwrite(tmp_path / "seg.tif", np.ascontiguousarray(volume.T))
    ok(run_main("convert", str(tmp_path / "seg.tif"), str(tmp_path / "t.zarr"), "--chunks", "16", "--transpose"))
    assert np.array_equal(zarr.open_array(tmp_path / "t.zarr", mode="r")[...], volume)


@pytest.mark.parametrize("case", ["exists", "float", "bad_shards", "v2_shards", "chunk_rank", "missing", "unknown"])
def test_convert_errors(tmp_path, seg_npy, case, run_main):
    _zarr()
    dest = tmp_path / "out.zarr"
    args, expect = [str(seg_npy), str(dest)], ()
    if case == "exists":
        dest.mkdir()
        expect = ("already exists", "--force")
    elif case == "float":
        np.save(tmp_path / "f.npy", np.ones((4, 4, 4)))
        args, expect = [str(tmp_path / "f.npy"), str(dest)], ("float64",)
    elif case == "bad_shards":
        args += ["--chunks", "16", "--shards", "24"]
        expect = ("multiples",)
    elif case == "v2_shards":
        args += ["--zarr-format", "2", "--shards", "256"]
        expect = ("format 3",)
    elif case == "chunk_rank":
        args += ["--chunks", "8,8"]
        expect = ("3 axes",)
    elif case == "missing":
        args, expect = [str(tmp_path / "nope.npy"), str(dest)], ("nope.npy",)
    else:
        (tmp_path / "seg.h5").write_bytes(b"x")
        args, expect = [str(tmp_path / "seg.h5"), str(dest)], ("seg.h5", "extension")
    assert_one_line_error(run_main("convert", *args), *expect)
    assert dest.exists() == (case == "exists")


# -------------------------------------------------------------------------------------- query

def test_query(tmp_path, seg_npy, volume, run_main):
    _zarr()
    dest = tmp_path / "q.zarr"
    ok(run_main("convert", str(seg_npy), str(dest), "--chunks", "16,16,10", "--shards", "32,32,10"))
    chunks = (16, 16, 10)
    truth = {}
    for index in np.ndindex(3, 3, 1):
        box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunks))
        truth[index] = np.unique(volume[box]).tolist()
    label = int(volume[20, 20, 5])
    holding = sorted(c for c, v in truth.items() if label in v)

    text = ok(run_cli("query", str(dest), "--label", str(label))).stdout
    assert text.split() == [",".join(map(str, c)) for c in holding]
    found = json.loads(ok(run_main("query", str(dest), "--label", str(label), "--json")).stdout)
    assert found["chunks"] == [list(c) for c in holding] and found["chunk_shape"] == list(chunks)

    per_chunk = json.loads(ok(run_main("query", str(dest), "--chunk-labels", "--json")).stdout)
    assert {tuple(e["chunk"]): e["labels"] for e in per_chunk["chunks"]} == truth
    lines = ok(run_main("query", str(dest), "--chunk-labels")).stdout.splitlines()
    assert lines[0] == "0,0,0: " + " ".join(map(str, truth[(0, 0, 0)]))

    index = json.loads(ok(run_main("query", str(dest), "--index", "--json")).stdout)["labels"]
    assert index[str(label)] == [list(c) for c in holding]


def test_query_errors(tmp_path, volume, run_main):
    zarr = _zarr()
    plain = tmp_path / "plain.zarr"
    zarr.create_array(plain, shape=(4, 4, 4), chunks=(2, 2, 2), dtype="uint8")[...] = 1
    assert_one_line_error(run_cli("query", str(plain), "--label", "1"), "not Crackle-compressed")
    assert_one_line_error(run_main("query", str(tmp_path / "nope.zarr"), "--label", "1"), "nope.zarr")
    proc = run_main("query", str(plain))  # neither --label nor --chunk-labels: usage
    assert proc.returncode == 2


@pytest.mark.parametrize("args", [
    ["compress"],
    ["compress", "x.npy", "--markov", "16"],
    ["remap", "x.ckl", "m.json"],  # -o is required
    ["convert", "x.npy"],
    ["convert", "x.npy", "y.zarr", "--zarr-format", "4"],
    ["convert", "x.npy", "y.zarr", "--chunks", "0,1,1"],
    ["convert", "x.npy", "y.zarr", "--workers", "0"],
    ["query", "x.zarr", "--label", "1", "--chunk-labels"],
])
def test_new_commands_usage_errors_exit_2(args, run_main):
    proc = run_main(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr


def test_convert_transposed_stream_and_big_endian_npy(tmp_path, volume, run_main):
    """A stream read with --transpose is decoded slab by slab along its own z; >u4 becomes <u4."""
    zarr = _zarr()
    crackle_codec.save(volume, tmp_path / "seg.ckl")
    ok(run_main("convert", tmp_path / "seg.ckl", tmp_path / "t.zarr", "--transpose", "--chunks", "4,16,16",
                "--workers", "2", "--verify"))
    assert np.array_equal(zarr.open_array(tmp_path / "t.zarr", mode="r")[...], volume.T)
    np.save(tmp_path / "be.npy", volume.astype(">u4"))
    ok(run_main("convert", tmp_path / "be.npy", tmp_path / "be.zarr", "--zarr-format", "2", "--chunks", "16"))
    z = zarr.open_array(tmp_path / "be.zarr", mode="r")
    assert z.dtype == np.dtype("<u4") and np.array_equal(z[...], volume)


def test_convert_force_replaces_only_zarr(tmp_path, seg_npy, volume, run_main):
    """--force replaces an existing Zarr array, never a directory or file that is not one."""
    zarr = _zarr()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    assert_one_line_error(run_main("convert", seg_npy, other, "--force"), "not a Zarr array")
    assert (other / "keep.txt").read_text() == "precious"
    dest = tmp_path / "seg.zarr"
    ok(run_main("convert", seg_npy, dest, "--chunks", "8"))
    ok(run_main("convert", seg_npy, dest, "--chunks", "16", "--force"))
    z = zarr.open_array(dest, mode="r")
    assert z.chunks == (16, 16, 10) and np.array_equal(z[...], volume)


def test_max_voxels_refuses_large_claims(stream_file, tmp_path):
    """--max-voxels (untrusted input): verify and decompress refuse a stream whose header claims
    more voxels, with exit 1 and the reason."""
    path, _ = stream_file
    voxels = crackle_codec.header(path.read_bytes()).voxels
    ok = run_cli("verify", "--max-voxels", str(voxels), str(path))
    assert ok.returncode == 0, ok.stderr
    refused = run_cli("verify", "--max-voxels", str(voxels - 1), str(path))
    assert refused.returncode == 1 and "max_voxels" in refused.stdout
    out = tmp_path / "out.npy"
    refused = run_cli("decompress", str(path), "-o", str(out), "--max-voxels", "10")
    assert refused.returncode == 1 and not out.exists()
    assert_one_line_error(refused, "max_voxels")
    bad = run_cli("decompress", str(path), "-o", str(out), "--max-voxels", "-5")
    assert bad.returncode == 2
