"""dsp.archive and the streaming reader: files and directories, exit status, segments and seams.

In-process tests; the ones that start processes (memory, -j, cold start)
are in test_archive_process.py.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from dsp import archive
from dsp.audiofile import AudioStream, Lane, Resampler, read_audio, resample_taps, write_wav
from dsp.callerid import CallerIdDetector, butter_lowpass_sos, callerid_audio, fsk_encode
from dsp.callerid_cli import CidTool
from dsp.callerid_cli import main as cid_main
from dsp.dtmf import dtmf_signal
from dsp.dtmf_cli import DtmfTool
from dsp.dtmf_cli import main as dtmf_main
from dsp.tones import RATE, ToneGenerator, TonePlan
from dsp.tones_cli import main as tones_main

# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("rate", [16000, 44100, 48000, 11025, 6000])
def test_resampler_in_blocks_is_resample_poly(rate):
    from scipy.signal import resample_poly
    rng = np.random.default_rng(rate)
    x = rng.normal(0, 0.1, (2, rate * 2 + 17)).astype(np.float32)
    rs = Resampler(2, rate)
    got, i = [], 0
    for b in (1000, 1, 5000, 333, 10**7):  # odd block sizes: the state carries across
        got.append(rs.process(x[:, i:i + b]))
        i += b
    got.append(rs.flush())
    y = np.concatenate(got, axis=1)
    ref = resample_poly(x.astype(np.float64), rs.up, rs.down, axis=1)
    assert y.shape == ref.shape
    assert np.max(np.abs(y - ref)) < 1e-6


def test_filter_taps_are_scipys():
    from scipy.signal import firwin
    h = resample_taps(80, 441)
    ref = firwin(2 * 10 * 441 + 1, 1.0 / 441, window=("kaiser", 5.0)) * 80
    assert np.max(np.abs(h - ref)) < 1e-12


def test_butterworth_sections_are_scipys():
    from scipy.signal import butter
    assert np.max(np.abs(butter_lowpass_sos(4, 800.0, RATE) - butter(4, 800.0, fs=RATE, output="sos"))) < 1e-12


@pytest.mark.parametrize("rate,subtype", [(44100, "PCM_16"), (8000, "ALAW"), (8000, "PCM_16"),
                                          (16000, "PCM_24"), (8000, "PCM_24"), (8000, "FLOAT")])
def test_stream_equals_whole_file_read(tmp_path, rate, subtype):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3000, (3, rate * 2 + 5)).astype(np.int16)
    path = str(tmp_path / "a.wav")
    write_wav(path, x, rate=rate, subtype=subtype)
    ref = read_audio(path)
    with AudioStream(path) as st:
        assert (st.channels, st.samples) == ref.shape
        blocks = list(st.blocks([Lane(c, 0, st.samples) for c in range(3)], 800))
    assert {b.shape[1] for b in blocks[:-1]} == {800}
    got = np.concatenate(blocks, axis=1)
    assert got.dtype == np.int16 and got.shape == ref.shape
    assert np.max(np.abs(got.astype(np.int32) - ref)) <= 1  # float32 vs float64 rounding


def _riff(chunks: list[tuple[bytes, bytes]], data_len: int | None = None) -> bytes:
    import struct
    body = b"WAVE"
    for cid, payload in chunks:
        n = data_len if cid == b"data" and data_len is not None else len(payload)
        body += cid + struct.pack("<I", n) + payload + (b"\0" if len(payload) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_16_bit_pcm_wav_is_read_without_libsndfile_as_libsndfile_reads_it(tmp_path):
    """The lean PCM WAV reader: header and samples as soundfile gives them, for 1-6 channels,
    WAVE_FORMAT_EXTENSIBLE, an odd-sized chunk before the data, a data chunk claiming more
    than the file holds (and a streaming writer's 0xFFFFFFFF); anything else goes to soundfile."""
    import struct

    import soundfile as sf

    from dsp.audiofile import PcmWav
    rng = np.random.default_rng(9)
    files = {}
    for ch in (1, 2, 3, 6):
        x = rng.integers(-32768, 32768, (12345, ch)).astype(np.int16)
        files[f"c{ch}.wav"] = x
        sf.write(str(tmp_path / f"c{ch}.wav"), x, 8000, subtype="PCM_16")
    x = rng.integers(-32768, 32768, (1000, 2)).astype(np.int16)
    files["wavex.wav"] = x
    sf.write(str(tmp_path / "wavex.wav"), x, 8000, subtype="PCM_16", format="WAVEX")
    x = rng.integers(-32768, 32768, (777, 1)).astype(np.int16)
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    for name, extra, claim in (("list.wav", [(b"LIST", b"abcde")], None), ("trunc.wav", [], x.nbytes + 1000),
                               ("stream.wav", [], 0xFFFFFFFF)):
        (tmp_path / name).write_bytes(_riff([(b"fmt ", fmt), *extra, (b"data", x.tobytes())], claim))
        files[name] = x
    for name, x in files.items():
        path = str(tmp_path / name)
        assert PcmWav.open(path) is not None, name
        with sf.SoundFile(path) as f:
            ref = f.read(dtype="int16", always_2d=True)
            head = (f.channels, f.samplerate, f.frames)
        assert np.array_equal(ref, x), name
        with AudioStream(path) as st:
            assert (st.channels, st.rate, st.frames) == head, name
            got = np.concatenate(list(st.blocks([Lane(c, 0, st.samples) for c in range(st.channels)], 500)),
                                 axis=1)
        assert np.array_equal(got, ref.T), name
    for sub in ("ALAW", "PCM_24", "FLOAT", "PCM_U8"):
        sf.write(str(tmp_path / f"{sub}.wav"), rng.normal(0, 0.1, 100), 8000, subtype=sub)
        assert PcmWav.open(str(tmp_path / f"{sub}.wav")) is None, sub
    (tmp_path / "nofmt.wav").write_bytes(_riff([(b"data", x.tobytes())]))
    assert PcmWav.open(str(tmp_path / "nofmt.wav")) is None


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
@pytest.mark.parametrize("stereo", [False, True])
def test_lanes_are_segments_of_a_channel(tmp_path, subtype, stereo):
    """Lanes from different starts side by side: each the channel from its start, zero after its stop."""
    x = (np.arange(40000) % 30000).astype(np.int16)
    x = np.stack([-x, x]) if stereo else x[None]
    path = str(tmp_path / "ramp.wav")
    write_wav(path, x if subtype == "PCM_16" else x / 32768.0, subtype=subtype)  # float: full scale 1
    c = 1 if stereo else 0
    lanes = [Lane(c, 0, 10000), Lane(c, 8000, 25000), Lane(0, 20000, 40000)]
    with AudioStream(path) as st:
        got = np.concatenate(list(st.blocks(lanes, 700)), axis=1)
    assert got.shape == (3, 20000)
    for k, ln in enumerate(lanes):
        n = ln.stop - ln.start
        assert np.array_equal(got[k, :n], x[ln.channel, ln.start:ln.stop])
        assert not got[k, n:].any()


# ---------------------------------------------------------------- files, directories, exit status


def _digits_wav(path, digits="123"):
    write_wav(str(path), np.concatenate([np.zeros(4000, np.int16), dtmf_signal(digits),
                                         np.zeros(4000, np.int16)])[None])


def test_directories_are_searched_with_the_glob(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("d/b.wav", "d/e/a.WAV", "d/e/c.flac", "d/z.txt"):
        (tmp_path / name).write_bytes(b"")
    got = archive.expand_paths([str(tmp_path / "d"), str(tmp_path / "missing.wav")], "*.wav")
    assert got == [str(tmp_path / "d/b.wav"), str(tmp_path / "d/e/a.WAV"), str(tmp_path / "missing.wav")]
    assert archive.expand_paths([str(tmp_path / "d")], "*.flac") == [str(tmp_path / "d/e/c.flac")]


def test_a_bad_file_in_a_directory_is_reported_and_the_others_processed(tmp_path, capsys):
    _digits_wav(tmp_path / "a.wav", "12")
    (tmp_path / "b.wav").write_bytes(b"RIFF junk")
    _digits_wav(tmp_path / "c.wav", "9")
    assert dtmf_main([str(tmp_path), "--json", "-j", "1"]) == 2
    cap = capsys.readouterr()
    rows = [json.loads(line) for line in cap.out.splitlines()]
    assert [(r["file"], r["digit"]) for r in rows] == [(str(tmp_path / "a.wav"), "1"),
                                                      (str(tmp_path / "a.wav"), "2"),
                                                      (str(tmp_path / "c.wav"), "9")]
    assert cap.err.startswith(f"voiceboard dtmf: {tmp_path / 'b.wav'}: cannot read audio")
    assert cap.err.count("\n") == 1


def test_an_empty_recording_is_not_an_error(tmp_path, capsys):
    write_wav(str(tmp_path / "empty.wav"), np.zeros((1, 0), np.int16))
    _digits_wav(tmp_path / "a.wav", "7")
    assert dtmf_main([str(tmp_path), "-j", "1"]) == 0
    assert dtmf_main([str(tmp_path / "empty.wav")]) == 1
    assert capsys.readouterr().err.endswith("no DTMF digits (1 file, 0.00 channel-hours of audio)\n")


def test_table_over_many_files_names_each_file(tmp_path, capsys):
    _digits_wav(tmp_path / "a.wav", "4")
    _digits_wav(tmp_path / "b.wav", "5")
    assert dtmf_main([str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "-j", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["file", "channel", "digit"]
    assert lines[1].split()[:3] == [str(tmp_path / "a.wav"), "0", "4"]
    assert lines[2].split()[:3] == [str(tmp_path / "b.wav"), "0", "5"]


@pytest.fixture
def quiet_wav(tmp_path):
    path = str(tmp_path / "quiet.wav")
    write_wav(path, np.random.default_rng(0).normal(0, 30, RATE * 2).astype(np.int16))
    return path


@pytest.fixture
def busy_and_cid_wav(tmp_path):
    """Channel 0: cn busy tone; channel 1: FSK caller ID; channel 2: DTMF '12'."""
    plan = TonePlan.load("cn")
    x = np.zeros((3, 6 * RATE), np.int16)
    g = ToneGenerator(3, plan)
    g.play(0, "busy")
    g.tx(x)
    cid = callerid_audio("5551234")
    x[1, 4000:4000 + len(cid)] = cid
    d = dtmf_signal("12")
    x[2, 4000:4000 + len(d)] = d
    path = str(tmp_path / "mix.wav")
    write_wav(path, x)
    return path


@pytest.mark.parametrize("tool,main,nothing", [
    ("dtmf", dtmf_main, "no DTMF digits"), ("cid", cid_main, "no caller ID"),
    ("tones", tones_main, "no call-progress tones")])
def test_one_exit_status_convention(tool, main, nothing, quiet_wav, busy_and_cid_wav, tmp_path, capsys):
    """0 found, 1 nothing found (and a line on stderr), 2 missing or unreadable file."""
    assert main([busy_and_cid_wav]) == 0
    assert capsys.readouterr().err == ""
    assert main([quiet_wav]) == 1
    cap = capsys.readouterr()
    assert cap.err == f"voiceboard {tool}: {nothing} (1 file, 0.00 channel-hours of audio)\n"
    assert main([str(tmp_path / "nope.wav")]) == 2
    assert capsys.readouterr().err == f"voiceboard {tool}: {tmp_path / 'nope.wav'}: no such file\n"
    assert main([str(tmp_path / "nope.wav"), busy_and_cid_wav]) == 2  # found, but an error: 2
    (tmp_path / "empty-dir").mkdir(exist_ok=True)
    assert main([str(tmp_path / "empty-dir")]) == 2
    assert "no files matching '*.wav'" in capsys.readouterr().err
    assert main(["--bogus", quiet_wav]) == 2
    capsys.readouterr()
    assert main(["--help"]) == 0
    assert "exit status: 0" in " ".join(capsys.readouterr().out.split())


def test_progress_line_counts_files_hours_and_eta(busy_and_cid_wav, quiet_wav):
    out = io.StringIO()
    p = archive.Progress([busy_and_cid_wav, quiet_wav], stream=out)
    assert "0/2 files" in out.getvalue()
    p.done(archive.FileResult(busy_and_cid_wav, channels=3, seconds=6.0))
    p.done(archive.FileResult(quiet_wav, channels=1, seconds=2.0))
    last = out.getvalue().split("\r")[-1]
    assert "2/2 files" in last and "0.01/0.01 h audio" in last and "ETA 0:00" in last


# ---------------------------------------------------------------- segments and seams

def _seam_plan(tool, seconds):
    n = seconds * RATE
    plan = archive.plan_lanes(1, n, 1, tool)
    assert len(plan) > 2 and all(p.start % archive.GRID == 0 for p in plan)
    return n, [p.own_start for p in plan[1:]]


def test_dtmf_across_every_seam_is_reported_once_with_unsegmented_times(tmp_path):
    """Digits straddling each seam, starting just before it, and one held across it for 3 s."""
    n, seams = _seam_plan(DtmfTool(), 400)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 100, n)
    want = 0
    cases = [(-320, "1", 80), (-24000, "5", 3000), (-200, "7", 60), (-40, "29", 70), (-2000, "#", 2200)]
    for k, s in enumerate(seams):
        off, digits, on_ms = cases[k % len(cases)]
        sig = dtmf_signal(digits, on_ms=on_ms, off_ms=50)
        x[s + off:s + off + len(sig)] += sig
        want += len(digits)
    path = str(tmp_path / "long.wav")
    write_wav(path, np.clip(x, -32768, 32767).astype(np.int16)[None])
    split = archive.scan_file(DtmfTool(), path, split=True)
    whole = archive.scan_file(DtmfTool(), path, split=False)
    assert len(whole.rows) == want
    assert split.rows == whole.rows
    held = [r for r in whole.rows if r["digit"] == "5"]
    assert held and all(2.9 < r["end"] - r["start"] < 3.1 for r in held)


def test_seams_of_a_resampled_file(tmp_path):
    """44.1 kHz: each segment has its own resampler, started in its warm-up; same digits, same times."""
    from scipy.signal import resample_poly
    n = 300 * RATE
    plan = archive.plan_lanes(1, n, 80, DtmfTool())
    seams = [p.own_start for p in plan[1:]]
    assert len(seams) > 2 and all(p.start % 80 == 0 for p in plan)
    x = np.random.default_rng(1).normal(0, 100, n)
    for k, s in enumerate(seams):
        sig = dtmf_signal("159"[k % 3], on_ms=(80, 3000, 60)[k % 3], off_ms=50)
        off = (-320, -24000, -200)[k % 3]
        x[s + off:s + off + len(sig)] += sig
    path = str(tmp_path / "cd.wav")
    write_wav(path, np.clip(resample_poly(x, 441, 80), -32768, 32767).astype(np.int16)[None], rate=44100)
    split = archive.scan_file(DtmfTool(), path, split=True)
    whole = archive.scan_file(DtmfTool(), path, split=False)
    assert len(whole.rows) == len(seams)
    assert split.rows == whole.rows


def test_caller_id_across_every_seam_is_reported_once_with_unsegmented_times(tmp_path):
    n, seams = _seam_plan(CidTool(), 400)
    rng = np.random.default_rng(2)
    x = rng.normal(0, 100, n)
    fsk = callerid_audio("13912345678", "Zhang San", (11, 23, 9, 5))
    dt = callerid_audio("5551234", standard="dtmf")
    for k, s in enumerate(seams):
        sig = (fsk, dt)[k % 2]
        a = s - len(sig) // 2 + (k % 3 - 1) * 300
        x[a:a + len(sig)] += sig
    path = str(tmp_path / "long.wav")
    write_wav(path, np.clip(x, -32768, 32767).astype(np.int16)[None])
    split = archive.scan_file(CidTool(), path, split=True)
    whole = archive.scan_file(CidTool(), path, split=False)
    assert len(whole.rows) == len(seams)
    assert split.rows == whole.rows and split.warnings == whole.warnings == []


def test_short_or_wide_files_are_not_split():
    assert len(archive.plan_lanes(1, 15 * RATE, 1, DtmfTool())) == 1
    assert len(archive.plan_lanes(32, 3600 * RATE, 1, DtmfTool())) == 32
    assert len(archive.plan_lanes(1, 3600 * RATE, 1, DtmfTool())) == 32
    assert len(archive.plan_lanes(2, 3600 * RATE, 1, DtmfTool())) == 32
    assert len(archive.plan_lanes(1, 3600 * RATE, 1, DtmfTool(), split=False)) == 1


# ---------------------------------------------------------------- caller ID from noise

def _noise_events(require_seizure: bool, seconds_per_chan: int, nchan: int = 64) -> list:
    """Speech-like (tilted) noise and white noise at several levels through the detector."""
    rng = np.random.default_rng(3)
    det = CallerIdDetector(nchan, require_seizure=require_seizure)
    level = np.repeat([3000.0, 1000.0, 300.0, 8000.0], nchan // 4)[:, None]
    events = []
    for _ in range(0, seconds_per_chan * RATE, 1600):
        x = rng.normal(0, 1.0, (nchan, 1601)) * level
        x[: nchan // 2, 1:] += 0.8 * x[: nchan // 2, :-1]
        events += det.rx(np.clip(x[:, 1:], -32768, 32767).astype(np.int16))
    return events


def test_two_hours_of_noise_give_no_caller_id(monkeypatch):
    """2 h of noise (64 channels x 113 s): messages framed out of noise are there, and all refused."""
    refused = []
    check = CallerIdDetector._preamble_ok

    def counting(self, *args):
        ok = check(self, *args)
        refused.extend([] if ok else [args])
        return ok
    monkeypatch.setattr(CallerIdDetector, "_preamble_ok", counting)
    assert _noise_events(require_seizure=True, seconds_per_chan=113) == []
    assert refused  # without the check, a "garbled caller ID" warning


def test_the_preamble_check_keeps_real_caller_id():
    from dsp.callerid import CallerId
    sigs = [callerid_audio("1391234567", "Zhang San", (11, 23, 9, 5), standard=s) for s in ("bell202", "v23")]
    sigs.append(callerid_audio("1391234567", when=(1, 2, 3, 4), format="sdmf"))
    sigs.append(fsk_encode(CallerId(number="123"), seizure_bits=0))  # GR-30 type 2: no seizure
    n = max(len(s) for s in sigs) + 12000
    x = np.zeros((len(sigs), n))
    for k, s in enumerate(sigs):
        x[k, 2000:2000 + len(s)] = s
    x = np.clip(x + np.random.default_rng(4).normal(0, 40, x.shape), -32768, 32767).astype(np.int16)
    for require, want in ((True, [0, 1, 2]), (False, [0, 1, 2, 3])):
        det = CallerIdDetector(len(sigs), require_seizure=require)
        ev = [e for i in range(0, n, 160) for e in det.rx(x[:, i:i + 160])]
        assert sorted(e.chan for e in ev if e.callerid is not None) == want


def test_cid_no_seizure_option(tmp_path, capsys):
    from dsp.callerid import CallerId
    path = str(tmp_path / "cw.wav")
    write_wav(path, np.concatenate([np.zeros(800, np.int16), fsk_encode(CallerId(number="123"), seizure_bits=0),
                                    np.zeros(800, np.int16)]))
    assert cid_main([path]) == 1
    assert cid_main([path, "--no-seizure", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["number"] == "123"


def test_short_files_share_a_batch_with_the_results_of_solo_runs(tmp_path):
    """Calls of other lengths, rates and channel counts side by side: each file's rows as if alone."""
    from scipy.signal import resample_poly
    paths = []
    for k in range(5):
        x = np.concatenate([np.zeros(1000 + 3000 * k, np.int16), dtmf_signal("0123456789"[k:k + 4]),
                            callerid_audio(f"555000{k}"), np.zeros(1200, np.int16)])
        if k == 1:  # stereo: the digits on channel 1
            x = np.stack([np.zeros_like(x), x])
        rate = (8000, 16000, 44100, 8000, 8000)[k]
        if rate != 8000:
            x = np.clip(resample_poly(x.astype(np.float64), rate // 100, 80, axis=-1), -32768, 32767
                        ).astype(np.int16)
        paths.append(str(tmp_path / f"c{k}.wav"))
        write_wav(paths[-1], x, rate=rate)
    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEfmt junk")
    paths.insert(2, str(tmp_path / "junk.wav"))
    paths.append(str(tmp_path / "gone.wav"))
    assert archive.tasks(DtmfTool(), paths) == [paths[:-1], paths[-1:]]  # a missing file goes alone
    for tool in (DtmfTool(), CidTool()):
        together = archive.scan_group(tool, paths)
        alone = [archive.scan_file(tool, p) for p in paths]
        assert [r.path for r in together] == paths
        assert [(r.rows, r.error, r.samples) for r in together] == [(r.rows, r.error, r.samples) for r in alone]
        assert sum(len(r.rows) for r in together) == (20 if tool.name == "dtmf" else 5)
        assert together[2].error.startswith("cannot read audio") and together[-1].error == "no such file"


def _tone(plan, name, seconds):
    """int16[n]: `name` of the plan from the start of its cadence, for `seconds`."""
    gen = ToneGenerator(1, plan)
    gen.play(0, name)
    x = np.zeros((1, int(seconds * RATE)), np.int16)
    gen.tx(x)
    return x[0].astype(np.float64)


def test_tones_across_every_seam_are_reported_once_with_unsegmented_times(tmp_path):
    """cn tones straddling each seam (continuous, short and long cadences, starting in a
    segment's warm-up, ending just after a seam, ending just before one, starting on one),
    with silence and unknown (--all): the segmented run reports what the unsegmented one does."""
    from dsp.tones_cli import TonesTool
    plan = TonePlan.load("cn")
    tool = TonesTool(plan=plan, include_other=True)
    cases = [("busy", -3.0, 7.0), ("ringback", -20.0, 36.0), ("dial", -1.0, 31.0),
             ("congestion", -0.3, 6.0), ("record_warning", -30.0, 55.0), ("busy", -8.0, 8.2),
             ("dial", -10.0, 9.5), ("special_information", 0.1, 5.0), ("unknown", -2.0, 4.0)]
    n = int((len(cases) + 1.5) * 4.2 * (tool.warmup_s + tool.tail_s) * RATE)  # a segment per case
    plan_l = archive.plan_lanes(1, n, 1, tool)
    seams = [p.own_start for p in plan_l[1:]]
    assert len(seams) >= len(cases) and all(p.start % archive.GRID == 0 for p in plan_l)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 3, n)  # a quiet line: silence between the tones
    for k, s in enumerate(seams):
        name, off, dur = cases[k % len(cases)]
        a = s + int(off * RATE)
        sig = rng.normal(0, 2000, int(dur * RATE)) if name == "unknown" else _tone(plan, name, dur)
        x[a:a + len(sig)] += sig
    path = str(tmp_path / "long.wav")
    write_wav(path, np.clip(x, -32768, 32767).astype(np.int16)[None])
    split = archive.scan_file(tool, path, split=True)
    whole = archive.scan_file(tool, path, split=False)
    tones = [r["tone"] for r in whole.rows if r["tone"] not in ("silence", "unknown")]
    assert tones == [c[0] for c in cases if c[0] != "unknown"][:len(tones)]
    assert len(tones) == sum(c[0] != "unknown" for c in (cases * 2)[:len(seams)])
    assert split.rows == whole.rows


def test_dtmf_json_rows_are_json_dumps():
    """The dtmf tool formats its JSON rows itself (faster): the same text as json.dumps."""
    rng = np.random.default_rng(4)
    tool = DtmfTool()
    for k in range(2000):
        start = round(float(rng.uniform(0, 10 ** int(rng.integers(0, 6)))), 3) if k else 0.0
        row = {"channel": int(rng.integers(0, 1024)), "digit": "0123456789*#ABCD"[k % 16],
               "start": start, "end": round(start + float(rng.uniform(0.04, 3)), 3)}
        assert tool.json_row(row) == json.dumps(row, ensure_ascii=False)
        assert json.loads(tool.json_row(row)) == row
