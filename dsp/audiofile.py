"""Read recordings for the DSP tools: any format soundfile reads, any rate.

Everything in dsp runs at 8 kHz on int16[nchan, n]; a file's channels become
lines (channel 0 = first channel of the file). 16-bit PCM WAV, what archives
mostly hold, is read by PcmWav without loading libsndfile; soundfile reads
everything else.
"""
from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

import numpy as np

RATE = 8000


class AudioFileError(Exception):
    """A recording that cannot be read; the message names the file."""


def read_audio(path: str) -> np.ndarray:
    """int16[nchan, n] at 8000 Hz."""
    import soundfile as sf
    try:
        data, rate = sf.read(path, dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise AudioFileError(f"{path}: cannot read audio: {exc}") from None
    x = data.T  # [nchan, n]
    if rate != RATE:
        from fractions import Fraction

        from scipy.signal import resample_poly
        ratio = Fraction(RATE, int(rate)).limit_denominator(1000)
        x = resample_poly(x, ratio.numerator, ratio.denominator, axis=1)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path: str, x: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> None:
    """Write int16[nchan, n] (or int16[n]) as WAV; subtype 'ALAW' for A-law."""
    import soundfile as sf
    x = np.asarray(x)
    data = x.T if x.ndim == 2 else x
    sf.write(path, data, rate, subtype=subtype, format="WAV")


# ---------------------------------------------------------------- streaming

def resample_taps(up: int, down: int, half_len: int = 10, beta: float = 5.0) -> np.ndarray:
    """The anti-alias FIR of scipy.signal.resample_poly (Kaiser beta 5), times `up`.

    Computed with numpy so that reading a file at another rate does not
    import scipy.signal (0.8 s of start-up).
    """
    m = max(up, down)
    n = 2 * half_len * m + 1
    cutoff = 1.0 / m
    t = np.arange(n) - (n - 1) / 2.0
    h = cutoff * np.sinc(cutoff * t) * np.kaiser(n, beta)
    return h * (up / h.sum())


class Resampler:
    """Polyphase rational resampler over blocks; the filter state carries across blocks.

    Output sample m is aligned as resample_poly aligns it (m * rate_out /
    rate_in in input time), so a file read in blocks gives resample_poly's
    result up to float32 rounding. process() takes float32[nchan, n] and
    returns what can be computed; flush() returns the rest, up to
    ceil(n_in * up / down) samples in all.
    """

    CHUNK = 1 << 19  # gathered taps per matmul (2 MB of float32): bounds memory

    def __init__(self, nchan: int, rate_in: int, rate_out: int = RATE) -> None:
        from fractions import Fraction  # only for other rates: fractions imports decimal
        ratio = Fraction(rate_out, rate_in).limit_denominator(1000)
        self.up, self.down = ratio.numerator, ratio.denominator
        h = resample_taps(self.up, self.down)
        self.delay = (len(h) - 1) // 2
        self.ntaps = -(-len(h) // self.up)  # input samples per output
        padded = np.zeros(self.ntaps * self.up, np.float64)
        padded[:len(h)] = h
        # phase p: taps for x[i_hi - k], k = 0..ntaps-1, reversed to match an ascending window
        self._phases = padded.reshape(self.ntaps, self.up).T[:, ::-1].astype(np.float32)
        self._buf = np.zeros((nchan, self.ntaps - 1), np.float32)  # x[base:]
        self._base = -(self.ntaps - 1)
        self._n_in = 0
        self._m = 0  # next output index

    def _i_hi(self, m: int) -> int:
        return (m * self.down + self.delay) // self.up

    def _run(self, m_end: int) -> np.ndarray:
        nchan = self._buf.shape[0]
        m0 = self._m
        out = np.empty((nchan, max(0, m_end - m0)), np.float32)
        if m_end > m0:
            from numpy.lib.stride_tricks import sliding_window_view
            win = sliding_window_view(self._buf, self.ntaps, axis=1)
            step = max(1, self.CHUNK // (nchan * self.ntaps))
            for r in range(min(self.up, m_end - m0)):
                m = m0 + r
                i_hi = self._i_hi(m)
                taps = self._phases[(m * self.down + self.delay) - i_hi * self.up]
                s0 = i_hi - self.ntaps + 1 - self._base
                cnt = len(range(m, m_end, self.up))
                dst = out[:, r::self.up]
                for c in range(0, cnt, step):
                    k = min(step, cnt - c)
                    sel = win[:, s0 + c * self.down: s0 + (c + k - 1) * self.down + 1: self.down]
                    dst[:, c:c + k] = np.ascontiguousarray(sel) @ taps
        self._m = m_end
        keep = self.ntaps - 1
        drop = self._buf.shape[1] - keep
        if drop > 0:
            self._buf = self._buf[:, drop:].copy()
            self._base += drop
        return out

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed float32[nchan, n]; returns the output samples now computable."""
        self._buf = np.concatenate([self._buf, x.astype(np.float32, copy=False)], axis=1)
        self._n_in += x.shape[1]
        m_end = max(self._m, (self._n_in * self.up - 1 - self.delay) // self.down + 1)
        return self._run(m_end)

    def flush(self) -> np.ndarray:
        """The outputs that need input past the end (zeros there)."""
        total = -(-self._n_in * self.up // self.down)
        if total <= self._m:
            return np.zeros((self._buf.shape[0], 0), np.float32)
        need = self._i_hi(total - 1) + 1 - (self._base + self._buf.shape[1])
        if need > 0:
            self._buf = np.concatenate([self._buf, np.zeros((self._buf.shape[0], need), np.float32)],
                                       axis=1)
        return self._run(total)


class Lane(NamedTuple):
    """One stream of a batch: a file channel from `start` to `stop` (8 kHz samples)."""
    channel: int
    start: int
    stop: int


class PcmWav:
    """A little-endian 16-bit PCM WAV file read straight into int16 buffers, without libsndfile.

    The common archive file: opening it and reading it through soundfile costs
    ~15 ms of imports at every start and ~100 us of Python per file and per
    read. open() returns None for anything else (A-law, 24-bit, float, RIFX,
    RF64, a damaged header): soundfile reads those. A data chunk that claims
    more than the file holds is read as far as the file goes, as libsndfile does.
    """

    _PCM_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_PCM after its tag

    def __init__(self, f: Any, channels: int, rate: int, offset: int, frames: int) -> None:
        self._f, self.channels, self.samplerate = f, channels, rate
        self._offset, self.frames = offset, frames

    @classmethod
    def open(cls, path: str) -> PcmWav | None:
        import struct
        try:
            f = open(path, "rb")
        except OSError:
            return None  # soundfile says why
        try:
            size = os.fstat(f.fileno()).st_size
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise ValueError
            fmt = None
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                cid, clen = struct.unpack("<4sI", f.read(8))
                if cid == b"fmt ":
                    fmt = f.read(min(clen, 40))
                elif cid == b"data":
                    if fmt is None or len(fmt) < 16:
                        raise ValueError
                    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
                    if tag == 0xFFFE and (len(fmt) < 40 or fmt[26:40] != cls._PCM_GUID_TAIL
                                          or fmt[24:26] != b"\x01\x00"):
                        raise ValueError
                    if tag not in (1, 0xFFFE) or bits != 16 or channels < 1 or rate < 1 \
                            or align != 2 * channels:
                        raise ValueError
                    frames = min(clen, size - pos - 8) // align
                    return cls(f, channels, rate, pos + 8, frames)
                pos += 8 + clen + (clen & 1)
            raise ValueError
        except (ValueError, struct.error, OSError):
            f.close()
            return None

    def read_into(self, frame: int, out: np.ndarray) -> None:
        """out[count, channels] (or out[count], mono) from `frame`; zeros past the end."""
        count = out.shape[0]
        have = max(0, min(count, self.frames - frame))
        if have:
            self._f.seek(self._offset + 2 * self.channels * frame)
            got = self._f.readinto(out[:have].data.cast("B"))
            if got != 2 * self.channels * have:
                raise OSError(f"short read: {got} bytes of {2 * self.channels * have}")
            if sys.byteorder != "little":
                out[:have].byteswap(inplace=True)
        if have < count:
            out[have:] = 0

    def close(self) -> None:
        self._f.close()


# libsndfile subtypes read straight to int16 (everything else: float32, clipped)
_INT16_SUBTYPES = {"PCM_16", "PCM_S8", "PCM_U8", "ALAW", "ULAW", "GSM610", "IMA_ADPCM", "MS_ADPCM",
                   "G721_32", "G723_24", "G723_40", "VOX_ADPCM"}


class AudioStream:
    """A recording read in blocks as int16 at 8 kHz, never whole.

    `channels`, `rate` (the file's), `frames` (the file's, at its rate) and
    `samples` (at 8 kHz) come from the header. blocks(lanes, n) yields
    int16[len(lanes), n] blocks (the last may be shorter) of several lanes
    side by side: a lane is a file channel from a start sample, so a long
    channel can be read as several segments at once. Memory is O(lanes x n).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._wav = PcmWav.open(path)  # 16-bit PCM WAV: read without libsndfile
        if self._wav is not None:
            self._f: Any = self._wav
            self._int16 = True
        else:
            import soundfile as sf
            try:
                self._f = sf.SoundFile(path)
            except (RuntimeError, sf.LibsndfileError, OSError, TypeError) as exc:
                raise AudioFileError(f"{path}: cannot read audio: {exc}") from None
            self._int16 = self._f.subtype in _INT16_SUBTYPES
        self.channels = self._f.channels
        self.rate = self._f.samplerate
        self.frames = self._f.frames
        if self.rate == RATE:
            self.up = self.down = 1
        else:
            from fractions import Fraction  # only for other rates: fractions imports decimal
            ratio = Fraction(RATE, self.rate).limit_denominator(1000)
            self.up, self.down = ratio.numerator, ratio.denominator
        self.samples = -(-self.frames * self.up // self.down)
        self._at = 0  # the file's read position (frames)

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, frame: int, count: int) -> np.ndarray:
        """float32 or int16 [channels, count] from `frame` (zeros past the end)."""
        out = np.empty((max(count, 0), self.channels), np.int16 if self._int16 else np.float32)
        self.read_into(frame, out)
        return out.T

    def blocks(self, lanes: list[Lane], n: int):
        """int16[len(lanes), n] blocks at 8 kHz, lanes side by side, until the longest lane ends.

        Lane starts must be multiples of `up` (so that they fall on a
        source frame); a lane is zero after its stop.
        """
        for ln in lanes:
            if ln.start % self.up:
                raise ValueError(f"lane start {ln.start} is not a multiple of {self.up}")
        if self.up == self.down == 1:
            yield from self._blocks_at_rate(lanes, n)
            return
        yield from self._blocks_resampled(lanes, n)

    def read_into(self, frame: int, out: np.ndarray) -> None:
        """Fill out[count, channels] (or out[count] of a mono file) from `frame`, zeros past the end.

        Into a buffer the caller reuses: no allocation (and no page faults) per read.
        """
        count = out.shape[0]
        if frame >= self.frames or count == 0:
            out[...] = 0
            return
        try:
            if self._wav is not None:
                self._wav.read_into(frame, out)
                return
            if frame != self._at:
                self._f.seek(frame)
            self._f.read(out=out, fill_value=0)
        except (RuntimeError, OSError) as exc:
            raise AudioFileError(f"{self.path}: cannot read audio at frame {frame}: {exc}") from None
        self._at = min(frame + count, self.frames)

    def _blocks_at_rate(self, lanes: list[Lane], n: int):
        """blocks() of an 8 kHz file: read in large chunks into one reused buffer, one copy per block."""
        nl = len(lanes)
        length = max(ln.stop - ln.start for ln in lanes)
        dtype = np.int16 if self._int16 else np.float32
        # ~4M values (8 MB of int16) per read, a whole number of blocks: few reads (a
        # read costs ~40 us of Python), bounded memory
        per_read = max(1, (1 << 22) // (n * max(nl, self.channels))) * n
        every_channel = (len({ln.start for ln in lanes}) == 1
                         and [ln.channel for ln in lanes] == list(range(self.channels)))
        if every_channel:
            raw = np.empty((per_read, self.channels), dtype)
        else:
            raw = np.empty((per_read, self.channels) if self.channels > 1 else per_read, dtype)
            lane_buf = np.empty((nl, per_read), dtype)
            groups: dict[int, list[int]] = {}
            for k, ln in enumerate(lanes):
                groups.setdefault(ln.start, []).append(k)
        span = np.array([ln.stop - ln.start for ln in lanes])
        for done in range(0, length, per_read):
            count = min(per_read, length - done)
            if every_channel:
                self.read_into(lanes[0].start + done, raw[:count])
                chunk = raw[:count].T
            else:
                for start, ks in groups.items():
                    if self.channels == 1 and len(ks) == 1:
                        self.read_into(start + done, lane_buf[ks[0], :count])
                        continue
                    self.read_into(start + done, raw[:count])
                    for k in ks:
                        lane_buf[k, :count] = raw[:count] if self.channels == 1 else raw[:count, lanes[k].channel]
                chunk = lane_buf[:, :count]
            for i in range(0, count, n):
                k = min(n, count - i)
                part = chunk[:, i:i + k]
                out = (np.array(part, np.int16, order="C") if self._int16
                       else np.ascontiguousarray(_to_int16(part)))
                at = done + i
                short = np.flatnonzero(span - at < k)
                for j in short:  # zero past each lane's stop
                    out[j, max(int(span[j]) - at, 0):] = 0
                yield out

    def _blocks_resampled(self, lanes: list[Lane], n: int):
        nl = len(lanes)
        length = max(ln.stop - ln.start for ln in lanes)
        src_start = [ln.start * self.down // self.up for ln in lanes]
        groups: dict[int, list[int]] = {}
        for k, s in enumerate(src_start):
            groups.setdefault(s, []).append(k)
        # source frames per read: ~2M values per read (few large reads, bounded memory)
        per_read = max(self.down, n * self.down // self.up, (1 << 21) // (nl + self.channels))
        rs = None if self.up == self.down == 1 else Resampler(nl, self.rate)
        src_needed = -(-length * self.down // self.up)
        every_channel = len(groups) == 1 and [ln.channel for ln in lanes] == list(range(self.channels))
        span = np.array([ln.stop - ln.start for ln in lanes])
        pending = np.zeros((nl, 0), np.int16)
        pos = 0       # next sample of pending to yield
        done = 0      # 8 kHz samples yielded
        consumed = 0  # source frames read per lane
        finished = False
        while done < length:
            if pending.shape[1] - pos < n and not finished:
                count = min(per_read, src_needed - consumed)
                if every_channel:
                    src = self._read(next(iter(groups)) + consumed, count)
                else:
                    parts = [np.empty(0)] * nl
                    for s, ks in groups.items():
                        raw = self._read(s + consumed, count)
                        for k in ks:
                            parts[k] = raw[lanes[k].channel]
                    src = np.stack(parts)
                consumed += count
                finished = consumed >= src_needed
                if rs is None:
                    got = _to_int16(src)
                else:
                    y = rs.process(src.astype(np.float32) / np.float32(32768.0)
                                   if src.dtype == np.int16 else src)
                    if finished:
                        y = np.concatenate([y, rs.flush()], axis=1)
                    got = _to_int16(y)
                got = np.ascontiguousarray(got)  # the file's frames come interleaved: transpose once
                pending = got if pos >= pending.shape[1] else np.concatenate([pending[:, pos:], got],
                                                                             axis=1)
                pos = 0
            k = min(n, length - done, pending.shape[1] - pos)
            if k <= 0:
                break
            out = pending[:, pos:pos + k]
            pos += k
            short = np.flatnonzero(span - done < k)
            if len(short):  # zero past each lane's stop
                out = out.copy()
                for i in short:
                    out[i, max(int(span[i]) - done, 0):] = 0
            done += k
            yield np.ascontiguousarray(out)


def _to_int16(x: np.ndarray) -> np.ndarray:
    """int16 from int16 (as is) or float32 full scale 1.0 (rounded, clipped)."""
    if x.dtype == np.int16:
        return x
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
