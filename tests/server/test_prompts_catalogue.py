"""The committed prompt set agrees with its catalogue and is fit for a phone line.

Every catalogue entry has a WAV in every language, which soundfile and
sox's soxi both read as 8 kHz mono, non-empty, at the catalogue level, with
no long silence in front; nothing in the set is unknown to the catalogue;
the music on hold loops without a seam; the set stays small.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from boarddrv.tomlconfig import ConfigError
from dsp.units import signal_dbm0
from prompts import MOH_DIR, PROMPTS_DIR, load_catalogue
from voiceserver.ivr.prompts import active_level_dbm0

CAT = load_catalogue()
FILES = [PROMPTS_DIR / lang / f"{name}.wav" for lang in CAT.languages for name in CAT.names()]


def test_catalogue_covers_the_required_prompts():
    needed = {"welcome", "main_menu", "invalid_choice", "no_input", "please_hold", "transferring",
              "all_agents_busy", "leave_message", "message_saved", "goodbye", "business_hours",
              "account_balance_is", "press_1_balance", "press_2_hours", "press_0_agent",
              "you_are_caller_number", "in_the_queue", "expected_wait", "minutes",
              "yuan", "jiao", "fen", "cents", "am", "pm", "oclock", "minute_of_hour",
              "hundred", "thousand", "million", "point", "minus", "wan", "yi", "liang"}
    needed |= {f"digit_{d}" for d in range(10)} | {f"n{i}" for i in range(20)}
    needed |= {f"n{t}" for t in range(20, 100, 10)}
    assert needed <= set(CAT.names())
    assert CAT.languages == ("zh", "en")
    # the zh words the number rules need, by their text
    zh_words = {CAT.entries[n].text["zh"] for n in CAT.names()}
    assert set("零一二三四五六七八九十百千万亿点负两元角分") <= zh_words


def test_every_entry_has_a_wav_in_every_language_and_nothing_else_is_there():
    missing = [str(f) for f in FILES if not f.is_file()]
    assert missing == []
    for lang in CAT.languages:
        extra = {p.stem for p in (PROMPTS_DIR / lang).iterdir()} - set(CAT.names())
        assert extra == set(), f"prompts/{lang}: files not in the catalogue"


def test_files_are_8khz_mono_alaw_nonempty_at_level_without_leading_silence():
    for f in FILES:
        info = sf.info(str(f))
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "ALAW"), f
        x, _ = sf.read(str(f), dtype="int16")
        assert 0.15 < x.size / 8000 < 6.0, f
        level = active_level_dbm0(x)
        assert abs(level - CAT.level_dbm0) <= 3.0, f"{f}: {level:.1f} dBm0"
        # the first 10 ms frame above -55 dBm0 (a soft "th" is about -47;
        # A-law idle noise is below -65) starts within 60 ms
        frames = x[: x.size // 80 * 80].reshape(-1, 80).astype(float)
        first = int(np.argmax(signal_dbm0(frames) > -55.0))
        assert first * 10 <= 60, f"{f}: {first * 10} ms of silence before speech"
        assert np.max(np.abs(x)) < 32767, f"{f}: clipped"


@pytest.mark.skipif(shutil.which("soxi") is None, reason="sox not installed (.ci/apt-packages.txt)")
def test_soxi_reads_every_file_the_same_way():
    files = [str(f) for f in FILES] + [str(MOH_DIR / "default.wav")]
    for opt, want in (("-r", "8000"), ("-c", "1"), ("-e", "A-law")):
        out = subprocess.run(["soxi", opt, *files], check=True, capture_output=True,
                             text=True).stdout.splitlines()
        assert len(out) == len(files)
        assert all(want in line for line in out), (opt, [f for f, o in zip(files, out, strict=True) if want not in o])
    samples = subprocess.run(["soxi", "-s", *files], check=True, capture_output=True,
                             text=True).stdout.split()
    assert [int(s) for s in samples] == [sf.info(f).frames for f in files]


def test_music_on_hold_is_20_to_30_s_soft_and_loops_without_a_seam():
    x, rate = sf.read(str(MOH_DIR / "default.wav"), dtype="int16")
    assert rate == 8000 and x.ndim == 1
    assert 20.0 <= x.size / rate <= 30.0
    assert -23.0 <= signal_dbm0(x) <= -17.0
    d = np.abs(np.diff(x.astype(np.int32)))
    seam = abs(int(x[0]) - int(x[-1]))
    assert seam <= np.percentile(d, 99.9), "jump at the loop point"
    # no gap: every 100 ms of the loop has sound
    blocks = x[: x.size // 800 * 800].reshape(-1, 800)
    assert np.all(signal_dbm0(blocks) > -40.0)
    # in the telephone band: nearly no energy below 100 Hz
    spec = np.abs(np.fft.rfft(x.astype(float))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    assert spec[freqs < 100].sum() < 0.01 * spec.sum()


def test_whole_set_is_small():
    total = sum(f.stat().st_size for f in PROMPTS_DIR.rglob("*.wav"))
    assert total < 1.9 * 2**20, f"{total / 2**20:.2f} MiB"


def test_catalogue_errors_name_file_line_and_key(tmp_path: Path):
    bad = tmp_path / "p.toml"
    bad.write_text('[set]\nlanguages = ["zh", "en"]\n[tts.zh]\nvoice = "cmn"\n[tts.en]\n'
                   'voice = "en-us"\n\n[ivr.welcome]\nzh = "欢迎"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"p\.toml:8: key 'ivr\.welcome\.en': missing"):
        load_catalogue(bad)
    bad.write_text('[set]\nlanguages = ["zh"]\n[tts.zh]\nvoice = "cmn"\n'
                   '[a.hello]\nzh = "x"\n[b.hello]\nzh = "y"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"p\.toml:7: key 'b\.hello': prompt name already used"):
        load_catalogue(bad)
    bad.write_text('[set]\nlanguages = ["zh"]\n[tts.zh]\nvoice = "cmn"\n'
                   '[a.Hello]\nzh = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lower case"):
        load_catalogue(bad)


def test_docs_list_every_catalogue_entry():
    doc = (PROMPTS_DIR.parent / "docs" / "prompts.md").read_text(encoding="utf-8")
    for name, entry in CAT.entries.items():
        row = f"| `{name}` | {entry.text['zh']} | {entry.text['en']} |"
        assert row in doc, f"docs/prompts.md: no up-to-date row for '{name}'"
