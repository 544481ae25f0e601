"""cffi API-mode build of the board access library: declarations only.

The declarations come from ext/vb_cdef.h (a preprocessor-free copy of what
vb.h and vb_simdev.h export) so the C headers stay the single source.
"""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["vb_core.c", "vb_sim.c", "vb_simdev.c", "vb_dahdi.c"]
HEADERS = ["vb.h", "vb_backend.h", "vb_simshm.h", "vb_simdev.h", "dahdi_abi.h"]

ffibuilder = FFI()
with open(os.path.join(HERE, "vb_cdef.h")) as f:
    ffibuilder.cdef(f.read())

ffibuilder.set_source(
    "boarddrv._vbcore",
    '#include "vb.h"\n#include "vb_simdev.h"\n',
    sources=[os.path.relpath(os.path.join(HERE, s)) for s in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    depends=[os.path.relpath(os.path.join(HERE, h)) for h in HEADERS],
    libraries=["rt", "pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
