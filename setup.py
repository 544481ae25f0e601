"""Build: the cffi board library (ext/) and the Cython DSP kernels (dsp/*.pyx)."""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# Warnings are errors in our own C; generated Cython C gets the same flags
# minus -Werror (Cython's output is not ours to keep warning-free).
CYTHON_FLAGS = ["-O3", "-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]


# Plain C linked into a DSP extension next to its .pyx (headers in ext/).
# setuptools gives every source of an extension the same flags, so this C
# is built here with CYTHON_FLAGS; `make ctest` builds it again with
# -Wextra -Werror under the sanitizers (tests/c/test_dtmf_kernel.c).
DSP_C_SOURCES = {
    "dsp._dtmf": (["ext/dtmf_kernel.c"], ["ext/dtmf_kernel.h"]),
}


def dsp_extensions():
    exts = []
    for pyx in sorted(glob.glob(os.path.join("dsp", "*.pyx"))):
        name = "dsp." + os.path.splitext(os.path.basename(pyx))[0]
        c_sources, c_headers = DSP_C_SOURCES.get(name, ([], []))
        exts.append(Extension(
            name, [pyx, *c_sources],
            depends=c_headers,
            include_dirs=[numpy.get_include(), "dsp", "ext"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=CYTHON_FLAGS,
        ))
    return cythonize(exts, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True,
        "initializedcheck": False,
    })


# Everything declarative (name, version, dependencies, packages, entry points)
# is in pyproject.toml; only the native extensions need code.
setup(
    ext_modules=dsp_extensions(),
    cffi_modules=["ext/build_vbcore.py:ffibuilder"],
)
