"""PromptLibrary: any format and rate in, 8 kHz int16 at one level out; errors at load time.

Test prompts are tone bursts with pauses written in the test (FLAC at
16 kHz, OGG at 44.1 kHz, stereo WAV, A-law WAV), so the expected level,
length and pitch are known exactly.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp.units import dbm0_to_rms, signal_dbm0
from prompts import load_catalogue
from voiceserver.ivr.prompts import DEFAULT_LEVEL_DBM0, PromptError, PromptLibrary, active_level_dbm0, normalise


def burst(rate: int, seconds: float = 1.0, freq: float = 700.0, dbm0: float = -30.0,
          duty: float = 0.5, channels: int = 1) -> np.ndarray:
    """A tone that is on for the first `duty` of each 200 ms: speech-like on/off."""
    t = np.arange(int(rate * seconds)) / rate
    on = (t % 0.2) < 0.2 * duty
    x = dbm0_to_rms(dbm0) * math.sqrt(2) * np.sin(2 * np.pi * freq * t) * on / 32768.0
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def write(path: Path, x: np.ndarray, rate: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, rate, **kw)
    return path


def peak_freq(x: np.ndarray, rate: int = 8000) -> float:
    spec = np.abs(np.fft.rfft(x.astype(float)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spec)])


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    write(root / "zh" / "welcome.flac", burst(16000), 16000, format="FLAC")
    write(root / "zh" / "goodbye.ogg", burst(44100, freq=500.0), 44100, format="OGG",
          subtype="VORBIS")
    write(root / "en" / "welcome.wav", burst(22050, channels=2), 22050)
    write(root / "en" / "goodbye.wav", burst(8000, freq=500.0), 8000, subtype="ALAW")
    (root / "en" / "README.txt").write_text("not audio: ignored")
    return root


def test_any_format_and_rate_becomes_8khz_mono_int16_at_the_target_level(site: Path):
    lib = PromptLibrary(site)
    assert set(lib.languages) == {"zh", "en"}
    for lang, name, freq in (("zh", "welcome", 700), ("zh", "goodbye", 500),
                             ("en", "welcome", 700), ("en", "goodbye", 500)):
        x = lib.get(name, lang)
        assert x.dtype == np.int16 and x.ndim == 1
        assert abs(x.size - 8000) <= 2, (lang, name, x.size)       # 1 s at 8 kHz
        assert abs(peak_freq(x) - freq) <= 2.0                      # resampled, not re-pitched
        assert abs(active_level_dbm0(x) - DEFAULT_LEVEL_DBM0) < 0.3
        assert not x.flags.writeable                                # shared cache, read-only
    assert lib.get("welcome", "zh") is lib.get("welcome", "zh")     # cached once
    assert lib.prompt("welcome", "zh").path.suffix == ".flac"
    # the 100 ms gaps are shorter than P.56's 200 ms hangover, so they count
    # as active: the burst's active level is -33 dBm0, and the gain 17 dB
    assert lib.prompt("welcome", "zh").gain_db == pytest.approx(17.0, abs=0.5)


def test_level_none_keeps_the_recorded_level(site: Path):
    lib = PromptLibrary(site, level_dbm0=None)
    assert active_level_dbm0(lib.get("goodbye", "en")) == pytest.approx(-33.0, abs=0.5)
    assert lib.prompt("goodbye", "en").gain_db == 0.0


def test_p56_active_level_ignores_pauses_unlike_rms():
    x = burst(8000, seconds=4.0, dbm0=-20.0, duty=0.5) * 32768.0
    assert float(signal_dbm0(x)) == pytest.approx(-23.0, abs=0.2)     # half the time silent
    # P.56 counts the 200 ms hangover after each burst as active: here that
    # bridges the gaps, so the active level is the tone level minus 3 dB at most
    steady = np.r_[burst(8000, 2.0, dbm0=-20.0, duty=1.0), np.zeros(16000)] * 32768.0
    assert active_level_dbm0(steady) == pytest.approx(-20.0, abs=0.6)
    assert active_level_dbm0(np.zeros(800)) == -math.inf
    assert active_level_dbm0(np.zeros(0)) == -math.inf


def test_normalise_never_clips_a_peaky_recording():
    x = np.zeros(8000)
    x[4000] = 20000.0                                   # a click in silence
    x[:2000] += burst(8000, 0.25, dbm0=-50.0) * 32768.0
    y, gain = normalise(x, -16.0)
    assert np.max(np.abs(y.astype(int))) <= 32767 * 0.97 + 1
    assert gain < 30.0


def test_missing_prompt_error_names_the_file_and_who_needs_it(site: Path):
    lib = PromptLibrary(site)
    with pytest.raises(PromptError) as err:
        lib.check({"welcome": "ivr.main.greeting", "main_menu": ["ivr.main.menu", "ivr.retry"]})
    msg = str(err.value)
    assert f"{site / 'zh' / 'main_menu.wav'}: missing (needed by ivr.main.menu, ivr.retry)" in msg
    assert f"{site / 'en' / 'main_menu.wav'}: missing (needed by ivr.main.menu, ivr.retry)" in msg
    assert "welcome" not in msg
    assert len(err.value.problems) == 2
    lib.check(["welcome", "goodbye"])                               # all there: no error
    with pytest.raises(PromptError, match=r"zh/nope\.wav: missing$"):
        lib.check(["nope"], languages=["zh"])
    with pytest.raises(PromptError, match="no prompts for language 'fr'"):
        lib.check(["welcome"], languages=["fr"])


def test_unreadable_and_empty_files_fail_at_load_naming_each_file(site: Path):
    (site / "zh" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    write(site / "en" / "silent_empty.wav", np.zeros(0), 8000)
    with pytest.raises(PromptError) as err:
        PromptLibrary(site)
    lines = err.value.problems
    assert any(line.startswith(f"{site / 'zh' / 'broken.wav'}: cannot read audio") for line in lines)
    assert f"{site / 'en' / 'silent_empty.wav'}: empty (no audio samples)" in lines
    assert len(lines) == 2


def test_two_files_for_one_name_is_an_error(site: Path):
    write(site / "zh" / "welcome.wav", burst(8000), 8000)
    with pytest.raises(PromptError, match=r"two files for prompt 'welcome'"):
        PromptLibrary(site)


def test_missing_root_or_language_folder_is_an_error(tmp_path: Path, site: Path):
    with pytest.raises(PromptError, match=r"nowhere: prompt directory does not exist"):
        PromptLibrary(tmp_path / "nowhere")
    with pytest.raises(PromptError, match=r"no prompt folder for language 'fr'"):
        PromptLibrary(site, languages=["zh", "fr"])
    with pytest.raises(PromptError, match=r"fallback language 'de'"):
        PromptLibrary(site, fallback="de")


def test_site_recordings_override_defaults_by_name_and_fallback_fills_gaps(tmp_path: Path,
                                                                            site: Path):
    studio = tmp_path / "studio"
    write(studio / "zh" / "welcome.wav", burst(48000, freq=1000.0), 48000)
    write(studio / "yue" / "welcome.flac", burst(8000, freq=1200.0), 8000, format="FLAC")
    lib = PromptLibrary([studio, site], fallback={"yue": "zh", "zh": "en"})
    assert set(lib.languages) == {"zh", "en", "yue"}
    assert peak_freq(lib.get("welcome", "zh")) == pytest.approx(1000.0, abs=2)   # studio wins
    assert peak_freq(lib.get("goodbye", "zh")) == pytest.approx(500.0, abs=2)    # default kept
    assert peak_freq(lib.get("welcome", "yue")) == pytest.approx(1200.0, abs=2)
    assert lib.prompt("goodbye", "yue").lang == "zh"                            # yue -> zh
    lib.check(["welcome", "goodbye"], languages=["yue"])
    with pytest.raises(PromptError, match="missing"):
        lib.check(["goodbye"], languages=["yue"], fallback=False)
    assert lib.find("goodbye", "yue", fallback=False) is None
    # the fallback chain stops at a cycle instead of looping
    cyc = PromptLibrary([studio, site], fallback={"yue": "zh", "zh": "yue"})
    assert cyc.find("nothing", "yue") is None


def test_sequence_plays_prompts_back_to_back(site: Path):
    lib = PromptLibrary(site)
    a, b = lib.get("welcome", "en"), lib.get("goodbye", "en")
    seq = lib.sequence(["welcome", "goodbye"], "en", gap_ms=50)
    assert seq.size == a.size + 400 + b.size
    assert np.array_equal(seq[: a.size], a) and np.array_equal(seq[-b.size:], b)
    assert lib.sequence([], "en").size == 0


def test_music_on_hold_is_loaded_at_its_own_level(tmp_path: Path, site: Path):
    write(site / "moh" / "default.wav", np.tile(burst(8000, duty=1.0, dbm0=-5.0), 3), 8000)
    lib = PromptLibrary(site, moh_level_dbm0=-20.0)
    assert "moh" not in lib.languages
    assert float(signal_dbm0(lib.music_on_hold())) == pytest.approx(-20.0, abs=0.2)
    with pytest.raises(PromptError, match=r"moh/jazz\.wav: missing"):
        lib.music_on_hold("jazz")


def test_default_set_loads_and_has_every_catalogue_name():
    lib = PromptLibrary()
    cat = load_catalogue()
    assert set(lib.languages) == set(cat.languages)
    lib.check(cat.names(), fallback=False)
    assert lib.moh_names() == ["default"]
    for name in ("welcome", "n5", "yuan"):
        for lang in cat.languages:
            assert abs(active_level_dbm0(lib.get(name, lang)) - cat.level_dbm0) < 1.0
