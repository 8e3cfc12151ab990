"""The package imports from a clone's root: its crackle_codec/ folder holds no compiled file.

After ``pip install .`` in a clone, Python run from the clone's root finds the source folder
crackle_codec/ first on sys.path. The compiled core is the top-level module ``_crackle_codec``, so
that folder still imports: the core comes from the installed build. The full check (a repaired
wheel in a fresh environment, imported from the repository root) is in .ci/wheel.sh.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import crackle_codec

PACKAGE_DIR = Path(crackle_codec.__file__).resolve().parent


def test_compiled_core_is_a_top_level_module_outside_the_package():
    import _crackle_codec

    assert crackle_codec._crackle is _crackle_codec
    assert sys.modules["crackle_codec._crackle"] is _crackle_codec
    assert Path(_crackle_codec.__file__).resolve().parent != PACKAGE_DIR


def test_a_source_folder_without_compiled_files_first_on_sys_path_imports(tmp_path):
    shutil.copytree(PACKAGE_DIR, tmp_path / "crackle_codec",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.dylib", "__pycache__"))
    code = ("import numpy as np, crackle_codec, crackle_codec.cli\n"
            "v = np.arange(60, dtype=np.uint16).reshape(3, 4, 5) // 7\n"
            "assert np.array_equal(crackle_codec.decompress(crackle_codec.compress(v)), v)\n"
            "print(crackle_codec.__file__)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == (tmp_path / "crackle_codec" / "__init__.py").resolve()


def test_missing_compiled_core_says_how_to_get_it(tmp_path):
    shutil.copytree(PACKAGE_DIR, tmp_path / "crackle_codec",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.dylib", "__pycache__"))
    code = "import sys; sys.modules['_crackle_codec'] = None; import crackle_codec"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "ImportError" in proc.stderr and "build_ext --inplace" in proc.stderr and "pip install" in proc.stderr
