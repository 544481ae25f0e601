"""Type stub of the Cython module dsp/_fsk.pyx (type checking only, not installed)."""
from typing import Final, SupportsFloat

import numpy as np
import numpy.typing as npt

STATE_SHAPE: Final[tuple[int, int, int]]
MESSAGE_MAX: Final[int]
BOX_LEN: Final[int]
EVENT_MESSAGE: Final[int]
EVENT_CARRIER_LOST: Final[int]
EVENT_FRAMING: Final[int]
EVENT_GAP: Final[int]
LO_LEN: Final[int]
SEIZURE_SUMS: Final[int]

def fsk_frontend(x: npt.NDArray[np.int16], pos: int, fs: npt.NDArray[np.float32], ist: npt.NDArray[np.int64],
                 sos: npt.NDArray[np.float32], lo_c: npt.NDArray[np.float32], lo_s: npt.NDArray[np.float32],
                 alpha: SupportsFloat, d_out: npt.NDArray[np.float32], p_out: npt.NDArray[np.float32]) -> None: ...
def fsk_rx(x: npt.NDArray[np.int16], pos: int, fs: npt.NDArray[np.float32], ds: npt.NDArray[np.float64],
           ist: npt.NDArray[np.int64], msg: npt.NDArray[np.uint8], armed: npt.NDArray[np.uint8],
           sos: npt.NDArray[np.float32], lo_c: npt.NDArray[np.float32], lo_s: npt.NDArray[np.float32],
           alpha: SupportsFloat, cd_on: SupportsFloat, cd_off: SupportsFloat, min_idle: float, max_gap: float,
           ev: npt.NDArray[np.int64], evb: npt.NDArray[np.uint8], evm: npt.NDArray[np.float64],
           sz: npt.NDArray[np.float64] | None = None, evs: npt.NDArray[np.int64] | None = None,
           seiz_score: float = 0.5) -> int: ...
