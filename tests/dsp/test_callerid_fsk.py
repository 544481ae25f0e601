"""FSK caller ID: our receiver against spandsp's ADSI transmitter and our own
generator, across levels, noise and frequency offset; our generator against
spandsp's ADSI receiver; the Cython kernel against a numpy/Python reference.

`python tests/dsp/test_callerid_fsk.py` prints the full level and SNR sweeps
(the figures in docs/dsp-callerid.md); the tests assert the pass lines.
"""
from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from dsp import _fsk  # noqa: E402
from dsp.callerid import (  # noqa: E402
    CallerId,
    CallerIdDetector,
    CidTime,
    callerid_audio,
    encode_message,
    fsk_encode,
    fsk_encode_bytes,
)
from dsp.checks import AudioArrayError  # noqa: E402
from dsp.units import dbm0_to_rms, signal_dbm0  # noqa: E402

import spandsp_adsi  # noqa: E402

CID_MDMF = CallerId(number="13912345678", name="Zhang San", when=CidTime(11, 23, 9, 5))
CID_SDMF = CallerId(number="5551234", when=CidTime(1, 2, 3, 4), format="sdmf")
SPANDSP_STD = {"bell202": "class", "v23": "clip"}


@pytest.fixture(scope="module")
def adsi():
    try:
        spandsp_adsi.require()
    except RuntimeError as exc:
        pytest.fail(str(exc))  # the peer comparison is the point: missing library is an error
    return spandsp_adsi


def spandsp_message(cid: CallerId, standard: str) -> bytes:
    """A caller ID message built field by field by spandsp's adsi_add_field."""
    tx = spandsp_adsi.AdsiTx(SPANDSP_STD[standard])
    if cid.format == "sdmf":
        return tx.build(0x04, [(0, (cid.when.text() + cid.number).encode())])
    fields = [(1, cid.when.text().encode()), (2, cid.number.encode())]
    if cid.name:
        fields.append((7, cid.name.encode()))
    return tx.build(0x80, fields)


def spandsp_audio(cid: CallerId, standard: str) -> np.ndarray:
    tx = spandsp_adsi.AdsiTx(SPANDSP_STD[standard])
    return tx.send(spandsp_message(cid, standard))


def batch(signals: list[np.ndarray], level_dbm0: float | None, snr_db: float | None,
          rng: np.random.Generator, lead: int = 400) -> np.ndarray:
    """One channel per signal: leading silence that differs per channel (so the
    bit phase against the block grid differs), optional rescale to a level,
    white Gaussian noise at an SNR over the full 0-4 kHz band."""
    n = max(len(s) for s in signals) + lead + 64 + 800
    x = np.zeros((len(signals), n))
    for k, s in enumerate(signals):
        s = s.astype(np.float64)
        if level_dbm0 is not None:
            s *= dbm0_to_rms(level_dbm0) / dbm0_to_rms(signal_dbm0(s[s != 0]))
        off = lead + (k * 7) % 64
        x[k, off:off + len(s)] = s
        if snr_db is not None:
            sig = dbm0_to_rms(signal_dbm0(s[s != 0]))
            x[k] += rng.normal(0.0, sig * 10 ** (-snr_db / 20.0), n)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def run(det: CallerIdDetector, x: np.ndarray, block: int = 160) -> list:
    out = []
    for i in range(0, x.shape[1], block):
        out.extend(det.rx(x[:, i:i + block]))
    return out


def decoded_ok(x: np.ndarray, cid: CallerId, standard: str | None = None) -> int:
    """How many channels decoded exactly cid (once, nothing else)."""
    evs = run(CallerIdDetector(x.shape[0], dtmf=False), x)
    good = 0
    for ch in range(x.shape[0]):
        mine = [e for e in evs if e.chan == ch and e.error is None]
        good += len(mine) == 1 and mine[0].callerid == cid and \
            (standard is None or mine[0].standard == standard)
    return good


def sources(cid: CallerId, standard: str, n: int, rng: np.random.Generator,
            offset_hz: float = 0.0) -> list[np.ndarray]:
    """Half spandsp's transmitter, half ours (ours with a random frequency offset)."""
    theirs = spandsp_audio(cid, standard)
    out = []
    for k in range(n):
        if k % 2 == 0:
            out.append(theirs)
        else:
            out.append(fsk_encode(cid, standard, freq_offset_hz=offset_hz * rng.uniform(-1, 1)))
    return out


# ------------------------------------------------------------------ spandsp peer


@pytest.mark.parametrize("standard", ["bell202", "v23"])
@pytest.mark.parametrize("cid", [CID_MDMF, CID_SDMF], ids=["mdmf", "sdmf"])
def test_spandsp_transmitter_decodes(adsi, standard, cid):
    """spandsp's adsi_tx (CLASS = Bell 202, CLIP = V.23) builds the message
    and the line signal; we decode it and tell the standard apart."""
    a = spandsp_audio(cid, standard)
    x = np.concatenate([np.zeros(123, np.int16), a, np.zeros(800, np.int16)])[None]
    evs = run(CallerIdDetector(1, dtmf=False), x)
    assert len(evs) == 1
    e = evs[0]
    assert e.callerid == cid and e.error is None
    assert e.format == cid.format and e.standard == standard
    assert 123 <= e.start < 123 + 80 and 123 + len(a) - 200 < e.end <= 123 + len(a)


def test_spandsp_builds_the_same_bytes(adsi):
    """Our message encoder and spandsp's adsi_add_field agree byte for byte
    (spandsp's receiver hands the message over without the checksum)."""
    for cid in (CID_MDMF, CID_SDMF):
        ours = encode_message(cid)
        rx = adsi.AdsiRx("class")
        rx.rx(spandsp_audio(cid, "bell202"))
        assert rx.messages == [ours[:-1]]


@pytest.mark.parametrize("standard", ["bell202", "v23"])
@pytest.mark.parametrize("cid", [CID_MDMF, CID_SDMF,
                                 CallerId(number_absence="P", name_absence="O", when=CidTime(12, 31, 23, 59))],
                         ids=["mdmf", "sdmf", "absent"])
def test_our_generator_decodes_in_spandsp(adsi, standard, cid):
    rx = adsi.AdsiRx(SPANDSP_STD[standard])
    rx.rx(np.concatenate([fsk_encode(cid, standard), np.zeros(400, np.int16)]))
    assert rx.errors == []
    assert rx.messages == [encode_message(cid)[:-1]]


def test_callerid_audio_for_hwsim():
    """The function hwsim's FXO line plays between the first and second ring."""
    a = callerid_audio("13912345678", "Zhang San", (11, 23, 9, 5))
    assert a.dtype == np.int16 and a.ndim == 1
    assert abs(signal_dbm0(a) - (-13.0)) < 0.2
    # 300 seizure + 180 mark + bytes + 10 tail bits at 1200 baud
    nbits = 300 + 180 + 10 * len(encode_message(CID_MDMF)) + 10
    assert len(a) == -(-nbits * 8000 // 1200)
    evs = run(CallerIdDetector(1, dtmf=False), np.concatenate([a, np.zeros(400, np.int16)])[None])
    assert [e.callerid for e in evs] == [CID_MDMF]
    withheld = run(CallerIdDetector(1, dtmf=False),
                   np.concatenate([callerid_audio(None, standard="v23"), np.zeros(400, np.int16)])[None])
    assert withheld[0].callerid == CallerId(number_absence="P")


# ------------------------------------------------------------------ sweeps

LEVELS = [-45.0, -40.0, -30.0, -20.0, -13.0, -5.0]
PASS_SNR_DB = 12.0   # 100% at and above this (full-band white noise), see docs
PASS_LEVEL_DBM0 = -45.0


@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_level_sweep(adsi, standard):
    """-45..-5 dBm0 at 30 dB SNR, spandsp and ours, +/-20 Hz offset on ours."""
    rng = np.random.default_rng(1)
    for level in LEVELS:
        sig = sources(CID_MDMF, standard, 8, rng, offset_hz=20.0)
        x = batch(sig, level, 30.0, rng)
        assert decoded_ok(x, CID_MDMF, standard) == 8, f"{standard} at {level} dBm0"


@pytest.mark.parametrize("standard", ["bell202", "v23"])
@pytest.mark.parametrize("level", [-40.0, -13.0])
def test_snr_pass_line(adsi, standard, level):
    rng = np.random.default_rng(2)
    sig = sources(CID_MDMF, standard, 16, rng, offset_hz=20.0)
    x = batch(sig, level, PASS_SNR_DB, rng)
    assert decoded_ok(x, CID_MDMF, standard) == 16


def test_below_carrier_threshold_is_silent():
    """A caller ID 10 dB under the carrier detect threshold is not received at all."""
    x = batch([fsk_encode(CID_MDMF)], -58.0, None, np.random.default_rng(3))
    assert run(CallerIdDetector(1, dtmf=False), x) == []


@pytest.mark.parametrize("offset", [-40.0, 40.0])
def test_frequency_offset(offset):
    """+/-40 Hz on both tones (beyond the +/-1% that Bell 202 allows)."""
    for standard in ("bell202", "v23"):
        x = batch([fsk_encode(CID_MDMF, standard, freq_offset_hz=offset)] * 4, -20.0, 25.0,
                  np.random.default_rng(4))
        assert decoded_ok(x, CID_MDMF, standard) == 4


# ------------------------------------------------------------------ detector behaviour


def test_block_size_does_not_matter():
    rng = np.random.default_rng(5)
    x = batch([fsk_encode(CID_MDMF, "bell202"), fsk_encode(CID_SDMF, "v23")], -25.0, 20.0, rng)
    ref = run(CallerIdDetector(2, dtmf=False), x, block=x.shape[1])
    for block in (1, 80, 160, 333):
        assert run(CallerIdDetector(2, dtmf=False), x, block=block) == ref
    assert {(e.chan, e.callerid) for e in ref} == {(0, CID_MDMF), (1, CID_SDMF)}


def test_back_to_back_messages_on_one_channel():
    a = fsk_encode(CID_MDMF)
    b = fsk_encode(CID_SDMF, "v23")
    x = np.concatenate([a, np.zeros(2000, np.int16), b, np.zeros(800, np.int16)])[None]
    evs = run(CallerIdDetector(1, dtmf=False), x, block=x.shape[1])
    assert [e.callerid for e in evs] == [CID_MDMF, CID_SDMF]
    assert [e.standard for e in evs] == ["bell202", "v23"]
    assert evs[0].end < len(a) < evs[1].start


def test_standard_filter():
    x = batch([fsk_encode(CID_MDMF, "bell202"), fsk_encode(CID_MDMF, "v23")], -20.0, None,
              np.random.default_rng(6))
    bell = run(CallerIdDetector(2, standard="bell202", dtmf=False), x)
    assert [(e.chan, e.standard) for e in bell] == [(0, "bell202")]
    v23 = run(CallerIdDetector(2, standard="v23", dtmf=False), x)
    assert [(e.chan, e.standard) for e in v23] == [(1, "v23")]


def test_arm_disarm():
    x = batch([fsk_encode(CID_MDMF)] * 3, -20.0, None, np.random.default_rng(7))
    det = CallerIdDetector(3, dtmf=False, armed=False)
    det.arm(1)
    evs = run(det, x)
    assert [e.chan for e in evs] == [1]
    det.disarm(1)
    assert not det.armed(1) and run(det, x) == []
    with pytest.raises(ValueError, match="channel 3 out of range"):
        det.arm(3)


def test_bad_checksum_is_an_event_with_a_reason():
    msg = bytearray(encode_message(CID_MDMF))
    msg[-1] ^= 0x01
    x = np.concatenate([fsk_encode_bytes(bytes(msg)), np.zeros(800, np.int16)])[None]
    evs = run(CallerIdDetector(1, dtmf=False), x)
    assert len(evs) == 1 and evs[0].callerid is None and "bad checksum" in evs[0].error
    assert evs[0].format == "mdmf"
    assert run(CallerIdDetector(1, dtmf=False, report_errors=False), x) == []


def test_carrier_lost_mid_message():
    a = fsk_encode(CID_MDMF)
    x = np.concatenate([a[:len(a) - 400], np.zeros(800, np.int16)])[None]
    evs = run(CallerIdDetector(1, dtmf=False), x)
    # The receiver sees either the carrier go or the byte stream stop first.
    assert len(evs) == 1 and evs[0].callerid is None
    assert re.fullmatch(r"(carrier lost|gap in the byte stream) after \d+ bytes", evs[0].error)
    assert int(evs[0].error.split()[-2]) < len(encode_message(CID_MDMF))


def test_noise_and_tones_give_no_caller_id():
    """Loud noise and steady tones in the band for 10 s x 8 channels: no caller ID."""
    rng = np.random.default_rng(8)
    n = 8000 * 10
    t = np.arange(n) / 8000.0
    x = np.empty((8, n))
    for ch in range(4):
        x[ch] = rng.normal(0, dbm0_to_rms(-10.0 + 5 * ch), n)
    for ch, f in zip(range(4, 8), (1200.0, 1700.0, 2200.0, 450.0), strict=False):
        x[ch] = dbm0_to_rms(-10.0) * np.sqrt(2) * np.sin(2 * np.pi * f * t)
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    evs = run(CallerIdDetector(8, dtmf=False), x)
    assert [e for e in evs if e.callerid is not None] == []


def test_speech_gives_no_caller_id(tmp_path):
    """A minute of synthetic speech at three levels, continuously armed."""
    import shutil
    import subprocess

    from dsp.audiofile import read_audio
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (Debian package espeak-ng)")
    wav = str(tmp_path / "speech.wav")
    subprocess.run(["espeak-ng", "-w", wav, "Hello, thank you for calling. Please hold while we "
                    "connect you to the next available agent. Press one for sales, two for support, "
                    "or stay on the line. Your call is important to us."], check=True)
    x = np.tile(read_audio(wav), (1, 5)).astype(np.int32)
    x = np.clip(np.concatenate([x, x * 4, x * 8]), -32768, 32767).astype(np.int16)
    assert run(CallerIdDetector(3), x) == []


def test_rx_validates():
    det = CallerIdDetector(2, dtmf=False)
    with pytest.raises(AudioArrayError, match=r"CallerIdDetector.rx: expected int16\[2, n\]"):
        det.rx(np.zeros((3, 160), np.int16))
    with pytest.raises(AudioArrayError, match=r"CallerIdDetector.rx: expected int16\[2, n\]"):
        det.rx(np.zeros((2, 160), np.float32))
    with pytest.raises(ValueError, match="standard"):
        CallerIdDetector(2, standard="v21")
    assert det.rx(np.zeros((2, 0), np.int16)) == []


# ------------------------------------------------------------------ kernel vs reference


def reference_frontend(x: np.ndarray, det: CallerIdDetector) -> tuple[np.ndarray, np.ndarray]:
    """The receiver front end in plain numpy/scipy (float64)."""
    from scipy.signal import lfilter, sosfilt
    n = np.arange(x.shape[1])
    z = (x / 32768.0) * np.exp(-2j * np.pi * 1700.0 * n / 8000.0)
    z = sosfilt(det._sos.astype(np.float64), z, axis=1)
    zp = np.concatenate([np.zeros((x.shape[0], 1)), z[:, :-1]], axis=1)
    p = np.abs(z) ** 2
    d = np.imag(z * np.conj(zp)) / (p + 1e-30)
    box = _fsk.BOX_LEN
    d = lfilter(np.ones(box) / box, [1.0], d, axis=1)
    a = det.POWER_ALPHA
    ps = lfilter([a], [1.0, -(1.0 - a)], p, axis=1)
    return d, ps


def reference_uart(d: np.ndarray, p: np.ndarray, det: CallerIdDetector) -> list[tuple]:
    """The UART and message framing, sample by sample in Python, over one channel."""
    spb = 8000.0 / 1200.0
    out = []
    cd = in_char = in_msg = False
    idle = bit = shreg = 0
    bt = 0.0
    buf: list[int] = []
    mstart = cstart = 0
    prev = 0.0
    for i in range(len(d)):
        last, prev = prev, float(d[i])
        di = prev
        if not cd:
            if p[i] > det._cd_on:
                cd, in_char, idle, in_msg, buf, cstart = True, False, 0, False, [], i
            continue
        if p[i] < det._cd_off:
            cd = False
            if in_msg:
                out.append((_fsk.EVENT_CARRIER_LOST, mstart, i, bytes(buf)))
                in_msg, buf = False, []
            continue
        b = 1 if di < 0 else 0
        if not in_char:
            if b == 0:
                in_char, bit, shreg = True, 0, 0
                bt = spb / 2 - (di / (di - last) if last < 0 and di != last else 0.5)
            else:
                idle += 1
                if in_msg and idle > det._max_gap:
                    out.append((_fsk.EVENT_GAP, mstart, i, bytes(buf)))
                    in_msg, buf, cstart = False, [], i
            continue
        bt -= 1.0
        if bt >= 0.5:
            continue
        bt += spb
        if bit == 0:
            if b != 0:
                in_char = False
                continue
        elif bit <= 8:
            shreg |= b << (bit - 1)
        else:
            in_char = False
            if b == 1:
                if in_msg:
                    buf.append(shreg)
                elif idle >= det._min_idle:
                    in_msg, mstart, buf = True, cstart, [shreg]
                if in_msg and len(buf) >= 2 and len(buf) == buf[1] + 3:
                    out.append((_fsk.EVENT_MESSAGE, mstart, i, bytes(buf)))
                    in_msg, buf, cstart = False, [], i
            elif in_msg:
                out.append((_fsk.EVENT_FRAMING, mstart, i, bytes(buf)))
                in_msg, buf, cstart = False, [], i
            idle = 0
            continue
        bit += 1
    return out


def kernel_frontend(x: np.ndarray, det: CallerIdDetector) -> tuple[np.ndarray, np.ndarray]:
    nf, nd, ni = _fsk.STATE_SHAPE
    fs = np.zeros((x.shape[0], nf), np.float32)
    ist = np.zeros((x.shape[0], ni), np.int64)
    d = np.zeros(x.shape, np.float32)
    p = np.zeros(x.shape, np.float32)
    _fsk.fsk_frontend(np.ascontiguousarray(x), 0, fs, ist, det._sos, det._lo_c, det._lo_s,
                      det.POWER_ALPHA, d, p)
    return d, p


def kernel_events(x: np.ndarray, det: CallerIdDetector) -> list[list[tuple]]:
    nf, nd, ni = _fsk.STATE_SHAPE
    nchan, n = x.shape
    cap = nchan * (n // 100 + 2)
    ev = np.zeros((cap, 5), np.int64)
    evb = np.zeros((cap, _fsk.MESSAGE_MAX), np.uint8)
    evm = np.zeros(cap)
    k = _fsk.fsk_rx(np.ascontiguousarray(x), 0, np.zeros((nchan, nf), np.float32),
                    np.zeros((nchan, nd)), np.zeros((nchan, ni), np.int64),
                    np.zeros((nchan, _fsk.MESSAGE_MAX), np.uint8), np.ones(nchan, np.uint8),
                    det._sos, det._lo_c, det._lo_s, det.POWER_ALPHA, det._cd_on, det._cd_off,
                    det._min_idle, det._max_gap, ev, evb, evm)
    per = [[] for _ in range(nchan)]
    for row, data in zip(ev[:k], evb[:k], strict=False):
        per[row[0]].append((int(row[1]), int(row[2]), int(row[3]), bytes(data[:row[4]])))
    return per


def test_kernel_lanes_are_independent():
    """The kernel runs the armed channels side by side (vectorised front end, chunks of
    samples): each channel's events and state must be exactly what it gives alone,
    whatever else is armed and whatever the block size."""
    rng = np.random.default_rng(12)
    sig = [fsk_encode(CID_MDMF), fsk_encode(CID_SDMF, "v23"), fsk_encode(CID_MDMF)[:3000],
           fsk_encode(CID_MDMF, "v23", level_dbm0=-40.0), fsk_encode(CID_SDMF)] * 7
    x = batch(sig, None, 12.0, rng)
    nchan = x.shape[0]
    armed = np.array([ch % 5 != 2 and ch % 7 != 3 for ch in range(nchan)])
    alone = []
    for ch in range(nchan):
        det = CallerIdDetector(1, dtmf=False)
        evs = run(det, x[ch:ch + 1], block=160) if armed[ch] else []
        alone.append(([(e.callerid, e.start, e.end, e.standard, e.error) for e in evs],
                      det._fs[0].copy() if armed[ch] else np.zeros_like(det._fs[0])))
    for block in (1, 63, 64, 65, 160, x.shape[1]):
        det = CallerIdDetector(nchan, dtmf=False, armed=False)
        for ch in np.flatnonzero(armed):
            det.arm(int(ch))
        evs = run(det, x, block=block)
        for ch in range(nchan):
            got = [(e.callerid, e.start, e.end, e.standard, e.error) for e in evs if e.chan == ch]
            assert got == alone[ch][0], f"channel {ch}, block {block}"
            assert np.array_equal(det._fs[ch], alone[ch][1]), f"channel {ch}, block {block}"
    assert sum(len(a[0]) for a in alone) >= 20


def test_kernel_frontend_matches_numpy_reference():
    rng = np.random.default_rng(9)
    x = batch([fsk_encode(CID_MDMF, "bell202"), fsk_encode(CID_SDMF, "v23"),
               fsk_encode(CID_MDMF, "v23", level_dbm0=-40.0)], None, 15.0, rng)
    det = CallerIdDetector(3, dtmf=False)
    d_ref, p_ref = reference_frontend(x, det)
    d, p = kernel_frontend(x, det)
    np.testing.assert_allclose(p, p_ref, rtol=2e-3, atol=1e-9)
    live = p_ref > det._cd_off  # where the receiver looks at d at all
    assert live.sum() > x.shape[1]
    np.testing.assert_allclose(d[live], d_ref[live], atol=2e-3)


def test_kernel_uart_matches_python_reference():
    """Same front-end values in, same events out (kinds, positions, bytes),
    including garbled and cut messages and noise."""
    rng = np.random.default_rng(10)
    bad = bytearray(encode_message(CID_MDMF))
    bad[5] ^= 0x10
    cut = fsk_encode(CID_SDMF)
    sig = [fsk_encode(CID_MDMF), fsk_encode_bytes(bytes(bad), "v23"), cut[:len(cut) - 300],
           np.concatenate([fsk_encode(CID_SDMF, "v23"), np.zeros(300, np.int16), fsk_encode(CID_MDMF)]),
           fsk_encode(CID_MDMF, "v23")]
    x = batch(sig, -35.0, 9.0, rng)
    det = CallerIdDetector(len(sig), dtmf=False)
    d, p = kernel_frontend(x, det)
    got = kernel_events(x, det)
    for ch in range(len(sig)):
        assert got[ch] == reference_uart(d[ch], p[ch], det), f"channel {ch}"
    assert any(got[ch] for ch in range(len(sig)))


# ------------------------------------------------------------------ figures


def sweep(trials: int = 40) -> None:  # pragma: no cover - prints the docs' figures
    rng = np.random.default_rng(11)
    print(f"trials per point: {trials} (half spandsp adsi_tx, half ours with +/-20 Hz offset)")
    for standard in ("bell202", "v23"):
        for level in (-50.0, -48.0, -47.0, -46.0, -45.0, -40.0, -30.0, -13.0, -5.0, 0.0):
            x = batch(sources(CID_MDMF, standard, trials, rng, 20.0), level, 30.0, rng)
            print(f"{standard:8s} level {level:6.1f} dBm0 SNR 30 dB: {decoded_ok(x, CID_MDMF, standard)}/{trials}")
        for level in (-40.0, -13.0):
            for snr in (20.0, 15.0, 12.0, 11.0, 10.0, 9.0, 8.0, 7.0, 6.0):
                x = batch(sources(CID_MDMF, standard, trials, rng, 20.0), level, snr, rng)
                peer = 0
                for ch in range(trials):  # spandsp's receiver on the same signals
                    rx = spandsp_adsi.AdsiRx(SPANDSP_STD[standard])
                    peer += rx.rx(x[ch]) == [encode_message(CID_MDMF)[:-1]]
                print(f"{standard:8s} level {level:6.1f} dBm0 SNR {snr:4.1f} dB: "
                      f"{decoded_ok(x, CID_MDMF, standard)}/{trials}  spandsp adsi_rx {peer}/{trials}")


if __name__ == "__main__":  # pragma: no cover
    sweep(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
