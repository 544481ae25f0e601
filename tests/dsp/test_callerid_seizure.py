"""The channel-seizure check (CallerIdDetector(require_seizure=True)) against the way it
was first built, which is kept here as the reference.

The kernel now tracks the seizure itself, on the front end it already runs (a sliding
window over the smoothed discriminator while there is carrier), and hands each message
the end of the last window that looked like a seizure. The reference keeps the last 4 s
of audio per channel and, for each message, re-runs the front end over the second
before it and slides the window in numpy. Both must accept and refuse the same
messages: clean ones, short and missing seizures, long marks that push the seizure out
of the second before the message, weak ones, messages back to back, messages framed out
of noise, with messages across block boundaries.
"""
from __future__ import annotations

import numpy as np
import pytest

from dsp import _fsk
from dsp.callerid import BAUD, RATE, CallerId, CallerIdDetector, CidTime, fsk_encode

CID_MDMF = CallerId(number="13912345678", name="Zhang San", when=CidTime(11, 23, 9, 5))
CID_SDMF = CallerId(number="5551234", when=CidTime(1, 2, 3, 4), format="sdmf")


class RingSeizureCheck(CallerIdDetector):
    """The first implementation of the check: audio ring, front end re-run per message."""

    RING = 4 * RATE  # audio kept per channel: preamble + longest message

    def __init__(self, nchan: int, **kw) -> None:
        super().__init__(nchan, require_seizure=True, **kw)
        self._ring = np.zeros((self.nchan, self.RING), np.int16)
        self._ring_end = 0
        self._phasor = np.exp(-2j * np.pi * 600.0 * np.arange(int(self.PREAMBLE_S * RATE)) / RATE)
        self._chan = -1

    def rx(self, block: np.ndarray) -> list:
        events = []
        step = self.RING // 4  # the preamble of a message ending in the block must be kept
        for i in range(0, block.shape[1], step):
            part = np.ascontiguousarray(block[:, i:i + step])
            n, r = part.shape[1], self.pos % self.RING
            first = min(n, self.RING - r)
            self._ring[:, r:r + first] = part[:, :first]
            self._ring[:, :n - first] = part[:, first:]
            self._ring_end = self.pos + n
            events += super().rx(part)
        return events

    def _fsk_event(self, ev, data, mean_d, seizure_end):
        self._chan = int(ev[0])
        return super()._fsk_event(ev, data, mean_d, seizure_end)

    def _preamble_ok(self, end: int, nbytes: int, mark_hz: float, seizure_end: int) -> bool:
        if not self.MARK_HZ[0] <= mark_hz <= self.MARK_HZ[1]:
            return False
        spb = RATE / BAUD
        first = end - int(((nbytes - 1) * 10 + 9.5) * spb)
        a = max(first - int(self.PREAMBLE_S * RATE), self._ring_end - self.RING, 0)
        x = np.ascontiguousarray(self._ring[self._chan:self._chan + 1, np.arange(a, first) % self.RING])
        n = x.shape[1]
        win = int(self.SEIZURE_BITS * spb)
        if n < win:
            return False
        nf, _, ni = _fsk.STATE_SHAPE
        d = np.empty((1, n), np.float32)
        p = np.empty((1, n), np.float32)
        _fsk.fsk_frontend(x, first - n, np.zeros((1, nf), np.float32), np.zeros((1, ni), np.int64),
                          self._sos, self._lo_c, self._lo_s, self.POWER_ALPHA, d, p)
        dd = d[0].astype(np.float64)
        z = np.concatenate([[0.0], np.cumsum(dd * self._phasor[:n])])
        m = np.concatenate([[0.0], np.cumsum(np.abs(dd))])
        score = np.abs(z[win:] - z[:-win]) / np.maximum(m[win:] - m[:-win], 1e-12)
        on = np.concatenate([[0], np.cumsum(p[0] >= self._cd_off)])
        carrier = (on[win:] - on[:-win]) == win
        return bool(np.any(carrier & (score >= self.SEIZURE_SCORE)))


def _signals(rng: np.random.Generator) -> list[np.ndarray]:
    """One channel each: caller ID with seizures and marks of many lengths, levels and standards."""
    sigs = []
    for seizure in (0, 20, 50, 64, 80, 150, 300):
        for mark in (10, 80, 180, 700, 1000, 1100, 1250):
            std = "bell202" if (seizure + mark) % 3 else "v23"
            cid = CID_MDMF if mark % 2 else CID_SDMF
            level = (-13.0, -30.0, -42.0)[(seizure // 10 + mark) % 3]
            sigs.append(fsk_encode(cid, std, level, seizure_bits=seizure, mark_bits=mark))
    two = fsk_encode(CID_MDMF)  # back to back: the second without a seizure of its own
    sigs.append(np.concatenate([two, fsk_encode(CID_SDMF, seizure_bits=0, mark_bits=150)]))
    sigs.append(np.concatenate([two, np.zeros(4000, np.int16), fsk_encode(CID_SDMF, seizure_bits=0)]))
    return sigs


def _batch(rng: np.random.Generator) -> np.ndarray:
    sigs = _signals(rng)
    n = 6 * RATE
    x = np.zeros((len(sigs) + 8, n))
    for k, s in enumerate(sigs):
        at = int(rng.integers(100, n - len(s) - RATE))  # anywhere: across block boundaries
        x[k, at:at + len(s)] = s
    x += rng.normal(0, 40, x.shape)
    # noise that frames messages now and then (speech-like and white, loud)
    noise = rng.normal(0, 1.0, (8, n + 1)) * np.repeat([3000.0, 8000.0], 4)[:, None]
    noise[:4, 1:] += 0.8 * noise[:4, :-1]
    x[len(sigs):] = noise[:, 1:]
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _events(det: CallerIdDetector, x: np.ndarray, block: int) -> list[tuple]:
    ev = [e for i in range(0, x.shape[1], block) for e in det.rx(x[:, i:i + block])]
    return sorted((e.chan, e.start, e.end, e.format, e.callerid, e.error) for e in ev)


@pytest.mark.parametrize("block", [160, 1600, 997])
def test_kernel_seizure_check_agrees_with_the_reference(block):
    rng = np.random.default_rng(21)
    x = np.concatenate([_batch(rng), _batch(rng)], axis=1)  # two rounds: state carried on
    want = _events(RingSeizureCheck(x.shape[0]), x, 1600)
    got = _events(CallerIdDetector(x.shape[0], require_seizure=True), x, block)
    assert got == want
    decoded = {e[0] for e in want if e[4] is not None}
    refused = set(range(len(_signals(np.random.default_rng(0))))) - decoded
    assert len(decoded) > 20 and len(refused) > 10  # both outcomes are exercised
    # the check refuses: without it there are more messages (no seizure, seizure too early, noise)
    loose = _events(CallerIdDetector(x.shape[0]), x, block)
    assert len(loose) > len(got)


def test_a_rearmed_channel_forgets_its_seizure():
    """arm() after disarm(): a seizure heard before does not vouch for a message after."""
    seiz = fsk_encode(CID_MDMF)[:int(300 * RATE / BAUD)]  # the seizure alone
    msg = fsk_encode(CID_MDMF, seizure_bits=0, mark_bits=180)
    x = np.concatenate([np.zeros(800), seiz, msg, np.zeros(800)]).astype(np.int16)[None, :]
    det = CallerIdDetector(1, require_seizure=True)
    assert [e.callerid for e in det.rx(x)] == [CID_MDMF]  # the seizure, then the message
    det = CallerIdDetector(1, require_seizure=True)
    cut = 800 + len(seiz)
    det.rx(x[:, :cut])
    det.disarm(0)
    det.arm(0)
    assert det.rx(x[:, cut:]) == []
