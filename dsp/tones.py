"""Call-progress tones: plans as data, a batched generator, a batched detector.

Why this module exists: hwsim must play dial/busy/ringback on simulated
lines, the voice server must give FXS phones dial tone, and — the hard
part — the voice server must hear busy tone on Chinese lines that give no
disconnect supervision, and tell ringback from busy from congestion from a
voice on outbound calls. In China all of these are 450 Hz; only the
cadence tells them apart, so the detector measures cadence, not just
frequency.

Layout (spandsp manner): a ``TonePlan`` is the shared descriptor (read from
``toneplans.toml`` or a site file); ``ToneGenerator`` and
``CallProgressDetector`` hold per-channel state for a whole board and take
``int16[nchan, n]`` blocks. Per-sample work is in ``dsp._tones`` (nogil
Cython, channels in the inner loop); the Python here is O(events) per call.

Detector pipeline:
1. Goertzel DFT at every frequency of the plan plus total energy, over
   non-overlapping frames (20 ms default) — kernel ``goertzel_frames``.
2. Each frame gets a class: a tone *signature* (the set of frequencies of
   one or more plan tones; e.g. cn's busy, ringback, dial share {450}),
   SILENCE (below ``min_level_dbm0``) or OTHER (energy that is not a
   plan tone: speech, music, noise) — vectorised numpy. A signature needs
   most of the frame's energy at its frequencies, and each frequency
   within ``freq_tol`` (measured from the phase advance between frames).
3. Runs of classes with a debounce of 2 frames — kernel ``segment_frames``
   — become on/off intervals of the current signature, each run with its
   mean energy. An "off" must be ``off_drop_db`` quieter than the "on"s:
   a tone alternates with line noise, a melody or a voice alternates
   sounds of similar level.
4. Per channel, the intervals are matched against every plan tone of that
   signature (any rotation of its cadence, relative tolerance ``rel_tol``
   plus ``abs_tol_s``). A tone is named once it is the only plan tone
   still consistent with what was heard and at least two intervals match
   (e.g. one full "on" and the start of the "off"), or once ``confirm``
   intervals match. A continuous tone (dial) is named when it has lasted
   longer than any cadenced tone's "on" of the same signature (and at
   least ``continuous_s``).

Event semantics (``ToneEvent(chan, tone, start, end)``, sample positions
per channel since the detector was made, resolution one frame):
- At detection: ``end is None``; ``start`` is where the first matching
  "on" of the tone began (so it is earlier than the detection point).
- When the tone stops (the cadence breaks, an "off" lasts too long, or
  another tone starts): a second event with the same chan/tone/start and
  ``end`` = where the last matching "on" ended.
- ``tone == "silence"``: the line was quiet (below ``min_level_dbm0``)
  for ``silence_s``; not reported inside a detected tone's "off" time.
- ``tone == "unknown"``: energy that is not a plan tone (speech, music,
  foreign tones) for ``unknown_s``; ends when the line goes quiet or a
  tone signature starts. Use dsp.level.VoiceActivityDetector for voice.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from dsp import tomlconfig, units
from dsp.checks import check_audio
from dsp.tomlconfig import ConfigError, Node

RATE = 8000
MAX_FREQS = 4
MAX_WINDOW_FRAMES = 8  # longest analysis window for close frequencies (160 ms at 20 ms frames)
SILENCE = -1
OTHER = -2
_CLASS_BASE = 2  # class k is stored at index k + 2 of per-class arrays

__all__ = ["Tone", "TonePlan", "ToneEvent", "ToneGenerator", "CallProgressDetector",
           "ConfigError", "builtin_zones", "RATE"]


# --------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Tone:
    """One call-progress tone of a plan.

    cadence: seconds alternating on/off starting with on, repeating; an
    empty tuple is a continuous tone. level_dbm0 is per frequency.
    """
    name: str
    freqs: tuple[float, ...]
    cadence: tuple[float, ...]
    level_dbm0: float
    detect: bool = True

    @property
    def continuous(self) -> bool:
        return not self.cadence

    @property
    def period(self) -> float:
        return float(sum(self.cadence))


@dataclass(frozen=True)
class TonePlan:
    """A zone's tones (the shared descriptor of generator and detector)."""
    zone: str
    name: str
    tones: dict[str, Tone] = field(default_factory=dict)
    source: str = ""

    def __getitem__(self, name: str) -> Tone:
        try:
            return self.tones[name]
        except KeyError:
            raise KeyError(f"zone {self.zone!r} has no tone {name!r} "
                           f"(has: {', '.join(self.tones)})") from None

    @property
    def frequencies(self) -> list[float]:
        """Every distinct frequency of the plan's tones, sorted."""
        return sorted({f for t in self.tones.values() for f in t.freqs})

    @classmethod
    def load(cls, zone: str, path: str | os.PathLike[str] | None = None) -> TonePlan:
        """The plan of `zone` from the built-in toneplans.toml, or from a site file.

        A site file has the built-in file's shape; a zone there may say
        `base = "cn"` to inherit a built-in zone and override some tones.
        Errors are ConfigError naming file, line, zone and key.
        """
        if path is None:
            cfg = tomlconfig.loads(_builtin_text(), file=_builtin_path())
        else:
            cfg = tomlconfig.load(path)
        return _plan_from_config(cfg, zone, builtin=path is None)

    @classmethod
    def from_toml(cls, text: str, zone: str, file: str = "<string>") -> TonePlan:
        """Like load(), from TOML text (for tests and embedded configs)."""
        return _plan_from_config(tomlconfig.loads(text, file=file), zone, builtin=False)


def _builtin_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "toneplans.toml")


def _builtin_text() -> str:
    """The built-in plan file, read beside this module (importlib.resources costs `voiceboard
    tones` a few ms of imports at every start)."""
    with open(_builtin_path(), encoding="utf-8") as f:
        return f.read()


def builtin_zones() -> list[str]:
    """The zones of the built-in plan file (without aliases)."""
    return list(tomlconfig.loads(_builtin_text(), file=_builtin_path()).data)


_ZONE_KEYS = {"name", "aliases", "level_dbm0", "tones", "base"}
_TONE_KEYS = {"freqs", "cadence", "level_dbm0", "detect"}


def _find_zone(cfg: tomlconfig.Config, zone: str) -> Node | None:
    if zone in cfg.data:
        return cfg.table(zone)
    for key in cfg.data:
        node = cfg.table(key)
        aliases = node.get_list("aliases", [], item=str)
        if zone in aliases:
            return node
    return None


def _plan_from_config(cfg: tomlconfig.Config, zone: str, builtin: bool) -> TonePlan:
    node = _find_zone(cfg, zone)
    if node is None:
        zones = ", ".join(cfg.data) or "none"
        raise ConfigError(cfg.file, None, zone, f"no such tone zone (zones here: {zones})")
    node.check_keys(_ZONE_KEYS)
    base_name = node.get_str("base", "")
    tones: dict[str, Tone] = {}
    level = None
    name = node.get_str("name", node.key)
    if base_name:
        if builtin:
            raise node.error("base", "built-in zones cannot have a base")
        try:
            base = TonePlan.load(base_name)
        except ConfigError:
            raise node.error("base", f"no built-in zone {base_name!r} "
                                     f"(built-in: {', '.join(builtin_zones())})") from None
        tones.update(base.tones)
        level = next(iter(base.tones.values())).level_dbm0 if base.tones else None
    level = node.get_float("level_dbm0", level if level is not None else -10.0, min=-60.0, max=3.0)
    tnode = node.table("tones", required=not base_name)
    for tname in tnode.keys():
        t = tnode.table(tname, required=True)
        t.check_keys(_TONE_KEYS)
        freqs = t.get_list("freqs", item=float)
        if not 1 <= len(freqs) <= MAX_FREQS:
            raise t.error("freqs", f"expected 1 to {MAX_FREQS} frequencies, got {len(freqs)}")
        for i, f in enumerate(freqs):
            if not 20.0 <= f < RATE / 2:
                raise t.error(("freqs", i), f"frequency {f} Hz outside 20..{RATE // 2} Hz")
        cadence = t.get_list("cadence", item=float)
        if len(cadence) % 2:
            raise t.error("cadence", "expected on/off pairs (an even count), "
                                     f"got {len(cadence)} values")
        for i, d in enumerate(cadence):
            if not 0.02 <= d <= 60.0:
                raise t.error(("cadence", i), f"duration {d} s outside 0.02..60 s")
        tones[tname] = Tone(
            name=tname, freqs=tuple(float(f) for f in freqs),
            cadence=tuple(float(d) for d in cadence),
            level_dbm0=t.get_float("level_dbm0", level, min=-60.0, max=3.0),
            detect=t.get_bool("detect", True))
    if not tones:
        raise node.error("tones", "a zone needs at least one tone")
    return TonePlan(zone=node.key, name=name, tones=tones, source=cfg.file)


class ToneEvent(NamedTuple):
    """A tone heard on a channel; see the module docstring for start/end."""
    chan: int
    tone: str
    start: int
    end: int | None


# --------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------

class ToneGenerator:
    """Plays each channel's cadenced tone into tx blocks, phase-continuous.

    play() restarts a tone at the beginning of its cadence; tx() adds (with
    saturation) into `out`, so it mixes with whatever else is in the block.
    """

    def __init__(self, nchan: int, plan: TonePlan) -> None:
        if nchan < 1:
            raise ValueError(f"nchan must be >= 1, got {nchan}")
        self.nchan = nchan
        self.plan = plan
        self._names = list(plan.tones)
        self._index = {n: i for i, n in enumerate(self._names)}
        off: list[int] = []
        cnt: list[int] = []
        lens: list[int] = []
        for n in self._names:
            t = plan.tones[n]
            off.append(len(lens))
            if t.continuous:
                lens.append(0)
                cnt.append(1)
            else:
                lens.extend(max(1, round(d * RATE)) for d in t.cadence)
                cnt.append(len(t.cadence))
        self._seg_off = np.array(off, np.int32)
        self._seg_cnt = np.array(cnt, np.int32)
        self._seg_len = np.array(lens, np.int32)
        self._tone = np.full(nchan, -1, np.int32)
        self._seg = np.zeros(nchan, np.int32)
        self._remain = np.zeros(nchan, np.int32)
        self._phase = np.zeros((MAX_FREQS, nchan), np.float64)
        self._inc = np.zeros((MAX_FREQS, nchan), np.float64)
        self._amp = np.zeros((MAX_FREQS, nchan), np.float32)

    def _chan(self, chan: int) -> int:
        if not 0 <= chan < self.nchan:
            raise ValueError(f"channel {chan} out of range 0..{self.nchan - 1}")
        return chan

    def play(self, chan: int, tone: str, level_dbm0: float | None = None) -> None:
        """Start `tone` of the plan on `chan` (replacing what it played)."""
        c = self._chan(chan)
        if tone not in self._index:
            raise KeyError(f"zone {self.plan.zone!r} has no tone {tone!r} "
                           f"(has: {', '.join(self._names)})")
        t = self.plan.tones[tone]
        ti = self._index[tone]
        peak = units.dbm0_to_peak(t.level_dbm0 if level_dbm0 is None else level_dbm0)
        self._inc[:, c] = 0.0
        self._amp[:, c] = 0.0
        self._phase[:, c] = 0.0
        for k, f in enumerate(t.freqs):
            self._inc[k, c] = f / RATE
            self._amp[k, c] = peak
        self._tone[c] = ti
        self._seg[c] = 0
        self._remain[c] = self._seg_len[self._seg_off[ti]]

    def stop(self, chan: int) -> None:
        self._tone[self._chan(chan)] = -1

    def playing(self, chan: int) -> str | None:
        """Name of the tone `chan` is playing, None if silent."""
        t = int(self._tone[self._chan(chan)])
        return None if t < 0 else self._names[t]

    def tx(self, out: np.ndarray) -> None:
        """Add every playing channel's tone into out (int16[nchan, n], in place)."""
        check_audio(out, "ToneGenerator.tx", shape=(self.nchan, None), out=True)
        if out.shape[1] == 0 or not (self._tone >= 0).any():
            return
        from dsp import _tones
        buf = out if out.flags.c_contiguous else np.ascontiguousarray(out)
        _tones.tone_tx(buf, self._tone, self._seg, self._remain, self._phase, self._inc,
                       self._amp, self._seg_off, self._seg_cnt, self._seg_len)
        if buf is not out:
            out[...] = buf


# --------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------

class _LongWindow:
    """A signature measured over the last `k` frames, combined coherently from the frames' DFTs.

    Frame j's Goertzel value at f is X_j = sum_i x[jN + i] e^{-iw(i - (N-1))}; the DFT of
    frames j-k+1..j, with the same phase convention, is Z_j = sum_m X_{j-k+1+m} e^{iwN(k-1-m)}.
    A frame belongs to the signature when over that window each frequency holds at least
    `twist_ratio` of the energy, all of them `tone_ratio`, and each is within its frequency
    tolerance (phase advance of Z from the previous window, which must hold it too).
    """

    def __init__(self, k: int, freqs: list[float], frame_len: int, nchan: int) -> None:
        self.k, self.frame_len = k, frame_len
        w = 2.0 * np.pi * np.array(freqs) / RATE
        self._twiddle = np.exp(1j * np.outer(frame_len * (k - 1 - np.arange(k)), w))  # [k, nf]
        self._rot = np.exp(-1j * w * frame_len)
        self._x = np.zeros((k - 1, len(freqs), nchan), np.complex128)   # the last k-1 frames
        self._e = np.zeros((k - 1, nchan))
        self._z = np.zeros((len(freqs), nchan), np.complex128)          # the last window
        self._r = np.zeros((len(freqs), nchan))
        self._off = np.zeros((len(freqs), nchan))                        # its phase advance (Hz)

    def matches(self, X: np.ndarray, energy: np.ndarray, tone_ratio: float, twist_ratio: float,
                ftol: np.ndarray) -> np.ndarray:
        """bool[nframes, nchan] from this block's frames X[nframes, nf, nchan] and energies."""
        nfr, k = X.shape[0], self.k
        xa = np.concatenate([self._x, X])
        ea = np.concatenate([self._e, energy])
        z = sum(xa[m:m + nfr] * self._twiddle[m][None, :, None] for m in range(k))
        e = sum(ea[m:m + nfr] for m in range(k))
        self._x, self._e = xa[nfr:], ea[nfr:]
        ratio = (z.real ** 2 + z.imag ** 2) * (2.0 / (k * self.frame_len)) / np.maximum(e, 1e-9)[:, None, :]
        zprev = np.concatenate([self._z[None], z[:-1]])
        rprev = np.concatenate([self._r[None], ratio[:-1]])
        self._z, self._r = z[-1].copy(), ratio[-1].copy()
        offset = np.angle(z * np.conj(zprev) * self._rot[None, :, None]) * (
            RATE / (2.0 * np.pi * self.frame_len))
        # A carrier's offset moves each tone off its bin centre, so each bin also holds a
        # little of the other tone, whose phase against it turns half a cycle a frame (25 Hz
        # beat, 20 ms): the advance alternates around the true offset. The mean of two is it.
        oprev = np.concatenate([self._off[None], offset[:-1]])
        self._off = offset[-1].copy()
        mean_offset = 0.5 * (offset + oprev)
        # unlike one frame, every frequency must be in the previous window too: a window
        # holding one frame of a tone's onset has one frame's resolution (450 Hz alone would
        # pass as 450 + 425 at the onset of each burst of a cadence)
        freq_ok = (np.abs(mean_offset) <= ftol[None, :, None]) & (rprev >= twist_ratio)
        return ((ratio.sum(axis=1) >= tone_ratio) & (ratio.min(axis=1) >= twist_ratio)
                & freq_ok.all(axis=1))


@dataclass
class _Train:
    """On/off history of one signature on one channel (frames)."""
    sig: int
    ons: list[tuple[int, int]] = field(default_factory=list)  # complete on-runs
    on_start: int | None = None                              # ongoing on-run
    partial_ok: bool = False       # first on began at stream start (may be cut)
    tone: int = -1                 # detected tone index, -1 if none yet
    rot: int = 0                   # cadence element matching the first interval
    start: int = 0                 # frame where the detected tone began
    on_e: float = 0.0              # energy sum / frame count of the train's on-runs
    on_n: int = 0
    off_e: float = 0.0             # the same for the current off interval
    off_n: int = 0


@dataclass
class _Chan:
    cls: int = SILENCE
    cls_start: int = 0
    train: _Train | None = None
    open_quiet: tuple[str, int] | None = None   # ("silence"|"unknown", start frame)


class CallProgressDetector:
    """Names the plan's call-progress tones heard on each channel.

    Parameters (all with defaults that meet the China plan's needs):
      frame_ms       analysis frame (Goertzel length); 20 ms = 50 Hz bins
      min_level_dbm0 quieter frames are silence (tones from -40 dBm0 detect)
      tone_ratio     share of frame energy that must sit at a signature's
                     frequencies (pure tone ~1.0, speech rarely > 0.5)
      twist_ratio    each frequency of a multi-frequency signature must
                     carry at least this share of the frame energy
      rel_tol, abs_tol_s   cadence tolerance: expected*(1±rel_tol) ± abs_tol_s
      confirm        intervals that name a tone even when another plan
                     tone is still consistent
      settle_s       an unfinished interval counts as matched after this
                     long (or its minimum, if shorter)
      min_evidence_s no tone is named from less than this much of it
      continuous_s   minimum duration before a continuous tone is named
      silence_s, unknown_s   durations before "silence" / "unknown" events
      freq_tol       relative frequency tolerance (at least 5 Hz) of each tone
                     frequency: plans allow about ±1.5 %; music in A440
                     tuning sits 2.2 % from China's 450 Hz
      off_drop_db    an "off" must be this much quieter than the "on"s (mean
                     energy): tones alternate with line noise, music and
                     speech alternate sounds of similar level
    """

    def __init__(self, nchan: int, plan: TonePlan, *, frame_ms: float = 20.0,
                 min_level_dbm0: float = -45.0, tone_ratio: float = 0.7,
                 twist_ratio: float = 0.12, rel_tol: float = 0.2, abs_tol_s: float = 0.05,
                 confirm: int = 8, settle_s: float = 0.5, min_evidence_s: float = 0.6,
                 continuous_s: float = 1.0,
                 silence_s: float = 5.0, unknown_s: float = 0.5, debounce_frames: int = 2,
                 off_drop_db: float = 6.0, freq_tol: float = 0.018) -> None:
        if nchan < 1:
            raise ValueError(f"nchan must be >= 1, got {nchan}")
        self.nchan = nchan
        self.plan = plan
        self.frame_len = int(round(frame_ms * RATE / 1000.0))
        if not 40 <= self.frame_len <= 800:
            raise ValueError(f"frame_ms {frame_ms} outside 5..100 ms")
        if not 0.0 < tone_ratio <= 1.0 or not 0.0 < twist_ratio <= 0.5:
            raise ValueError("tone_ratio must be in (0, 1] and twist_ratio in (0, 0.5]")
        if confirm < 2:
            raise ValueError(f"confirm must be >= 2, got {confirm}")
        self.rel_tol, self.abs_tol_s = rel_tol, abs_tol_s
        self.confirm, self.settle_s = confirm, settle_s
        self.tone_ratio, self.twist_ratio = tone_ratio, twist_ratio
        self.min_level_dbm0 = min_level_dbm0
        self._off_ratio = 10.0 ** (-off_drop_db / 10.0)
        fs = self.frame_len / RATE  # seconds per frame
        self._fs = fs
        self._min_evidence = min_evidence_s / fs
        bin_hz = RATE / self.frame_len

        self._tones = [t for t in plan.tones.values() if t.detect]
        if not self._tones:
            raise ValueError(f"zone {plan.zone!r} has no detectable tone")
        freqs = sorted({f for t in self._tones for f in t.freqs})
        self.freqs = freqs
        sigs: list[tuple[float, ...]] = []
        long_frames: list[int] = []   # per signature: frames of its analysis window (1: one frame)
        for t in self._tones:
            s = tuple(sorted(t.freqs))
            if s in sigs:
                continue
            sigs.append(s)
            sep = min((b - a for a, b in zip(s, s[1:], strict=False)), default=bin_hz)
            k = 1 if sep >= 0.75 * bin_hz else math.ceil(bin_hz / sep)
            if k > MAX_WINDOW_FRAMES:
                a, b = next((a, b) for a, b in zip(s, s[1:], strict=False) if b - a == sep)
                raise ValueError(
                    f"zone {plan.zone!r} tone {t.name!r}: {a:g} and {b:g} Hz are closer than "
                    f"{MAX_WINDOW_FRAMES} frames of {frame_ms:g} ms resolve "
                    f"({bin_hz / MAX_WINDOW_FRAMES:.2f} Hz); mark it detect = false")
            long_frames.append(k)
        self._sigs = sigs
        self._sig_idx = [[freqs.index(f) for f in s] for s in sigs]
        # Signatures whose frequencies one frame cannot tell apart (cn stutter dial: 450 +
        # 425 Hz, 25 Hz apart, in one 50 Hz bin) are measured over the last k frames combined
        # coherently: k = 2 (40 ms, 25 Hz bins) puts 425 and 450 Hz one bin apart, each on
        # the other's null, while a carrier's ±1.5 % offset costs each under 1 dB.
        self._long: dict[int, _LongWindow] = {
            s: _LongWindow(k, [freqs[i] for i in self._sig_idx[s]], self.frame_len, nchan)
            for s, k in enumerate(long_frames) if k > 1}
        self._tone_sig = [sigs.index(tuple(sorted(t.freqs))) for t in self._tones]
        self._coef = np.array([2.0 * math.cos(2.0 * math.pi * f / RATE) for f in freqs], np.float32)
        self._sinw = np.array([math.sin(2.0 * math.pi * f / RATE) for f in freqs], np.float32)
        # a tone exactly at f advances f*N/RATE cycles per frame: undo that
        self._rot = np.exp(-2j * np.pi * np.array(freqs) * self.frame_len / RATE)
        self._ftol = np.array([max(freq_tol * f, 5.0) for f in freqs])
        self._prev_x = np.zeros((len(freqs), nchan), np.complex128)
        self._prev_r = np.zeros((len(freqs), nchan))

        # Duration limits per tone (frames): interval expected e matches m
        # when lo(e) <= m <= hi(e).
        self._cad = [[d / fs for d in t.cadence] for t in self._tones]
        # A continuous tone is named when its on-run is longer than any
        # cadenced "on" of the same signature could be.
        cont = []
        for i in range(len(self._tones)):
            longest = max((self._hi(d) for j, u in enumerate(self._tones)
                           if self._tone_sig[j] == self._tone_sig[i] and not u.continuous
                           for d in self._cad[j][0::2]), default=0.0)
            cont.append(max(continuous_s / fs, longest + 1.0))
        self._cont = cont
        sig_cont = [0] * len(sigs)
        for i, t in enumerate(self._tones):
            if t.continuous:
                sig = self._tone_sig[i]
                sig_cont[sig] = (int(math.ceil(cont[i])) if not sig_cont[sig]
                                 else min(sig_cont[sig], int(math.ceil(cont[i]))))
        milestone = np.zeros(len(sigs) + _CLASS_BASE, np.int32)
        milestone[SILENCE + _CLASS_BASE] = max(1, int(round(silence_s / fs)))
        milestone[OTHER + _CLASS_BASE] = max(1, int(round(unknown_s / fs)))
        for sig, m in enumerate(sig_cont):
            milestone[sig + _CLASS_BASE] = m
        self._milestone = milestone
        self._debounce = int(debounce_frames)
        self._silence_frames = int(milestone[SILENCE + _CLASS_BASE])

        nf = len(freqs)
        self._s1 = np.zeros((nf, nchan), np.float32)
        self._s2 = np.zeros((nf, nchan), np.float32)
        self._energy = np.zeros(nchan, np.float32)
        self._pos = 0
        self._frames = 0          # frames completed so far
        self._cur = np.full(nchan, SILENCE, np.int32)
        self._cur_start = np.zeros(nchan, np.int64)
        self._cand = np.zeros(nchan, np.int32)
        self._cand_start = np.zeros(nchan, np.int64)
        self._cand_len = np.zeros(nchan, np.int32)
        self._mdone = np.zeros(nchan, np.uint8)
        self._run_e = np.zeros(nchan, np.float64)
        self._run_n = np.zeros(nchan, np.int32)
        self._cand_e = np.zeros(nchan, np.float64)
        self._chans = [_Chan() for _ in range(nchan)]
        self._active: set[int] = set()
        self._min_e = (units.dbm0_to_rms(min_level_dbm0) ** 2) * self.frame_len

    # -- tolerances ----------------------------------------------------------
    def _lo(self, e: float) -> float:
        return e * (1.0 - self.rel_tol) - self.abs_tol_s / self._fs

    def _hi(self, e: float) -> float:
        return e * (1.0 + self.rel_tol) + self.abs_tol_s / self._fs

    # -- stage 2: frame classes (vectorised) ---------------------------------
    def classify(self, frames: np.ndarray) -> np.ndarray:
        """Frame classes int32[nframes, nchan] from goertzel_frames output.

        frames is [nframes, 2 nfreq + 1, nchan] (re, im per frequency, then
        energy). A frame is signature s when the share of its energy at s's
        frequencies is >= tone_ratio, each of them holds >= twist_ratio, and
        each is within freq_tol of nominal — measured from the phase advance
        since the previous frame (exact to ~1 Hz, where the 50 Hz bins alone
        could not tell 440 Hz music from a 450 Hz tone). A frequency that was
        not present in the previous frame is not checked (first frame of a run).
        Updates the previous-frame state, so call it once per frame, in order.
        """
        nf = len(self.freqs)
        energy = frames[:, 2 * nf, :].astype(np.float64)
        X = frames[:, 0:2 * nf:2, :].astype(np.float64) + 1j * frames[:, 1:2 * nf:2, :]
        power = (X.real ** 2 + X.imag ** 2) * (2.0 / self.frame_len)
        ratio = power / np.maximum(energy, 1e-9)[:, None, :]
        Xprev = np.concatenate([self._prev_x[None], X[:-1]])
        rprev = np.concatenate([self._prev_r[None], ratio[:-1]])
        self._prev_x, self._prev_r = X[-1].copy(), ratio[-1].copy()
        d = X * np.conj(Xprev) * self._rot[None, :, None]
        offset = np.angle(d) * (RATE / (2.0 * np.pi * self.frame_len))   # Hz
        freq_ok = (np.abs(offset) <= self._ftol[None, :, None]) | (rprev < self.twist_ratio)
        best = np.full(energy.shape, -1.0)
        cls = np.full(energy.shape, OTHER, np.int32)
        for s, idx in enumerate(self._sig_idx):
            if s in self._long:
                continue
            r = ratio[:, idx, :]
            score = r.sum(axis=1)
            ok = (score >= self.tone_ratio) & (score > best) & freq_ok[:, idx, :].all(axis=1)
            if len(idx) > 1:
                ok &= r.min(axis=1) >= self.twist_ratio
            cls[ok] = s
            best[ok] = score[ok]
        for s, lw in self._long.items():
            idx = self._sig_idx[s]
            cls[lw.matches(X[:, idx, :], energy, self.tone_ratio, self.twist_ratio,
                           self._ftol[idx])] = s
        cls[energy < self._min_e] = SILENCE
        return cls

    # -- the block call ------------------------------------------------------
    def rx(self, block: np.ndarray) -> list[ToneEvent]:
        """Feed int16[nchan, n]; returns tone events (usually none)."""
        block = check_audio(block, "CallProgressDetector.rx", shape=(self.nchan, None))
        n = block.shape[1]
        if n == 0:
            return []
        from dsp import _tones
        xt = np.ascontiguousarray(block.T, dtype=np.float32)
        maxfr = (self._pos + n) // self.frame_len
        nf = len(self.freqs)
        out = np.empty((max(maxfr, 1), 2 * nf + 1, self.nchan), np.float32)
        nfr, self._pos = _tones.goertzel_frames(xt, self._coef, self._sinw, self._s1, self._s2,
                                                self._energy, self._pos, self.frame_len, out)
        events: list[ToneEvent] = []
        if nfr:
            cls = np.ascontiguousarray(self.classify(out[:nfr]))
            energy = np.ascontiguousarray(out[:nfr, 2 * nf, :])
            ev = np.empty((2 * nfr * self.nchan, 4), np.int64)
            ev_e = np.empty((2 * nfr * self.nchan, 2), np.float64)
            nev = _tones.segment_frames(cls, energy, self._frames, self._cur, self._cur_start,
                                        self._cand, self._cand_start, self._cand_len, self._mdone,
                                        self._run_e, self._run_n, self._cand_e,
                                        self._debounce, self._milestone, _CLASS_BASE, ev, ev_e)
            self._frames += nfr
            for (c, k, start, kind), (esum, en) in zip(ev[:nev].tolist(), ev_e[:nev].tolist(), strict=False):
                self._on_segment(c, k, start, kind, esum, int(en), events)
        now = self._frames
        for c in sorted(self._active):
            self._evaluate(c, now, events)
        return events

    @property
    def position(self) -> int:
        """Samples consumed per channel since the detector was made (frame-aligned part)."""
        return self._frames * self.frame_len + self._pos

    # -- stage 3/4: per-channel logic, O(events) -------------------------------
    def _emit(self, events: list[ToneEvent], c: int, name: str, start: int, end: int | None) -> None:
        fl = self.frame_len
        events.append(ToneEvent(c, name, start * fl, None if end is None else end * fl))

    def _on_segment(self, c: int, k: int, start: int, kind: int, esum: float, en: int,
                    events: list[ToneEvent]) -> None:
        ch = self._chans[c]
        if kind == 1:  # milestone of the current run
            if k == OTHER:
                self._open_quiet(c, "unknown", start, events)
            elif k == SILENCE:
                # inside a detected tone's "off" the quiet is part of the tone
                if ch.train is None or ch.train.tone < 0:
                    self._open_quiet(c, "silence", start, events)
            else:
                self._evaluate(c, self._frames, events)
            return
        # class change at frame `start`: the previous run ended there
        if k in self._long:
            # over a tone's onset the k-frame window resolves the frequencies once it holds
            # k - 1 frames of the tone, and the frequency check (phase advance from the
            # previous window) passes one frame later: the run began k - 1 frames earlier
            start = max(start - (self._long[k].k - 1), ch.cls_start)
        prev = ch.cls
        ch.cls, ch.cls_start = k, start
        if ch.open_quiet is not None:
            name, qs = ch.open_quiet
            self._emit(events, c, name, qs, start)
            ch.open_quiet = None
        tr = ch.train
        if tr is not None and prev == tr.sig and tr.on_start is not None:
            tr.on_e += esum
            tr.on_n += en
            tr.ons.append((tr.on_start, start))
            tr.on_start = None
            tr.off_e, tr.off_n = 0.0, 0
            self._evaluate(c, start, events)
            tr = ch.train
        elif tr is not None and tr.ons and tr.on_start is None:
            tr.off_e += esum      # one more run inside the current "off"
            tr.off_n += en
        if k >= 0:
            if tr is not None and tr.sig == k:
                if not self._clean(tr, tr.off_e, tr.off_n):
                    # the "off" was not quiet (speech, music, another note):
                    # not a cadence. Start over from this "on".
                    self._end_tone(c, events)
                    ch.train = _Train(sig=k, on_start=start)
                    self._active.add(c)
                else:
                    tr.on_start = start
                self._evaluate(c, start, events)
            else:
                if tr is not None:
                    self._end_tone(c, events)
                ch.train = _Train(sig=k, on_start=start, partial_ok=(start == 0))
                self._active.add(c)
                self._evaluate(c, start, events)

    def _clean(self, tr: _Train, off_e: float, off_n: int) -> bool:
        """An "off" is clean when it is `off_drop_db` quieter than the train's "on"s.

        A tone's cadence alternates tone and line noise; speech and music
        alternate one sound with another of similar level."""
        if off_n == 0 or tr.on_n == 0:
            return True
        return off_e / off_n <= (tr.on_e / tr.on_n) * self._off_ratio

    def _open_quiet(self, c: int, name: str, start: int, events: list[ToneEvent]) -> None:
        ch = self._chans[c]
        if ch.open_quiet is None:
            ch.open_quiet = (name, start)
            self._emit(events, c, name, start, None)

    def _end_tone(self, c: int, events: list[ToneEvent]) -> None:
        """Report the end of a detected tone (if any) and drop the train."""
        ch = self._chans[c]
        tr = ch.train
        if tr is not None and tr.tone >= 0:
            end = tr.ons[-1][1] if tr.ons else self._frames
            self._emit(events, c, self._tones[tr.tone].name, tr.start, end)
        ch.train = None
        self._active.discard(c)

    def _intervals(self, tr: _Train, now: int) -> tuple[list[float], float, bool]:
        """Complete intervals (on, off, on, ...) from the train, plus the ongoing one."""
        iv: list[float] = []
        ongoing: float
        for i, (a, b) in enumerate(tr.ons):
            if i:
                iv.append(a - tr.ons[i - 1][1])
            iv.append(b - a)
        if tr.on_start is not None:
            if tr.ons:
                iv.append(tr.on_start - tr.ons[-1][1])
            ongoing = now - tr.on_start
            ongoing_on = True
        else:
            ongoing = now - tr.ons[-1][1] if tr.ons else 0.0
            ongoing_on = False
        return iv, float(ongoing), ongoing_on

    def _match(self, ti: int, iv: list[float], ongoing: float, ongoing_on: bool,
               partial_first: bool, ongoing_counts: bool = True) -> tuple[int, int, float] | None:
        """Best (evidence, rotation, error) of tone ti over these intervals, None if inconsistent."""
        cad = self._cad[ti]
        if not cad:  # continuous: only an unbroken on-run
            if iv or not ongoing_on:
                return None
            return (1 if ongoing >= self._cont[ti] else 0), 0, 0.0
        best = None
        L = len(cad)
        for r in range(0, L, 2):
            err, ev = 0.0, 0
            ok = True
            for j, m in enumerate(iv):
                e = cad[(r + j) % L]
                if self._lo(e) <= m <= self._hi(e):
                    ev += 1
                    err += abs(math.log(max(m, 0.5) / e))
                elif j == 0 and partial_first and m < e:
                    continue
                else:
                    ok = False
                    break
            if not ok:
                continue
            e = cad[(r + len(iv)) % L]
            if ongoing > self._hi(e):
                continue
            if ongoing_counts and ongoing >= min(self._lo(e), self.settle_s / self._fs):
                ev += 1
            cand = (ev, r, err / max(ev, 1))
            if best is None or (cand[0], -cand[2]) > (best[0], -best[2]):
                best = cand
        return best

    def _evaluate(self, c: int, now: int, events: list[ToneEvent]) -> None:
        ch = self._chans[c]
        tr = ch.train
        if tr is None:
            self._active.discard(c)
            return
        if tr.tone >= 0:
            self._check_detected(c, tr, now, events)
            return
        while True:
            iv, ongoing, ongoing_on = self._intervals(tr, now)
            counts = True
            if not ongoing_on and tr.ons:
                # an unfinished "off" is evidence only while it is quiet
                extra_e, extra_n = 0.0, 0
                if ch.cls != tr.sig:
                    extra_e = float(self._run_e[c] + self._cand_e[c])
                    extra_n = int(self._run_n[c] + self._cand_len[c])
                counts = self._clean(tr, tr.off_e + extra_e, tr.off_n + extra_n)
            cands = []
            for ti in range(len(self._tones)):
                if self._tone_sig[ti] != tr.sig:
                    continue
                m = self._match(ti, iv, ongoing, ongoing_on, tr.partial_ok, counts)
                if m is not None:
                    cands.append((ti, m))
            if cands or not tr.ons:
                break
            # nothing fits: forget the oldest on/off pair and try again
            tr.ons.pop(0)
            tr.partial_ok = False
        if not cands:
            if not tr.ons and tr.on_start is None:
                ch.train = None
                self._active.discard(c)
                self._maybe_silence(c, events)
            return
        pick = None
        first_start = tr.ons[0][0] if tr.ons else (tr.on_start if tr.on_start is not None else now)
        if now - first_start < self._min_evidence:
            return
        if len(cands) == 1 and cands[0][1][0] >= 2:
            pick = cands[0]
        elif len(cands) == 1 and self._tones[cands[0][0]].continuous and cands[0][1][0] >= 1:
            pick = cands[0]
        else:
            ready = [x for x in cands if x[1][0] >= self.confirm]
            if ready:
                pick = min(ready, key=lambda x: x[1][2])
        if pick is None:
            return
        ti, (ev, rot, _) = pick
        tr.tone, tr.rot = ti, rot
        if tr.ons:
            first_on = tr.ons[0]
            tr.start = first_on[0]
        else:
            tr.start = tr.on_start if tr.on_start is not None else now
        self._emit(events, c, self._tones[ti].name, tr.start, None)

    def _check_detected(self, c: int, tr: _Train, now: int, events: list[ToneEvent]) -> None:
        """Keep a detected tone while its cadence holds; end it when it breaks."""
        ti = tr.tone
        iv, ongoing, ongoing_on = self._intervals(tr, now)
        cad = self._cad[ti]
        if not cad:
            broken = bool(tr.ons)  # the continuous on-run ended
            if broken:
                self._end_tone(c, events)
                self._maybe_silence(c, events)
            return
        L = len(cad)
        bad = None
        for j, m in enumerate(iv):
            if j == 0 and tr.partial_ok and m < cad[tr.rot % L]:
                continue
            e = cad[(tr.rot + j) % L]
            if not self._lo(e) <= m <= self._hi(e):
                bad = j
                break
        if bad is None:
            e = cad[(tr.rot + len(iv)) % L]
            if ongoing <= self._hi(e):
                # keep the history short: drop whole periods already verified
                while len(tr.ons) > L:
                    tr.ons = tr.ons[L // 2:]
                    tr.partial_ok = False
                return
            # the ongoing interval overran: the tone stopped
            keep_on = tr.on_start if ongoing_on else None
            self._end_tone(c, events)
            if keep_on is not None:
                self._restart(c, tr.sig, keep_on, now, events)
            else:
                self._maybe_silence(c, events)
            return
        # complete interval j broke the cadence. Even j = an "on", odd = an "off".
        k = bad // 2 if bad % 2 == 0 else bad // 2 + 1   # index in ons of the on after/at the break
        last_good = bad // 2 - 1 if bad % 2 == 0 else bad // 2
        if bad % 2 == 0 and iv[bad] < cad[(tr.rot + bad) % L] and k == len(tr.ons) - 1:
            # the last "on" was cut short: the tone stopped during it. It is
            # the tone's tail, not the start of another tone.
            last_good, k = k, k + 1
        restart_on = tr.ons[k][0] if k < len(tr.ons) else tr.on_start
        ons_after = tr.ons[k:]
        on_start = tr.on_start
        tr.ons = tr.ons[:last_good + 1]
        self._end_tone(c, events)
        if restart_on is not None:
            ch = self._chans[c]
            ch.train = _Train(sig=tr.sig, ons=list(ons_after), on_start=on_start)
            self._active.add(c)
            self._evaluate(c, now, events)

    def _restart(self, c: int, sig: int, on_start: int, now: int, events: list[ToneEvent]) -> None:
        ch = self._chans[c]
        ch.train = _Train(sig=sig, on_start=on_start)
        self._active.add(c)
        self._evaluate(c, now, events)

    def _maybe_silence(self, c: int, events: list[ToneEvent]) -> None:
        """After a tone ends: report silence if the line has been quiet long enough."""
        ch = self._chans[c]
        if ch.cls == SILENCE and self._frames - ch.cls_start >= self._silence_frames:
            self._open_quiet(c, "silence", ch.cls_start, events)
