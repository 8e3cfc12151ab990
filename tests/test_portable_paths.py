"""The portable code paths agree with the hardware-specific ones.

On machines with the instructions, slice CRCs are computed from runs with a carry-less multiply
(``RunCrc32c`` in ext/crc.hpp), other CRCs with the CRC instruction, and the component labelling
counts bits with a popcount instruction. With AVX-512, run starts are listed with a compress
(ext/ccl.cpp) and slices of 4- and 8-byte labels written with permutes (ext/slice_writer.cpp).
Elsewhere the core writes out component ids for a table-driven CRC, counts bits in software,
lists run starts with scalar code and fills the output run by run.

``CRACKLE_PORTABLE=1`` forces every portable path, and ``CRACKLE_NO_AVX512=1`` only turns the
AVX-512 paths off (as on x86 CPUs without it), so subprocesses can check here that every tier
writes and reads the same streams.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import crackle_codec
from crackle_codec import _crackle

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, crackle_codec
    from crackle_codec import _crackle
    expected = sys.argv[2]
    assert expected == "any" or _crackle.crc32c_implementation() == expected, _crackle.crc32c_implementation()
    data = np.load(sys.argv[1])
    for i, name in enumerate(sorted(data.files)):
        vol = data[name]
        for order in (0, 3):
            stream = crackle_codec.compress(vol, markov_model_order=order, allow_pins=bool(i % 2))
            sys.stdout.write(stream.hex() + "\\n")
            assert np.array_equal(crackle_codec.decompress(stream), vol)
            c_order = np.ascontiguousarray(vol)
            assert np.array_equal(crackle_codec.decompress(crackle_codec.compress(c_order, markov_model_order=order)), c_order)
    """
)


def _volumes(seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    vols = {}
    # Widths around the vector sizes (8 and 16 labels) and the 64-pixel words; every dtype.
    shapes = [(1, 1, 1), (5, 3, 2), (70, 33, 4), (129, 64, 3), (16, 200, 2), (17, 9, 2), (200, 7, 2)]
    dtypes = [np.uint32, np.uint64, np.uint8, np.int16, np.int64, np.uint32, np.int32]
    for k, (shape, dtype) in enumerate(zip(shapes, dtypes)):
        coarse = rng.integers(0, 6, size=(max(1, shape[0] // 8), max(1, shape[1] // 8), shape[2]))
        vol = np.kron(coarse, np.ones((8, 8, 1), dtype=np.int64))[: shape[0], : shape[1], : shape[2]]
        vol = np.pad(vol, [(0, shape[0] - vol.shape[0]), (0, shape[1] - vol.shape[1]), (0, 0)], mode="edge")
        vols[f"v{k}"] = np.asfortranarray(vol.astype(dtype))
    return vols


@pytest.mark.parametrize(
    "env, crc",
    [
        ({"CRACKLE_PORTABLE": "1"}, "portable"),  # no CRC, carry-less multiply, popcount or AVX-512
        ({"CRACKLE_NO_AVX512": "1"}, "any"),  # the paths of an x86 CPU without AVX-512
    ],
    ids=["portable", "no-avx512"],
)
def test_portable_and_hardware_paths_write_and_read_the_same_streams(tmp_path, env, crc):
    vols = _volumes()
    path = tmp_path / "vols.npz"
    np.savez(path, **vols)
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(path), crc], env=dict(os.environ, **env),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    other = [bytes.fromhex(line) for line in result.stdout.split()]
    here = []
    for i, name in enumerate(sorted(vols)):
        for order in (0, 3):
            here.append(crackle_codec.compress(vols[name], markov_model_order=order, allow_pins=bool(i % 2)))
            assert np.array_equal(crackle_codec.decompress(here[-1]), vols[name])
            c_order = np.ascontiguousarray(vols[name])
            assert np.array_equal(crackle_codec.decompress(crackle_codec.compress(c_order, markov_model_order=order)), c_order)
    assert other == here
    # Each side decodes (and so CRC-checks) what the other wrote: the streams are identical.
    for stream in other:
        crackle_codec.decompress(stream)


def test_crc_implementation_is_reported():
    assert _crackle.crc32c_implementation() in {"avx512-vpclmulqdq", "sse4.2", "armv8-crc", "portable"}


def test_crc32c_tiers_agree():
    """Every CRC32C tier (AVX-512 folding, the CRC instruction, tables) gives one answer, for
    lengths around their block sizes and a running checksum."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    lengths = [0, 1, 7, 255, 256, 257, 1023, 3071, 4095, 4096, 4097, 4096 + 255, 4096 + 256, 9999, 65536 + 13, 1 << 20]
    here = [_crackle.crc32c(data[:n], 0x1234567 * (n % 3)) for n in lengths]
    script = ("import sys; from crackle_codec import _crackle; import numpy as np; "
              "data = np.random.default_rng(3).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes(); "
              f"print(_crackle.crc32c_implementation(), *[_crackle.crc32c(data[:n], 0x1234567 * (n % 3)) for n in {lengths}])")
    for env in ({"CRACKLE_PORTABLE": "1"}, {"CRACKLE_NO_AVX512": "1"}):
        out = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, **env), capture_output=True,
                             text=True, timeout=60, check=True).stdout.split()
        assert [int(v) for v in out[1:]] == here, (env, out[0])
