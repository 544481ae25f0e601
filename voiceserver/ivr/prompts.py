"""Prompt audio for the voice server: loaded once, checked at load time.

A prompt directory holds one folder per language and ``moh/`` for music on
hold::

    prompts/zh/welcome.wav   prompts/en/welcome.wav   prompts/moh/default.wav

A :class:`PromptLibrary` reads every prompt of every language when it is
built (any format and rate soundfile reads: WAV, FLAC, OGG, ...), converts
it to what the media engine plays (8 kHz mono int16) and normalises its
active speech level, so that the hot path only copies arrays and a broken
or missing file is found when the server starts or reloads its config, not
in the middle of a call. :meth:`PromptLibrary.check` is what the config
validator calls with every prompt name a flow refers to.

Several roots may be layered: a site puts its studio recordings in its own
directory with the same names and lists it before the default set; a file
there replaces the default one, and anything it lacks comes from the
defaults.

Levels are measured as the active speech level of ITU-T P.56 (method B),
so a prompt with long pauses is not turned up more than a dense one.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsp.audiofile import RATE, AudioFileError, read_audio
from dsp.units import DBM0_REF_RMS, dbm0_to_rms, rms_to_dbm0

__all__ = [
    "PromptError", "Prompt", "PromptSet", "PromptLibrary", "active_level_dbm0",
    "normalise", "audio_extensions", "DEFAULT_LEVEL_DBM0", "DEFAULT_MOH_LEVEL_DBM0",
]

DEFAULT_LEVEL_DBM0 = -16.0
DEFAULT_MOH_LEVEL_DBM0 = -20.0
MOH_DIR = "moh"
# Never let normalisation push a peak above this (int16 units): leaves room
# for the mixer and avoids the harsh sound of clipped speech.
PEAK_LIMIT = 0.97 * 32767.0

# P.56 method B constants.
_P56_TIME_CONSTANT = 0.03   # s, envelope smoothing
_P56_HANGOVER = 0.2         # s
_P56_MARGIN_DB = 15.9


class PromptError(Exception):
    """A prompt that is missing, unreadable or unusable.

    The message names the file (and, from :meth:`PromptLibrary.check`, what
    needed it), one problem per line; ``problems`` holds the lines.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def audio_extensions() -> frozenset[str]:
    """File name extensions (lower case, no dot) of formats soundfile reads."""
    import soundfile as sf
    exts = {k.lower() for k in sf.available_formats()} - {"raw"}
    return frozenset(exts | {"aif", "oga", "opus", "wave"})


def active_level_dbm0(x: np.ndarray, rate: int = RATE) -> float:
    """Active speech level in dBm0 of a mono signal (ITU-T P.56 method B).

    Why P.56 and not plain RMS: a prompt is speech with pauses, and the
    level a listener judges is that of the speech, not of speech plus
    silence. Returns -inf for digital silence.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return -math.inf
    energy = float(np.dot(x, x))
    if energy == 0.0:
        return -math.inf
    from scipy.signal import lfilter

    g = math.exp(-1.0 / (rate * _P56_TIME_CONSTANT))
    p = lfilter([1.0 - g], [1.0, -g], np.abs(x))
    q = lfilter([1.0 - g], [1.0, -g], p)
    hang = int(round(_P56_HANGOVER * rate))
    idx = np.arange(x.size)
    acts_db: list[float] = []
    thr_db: list[float] = []
    for j in range(16):
        c = 2.0 ** j
        last = np.maximum.accumulate(np.where(q >= c, idx, -(hang + 1) - x.size))
        active = int(np.count_nonzero(idx - last <= hang))
        if active == 0:
            break
        acts_db.append(10.0 * math.log10(energy / active))
        thr_db.append(20.0 * math.log10(c))
    ref_db = 20.0 * math.log10(DBM0_REF_RMS)
    delta = [a - c for a, c in zip(acts_db, thr_db, strict=False)]
    for j in range(1, len(delta)):
        if delta[j] <= _P56_MARGIN_DB:
            d0, d1 = delta[j - 1], delta[j]
            frac = 1.0 if d0 == d1 else (d0 - _P56_MARGIN_DB) / (d0 - d1)
            frac = min(max(frac, 0.0), 1.0)
            return acts_db[j - 1] + frac * (acts_db[j] - acts_db[j - 1]) - ref_db
    # No crossing (very short or very flat signal): fall back to long-term RMS.
    return float(rms_to_dbm0(math.sqrt(energy / x.size)))


def normalise(x: np.ndarray, level_dbm0: float, *, measure: str = "active",
              rate: int = RATE) -> tuple[np.ndarray, float]:
    """Scale ``x`` to ``level_dbm0``; returns (int16 audio, gain in dB applied).

    ``measure`` is "active" (P.56, for speech) or "rms" (long-term, for
    music). The gain is reduced if the loudest peak would exceed
    ``PEAK_LIMIT``: a site recording is never clipped by us. Silence is
    returned unchanged.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if measure == "active":
        level = active_level_dbm0(x, rate)
    elif measure == "rms":
        level = float(rms_to_dbm0(math.sqrt(float(np.mean(x * x))))) if x.size else -math.inf
    else:
        raise ValueError(f"measure must be 'active' or 'rms', not {measure!r}")
    if not math.isfinite(level):
        return np.clip(np.round(x), -32768, 32767).astype(np.int16), 0.0
    gain = dbm0_to_rms(level_dbm0) / dbm0_to_rms(level)
    peak = float(np.max(np.abs(x)))
    if peak * gain > PEAK_LIMIT:
        gain = PEAK_LIMIT / peak
    y = np.clip(np.round(x * gain), -32768, 32767).astype(np.int16)
    return y, 20.0 * math.log10(gain)


@dataclass(frozen=True)
class Prompt:
    """One loaded prompt: 8 kHz mono int16 audio (read-only) and its source."""
    name: str
    lang: str
    path: Path
    audio: np.ndarray
    gain_db: float

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.audio.size / RATE


def _load_file(path: Path, name: str, lang: str, level: float | None,
               measure: str) -> Prompt:
    try:
        x = read_audio(os.fspath(path))
    except AudioFileError as exc:
        raise PromptError([str(exc)]) from None
    if x.shape[1] == 0:
        raise PromptError([f"{path}: empty (no audio samples)"])
    mono = x.astype(np.float64).mean(axis=0)
    if level is None:
        audio, gain = np.clip(np.round(mono), -32768, 32767).astype(np.int16), 0.0
    else:
        audio, gain = normalise(mono, level, measure=measure)
    audio.setflags(write=False)
    return Prompt(name=name, lang=lang, path=path, audio=audio, gain_db=gain)


def _scan(directory: Path, exts: frozenset[str]) -> tuple[dict[str, Path], list[str]]:
    """name -> file in one directory; two files for one name is a problem."""
    found: dict[str, Path] = {}
    problems: list[str] = []
    if not directory.is_dir():
        return found, problems
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        stem, dot, ext = entry.name.rpartition(".")
        if not dot or ext.lower() not in exts:
            continue
        if stem in found:
            problems.append(f"{entry}: two files for prompt '{stem}' "
                            f"(also {found[stem].name}); keep one")
            continue
        found[stem] = entry
    return found, problems


class PromptSet:
    """The prompts of one language, name -> :class:`Prompt`, merged over roots.

    Built by :class:`PromptLibrary`; the first root that has a name wins.
    """

    def __init__(self, lang: str, prompts: Mapping[str, Prompt]) -> None:
        self.lang = lang
        self._prompts = dict(prompts)

    def __contains__(self, name: object) -> bool:
        return name in self._prompts

    def __getitem__(self, name: str) -> Prompt:
        return self._prompts[name]

    def __len__(self) -> int:
        return len(self._prompts)

    def names(self) -> list[str]:
        return sorted(self._prompts)


class PromptLibrary:
    """All prompts of a server, loaded and normalised once.

    ``roots``: prompt directories, first wins (default: the packaged set).
    ``languages``: which languages to load (default: every language folder
    found). ``fallback``: a language, or a mapping lang -> lang, tried when
    a name is missing in the asked language (chains are followed).
    ``level_dbm0``: active speech level every prompt is brought to; None
    keeps the files' own levels. Unreadable, empty or ambiguous files are a
    :class:`PromptError` here, listing every bad file.
    """

    def __init__(self, roots: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
                 *, languages: Iterable[str] | None = None,
                 fallback: str | Mapping[str, str] | None = None,
                 level_dbm0: float | None = DEFAULT_LEVEL_DBM0,
                 moh_level_dbm0: float | None = DEFAULT_MOH_LEVEL_DBM0) -> None:
        if roots is None:
            from prompts import PROMPTS_DIR
            roots = [PROMPTS_DIR]
        elif isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        self.roots: tuple[Path, ...] = tuple(Path(r) for r in roots)
        if not self.roots:
            raise PromptError(["no prompt directory given"])
        problems = [f"{r}: prompt directory does not exist" for r in self.roots if not r.is_dir()]
        if problems:
            raise PromptError(problems)
        exts = audio_extensions()

        if languages is None:
            langs: list[str] = []
            for r in self.roots:
                for d in sorted(r.iterdir()):
                    if (d.is_dir() and not d.name.startswith((".", "_")) and d.name != MOH_DIR
                            and d.name not in langs and _scan(d, exts)[0]):
                        langs.append(d.name)
        else:
            langs = list(dict.fromkeys(languages))
            for lang in langs:
                if not any((r / lang).is_dir() for r in self.roots):
                    problems.append(f"{self.roots[0] / lang}: no prompt folder for language "
                                    f"'{lang}' (looked in {', '.join(map(str, self.roots))})")
        self.languages: tuple[str, ...] = tuple(langs)

        if isinstance(fallback, str):
            self._fallback = {lang: fallback for lang in self.languages if lang != fallback}
        else:
            self._fallback = dict(fallback or {})
        for lang, fb in self._fallback.items():
            if fb not in self.languages:
                problems.append(f"fallback language '{fb}' (for '{lang}') has no prompts "
                                f"under {', '.join(map(str, self.roots))}")

        self._sets: dict[str, PromptSet] = {}
        for lang in self.languages:
            chosen, probs = self._merge([r / lang for r in self.roots], exts)
            problems += probs
            loaded: dict[str, Prompt] = {}
            for name, path in chosen.items():
                try:
                    loaded[name] = _load_file(path, name, lang, level_dbm0, "active")
                except PromptError as exc:
                    problems += exc.problems
            self._sets[lang] = PromptSet(lang, loaded)

        chosen, probs = self._merge([r / MOH_DIR for r in self.roots], exts)
        problems += probs
        self._moh: dict[str, Prompt] = {}
        for name, path in chosen.items():
            try:
                self._moh[name] = _load_file(path, name, MOH_DIR, moh_level_dbm0, "rms")
            except PromptError as exc:
                problems += exc.problems
        if problems:
            raise PromptError(problems)

    @staticmethod
    def _merge(dirs: Sequence[Path], exts: frozenset[str]) -> tuple[dict[str, Path], list[str]]:
        chosen: dict[str, Path] = {}
        problems: list[str] = []
        for d in dirs:
            found, probs = _scan(d, exts)
            problems += probs
            for name, path in found.items():
                chosen.setdefault(name, path)
        return chosen, problems

    # -- lookup -------------------------------------------------------------
    def _chain(self, lang: str) -> list[str]:
        chain = [lang]
        while chain[-1] in self._fallback and self._fallback[chain[-1]] not in chain:
            chain.append(self._fallback[chain[-1]])
        return chain

    def find(self, name: str, lang: str, *, fallback: bool = True) -> Prompt | None:
        """The prompt for ``name`` in ``lang`` (or its fallbacks), None if none."""
        for lg in (self._chain(lang) if fallback else [lang]):
            s = self._sets.get(lg)
            if s is not None and name in s:
                return s[name]
        return None

    def prompt(self, name: str, lang: str) -> Prompt:
        """Like :meth:`find`, but a missing prompt is a :class:`PromptError`.

        A flow whose names went through :meth:`check` never gets this error.
        """
        p = self.find(name, lang)
        if p is None:
            raise PromptError([f"{self.expected_path(name, lang)}: missing"])
        return p

    def get(self, name: str, lang: str) -> np.ndarray:
        """8 kHz mono int16 audio of a prompt (read-only, shared: do not copy per call)."""
        return self.prompt(name, lang).audio

    def sequence(self, names: Iterable[str], lang: str, gap_ms: int = 0) -> np.ndarray:
        """Several prompts played back to back (e.g. saynumber output) as one array."""
        gap = np.zeros(int(RATE * gap_ms / 1000), dtype=np.int16)
        parts: list[np.ndarray] = []
        for i, name in enumerate(names):
            if i and gap.size:
                parts.append(gap)
            parts.append(self.get(name, lang))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def names(self, lang: str) -> list[str]:
        """Names present in ``lang`` itself (not counting fallbacks)."""
        s = self._sets.get(lang)
        return s.names() if s is not None else []

    def expected_path(self, name: str, lang: str) -> Path:
        """Where a missing prompt is expected: the first root, WAV."""
        return self.roots[0] / lang / f"{name}.wav"

    def music_on_hold(self, name: str = "default") -> np.ndarray:
        p = self._moh.get(name)
        if p is None:
            raise PromptError([f"{self.roots[0] / MOH_DIR / (name + '.wav')}: missing"])
        return p.audio

    def moh_names(self) -> list[str]:
        return sorted(self._moh)

    # -- validation ---------------------------------------------------------
    def check(self, names: Iterable[str] | Mapping[str, str | Iterable[str]],
              languages: Iterable[str] | None = None, *, fallback: bool = True) -> None:
        """Raise :class:`PromptError` listing every needed prompt that is missing.

        ``names`` is an iterable of prompt names, or a mapping name -> where
        it is needed (a string or several), which the message repeats::

            prompts/zh/welcome.wav: missing (needed by ivr.main.greeting)

        ``languages`` defaults to every loaded language. With ``fallback``
        a prompt found in a fallback language counts as present.
        """
        if isinstance(names, Mapping):
            needed = {n: ([w] if isinstance(w, str) else list(w)) for n, w in names.items()}
        else:
            needed = {n: [] for n in names}
        langs = list(self.languages if languages is None else languages)
        problems: list[str] = []
        for lang in langs:
            if lang not in self._sets:
                problems.append(f"{self.roots[0] / lang}: no prompts for language '{lang}'")
                continue
            for name, where in needed.items():
                if self.find(name, lang, fallback=fallback) is None:
                    why = f" (needed by {', '.join(where)})" if where else ""
                    problems.append(f"{self.expected_path(name, lang)}: missing{why}")
        if problems:
            raise PromptError(problems)
