"""DTMF caller ID on the line: our encoder through dsp.dtmf's generator and
detector, spandsp's CLIP-DTMF transmitter into our detector, and our signal
into spandsp's ADSI receiver."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

dtmf = pytest.importorskip("dsp.dtmf", reason="dsp.dtmf (DtmfDetector/DtmfGenerator) not built")

from dsp.callerid import CallerId, CallerIdDetector, callerid_audio, dtmf_cid_audio  # noqa: E402
from dsp.units import dbm0_to_rms  # noqa: E402

import spandsp_adsi  # noqa: E402

NUMBER = CallerId(number="13912345678", format="dtmf")


def run(det: CallerIdDetector, x: np.ndarray, block: int = 160) -> list:
    out = []
    for i in range(0, x.shape[1], block):
        out.extend(det.rx(x[:, i:i + block]))
    return out


def lines(signals: list[np.ndarray], tail: int = 9000) -> np.ndarray:
    n = max(len(s) for s in signals) + 600 + tail
    x = np.zeros((len(signals), n), np.int16)
    for k, s in enumerate(signals):
        x[k, 300 + 37 * k:300 + 37 * k + len(s)] = s
    return x


@pytest.mark.parametrize("cid, start, end", [
    (NUMBER, "A", "C"), (NUMBER, "D", "C"), (NUMBER, "A", "#"),
    (CallerId(number_absence="O", format="dtmf"), "A", "C"),
    (CallerId(number_absence="P", format="dtmf"), "A", "C"),
])
def test_round_trip(cid, start, end):
    x = lines([dtmf_cid_audio(cid, start, end)])
    evs = run(CallerIdDetector(1), x)
    assert [(e.callerid, e.format, e.standard, e.error) for e in evs] == [(cid, "dtmf", "dtmf", None)]
    assert 300 <= evs[0].start < 300 + 200


def test_many_channels_levels_and_noise():
    """8 lines, -25..-4 dBm0 per tone pair, 20 dB SNR: every number arrives once."""
    rng = np.random.default_rng(1)
    sig = []
    for k in range(8):
        low = -25.0 + 3 * k
        sig.append(dtmf_cid_audio(CallerId(number=f"1390000{k:04d}"), level_dbm0=(low, low - 2.0)))
    x = lines(sig).astype(np.float64)
    for k in range(8):
        x[k] += rng.normal(0, dbm0_to_rms(-25.0 + 3 * k - 20.0), x.shape[1])
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    evs = run(CallerIdDetector(8), x)
    assert sorted((e.chan, e.callerid.number) for e in evs) == [(k, f"1390000{k:04d}") for k in range(8)]


def test_spandsp_clip_dtmf_transmitter():
    spandsp_adsi.require()
    tx = spandsp_adsi.AdsiTx("clip_dtmf")
    for fields, expect in [([(ord("A"), b"13912345678")], NUMBER),
                           ([(ord("B"), b"10")], CallerId(number_absence="P", format="dtmf"))]:
        audio = tx.send(tx.build(ord("C"), fields))
        evs = run(CallerIdDetector(1), lines([audio]))
        assert [e.callerid for e in evs] == [expect]


def test_our_signal_in_spandsp_receiver():
    spandsp_adsi.require()
    rx = spandsp_adsi.AdsiRx("clip_dtmf")
    rx.rx(np.concatenate([dtmf_cid_audio(NUMBER), np.zeros(8000, np.int16)]))
    assert rx.messages == [b"A13912345678C"]


def test_external_dtmf_detector_feed():
    """The media engine already runs a DtmfDetector: hand its events over."""
    x = lines([callerid_audio("5551234", standard="dtmf")])
    det = CallerIdDetector(1, dtmf=False)
    ddet = dtmf.DtmfDetector(1)
    evs = []
    for i in range(0, x.shape[1], 160):
        block = x[:, i:i + 160]
        evs += det.rx(block)
        evs += det.dtmf_events(ddet.rx(block), now=det.pos)
    assert [e.callerid for e in evs] == [CallerId(number="5551234", format="dtmf")]


def test_missing_end_code_closes_on_timeout():
    audio = dtmf.dtmf_signal("A139", on_ms=70, off_ms=70)
    evs = run(CallerIdDetector(1), lines([audio], tail=12000))
    assert [e.callerid for e in evs] == [CallerId(number="139", format="dtmf")]


def test_disarmed_channel_ignores_dtmf():
    x = lines([dtmf_cid_audio(NUMBER)] * 2)
    det = CallerIdDetector(2, armed=False)
    det.arm(0)
    assert [e.chan for e in run(det, x)] == [0]


def test_ordinary_digits_are_not_caller_id():
    x = lines([dtmf.dtmf_signal("0123456789*#")])
    assert run(CallerIdDetector(1), x) == []
