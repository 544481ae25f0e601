"""The far end's recorder: exact audio across chunk boundaries, silence tracking."""
from __future__ import annotations

import numpy as np

from hwsim.capture import CHUNK, Capture


def test_capture_is_exact_across_chunks_and_grows_the_store():
    cap = Capture(nchan=4, block=320, chunks=1)
    rng = np.random.default_rng(0)
    cap.start(1, tick=0)
    cap.start(3, tick=0)
    sent = {1: [], 3: []}
    nticks = (CHUNK // 320) * 2 + 7           # more than two chunks per call
    for t in range(1, nticks + 1):
        heard = rng.integers(-3000, 3000, (4, 320)).astype(np.int16)
        for ch in sent:
            sent[ch].append(heard[ch].copy())
        cap.step(heard, t)
    for ch in (1, 3):
        audio = cap.stop(ch)
        assert audio.shape == (nticks * 320,)
        assert np.array_equal(audio, np.concatenate(sent[ch]))
    assert not cap.listening(1) and cap.stop(1).size == 0


def test_last_sound_tracks_host_audio_above_minus_45_dbm0():
    cap = Capture(nchan=2, block=160)
    cap.start(0, tick=0)
    quiet = np.zeros((2, 160), np.int16)
    loud = quiet.copy()
    loud[0] = 200                               # about -38 dBm0: sound
    faint = quiet.copy()
    faint[0] = 50                                # about -50 dBm0: silence
    cap.step(loud, 5)
    cap.step(faint, 6)
    cap.step(quiet, 7)
    assert cap.last_sound[0] == 5
    assert cap.last_sound[1] == -1              # channel 1 is not listened to
