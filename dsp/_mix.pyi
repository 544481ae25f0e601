"""Type stub of the Cython module dsp/_mix.pyx (type checking only, not installed)."""
import numpy as np
import numpy.typing as npt

def play_block(out: npt.NDArray[np.int16], bank: npt.NDArray[np.int16],
               pos: npt.NDArray[np.int64], end: npt.NDArray[np.int64],
               gain: npt.NDArray[np.float32], active: npt.NDArray[np.uint8],
               mix: npt.NDArray[np.uint8], finished: npt.NDArray[np.int32]) -> int: ...
def add_rows(out: npt.NDArray[np.int16], src: npt.NDArray[np.int16],
             dst_rows: npt.NDArray[np.int32], src_rows: npt.NDArray[np.int32]) -> None: ...
