"""The crackle-zarr command line: demo, info, verify, usage errors and exit codes."""

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


def assert_one_line_error(proc):
    err = proc.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("crackle-zarr: error:"), err


# ----------------------------------------------------------------------------------------- demo

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
    for command in ("demo", "info", "verify"):
        assert command in out
    assert cli.main(["demo", "--help"]) == 0
    assert "--shape" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert "crackle-zarr" in capsys.readouterr().out
