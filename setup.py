"""Build the C++ core and its Cython binding (metadata lives in pyproject.toml)."""
import glob
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

SOURCES = ["ext/_crackle.pyx", "ext/ccl.cpp", "ext/crc.cpp", "ext/encoder.cpp", "ext/decoder.cpp", "ext/slice_writer.cpp"]

compile_args = ["-std=c++17", "-O3", "-Wall", "-Wextra"]
link_args = []
if sys.platform != "win32":
    link_args.append("-pthread")
    compile_args.append("-pthread")
if os.environ.get("CRACKLE_SANITIZE"):
    # AddressSanitizer + UndefinedBehaviorSanitizer build for hardening tests.
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
    compile_args += san
    link_args += san

# The compiled core is a top-level module, not crackle_codec._crackle: a clone's crackle_codec/ folder
# (first on sys.path when Python runs from the repository root) then still imports the installed
# build instead of failing on a missing extension. crackle_codec/__init__.py keeps the name
# crackle_codec._crackle for it.
ext = Extension(
    "_crackle_codec",
    sources=SOURCES,
    depends=sorted(glob.glob("ext/*.hpp")),  # a header change must rebuild the extension
    include_dirs=["ext", np.get_include()],
    language="c++",
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(ext_modules=cythonize([ext], language_level=3, compiler_directives={"boundscheck": False, "wraparound": False}))
