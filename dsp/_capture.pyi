"""Type stub of the Cython module dsp/_capture.pyx (type checking only, not installed)."""
from typing import Final

import numpy as np
import numpy.typing as npt

MONO: Final[int]
STEREO: Final[int]
PAUSED: Final[int]

def capture_block(rx: npt.NDArray[np.int16], tx: npt.NDArray[np.int16], out: npt.NDArray[np.int16],
                  src_a: npt.NDArray[np.int32], src_b: npt.NDArray[np.int32],
                  mode: npt.NDArray[np.uint8], nslots: int) -> None: ...
