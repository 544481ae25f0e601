"""Fixtures for the DSP tests: the spandsp peer and a cache for generated corpora.

spandsp is our reference peer (DESIGN.md); a missing library is an error
with an install hint, not a silent skip, because the comparisons are the
point of these tests.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # `import spandsp` (the harness next to this file)
    sys.path.insert(0, HERE)

import spandsp as _spandsp  # noqa: E402


@pytest.fixture(scope="session")
def spandsp():
    """The cffi harness over libspandsp (tests/dsp/spandsp.py)."""
    _spandsp.require()
    return _spandsp


@pytest.fixture(scope="session")
def corpus_cache(request) -> str:
    """A directory that survives between runs for generated audio (never committed).

    Keyed by content by the users (file names carry a hash of the recipe).
    """
    path = request.config.cache.mkdir("voiceboard-dsp-corpus")
    return str(path)


# ---------------------------------------------------------------- talk-off corpus
#
# Speech (espeak-ng, several languages, voices, speeds and pitches) and
# synthesised music (random notes with harmonics, chords, melodies: notes
# sit near DTMF frequencies, which is the point), 8 kHz int16, with no DTMF
# in it. Built once and cached under .pytest_cache, keyed by the recipe.

TALKOFF_TEXTS = {
    "en": "Thank you for calling. Please enter your account number followed by the hash key. "
          "Your call is important to us. One two three four five six seven eight nine zero. "
          "The quick brown fox jumps over the lazy dog while the orchestra tunes its violins.",
    "en-us": "Press one for sales, two for support, or stay on the line for an operator. "
             "Hello, hello, can you hear me? I said the meeting moves to Thursday afternoon.",
    "cmn": "您好，欢迎致电客户服务中心。请输入您的账号，以井号键结束。"
           "一二三四五六七八九零。今天天气很好，我们下午去公园散步，然后一起吃晚饭。",
    "yue": "你好，多謝你嘅來電。請輸入你嘅戶口號碼，然後按井字鍵。一二三四五六七八九零。",
    "de": "Guten Tag, bitte geben Sie Ihre Kundennummer ein und bestätigen Sie mit der Rautetaste. "
          "Eins zwei drei vier fünf sechs sieben acht neun null. Das Wetter ist heute schön.",
    "fr": "Bonjour, veuillez saisir votre numéro de compte suivi de la touche dièse. "
          "Un deux trois quatre cinq six sept huit neuf zéro. Nous vous remercions de votre patience.",
    "es": "Buenos días, por favor introduzca su número de cuenta seguido de la tecla almohadilla. "
          "Uno dos tres cuatro cinco seis siete ocho nueve cero. Gracias por su paciencia.",
    "it": "Buongiorno, inserisca il numero del conto seguito dal tasto cancelletto. "
          "Uno due tre quattro cinque sei sette otto nove zero. Grazie per l'attesa.",
    "ru": "Здравствуйте, введите номер счёта и нажмите решётку. "
          "Один два три четыре пять шесть семь восемь девять ноль. Спасибо за ожидание.",
    "ja": "お電話ありがとうございます。口座番号を入力して、シャープを押してください。いち に さん し ご。",
}
TALKOFF_VOICE_VARIANTS = ["", "+m3", "+f2", "+m7", "+f4"]
TALKOFF_SPEEDS = [130, 175, 220]
TALKOFF_PITCHES = [25, 50, 80]


def _espeak(voice: str, speed: int, pitch: int, text: str, path: str) -> None:
    import subprocess
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", path, text],
                   check=True, capture_output=True, timeout=60)


def make_speech(cache: str, minutes: float) -> np.ndarray:
    """int16[n] of espeak-ng speech, each utterance at a random speech level."""
    from dsp.audiofile import read_audio
    from dsp.units import dbm0_to_rms
    rng = np.random.default_rng(2024)
    parts, total = [], 0
    combos = [(lang, var, s, p) for lang in TALKOFF_TEXTS for var in TALKOFF_VOICE_VARIANTS
              for s in TALKOFF_SPEEDS for p in TALKOFF_PITCHES]
    rng.shuffle(combos)
    for lang, var, speed, pitch in combos:
        if total >= minutes * 60 * 8000:
            break
        wav = os.path.join(cache, f"tts-{lang}{var}-{speed}-{pitch}.wav")
        if not os.path.exists(wav):
            _espeak(lang + var, speed, pitch, TALKOFF_TEXTS[lang], wav + ".tmp.wav")
            os.replace(wav + ".tmp.wav", wav)
        x = read_audio(wav)[0].astype(np.float64)
        rms = np.sqrt(np.mean(x * x)) or 1.0
        x *= dbm0_to_rms(rng.uniform(-26.0, -12.0)) / rms
        parts.append(x)
        parts.append(np.zeros(int(rng.uniform(0.1, 0.6) * 8000)))
        total += len(x)
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)


def make_music(minutes: float, seed: int = 7) -> np.ndarray:
    """int16[n]: random notes (equal temperament, A4 = 440 Hz) in phrases.

    Voices have 1-6 harmonics with random roll-off (from flute-like to
    reedy), optional vibrato, attack/decay envelopes, 1-4 notes at a time;
    some phrases are pure sines. Notes between C4 and C7 cover every DTMF
    frequency's neighbourhood.
    """
    from dsp.units import dbm0_to_rms
    rng = np.random.default_rng(seed)
    n_total = int(minutes * 60 * 8000)
    out = np.zeros(n_total + 8000)
    t = 0
    while t < n_total:
        phrase_len = int(rng.uniform(2.0, 8.0) * 8000)
        nharm = int(rng.integers(1, 7))
        rolloff = rng.uniform(0.3, 0.9)
        vibrato = rng.uniform(0, 0.006) if rng.random() < 0.5 else 0.0
        poly = int(rng.integers(1, 5))
        level = dbm0_to_rms(rng.uniform(-24.0, -10.0))
        tempo = rng.uniform(0.06, 0.6)
        end = min(t + phrase_len, n_total)
        pos = t
        while pos < end:
            dur = int(tempo * rng.choice([0.5, 1, 1, 2, 3]) * 8000)
            k = np.arange(dur)
            env = np.minimum(1.0, k / (0.005 * 8000 + 1)) * np.exp(-k / (rng.uniform(0.1, 2.0) * 8000))
            note_sum = np.zeros(dur)
            for _ in range(poly):
                midi = rng.integers(60, 97)  # C4 .. C7
                f0 = 440.0 * 2 ** ((midi - 69) / 12)
                inst = 2 * np.pi * f0 * (1 + vibrato * np.sin(2 * np.pi * 5.5 * k / 8000)) / 8000
                ph = np.cumsum(inst)
                for h in range(1, nharm + 1):
                    if f0 * h < 3800:
                        note_sum += rolloff ** (h - 1) * np.sin(h * ph + rng.uniform(0, 6.3))
            seg = note_sum * env
            out[pos:pos + dur] += seg[: len(out) - pos]
            pos += int(dur * rng.uniform(0.5, 1.0))
        blk = out[t:end]
        rms = np.sqrt(np.mean(blk * blk)) or 1.0
        out[t:end] = blk * level / rms
        t = end
    return np.clip(np.round(out[:n_total]), -32768, 32767).astype(np.int16)


def _repo_recordings() -> list[str]:
    """Recordings that ship with the repo (prompts, music on hold), if any."""
    root = os.path.dirname(os.path.dirname(HERE))
    found = []
    for sub in ("prompts",):
        for dirpath, _, files in os.walk(os.path.join(root, sub)):
            found += [os.path.join(dirpath, f) for f in files if f.endswith((".wav", ".flac"))]
    return sorted(found)


@pytest.fixture(scope="session")
def talkoff_corpus(corpus_cache) -> dict[str, np.ndarray]:
    """{'speech': int16[n], 'music': int16[n], 'recordings': int16[n]}; >= 30 min in all."""
    import hashlib
    import shutil
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed for the talk-off corpus (apt-get install espeak-ng)")
    recipe = repr((TALKOFF_TEXTS, TALKOFF_VOICE_VARIANTS, TALKOFF_SPEEDS, TALKOFF_PITCHES, 2)).encode()
    key = hashlib.sha256(recipe).hexdigest()[:16]
    path = os.path.join(corpus_cache, f"talkoff-{key}.npz")
    if not os.path.exists(path):
        speech = make_speech(corpus_cache, minutes=22.0)
        music = make_music(minutes=12.0)
        np.savez(path + ".tmp.npz", speech=speech, music=music)
        os.replace(path + ".tmp.npz", path)
    data = np.load(path)
    from dsp.audiofile import read_audio
    recs = [read_audio(p).reshape(-1) for p in _repo_recordings()]
    recordings = np.concatenate(recs) if recs else np.zeros(0, np.int16)
    return {"speech": data["speech"], "music": data["music"], "recordings": recordings}
