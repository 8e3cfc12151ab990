"""Smoke test of an installed crackle-zarr (a wheel in a fresh environment): does it work there?

    python tools/wheel_smoke.py [--clone DIR]

Run it with the environment's python from a directory outside the repository, so that the
installed package is the one imported. Checks: the package and its compiled core come from
site-packages; the core picked its CRC path at run time; a compress/decompress round trip; label
queries; a Crackle Zarr array (format 3, and format 2 when the zarr installed writes it) written here
and read back in a new process that never imports crackle_codec (the codecs' entry points must find
it); the crackle-zarr command. With --clone DIR (a clone of the repository, without builds):
``import crackle_codec`` from DIR, whose source folder comes first on sys.path, works and uses the
installed core. .ci/wheel.sh runs it; cibuildwheel runs it as its test command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"wheel smoke test FAILED: {what}")
    print(f"ok  {what}")


def run(args: list[str], cwd: str | os.PathLike[str]) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"wheel smoke test FAILED: {args!r} exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def volume() -> np.ndarray:
    vol = np.zeros((70, 60, 20), dtype=np.uint32, order="F")
    vol[5:50, 10:40, :] = 17
    vol[30:65, 25:58, 4:18] = 42
    vol[::7, ::5, 3] = 123456789
    return vol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clone", help="a clone of the repository: import crackle_codec from its root")
    args = parser.parse_args()

    import _crackle_codec
    import crackle_codec

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    platsite = Path(sysconfig.get_paths()["platlib"]).resolve()
    check(Path(crackle_codec.__file__).resolve().is_relative_to(site), f"crackle_codec from {site}")
    check(Path(_crackle_codec.__file__).resolve().parent in (site, platsite), f"core {Path(_crackle_codec.__file__).name}")
    check(_crackle_codec.crc32c_implementation() in {"avx512-vpclmulqdq", "sse4.2", "armv8-crc", "portable"},
          f"CRC32C path chosen at run time: {_crackle_codec.crc32c_implementation()}")

    vol = volume()
    for options in ({}, {"markov_model_order": 5, "allow_pins": True}):
        stream = crackle_codec.compress(vol, **options)
        back = crackle_codec.decompress(stream, parallel=2)
        check(np.array_equal(back, vol) and back.flags.f_contiguous, f"round trip {options or 'defaults'}")
    check(crackle_codec.labels(stream).tolist() == [0, 17, 42, 123456789], "labels without decoding")

    import zarr

    with tempfile.TemporaryDirectory(prefix="crackle-wheel-smoke-") as tmp:
        from crackle_codec.zarr3 import CrackleCodec

        arrays = {"v3.zarr": dict(zarr_format=3, serializer=CrackleCodec(), compressors=None)}
        if int(zarr.__version__.split(".")[0]) >= 3:
            arrays["v2.zarr"] = dict(zarr_format=2, compressors=crackle_codec.Crackle(), filters=None)
        for name, codec in arrays.items():
            z = zarr.create_array(os.path.join(tmp, name), shape=vol.shape, chunks=(32, 32, 20), dtype=vol.dtype,
                                  fill_value=0, **codec)
            z[...] = vol
        np.save(os.path.join(tmp, "expected.npy"), vol)
        reader = ("import sys, numpy as np, zarr\n"
                  "expected = np.load('expected.npy')\n"
                  "for name in sys.argv[1:]:\n"
                  "    assert np.array_equal(zarr.open_array(name, mode='r')[...], expected), name\n"
                  "assert 'crackle_codec' in sys.modules  # loaded by zarr through the entry point\n"
                  "print('read', *sys.argv[1:])\n")
        run([sys.executable, "-c", reader, *arrays], cwd=tmp)
        check(True, f"Zarr arrays {', '.join(arrays)} read in a new process through the entry points")

        script = shutil.which("crackle-zarr", path=os.path.dirname(sys.executable))
        check(script is not None, "crackle-zarr installed next to python")
        out = run([script, "info", "--json", os.path.join(tmp, "v3.zarr", "c", "0", "0", "0")], cwd=tmp)
        check('"labels": ' in out, "crackle-zarr info on a chunk of the array")

    if args.clone:
        clone = Path(args.clone).resolve()
        code = ("import numpy as np, crackle_codec, _crackle_codec\n"
                "v = np.arange(120, dtype=np.uint16).reshape(4, 5, 6) // 9\n"
                "assert np.array_equal(crackle_codec.decompress(crackle_codec.compress(v)), v)\n"
                "print(crackle_codec.__file__); print(_crackle_codec.__file__)\n")
        package, core = run([sys.executable, "-c", code], cwd=clone).split()
        check(Path(package).resolve().is_relative_to(clone) and not Path(core).resolve().is_relative_to(clone),
              f"import crackle_codec from the clone's root ({clone}): its source folder with the installed core")
    print("wheel smoke test passed")


if __name__ == "__main__":
    main()
