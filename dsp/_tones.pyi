"""Type stub of the Cython module dsp/_tones.pyx (type checking only, not installed)."""
import numpy as np
import numpy.typing as npt

def tone_tx(out: npt.NDArray[np.int16],
            tone: npt.NDArray[np.int32], seg: npt.NDArray[np.int32], remain: npt.NDArray[np.int32],
            phase: npt.NDArray[np.float64], inc: npt.NDArray[np.float64], amp: npt.NDArray[np.float32],
            seg_off: npt.NDArray[np.int32], seg_cnt: npt.NDArray[np.int32],
            seg_len: npt.NDArray[np.int32]) -> None: ...
def goertzel_frames(xt: npt.NDArray[np.float32], coef: npt.NDArray[np.float32], sinw: npt.NDArray[np.float32],
                    s1: npt.NDArray[np.float32], s2: npt.NDArray[np.float32], energy: npt.NDArray[np.float32],
                    pos: int, frame_len: int, out: npt.NDArray[np.float32]) -> tuple[int, int]: ...
def segment_frames(cls: npt.NDArray[np.int32], energy: npt.NDArray[np.float32], frame0: int,
                   cur: npt.NDArray[np.int32], cur_start: npt.NDArray[np.int64],
                   cand: npt.NDArray[np.int32], cand_start: npt.NDArray[np.int64], cand_len: npt.NDArray[np.int32],
                   milestone_done: npt.NDArray[np.uint8],
                   run_e: npt.NDArray[np.float64], run_n: npt.NDArray[np.int32], cand_e: npt.NDArray[np.float64],
                   debounce: int, milestone: npt.NDArray[np.int32], class_base: int,
                   ev: npt.NDArray[np.int64], ev_e: npt.NDArray[np.float64]) -> int: ...
