"""Type stub of the Cython module dsp/_level.pyx (type checking only, not installed)."""
import numpy as np
import numpy.typing as npt

def vad_block(xt: npt.NDArray[np.float32], acc: npt.NDArray[np.float64], pos: int, frame_len: int,
              floor: npt.NDArray[np.float64], speech: npt.NDArray[np.int32], run: npt.NDArray[np.int32],
              quiet: npt.NDArray[np.int32], last_loud: npt.NDArray[np.int64], frame0: int,
              ratio: float, abs_min: float, down: float, up_quiet: float, up_speech: float,
              attack: int, hangover: int, ev: npt.NDArray[np.int64]) -> tuple[int, int, int]: ...
