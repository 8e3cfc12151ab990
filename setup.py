"""Build the C++ core and its Cython binding (metadata lives in pyproject.toml)."""
import glob
import os
import sys

import setuptools

if int(setuptools.__version__.split(".")[0]) < 77:  # pyproject's SPDX license needs it (PEP 639)
    sys.exit(f"setuptools {setuptools.__version__} is too old to build crackle-zarr: "
             "pip install -U 'setuptools>=77' (pip install . fetches it by itself)")

import numpy as np  # noqa: E402
from Cython.Build import cythonize  # noqa: E402
from setuptools import Extension, setup  # noqa: E402
from setuptools.command.build_ext import build_ext  # noqa: E402

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

class ParallelBuildExt(build_ext):
    """Compiles the extension's C++ files concurrently (CRACKLE_BUILD_JOBS, default: all cores).

    setuptools compiles the sources of one extension one after the other; ours are six files of
    similar weight, so a build on two cores takes about half as long.
    """

    def build_extension(self, ext):
        jobs = int(os.environ.get("CRACKLE_BUILD_JOBS") or os.cpu_count() or 1)
        compiler = self.compiler
        serial_compile = compiler.compile

        def compile_concurrently(sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                                 extra_preargs=None, extra_postargs=None, depends=None):
            if jobs <= 1 or len(sources) <= 1:
                return serial_compile(sources, output_dir, macros, include_dirs, debug, extra_preargs,
                                      extra_postargs, depends)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(jobs, len(sources))) as pool:
                parts = pool.map(lambda source: serial_compile([source], output_dir, macros, include_dirs, debug,
                                                               extra_preargs, extra_postargs, depends), sources)
                return [obj for objects in parts for obj in objects]

        compiler.compile = compile_concurrently
        try:
            super().build_extension(ext)
        finally:
            del compiler.compile  # back to the class's method


setup(
    ext_modules=cythonize([ext], language_level=3, compiler_directives={"boundscheck": False, "wraparound": False}),
    cmdclass={"build_ext": ParallelBuildExt},
)
