"""Type stub of the Cython module dsp/_r2mf.pyx (type checking only, not installed)."""
from typing import Final

import numpy as np
import numpy.typing as npt

NQ_ROWS: Final[int]
NI_ROWS: Final[int]
SUB_LEN: Final[int]
WIN_LEN: Final[int]
TILE_WIDTH: Final[int]
GEN_ROWS: Final[int]

def r2mf_rx(x: npt.NDArray[np.int16], fstate: npt.NDArray[np.float32], istate: npt.NDArray[np.int64],
            clock: npt.NDArray[np.int64], params: npt.NDArray[np.float64], events: npt.NDArray[np.int64],
            trace: npt.NDArray[np.float32] | None = None) -> int: ...
def r2mf_tx(out: npt.NDArray[np.int16], gstate: npt.NDArray[np.int32], sine: npt.NDArray[np.float64],
            amp: npt.NDArray[np.float64]) -> None: ...
