"""The archive tools as processes: peak memory on long and wide files, -j, what a cold start imports.

Files are generated in tmp (hundreds of MB: never committed). Peak memory
is the child's own ru_maxrss (and its workers'), read back from stderr.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dsp.audiofile import write_wav
from dsp.callerid import callerid_audio
from dsp.dtmf import dtmf_signal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIMIT_MB = 200

# VmHWM, not RUSAGE_SELF: ru_maxrss survives exec, so it would carry pytest's own peak.
# Workers' peaks (RUSAGE_CHILDREN) include what they share with the parent: an upper bound.
RUN_WITH_MAXRSS = """
import re, resource, sys
from boarddrv.cli import main
rc = main(sys.argv[1:])
own = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(f"MAXRSS_KB {max(own, kids)}\\n")
sys.exit(rc)
"""


def run(args: list[str], timeout: float = 300) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr without the MAXRSS line, peak MB) of `voiceboard ARGS`."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-c", RUN_WITH_MAXRSS, *args], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=ROOT)
    lines = p.stderr.splitlines()
    peak = [int(x.split()[1]) for x in lines if x.startswith("MAXRSS_KB ")]
    assert peak, p.stderr
    return p.returncode, p.stdout, "\n".join(x for x in lines if not x.startswith("MAXRSS_KB ")), \
        peak[0] / 1024


def write_long(path: str, nchan: int, seconds: float, rate: int = 8000,
               events: tuple[tuple[int, float, np.ndarray], ...] = ()) -> None:
    """A long noise recording written in blocks (never whole in memory), with events added."""
    import soundfile as sf
    rng = np.random.default_rng(5)
    total = int(seconds * rate)
    step = max(rate, (1 << 20) // nchan)
    with sf.SoundFile(path, "w", samplerate=rate, channels=nchan, subtype="PCM_16", format="WAV") as f:
        for a in range(0, total, step):
            k = min(step, total - a)
            x = rng.normal(0, 30, (k, nchan))  # a quiet line: -55 dBm0
            for chan, at, sig in events:
                i = int(at * rate)
                lo, hi = max(a, i), min(a + k, i + len(sig))
                if lo < hi:
                    x[lo - a:hi - a, chan] += sig[lo - i:hi - i]
            f.write(np.clip(x, -32768, 32767).astype(np.int16))


@pytest.fixture(scope="module")
def two_hour_mono(tmp_path_factory) -> str:
    """2 h at 8 kHz (115 MB; read whole as float64 it was 1.4 GB): digits and a caller ID at the end."""
    path = str(tmp_path_factory.mktemp("long") / "two-hours.wav")
    write_long(path, 1, 7200, events=((0, 7190.0, dtmf_signal("42#")),
                                      (0, 7193.0, callerid_audio("5551234", "Long Call"))))
    return path


@pytest.fixture(scope="module")
def wide_file(tmp_path_factory) -> str:
    """256 channels x 60 s (245 MB; float64 whole was 1 GB): digits on channel 200."""
    path = str(tmp_path_factory.mktemp("wide") / "wide.wav")
    write_long(path, 256, 60, events=((200, 58.0, dtmf_signal("7")),))
    return path


def test_two_hour_mono_file_in_bounded_memory(two_hour_mono):
    rc, out, err, peak = run(["dtmf", two_hour_mono, "--json", "-j", "1"])
    assert rc == 0, err
    assert [json.loads(line)["digit"] for line in out.splitlines()] == ["4", "2", "#"]
    assert peak < LIMIT_MB, f"dtmf peak {peak:.0f} MB"
    rc, out, err, peak = run(["cid", two_hour_mono, "--json", "-j", "1"])
    assert rc == 0, err
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["number"] == "5551234" and row["name"] == "Long Call"
    assert row["time"] == pytest.approx(7193.0, abs=0.01)
    assert peak < LIMIT_MB, f"cid peak {peak:.0f} MB"


def test_256_channel_file_in_bounded_memory(wide_file):
    rc, out, err, peak = run(["dtmf", wide_file, "--json", "-j", "1"])
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["channel"], r["digit"]) for r in rows] == [(200, "7")]
    assert rows[0]["start"] == pytest.approx(58.0, abs=0.01)
    assert peak < LIMIT_MB, f"dtmf peak {peak:.0f} MB"


def test_resampled_long_file_in_bounded_memory(tmp_path):
    """30 min at 44.1 kHz (159 MB): resampled block by block."""
    path = str(tmp_path / "cd.wav")
    write_long(path, 1, 1800, rate=44100)
    rc, out, err, peak = run(["dtmf", path, "-j", "1"])
    assert rc == 1 and "no DTMF digits (1 file, 0.50 channel-hours of audio)" in err
    assert peak < LIMIT_MB, f"peak {peak:.0f} MB"


def test_processes_give_the_same_output_as_one(tmp_path):
    for k in range(6):
        x = np.concatenate([np.zeros(2000 + 500 * k, np.int16), dtmf_signal(str(k) * 2 + "#"),
                            np.zeros(4000, np.int16)])
        sub = tmp_path / f"day{k % 2}"
        sub.mkdir(exist_ok=True)
        write_wav(str(sub / f"call{k}.wav"), x[None])
    (tmp_path / "day1" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    one = run(["dtmf", str(tmp_path), "--json", "-j", "1"])
    two = run(["dtmf", str(tmp_path), "--json", "-j", "2"])
    assert one[0] == two[0] == 2
    assert one[1] == two[1] and len(one[1].splitlines()) == 18
    assert one[2] == two[2] and "broken.wav: cannot read audio" in one[2]


CHECK_IMPORTS = """
import json, sys
sys.argv = ["voiceboard"] + sys.argv[1:]
import dsp.archive, dsp.dtmf_cli, dsp.callerid_cli, dsp.tones_cli, dsp.audit_cli
at_start = sorted(m for m in ("numpy", "scipy", "soundfile") if m in sys.modules)
from dsp.callerid_cli import main
main(sys.argv[1:])
print(json.dumps({"at_start": at_start, "scipy_after_a_file": "scipy" in sys.modules}))
"""


def test_cold_start_imports_nothing_heavy(tmp_path):
    """The tools import no numpy/soundfile until a file is read, and never scipy (0.8 s)."""
    path = str(tmp_path / "a.wav")
    write_wav(path, np.concatenate([np.zeros(800, np.int16), callerid_audio("5551234")]), rate=16000)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-c", CHECK_IMPORTS, path], capture_output=True, text=True,
                       timeout=60, env=env, cwd=ROOT)
    got = json.loads(p.stdout.splitlines()[-1])
    assert got == {"at_start": [], "scipy_after_a_file": False}, p.stderr


LOADED_BY_TOOL = """
import json, sys
from boarddrv.cli import main
main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)))
"""

# what no tool needs for an 8 kHz PCM WAV: each costs milliseconds to tens of ms at every start
NEVER_AT_START = {"scipy", "soundfile", "cffi", "multiprocessing", "difflib", "shutil", "voiceserver", "hwsim",
                  "boarddrv.board", "dsp.audit_cli", "dsp.r2mf"}
# the detectors a tool does not use
OTHERS = {"dtmf": {"dsp.callerid", "dsp.tones", "dsp._fsk", "dsp._tones"},
          "cid": {"dsp.tones", "dsp._tones"},
          "tones": {"dsp.dtmf", "dsp.callerid", "dsp._dtmf", "dsp._fsk"}}


@pytest.mark.parametrize("tool", ["dtmf", "cid", "tones"])
def test_each_tool_loads_only_what_it_needs(tmp_path, tool):
    """`voiceboard dtmf|cid|tones FILE` through the console script's entry point: the loaded
    modules, not a timing (cold start is measured in docs/dsp-archive.md)."""
    path = str(tmp_path / "a.wav")
    write_wav(path, np.concatenate([dtmf_signal("123"), callerid_audio("5551234")]))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-c", LOADED_BY_TOOL, tool, path], capture_output=True, text=True,
                       timeout=60, env=env, cwd=ROOT)
    loaded = set(json.loads(p.stdout.splitlines()[-1]))
    assert f"dsp.{'callerid' if tool == 'cid' else tool}_cli" in loaded, p.stderr
    assert {m.split(".")[0] for m in loaded} & NEVER_AT_START == set()
    assert loaded & (NEVER_AT_START | OTHERS[tool]) == set()
