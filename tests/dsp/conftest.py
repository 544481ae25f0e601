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


# ---------------------------------------------------------------- thin-line talk-off set
#
# Real recorded speech from Debian's packages (asterisk-core-sounds-en-wav:
# a woman, US English; asterisk-core-sounds-it-wav: a man, Italian; 8 kHz
# prompts, about 49 minutes) and real hold music (asterisk-moh-opsound-wav,
# 18 minutes), transformed into what reaches a receiver over a thin line:
# everything passes a band-pass from a random 700-900 Hz up to 3,400 Hz, so
# the low harmonics that usually dominate speech are gone and two upper
# harmonics can look like a DTMF pair. Five categories (see thin_line_corpus).

THIN_VOICE_DIRS = ("/usr/share/asterisk/sounds/en_US_f_Allison",
                   "/usr/share/asterisk/sounds/it_IT_m_Carlo")
THIN_MOH_DIR = "/usr/share/asterisk/moh"
THIN_PACKAGES = "asterisk-core-sounds-en-wav asterisk-core-sounds-it-wav asterisk-moh-opsound-wav"
# prompts that are tones or animal noises, not speech
THIN_NOT_SPEECH = {"beep.wav", "beeperr.wav", "ascending-2tone.wav", "descending-2tone.wav",
                   "tt-monkeys.wav"}


def _wav_files(top: str) -> list[str]:
    found = []
    for dirpath, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "silence")
        found += [os.path.join(dirpath, f) for f in sorted(files)
                  if f.endswith(".wav") and f not in THIN_NOT_SPEECH]
    return found


def _read_mono(path: str) -> np.ndarray:
    from dsp.audiofile import read_audio
    return read_audio(path)[0].astype(np.float64)


def thin_line(x: np.ndarray, low_hz: float) -> np.ndarray:
    """A thin line: band-pass low_hz..3,400 Hz (4th-order Butterworth edges)."""
    from scipy.signal import butter, sosfilt
    sos = np.vstack([butter(4, low_hz, "highpass", fs=8000, output="sos"),
                     butter(4, 3400.0, "lowpass", fs=8000, output="sos")])
    return sosfilt(sos, x)


def _at_level(x: np.ndarray, dbm0: float) -> np.ndarray:
    from dsp.units import dbm0_to_rms
    rms = np.sqrt(np.mean(x * x)) or 1.0
    return x * (dbm0_to_rms(dbm0) / rms)


def _pitch_shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Shift every frequency by 2^(semitones/12) by resampling (tape speed: shorter when higher)."""
    from fractions import Fraction

    from scipy.signal import resample_poly
    ratio = Fraction(2.0 ** (-semitones / 12.0)).limit_denominator(60)
    return resample_poly(x, ratio.numerator, ratio.denominator)


def _join(parts: list[np.ndarray], rng, gap_s=(0.1, 0.6)) -> np.ndarray:
    out = []
    for p in parts:
        out.append(p)
        out.append(np.zeros(int(rng.uniform(*gap_s) * 8000)))
    return np.concatenate(out)


def _thin_utterances(utts: list[np.ndarray], rng) -> np.ndarray:
    """Each utterance through its own thin line (700-900 Hz) at a speech level (-26..-12 dBm0)."""
    return _join([_at_level(thin_line(u, rng.uniform(700.0, 900.0)), rng.uniform(-26.0, -12.0))
                  for u in utts], rng)


def make_whistles(minutes: float, seed: int = 11) -> np.ndarray:
    """float64[n]: whistled phrases, one or two whistlers at a time.

    A whistle is nearly a sine: its pitch (500-2,500 Hz) glides between
    notes (0.05-0.6 s, smooth in log frequency) and holds notes with a
    vibrato of 0.5-2 % at 4-7 Hz; a weak second and third harmonic
    (-20..-35 dB) and breath noise (-25..-35 dB); phrases of 1-5 s with
    attack and release. A single whistle cannot look like a digit (its
    harmonics are far beyond any twist limit), so 30 % of the phrases have
    two whistlers. None holds a note perfectly steady: two steady whistles
    at a row and a column frequency are a DTMF signal for any receiver.
    """
    rng = np.random.default_rng(seed)
    n_total = int(minutes * 60 * 8000)
    out = np.zeros(n_total + 8 * 8000)
    t = 0
    while t < n_total:
        phrase = np.zeros(int(rng.uniform(1.0, 5.0) * 8000))
        for _ in range(1 if rng.random() < 0.7 else 2):
            f, pos, track = rng.uniform(500.0, 2500.0), 0, []
            while pos < len(phrase):
                dur = int(rng.uniform(0.05, 0.6) * 8000)
                k = np.arange(dur) / dur
                if rng.random() < 0.6:  # glide to a new note
                    g = float(np.clip(f * 2.0 ** rng.uniform(-1.2, 1.2), 500.0, 2500.0))
                    seg = f * (g / f) ** (0.5 - 0.5 * np.cos(np.pi * k))
                    f = g
                else:  # a held note, never perfectly steady: vibrato
                    depth, rate = rng.uniform(0.005, 0.02), rng.uniform(4.0, 7.0)
                    seg = f * (1.0 + depth * np.sin(2 * np.pi * rate * np.arange(dur) / 8000))
                track.append(seg)
                pos += dur
            inst = np.concatenate(track)[: len(phrase)]
            ph = np.cumsum(2 * np.pi * inst / 8000)
            voice = np.sin(ph)
            for h in (2, 3):
                ok = inst * h < 3800
                voice += ok * 10 ** (rng.uniform(-35.0, -20.0) / 20) * np.sin(h * ph)
            breath = rng.normal(0.0, 10 ** (rng.uniform(-35.0, -25.0) / 20), len(phrase))
            phrase += voice + breath
        env = np.minimum(1.0, np.minimum(np.arange(len(phrase)), np.arange(len(phrase))[::-1])
                         / (0.03 * 8000))
        out[t:t + len(phrase)] += _at_level(phrase * env, rng.uniform(-24.0, -10.0))
        t += len(phrase) + int(rng.uniform(0.2, 1.5) * 8000)
    return out[:n_total]


def make_thin_line_set(seed: int = 5) -> dict[str, np.ndarray]:
    """The five categories, float64 at 8 kHz (see thin_line_corpus)."""
    rng = np.random.default_rng(seed)
    voices = [[_read_mono(p) for p in _wav_files(d)] for d in THIN_VOICE_DIRS]
    utts = [u for v in voices for u in v]
    out = {}
    out["thin speech"] = _thin_utterances(utts, rng)
    out["pitch-shifted"] = _thin_utterances(
        [_pitch_shift(u, rng.choice([-1, 1]) * rng.uniform(2.0, 7.0)) for u in utts], rng)
    # two talkers: a woman's and a man's utterance overlapping, 0-6 dB apart, each shifted a little
    pairs = []
    for a, b in zip(rng.permutation(len(voices[0])), rng.permutation(len(voices[1])), strict=False):
        ua = _pitch_shift(voices[0][a], rng.uniform(-2.0, 2.0))
        ub = _pitch_shift(voices[1][b], rng.uniform(-2.0, 2.0))
        lag = int(rng.uniform(0.0, 0.5) * len(ua))
        mix = np.zeros(max(len(ua), lag + len(ub)))
        mix[: len(ua)] += _at_level(ua, 0.0)
        mix[lag:lag + len(ub)] += _at_level(ub, rng.uniform(-6.0, 0.0))
        pairs.append(mix)
    out["two talkers"] = _thin_utterances(pairs, rng)
    # speech over hold music: the music runs on, utterances 0-12 dB above it with gaps
    music = np.concatenate([_read_mono(p) for p in _wav_files(THIN_MOH_DIR)])
    over = np.zeros(len(music))
    pos = 0
    for i in rng.permutation(len(utts)):
        u = utts[i]
        if pos + len(u) > len(over):
            break
        over[pos:pos + len(u)] = _at_level(u, 0.0) * 10 ** (rng.uniform(0.0, 12.0) / 20)
        pos += len(u) + int(rng.uniform(0.3, 3.0) * 8000)
    seg, parts = int(20 * 8000), []
    for s in range(0, len(music), seg):  # a new line and level every 20 s
        m = _at_level(music[s:s + seg], 0.0) + over[s:s + seg]
        parts.append(_at_level(thin_line(m, rng.uniform(700.0, 900.0)), rng.uniform(-24.0, -12.0)))
    out["speech over music"] = np.concatenate(parts)
    out["whistled glides"] = np.concatenate(
        [thin_line(w, rng.uniform(700.0, 900.0)) for w in np.array_split(make_whistles(12.0), 36)])
    return out


@pytest.fixture(scope="session")
def thin_line_corpus(corpus_cache) -> dict[str, np.ndarray]:
    """{category: int16[n]}: the thin-line talk-off set, built once and cached.

    Categories: "thin speech" (every prompt of both voices), "pitch-shifted"
    (the same, each shifted 2-7 semitones up or down), "two talkers" (a
    woman and a man at once), "speech over music" (hold music with speech
    over it), "whistled glides" (synthesised, see make_whistles); all through
    a thin line (band-pass from 700-900 Hz to 3,400 Hz).
    """
    import hashlib
    import inspect
    if not all(os.path.isdir(d) for d in (*THIN_VOICE_DIRS, THIN_MOH_DIR)):
        pytest.fail(f"the thin-line talk-off set needs real speech: apt-get install {THIN_PACKAGES}")
    names = [p for d in (*THIN_VOICE_DIRS, THIN_MOH_DIR) for p in _wav_files(d)]
    sizes = [os.path.getsize(p) for p in names]
    recipe = repr((names, sizes, [inspect.getsource(f) for f in (
        make_thin_line_set, make_whistles, thin_line, _thin_utterances, _pitch_shift, _at_level, _join,
        _read_mono, _wav_files)])).encode()
    key = hashlib.sha256(recipe).hexdigest()[:16]
    path = os.path.join(corpus_cache, f"thinline-{key}.npz")
    if not os.path.exists(path):
        data = {k: np.clip(np.round(v), -32768, 32767).astype(np.int16)
                for k, v in make_thin_line_set().items()}
        np.savez(path + ".tmp.npz", **{k.replace(" ", "_"): v for k, v in data.items()})
        os.replace(path + ".tmp.npz", path)
    with np.load(path) as z:
        return {k.replace("_", " "): z[k] for k in z.files}
