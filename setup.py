"""Build the C++ core and its Cython binding (metadata lives in pyproject.toml)."""
import glob
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

SOURCES = ["ext/_crackle.pyx", "ext/ccl.cpp", "ext/crc.cpp", "ext/encoder.cpp", "ext/decoder.cpp", "ext/slice_writer.cpp",
           "ext/label_slices.cpp"]

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

ext = Extension(
    "crackle_codec._crackle",
    sources=SOURCES,
    depends=sorted(glob.glob("ext/*.hpp")),  # a header change must rebuild the extension
    include_dirs=["ext", np.get_include()],
    language="c++",
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(ext_modules=cythonize([ext], language_level=3, compiler_directives={"boundscheck": False, "wraparound": False}))
