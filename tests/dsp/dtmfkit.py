"""Our DTMF receiver run the way the DSP tests compare it with spandsp's."""
from __future__ import annotations

import numpy as np

from dsp.dtmf import DtmfDetector, DtmfEvent


def ours_batch(signals: list[np.ndarray], block: int = 160, **params) -> list[str]:
    """Digits per signal, all signals as channels of one detector (the batched path)."""
    n = max(len(s) for s in signals) + 800
    x = np.zeros((len(signals), n), np.int16)
    for i, s in enumerate(signals):
        x[i, :len(s)] = s
    det = DtmfDetector(len(signals), **params)
    events: list[DtmfEvent] = []
    for i in range(0, n, block):
        events += det.rx(x[:, i:i + block])
    return ["".join(e.digit for e in events if e.chan == i and e.end is None)
            for i in range(len(signals))]
