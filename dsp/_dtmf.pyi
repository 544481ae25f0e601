"""Type stub of the Cython module dsp/_dtmf.pyx (type checking only, not installed)."""
from typing import Final

import numpy as np
import numpy.typing as npt

NQ_ROWS: Final[int]
NI_ROWS: Final[int]
SUB_LEN: Final[int]
WIN_LEN: Final[int]
TILE_WIDTH: Final[int]
GEN_ROWS: Final[int]

def dtmf_rx(x: npt.NDArray[np.int16], fstate: npt.NDArray[np.float32], istate: npt.NDArray[np.int64],
            clock: npt.NDArray[np.int64], params: npt.NDArray[np.float32], bins: npt.NDArray[np.float32],
            events: npt.NDArray[np.int64], trace: npt.NDArray[np.float32] | None = None) -> int: ...
def event_tuples(rows: npt.NDArray[np.int64], cls: type, names: tuple[str, ...]) -> list: ...
def dtmf_tx(out: npt.NDArray[np.int16], gstate: npt.NDArray[np.int32], queue: npt.NDArray[np.uint8],
            sine: npt.NDArray[np.float64], row_hz: npt.NDArray[np.int32], col_hz: npt.NDArray[np.int32],
            amp_low: float, amp_high: float, on_samples: int, off_samples: int) -> None: ...
