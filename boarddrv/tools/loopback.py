"""`voiceboard loopback URI CHANNEL`: send a tone through the card's loopback and measure it.

The quickest proof that a channel's audio path works end to end (host ->
card -> host, through the card's codec): turn on the card's loopback on the
channel, send a sine (1004 Hz at -10 dBm0 by default, the usual test tone),
measure what comes back, and turn the loopback off again whatever happens.

Reported: level (dBm0) and frequency of what came back, their difference
from what was sent, signal to noise-and-distortion, and the loop delay in
ticks. Exit 1 if nothing comes back or the result is outside the tolerances.

Levels are computed here with numpy, not with dsp.units: boarddrv sits
below dsp and must not import it (the constant is the same; a test checks).
"""
from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._output import fail, print_json, print_kv

RATE = 8000
FULL_SCALE_SINE_DBM0 = 3.14                     # G.711 A-law digital milliwatt convention
DBM0_REF_RMS = (32767.0 / math.sqrt(2.0)) * 10.0 ** (-FULL_SCALE_SINE_DBM0 / 20.0)
SILENCE_DBM0 = -55.0                            # below this, nothing came back


def dbm0(x: np.ndarray) -> float:
    """RMS level of a block in dBm0; silence is -inf."""
    rms = float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64))))) if len(x) else 0.0
    return 20.0 * math.log10(rms / DBM0_REF_RMS) if rms > 0 else float("-inf")


def sine(freq: float, level: float, n: int, start: int = 0) -> np.ndarray:
    """n samples of a sine at `level` dBm0, phase-continuous from sample `start`."""
    amp = DBM0_REF_RMS * 10.0 ** (level / 20.0) * math.sqrt(2.0)
    if amp > 32767:
        raise ValueError(f"level {level} dBm0 clips (maximum {FULL_SCALE_SINE_DBM0} dBm0)")
    t = np.arange(start, start + n, dtype=np.float64)
    out: np.ndarray = np.round(amp * np.sin(2.0 * math.pi * freq * t / RATE)).astype(np.int16)
    return out


def _blackman_harris(n: int) -> np.ndarray:
    """4-term Blackman-Harris: sidelobes below -92 dB, so SINAD is not window-limited."""
    k = 2.0 * math.pi * np.arange(n) / (n - 1)
    return 0.35875 - 0.48829 * np.cos(k) + 0.14128 * np.cos(2 * k) - 0.01168 * np.cos(3 * k)


def frequency(x: np.ndarray) -> tuple[float, float]:
    """(frequency in Hz, signal to noise+distortion in dB) of the strongest tone.

    Blackman-Harris-windowed FFT, zero-padded 4x, with a parabola through
    the log magnitudes around the peak: better than 0.05 Hz on a clean
    second of tone. SINAD compares the power in the window's main lobe
    (+-4 bins) with everything else."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    if n < 64:
        raise ValueError(f"need at least 64 samples to measure a frequency, got {n}")
    pad = 4
    spec = np.abs(np.fft.rfft(x * _blackman_harris(n), pad * n))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = (math.log(max(v, 1e-12)) for v in spec[k - 1:k + 2])
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
    freq = (k + shift) * RATE / (pad * n)
    power = spec ** 2
    lobe = pad * 5                                   # main lobe +-4 bins, one bin margin
    sig = power[max(0, k - lobe):k + lobe + 1].sum()
    rest = power.sum() - sig
    sinad = 10 * math.log10(sig / rest) if rest > 0 else float("inf")
    return freq, sinad


@dataclass
class LoopbackResult:
    uri: str
    channel: int
    sent_freq_hz: float
    sent_level_dbm0: float
    level_dbm0: float
    freq_hz: float | None
    level_diff_db: float
    freq_diff_hz: float | None
    sinad_db: float | None
    delay_ticks: int | None
    block: int
    seconds: float
    loopback_was_on: bool
    ok: bool
    problem: str | None


def measure(rx: np.ndarray, freq: float, level: float, delay_ticks: int | None,
            tol_db: float, tol_hz: float) -> dict[str, Any]:
    """Figures for the received signal `rx` (the part after the loop delay)."""
    got = dbm0(rx)
    out: dict[str, Any] = {"level_dbm0": got, "level_diff_db": got - level, "freq_hz": None,
                           "freq_diff_hz": None, "sinad_db": None, "delay_ticks": delay_ticks}
    if delay_ticks is None or got < SILENCE_DBM0:
        out["problem"] = (f"nothing came back: received level {got:.1f} dBm0 "
                          f"(below {SILENCE_DBM0:g}); the loopback does not return audio")
        return out
    f, sinad = frequency(rx)
    out.update(freq_hz=f, freq_diff_hz=f - freq, sinad_db=sinad)
    problems = []
    if abs(got - level) > tol_db:
        problems.append(f"level off by {got - level:+.2f} dB (tolerance +-{tol_db:g})")
    if abs(f - freq) > tol_hz:
        problems.append(f"frequency off by {f - freq:+.2f} Hz (tolerance +-{tol_hz:g})")
    out["problem"] = "; ".join(problems) or None
    return out


def run(board: Any, chan: int, freq: float, level: float, seconds: float,
        block: int) -> tuple[np.ndarray, int | None, bool]:
    """Send the tone with the card looping `chan` back; return (rx after the delay, delay, looped).

    The loopback is switched off in `finally`: a tool that leaves a
    customer's channel looped back is worse than one that fails."""
    board.start(block=block)
    board.loopback(chan, True)
    try:
        looped = bool(board.channel_status(chan).get("loopback"))
        nticks = int(math.ceil(seconds * RATE / block))
        settle = max(2, int(math.ceil(0.04 * RATE / block)))   # skip the onset transient
        received: list[np.ndarray] = []
        sent = 0
        first_tx_tick: int | None = None
        delay: int | None = None
        budget = nticks + settle + 50                           # the loop may take a few ticks
        for _ in range(budget):
            tick = board.wait_tick(timeout=2.0)
            rx = np.array(board.rx[chan], dtype=np.int16)
            if first_tx_tick is not None and delay is None and dbm0(rx) > SILENCE_DBM0:
                delay = int(tick) - first_tx_tick
            if delay is not None:
                received.append(rx)
            tx = board.tx
            tx[:] = 0
            tx[chan] = sine(freq, level, block, sent)
            sent += block
            if first_tx_tick is None:
                first_tx_tick = int(tick)
            board.commit()
            if len(received) >= nticks + settle:
                break
    finally:
        board.loopback(chan, False)
    data = np.concatenate(received[settle:]) if len(received) > settle else np.zeros(0, np.int16)
    return data, delay, looped


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="voiceboard loopback", description=__doc__.split("\n")[0])
    ap.add_argument("uri", metavar="URI")
    ap.add_argument("channel", metavar="CHANNEL", type=int, help="board channel index (as scan shows)")
    ap.add_argument("--freq", type=float, default=1004.0, help="tone frequency in Hz (default 1004)")
    ap.add_argument("--level", type=float, default=-10.0, help="tone level in dBm0 (default -10)")
    ap.add_argument("--seconds", type=float, default=1.0, help="how long to send (default 1)")
    ap.add_argument("--block", type=int, default=160, choices=(80, 160, 320))
    ap.add_argument("--tolerance-db", type=float, default=1.0, help="allowed level error (default 1 dB)")
    ap.add_argument("--tolerance-hz", type=float, default=2.0, help="allowed frequency error (default 2 Hz)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    prog = "voiceboard loopback"
    if not 50 <= args.freq <= 3950:
        return fail(prog, f"--freq {args.freq:g} Hz is outside the telephone band 50..3950 Hz", 2)
    if args.level > FULL_SCALE_SINE_DBM0:
        return fail(prog, f"--level {args.level:g} dBm0 clips (maximum {FULL_SCALE_SINE_DBM0} dBm0)", 2)
    if not 0.05 <= args.seconds <= 60:
        return fail(prog, f"--seconds must be between 0.05 and 60, got {args.seconds:g}", 2)

    from boarddrv import BoardError, open_board
    try:
        with open_board(args.uri) as board:
            nchan = len(board.channels)
            if not 0 <= args.channel < nchan:
                return fail(prog, f"channel {args.channel} out of range 0..{nchan - 1} on {args.uri}")
            rx, delay, looped = run(board, args.channel, args.freq, args.level, args.seconds, args.block)
    except BoardError as exc:
        return fail(prog, str(exc))
    m = measure(rx, args.freq, args.level, delay, args.tolerance_db, args.tolerance_hz)
    res = LoopbackResult(uri=args.uri, channel=args.channel, sent_freq_hz=args.freq,
                         sent_level_dbm0=args.level, block=args.block, seconds=len(rx) / RATE,
                         loopback_was_on=looped, ok=m["problem"] is None, **m)
    if args.json:
        print_json(_finite(asdict(res)))
    else:
        show(res)
    if res.problem:
        return fail(prog, f"channel {args.channel} on {args.uri}: {res.problem}")
    return 0


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    """JSON has no -inf: silence is reported as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def show(r: LoopbackResult) -> None:
    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)
    print_kv(f"loopback on channel {r.channel} of {r.uri}", [
        ("loopback on", "yes" if r.loopback_was_on else "NO (card did not report it)"),
        ("sent", f"{r.sent_freq_hz:g} Hz at {r.sent_level_dbm0:g} dBm0"),
        ("received level", f"{r.level_dbm0:.2f} dBm0 ({r.level_diff_db:+.2f} dB)"),
        ("received frequency", f"{f(r.freq_hz, '.2f')} Hz ({f(r.freq_diff_hz, '+.2f')} Hz)"),
        ("SINAD", f"{f(r.sinad_db, '.1f')} dB"),
        ("loop delay", f"{r.delay_ticks} ticks" if r.delay_ticks is not None else "-"),
        ("measured", f"{r.seconds:.2f} s in blocks of {r.block}"),
        ("result", "OK" if r.ok else "FAIL"),
    ])
