"""dsp.checks.check_audio: the one check of audio arrays, and that every entry point uses it."""
from __future__ import annotations

import numpy as np
import pytest

from dsp import g711
from dsp.callerid import CallerIdDetector
from dsp.checks import AudioArrayError, check_audio
from dsp.dtmf import DtmfDetector, DtmfGenerator
from dsp.level import LevelMeter, VoiceActivityDetector
from dsp.mix import AudioBank, Player
from dsp.tones import CallProgressDetector, ToneGenerator, TonePlan


def test_good_input_comes_back_as_an_array():
    x = np.zeros((2, 160), np.int16)
    assert check_audio(x, "f", shape=(2, None)) is x
    lst = check_audio([[1, 2, 3]], "f", shape=(1, None), dtype=np.int64)
    assert isinstance(lst, np.ndarray) and lst.shape == (1, 3)
    strided = np.zeros((2, 20), np.int16)[:, ::2]
    assert check_audio(strided, "f", shape=(2, None)) is strided   # inputs may be views
    assert check_audio(np.zeros((3, 4, 5), np.uint8), "f", shape=None, dtype=np.uint8).ndim == 3
    assert check_audio(np.zeros(7, np.int16), "f", shape=(None,)).shape == (7,)


def test_errors_say_what_and_where():
    with pytest.raises(AudioArrayError, match=r"^Det.rx: expected int16\[2, n\], got float64\[2, 160\]$"):
        check_audio(np.zeros((2, 160)), "Det.rx", shape=(2, None))
    with pytest.raises(AudioArrayError,
                       match=r"^Det.rx: expected int16\[2, n\], got int16\[3, 160\] \(3 channels, expected 2\)$"):
        check_audio(np.zeros((3, 160), np.int16), "Det.rx", shape=(2, None))
    with pytest.raises(AudioArrayError, match=r"^Det.rx: expected int16\[2, n\], got int16\[160\]$"):
        check_audio(np.zeros(160, np.int16), "Det.rx", shape=(2, None))
    with pytest.raises(AudioArrayError, match=r"^Bank.add: expected int16\[n\], got int16\[1, 4\]$"):
        check_audio(np.zeros((1, 4), np.int16), "Bank.add", shape=(None,))
    with pytest.raises(AudioArrayError,
                       match=r"^enc out: expected uint8\[4\], got uint8\[5\] \(axis 0 has 5, expected 4\)$"):
        check_audio(np.zeros(5, np.uint8), "enc out", shape=(4,), dtype=np.uint8, out=True)
    with pytest.raises(AudioArrayError, match=r"^enc: expected int16 \(any shape\), got float32\[\]$"):
        check_audio(np.float32(1.0), "enc", shape=None)


def test_output_buffers():
    with pytest.raises(AudioArrayError, match=r"^Gen.tx: expected a numpy array int16\[2, n\], got list$"):
        check_audio([[0, 0], [0, 0]], "Gen.tx", shape=(2, None), out=True)
    ro = np.zeros((2, 8), np.int16)
    ro.flags.writeable = False
    with pytest.raises(AudioArrayError, match=r"^Gen.tx: the output array is read-only$"):
        check_audio(ro, "Gen.tx", shape=(2, None), out=True)
    view = np.zeros((2, 16), np.int16)[:, ::2]
    assert check_audio(view, "Gen.tx", shape=(2, None), out=True) is view
    with pytest.raises(AudioArrayError,
                       match=r"^Gen.tx: expected a C-contiguous array int16\[2, n\], got a strided view$"):
        check_audio(view, "Gen.tx", shape=(2, None), out=True, contiguous=True)


def test_the_error_is_a_value_error():
    assert issubclass(AudioArrayError, ValueError)
    assert not issubclass(AudioArrayError, TypeError)


PLAN = TonePlan.load("cn")
ENTRY_POINTS = [
    ("DtmfDetector.rx", lambda a: DtmfDetector(2).rx(a)),
    ("DtmfGenerator.tx", lambda a: DtmfGenerator(2).tx(a)),
    ("LevelMeter.rx", lambda a: LevelMeter(2).rx(a)),
    ("VoiceActivityDetector.rx", lambda a: VoiceActivityDetector(2).rx(a)),
    ("CallProgressDetector.rx", lambda a: CallProgressDetector(2, PLAN).rx(a)),
    ("ToneGenerator.tx", lambda a: ToneGenerator(2, PLAN).tx(a)),
    ("CallerIdDetector.rx", lambda a: CallerIdDetector(2, dtmf=False).rx(a)),
    ("Player.tx", lambda a: Player(2, AudioBank(16)).tx(a)),
]


@pytest.mark.parametrize("where,call", ENTRY_POINTS, ids=[w for w, _ in ENTRY_POINTS])
def test_every_block_entry_point_uses_the_check(where, call):
    with pytest.raises(AudioArrayError, match=rf"^{where}: expected int16\[2, n\], got float32\[2, 160\]$"):
        call(np.zeros((2, 160), np.float32))
    with pytest.raises(AudioArrayError, match=rf"^{where}: .*\(3 channels, expected 2\)$"):
        call(np.zeros((3, 160), np.int16))
    call(np.zeros((2, 160), np.int16))   # and a good block passes


def test_bank_and_codecs_use_the_check():
    with pytest.raises(AudioArrayError, match=r"^AudioBank.add: expected int16\[n\]"):
        AudioBank(16).add(np.zeros((2, 3), np.int16))
    for fn, dtype in ((g711.alaw_encode, np.int16), (g711.ulaw_encode, np.int16),
                      (g711.alaw_decode, np.uint8), (g711.ulaw_decode, np.uint8)):
        name = fn.__name__
        with pytest.raises(AudioArrayError, match=rf"^{name}: expected {np.dtype(dtype).name} \(any shape\)"):
            fn(np.zeros(4, np.float32))
        with pytest.raises(AudioArrayError, match=rf"^{name} out: the output array is read-only$"):
            ro = np.zeros(4, np.uint8 if dtype == np.int16 else np.int16)
            ro.flags.writeable = False
            fn(np.zeros(4, dtype), out=ro)
