"""Regenerate the default prompt set from prompts/prompts.toml.

Authoring-time tool (the server never runs it): for every catalogue entry
and language, espeak-ng speaks the text, sox resamples it to 8 kHz mono,
and we trim the silence at both ends and bring the active speech level
(ITU-T P.56) to the catalogue's level, then write
``prompts/<lang>/<name>.wav`` as 8 kHz A-law WAV (small: 8 kB per second).
It also writes the music on hold (prompts/make_moh.py). Output is
deterministic, so regenerating an unchanged catalogue changes no file.

Needs espeak-ng and sox on PATH (Debian: ``apt-get install espeak-ng sox``).

    python prompts/make_prompts.py                 # everything
    python prompts/make_prompts.py --only welcome goodbye --lang en
    python prompts/make_prompts.py --out /tmp/set  # somewhere else
"""
from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):       # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsp.audiofile import RATE, write_wav  # noqa: E402
from prompts import PROMPTS_DIR, Catalogue, load_catalogue  # noqa: E402
from voiceserver.ivr.prompts import active_level_dbm0  # noqa: E402

FRAME = RATE // 100          # 10 ms frames for trimming
TRIM_FLOOR_DB = 40.0         # a frame this far below the loudest frame is silence
LEAD_KEEP = 0.02             # s kept before the first sound
TAIL_KEEP = 0.04             # s kept after the last sound (lets a vowel die away)
MAX_PAUSE = 0.24             # s: longer pauses inside a prompt are shortened to this
FADE = 0.005                 # s raised-cosine fade at both ends: no click
LIMIT_KNEE = 0.80 * 32767.0  # soft limiter: peaks above the knee are rounded off
LIMIT_CEIL = 0.98 * 32767.0


class ToolMissing(RuntimeError):
    """espeak-ng or sox is not installed."""


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(f"{tool} not found on PATH; install it (Debian: apt-get install {tool})")
    return path


def synthesise(text: str, voice: str, speed: int, workdir: Path) -> np.ndarray:
    """espeak-ng -> sox (8 kHz mono float) -> float64 samples in int16 units."""
    import soundfile as sf

    raw = workdir / "espeak.wav"
    low = workdir / "8k.wav"
    subprocess.run([_need("espeak-ng"), "-v", voice, "-s", str(speed), "-w", str(raw), text],
                   check=True, capture_output=True)
    # -R: repeatable (fixed seeds); float output: no dither, so no noise.
    subprocess.run([_need("sox"), "-R", str(raw), "-r", str(RATE), "-c", "1",
                    "-e", "floating-point", "-b", "32", str(low)],
                   check=True, capture_output=True)
    x, rate = sf.read(str(low), dtype="float64")
    if rate != RATE:
        raise RuntimeError(f"{low}: sox gave {rate} Hz, wanted {RATE}")
    return x * 32768.0


def trim(x: np.ndarray) -> np.ndarray:
    """Cut leading/trailing silence, shorten long pauses, fade the ends.

    Silence is a 10 ms frame 40 dB below the loudest frame. Pauses are cut
    to MAX_PAUSE because the synthesiser's sentence pauses are longer than a
    prompt needs, and every second costs 8 kB in the repository.
    """
    n = x.size // FRAME
    if n == 0:
        return x
    frames = x[: n * FRAME].reshape(n, FRAME)
    db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-9)
    quiet = db <= db.max() - TRIM_FLOOR_DB
    loud = np.flatnonzero(~quiet)
    keep = np.zeros(n, dtype=bool)
    keep[loud[0]:loud[-1] + 1] = True
    half = int(MAX_PAUSE / 2 * RATE) // FRAME
    i = loud[0]
    while i <= loud[-1]:
        if quiet[i]:
            j = i
            while quiet[j]:
                j += 1
            if j - i > 2 * half:
                keep[i + half:j - half] = False
            i = j
        else:
            i += 1
    body = frames[keep].ravel()
    lead = int(LEAD_KEEP * RATE)
    tail = int(TAIL_KEEP * RATE)
    start = loud[0] * FRAME
    end = (loud[-1] + 1) * FRAME
    y = np.concatenate([x[max(0, start - lead):start], body, x[end:end + tail]])
    f = min(int(FADE * RATE), y.size // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(f) / f)
    y[:f] *= ramp
    y[y.size - f:] *= ramp[::-1]
    return y


def soft_limit(x: np.ndarray) -> np.ndarray:
    """Round off the rare peaks above the knee instead of clipping them."""
    a = np.abs(x)
    over = a > LIMIT_KNEE
    room = LIMIT_CEIL - LIMIT_KNEE
    y = x.copy()
    y[over] = np.sign(x[over]) * (LIMIT_KNEE + room * np.tanh((a[over] - LIMIT_KNEE) / room))
    return y


def level_to(x: np.ndarray, level_dbm0: float) -> np.ndarray:
    """Bring the P.56 active level to ``level_dbm0`` (soft-limited), as int16."""
    for _ in range(3):      # limiting lowers the level a little: correct and repeat
        have = active_level_dbm0(x)
        if not math.isfinite(have):
            raise RuntimeError("synthesiser produced silence")
        x = soft_limit(x * 10.0 ** ((level_dbm0 - have) / 20.0))
        if abs(active_level_dbm0(x) - level_dbm0) < 0.1:
            break
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def make_prompt(cat: Catalogue, name: str, lang: str, out_dir: Path, workdir: Path) -> Path:
    entry = cat.entries[name]
    voice, speed = cat.voices[lang]
    x = synthesise(entry.spoken(lang), voice, speed, workdir)
    audio = level_to(trim(x), cat.level_dbm0)
    path = out_dir / lang / f"{name}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(str(path), audio, subtype="ALAW")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalogue", type=Path, default=PROMPTS_DIR / "prompts.toml")
    ap.add_argument("--out", type=Path, default=PROMPTS_DIR, help="prompt directory to write")
    ap.add_argument("--lang", action="append", help="only this language (repeatable)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these prompts")
    ap.add_argument("--no-moh", action="store_true", help="do not rewrite the music on hold")
    ap.add_argument("--prune", action="store_true",
                    help="delete WAVs in the language folders that the catalogue no longer has")
    args = ap.parse_args(argv)

    cat = load_catalogue(args.catalogue)
    langs = args.lang or list(cat.languages)
    for lang in langs:
        if lang not in cat.languages:
            ap.error(f"language {lang!r} is not in {args.catalogue} (has {', '.join(cat.languages)})")
    names = args.only or cat.names()
    for name in names:
        if name not in cat:
            ap.error(f"no prompt {name!r} in {args.catalogue}")
    try:
        _need("espeak-ng"), _need("sox")
    except ToolMissing as exc:
        print(f"make_prompts: {exc}", file=sys.stderr)
        return 2

    total = 0
    with tempfile.TemporaryDirectory(prefix="make_prompts.") as tmp:
        for lang in langs:
            for name in names:
                path = make_prompt(cat, name, lang, args.out, Path(tmp))
                total += path.stat().st_size
    print(f"{len(langs) * len(names)} prompts, {total / 1024:.0f} KiB -> {args.out}")
    if args.prune:
        for lang in langs:
            for f in sorted((args.out / lang).glob("*.wav")):
                if f.stem not in cat:
                    f.unlink()
                    print(f"removed {f}")
    if not args.no_moh and not args.only:
        from prompts.make_moh import make
        moh = make(args.out / "moh" / "default.wav")
        print(f"music on hold: {moh} ({moh.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
