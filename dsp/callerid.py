"""Caller ID: messages (SDMF/MDMF), FSK and DTMF signalling, and a batched detector.

Why one module: the three layers (message bytes, line signal, detector) share
one data type, `CallerId`, and the hwsim FXO line, the media engine and the
`voiceboard cid` tool each need a different slice of it.

- Message layer (sans-I/O): `encode_message` / `decode_message` for the
  Telcordia GR-30 / ETSI EN 300 659-3 "call setup" messages: SDMF (type 0x04)
  and MDMF (type 0x80; parameters 0x01 date/time, 0x02 number, 0x04 number
  absence, 0x07 name, 0x08 name absence). Decoding never raises: a bad
  checksum or length comes back as `DecodeFailure(reason)`, because the
  detector calls it from the per-tick path.
- FSK line signal: `fsk_encode` / `callerid_audio` (Bell 202 or V.23, 1200
  baud, channel seizure + mark + async bytes). Both standards centre on
  1700 Hz, so one discriminator (`dsp._fsk`) receives either.
- DTMF caller ID (sent before the first ring, e.g. on Chinese lines):
  `dtmf_cid_encode` / `dtmf_cid_decode` over digit strings and the per-channel
  `DtmfCidParser` that consumes a DtmfDetector's event stream.
- `CallerIdDetector(nchan)`: rx(int16[nchan, n]) -> list[CallerIdEvent].
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dsp.checks import check_audio
from dsp.units import dbm0_to_peak, dbm0_to_rms

RATE = 8000
BAUD = 1200

SDMF_CALLERID = 0x04
MDMF_CALLERID = 0x80
# Other message types we recognise (so that a receiver can say what it saw)
# but do not decode: message waiting (SDMF/MDMF), ETSI advice of charge, SMS.
OTHER_MESSAGE_TYPES = {0x06: "SDMF message waiting", 0x82: "MDMF message waiting",
                       0x86: "advice of charge", 0x89: "SMS"}

P_DATETIME = 0x01
P_NUMBER = 0x02
P_NUMBER_ABSENCE = 0x04
P_NAME = 0x07
P_NAME_ABSENCE = 0x08

ABSENCE_REASONS = {"O": "unavailable / out of area", "P": "private / withheld"}

# Field length limits: GR-30 allows 10 number digits in SDMF; MDMF number
# up to 20 (ETSI), name up to 50 (ETSI; GR-30 uses 15). A message body is
# at most 255 bytes (one length byte).
SDMF_MAX_NUMBER = 10
MDMF_MAX_NUMBER = 20
MDMF_MAX_NAME = 50


class CidTime(NamedTuple):
    """Date and time as the exchange sends it: no year, no seconds."""
    month: int
    day: int
    hour: int
    minute: int

    def text(self) -> str:
        """The 8 ASCII digits MMDDHHMM of the wire format."""
        return f"{self.month:02d}{self.day:02d}{self.hour:02d}{self.minute:02d}"

    @classmethod
    def parse(cls, text: str) -> CidTime | str:
        """CidTime from MMDDHHMM, or a reason string when it is not valid."""
        if len(text) != 8 or not text.isdigit():
            return f"date/time {text!r} is not 8 digits MMDDHHMM"
        t = cls(int(text[0:2]), int(text[2:4]), int(text[4:6]), int(text[6:8]))
        if not (1 <= t.month <= 12 and 1 <= t.day <= 31 and t.hour <= 23 and t.minute <= 59):
            return f"date/time {text!r} out of range"
        return t


@dataclass(frozen=True)
class CallerId:
    """One caller ID presentation.

    `number_absence` / `name_absence` carry the reason a field is missing:
    'O' (unavailable, out of area) or 'P' (private, withheld). `format` says
    how it travelled: 'sdmf', 'mdmf' (FSK) or 'dtmf'.
    """
    number: str | None = None
    name: str | None = None
    when: CidTime | None = None
    number_absence: str | None = None
    name_absence: str | None = None
    format: str = "mdmf"

    def __post_init__(self) -> None:
        if self.format not in ("sdmf", "mdmf", "dtmf"):
            raise ValueError(f"caller ID format {self.format!r}: expected 'sdmf', 'mdmf' or 'dtmf'")
        for label, reason in (("number", self.number_absence), ("name", self.name_absence)):
            if reason is not None and reason not in ABSENCE_REASONS:
                raise ValueError(f"{label} absence reason {reason!r}: expected 'O' or 'P'")
        if self.number is not None and self.number_absence is not None:
            raise ValueError("caller ID has both a number and a number absence reason")
        if self.name is not None and self.name_absence is not None:
            raise ValueError("caller ID has both a name and a name absence reason")
        if self.when is not None and not isinstance(self.when, CidTime):
            object.__setattr__(self, "when", CidTime(*self.when))

    def as_dict(self) -> dict:
        """JSON-ready dict (the CLI's --json output)."""
        return {"format": self.format, "number": self.number, "name": self.name,
                "datetime": self.when.text() if self.when else None,
                "number_absence": self.number_absence, "name_absence": self.name_absence}


@dataclass(frozen=True)
class DecodeFailure:
    """A message that could not be decoded, and why (bad checksum, length...)."""
    reason: str
    data: bytes = b""

    def __bool__(self) -> bool:  # `if result:` reads as "decoded"
        return False


# ---------------------------------------------------------------- messages


def checksum(body: bytes) -> int:
    """Two's complement of the modulo-256 sum, so that the sum of all bytes is 0."""
    return (-sum(body)) & 0xFF


def _ascii(text: str, what: str, limit: int, digits: bool) -> bytes:
    if len(text) > limit:
        raise ValueError(f"{what} {text!r} is longer than {limit} characters")
    if digits and not all(c in "0123456789*#" for c in text):
        raise ValueError(f"{what} {text!r}: only digits (and * #) can be sent")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {text!r}: only 8-bit (latin-1) characters can be sent") from None


def encode_message(cid: CallerId, format: str | None = None) -> bytes:
    """Message bytes: type, length, body, checksum (what the FSK carries).

    SDMF has room for date/time (mandatory) and the number or its absence
    reason only; MDMF carries every field that is set.
    """
    fmt = format or (cid.format if cid.format != "dtmf" else "mdmf")
    if fmt == "sdmf":
        if cid.when is None:
            raise ValueError("SDMF needs the date and time (when=CidTime(...))")
        if cid.name is not None or cid.name_absence is not None:
            raise ValueError("SDMF cannot carry a name: use format='mdmf'")
        if cid.number is not None:
            num = _ascii(cid.number, "number", SDMF_MAX_NUMBER, digits=True)
        elif cid.number_absence is not None:
            num = cid.number_absence.encode()
        else:
            raise ValueError("SDMF needs a number or a number absence reason")
        body = cid.when.text().encode() + num
        head = bytes([SDMF_CALLERID, len(body)])
    elif fmt == "mdmf":
        params = bytearray()

        def put(ptype: int, value: bytes) -> None:
            params.extend((ptype, len(value)))
            params.extend(value)

        if cid.when is not None:
            put(P_DATETIME, cid.when.text().encode())
        if cid.number is not None:
            put(P_NUMBER, _ascii(cid.number, "number", MDMF_MAX_NUMBER, digits=True))
        if cid.number_absence is not None:
            put(P_NUMBER_ABSENCE, cid.number_absence.encode())
        if cid.name is not None:
            put(P_NAME, _ascii(cid.name, "name", MDMF_MAX_NAME, digits=False))
        if cid.name_absence is not None:
            put(P_NAME_ABSENCE, cid.name_absence.encode())
        if not params:
            raise ValueError("MDMF caller ID with no fields")
        body = bytes(params)
        head = bytes([MDMF_CALLERID, len(body)])
    else:
        raise ValueError(f"FSK message format {fmt!r}: expected 'sdmf' or 'mdmf'")
    msg = head + body
    return msg + bytes([checksum(msg)])


def _absence(value: bytes, what: str) -> str | DecodeFailure:
    text = value.decode("latin-1")
    if text not in ABSENCE_REASONS:
        return DecodeFailure(f"{what} absence reason {text!r} is not 'O' or 'P'", value)
    return text


def decode_message(data: bytes) -> CallerId | DecodeFailure:
    """CallerId from message bytes (type, length, body, checksum); never raises.

    Unknown MDMF parameters are skipped (ETSI: a receiver ignores what it
    does not know), so a call-type or dialled-number parameter does not lose
    the number and name.
    """
    data = bytes(data)
    if len(data) < 3:
        return DecodeFailure(f"message too short ({len(data)} bytes)", data)
    mtype, mlen = data[0], data[1]
    if len(data) < mlen + 3:
        return DecodeFailure(f"message truncated: length byte says {mlen}, "
                             f"got {len(data) - 3} body bytes", data)
    data = data[:mlen + 3]
    if sum(data) & 0xFF:
        return DecodeFailure(f"bad checksum 0x{data[-1]:02X} (expected 0x{checksum(data[:-1]):02X})", data)
    body = data[2:-1]
    if mtype == SDMF_CALLERID:
        if len(body) < 9:
            return DecodeFailure(f"SDMF body of {len(body)} bytes is shorter than date/time + number", data)
        when = CidTime.parse(body[:8].decode("latin-1"))
        if isinstance(when, str):
            return DecodeFailure(when, data)
        rest = body[8:].decode("latin-1")
        if rest in ABSENCE_REASONS:
            return CallerId(when=when, number_absence=rest, format="sdmf")
        return CallerId(number=rest, when=when, format="sdmf")
    if mtype != MDMF_CALLERID:
        what = OTHER_MESSAGE_TYPES.get(mtype, "unknown message type")
        return DecodeFailure(f"message type 0x{mtype:02X} ({what}) is not caller ID", data)
    fields: dict[str, object] = {}
    pos = 0
    while pos < len(body):
        if pos + 2 > len(body):
            return DecodeFailure(f"MDMF parameter header cut at byte {pos}", data)
        ptype, plen = body[pos], body[pos + 1]
        value = body[pos + 2:pos + 2 + plen]
        if len(value) != plen:
            return DecodeFailure(f"MDMF parameter 0x{ptype:02X} length {plen} overruns the message", data)
        pos += 2 + plen
        if ptype == P_DATETIME:
            when = CidTime.parse(value.decode("latin-1"))
            if isinstance(when, str):
                return DecodeFailure(when, data)
            fields["when"] = when
        elif ptype == P_NUMBER:
            fields["number"] = value.decode("latin-1")
        elif ptype == P_NAME:
            fields["name"] = value.decode("latin-1")
        elif ptype in (P_NUMBER_ABSENCE, P_NAME_ABSENCE):
            what = "number" if ptype == P_NUMBER_ABSENCE else "name"
            reason = _absence(value, what)
            if isinstance(reason, DecodeFailure):
                return reason
            fields[f"{what}_absence"] = reason
    try:
        return CallerId(format="mdmf", **fields)  # type: ignore[arg-type]
    except ValueError as exc:  # e.g. both a number and its absence reason
        return DecodeFailure(str(exc), data)


# ---------------------------------------------------------------- FSK


@dataclass(frozen=True)
class FskStandard:
    """Modem frequencies and the preamble a transmitter sends by default."""
    name: str
    mark_hz: float
    space_hz: float
    seizure_bits: int
    mark_bits: int


STANDARDS: dict[str, FskStandard] = {
    # GR-30: 300 bits seizure, 180 bits mark.
    "bell202": FskStandard("bell202", 1200.0, 2200.0, 300, 180),
    # ETSI EN 300 659-1: 300 bits seizure, 80 bits mark (+/-25).
    "v23": FskStandard("v23", 1300.0, 2100.0, 300, 80),
}
DEFAULT_LEVEL_DBM0 = -13.0


def _standard(name: str) -> FskStandard:
    try:
        return STANDARDS[name]
    except KeyError:
        raise ValueError(f"FSK standard {name!r}: expected one of {sorted(STANDARDS)}") from None


def async_bits(msg: bytes, stop_bits: int = 1) -> np.ndarray:
    """Start bit 0, 8 data bits LSB first, stop bit(s) 1, per byte."""
    out = []
    for b in msg:
        out.append(0)
        out.extend((b >> i) & 1 for i in range(8))
        out.extend([1] * stop_bits)
    return np.array(out, dtype=np.uint8)


def fsk_modulate(bits: np.ndarray, standard: str = "bell202", level_dbm0: float = DEFAULT_LEVEL_DBM0,
                 freq_offset_hz: float = 0.0) -> np.ndarray:
    """Phase-continuous FSK of a bit sequence at 1200 baud -> int16 at 8 kHz.

    Bit k covers samples [k*20/3, (k+1)*20/3): the bit clock stays exact over
    any length (no rounding of 6.67 samples per bit accumulates).
    `freq_offset_hz` shifts both tones (for testing receivers).
    """
    std = _standard(standard)
    bits = np.asarray(bits, dtype=np.uint8)
    nsamp = int(math.ceil(len(bits) * RATE / BAUD))
    idx = np.minimum((np.arange(nsamp) * BAUD) // RATE, len(bits) - 1)
    freq = np.where(bits[idx] == 1, std.mark_hz, std.space_hz) + freq_offset_hz
    phase = 2.0 * np.pi * np.cumsum(freq) / RATE
    wave = dbm0_to_peak(level_dbm0) * np.sin(phase)
    return np.clip(np.round(wave), -32768, 32767).astype(np.int16)


def fsk_encode_bytes(msg: bytes, standard: str = "bell202", level_dbm0: float = DEFAULT_LEVEL_DBM0,
                     seizure_bits: int | None = None, mark_bits: int | None = None,
                     postamble_bits: int = 10, freq_offset_hz: float = 0.0) -> np.ndarray:
    """Raw message bytes on the line: seizure (0101...), mark (1111...), bytes, mark tail."""
    std = _standard(standard)
    seizure = std.seizure_bits if seizure_bits is None else seizure_bits
    marks = std.mark_bits if mark_bits is None else mark_bits
    if seizure < 0 or marks < 0 or postamble_bits < 0:
        raise ValueError("seizure, mark and postamble bit counts must be >= 0")
    bits = np.concatenate([np.arange(seizure, dtype=np.uint8) & 1,  # starts with 0
                           np.ones(marks, dtype=np.uint8), async_bits(msg),
                           np.ones(postamble_bits, dtype=np.uint8)])
    return fsk_modulate(bits, standard, level_dbm0, freq_offset_hz)


def fsk_encode(cid: CallerId, standard: str = "bell202", level_dbm0: float = DEFAULT_LEVEL_DBM0,
               seizure_bits: int | None = None, mark_bits: int | None = None,
               freq_offset_hz: float = 0.0) -> np.ndarray:
    """A caller ID as FSK samples (int16 at 8 kHz) in cid.format (sdmf/mdmf)."""
    return fsk_encode_bytes(encode_message(cid), standard, level_dbm0, seizure_bits, mark_bits,
                            freq_offset_hz=freq_offset_hz)


def callerid_audio(number: str | None, name: str | None = None, when: Sequence[int] | None = None,
                   standard: str = "bell202", format: str = "mdmf",
                   level_dbm0: float = DEFAULT_LEVEL_DBM0) -> np.ndarray:
    """What a line plays between the first and second ring: int16[n] at 8 kHz.

    number None means withheld ('P'); name None leaves the name out (MDMF).
    `when` is (month, day, hour, minute); SDMF needs it, so SDMF without one
    uses 01-01 00:00 (hwsim has no wall clock in lockstep runs).
    `standard='dtmf'` gives DTMF caller ID (A<number>C) instead, which a
    line plays before the first ring.
    """
    w = CidTime(*when) if when is not None else None
    if format == "sdmf" and w is None:
        w = CidTime(1, 1, 0, 0)
    cid = CallerId(number=number, name=name, when=w, number_absence=None if number else "P",
                   format="dtmf" if standard == "dtmf" else format)
    if standard == "dtmf":
        return dtmf_cid_audio(cid)
    return fsk_encode(cid, standard, level_dbm0)


# ---------------------------------------------------------------- DTMF caller ID

# Information codes after 'B' (ETSI DTMF CLIP convention): 00 = number not
# available, 10 = presentation restricted.
DTMF_INFO_CODES = {"00": "O", "10": "P"}
DTMF_INFO_FOR = {"O": "00", "P": "10"}
# The 'D<code>#' variant: 1 restricted, 2 international (out of area), 3 unavailable.
DTMF_D_CODES = {"1": "P", "2": "O", "3": "O"}


def dtmf_cid_encode(cid: CallerId, start: str = "A", end: str = "C") -> str:
    """The digit string of a DTMF caller ID: A<number>C (or D<number>C, ...#).

    A missing number becomes B00C (unavailable) or B10C (private).
    """
    if start not in ("A", "D") or end not in ("C", "#"):
        raise ValueError(f"DTMF caller ID framing {start}...{end}: start A or D, end C or #")
    if cid.number is not None:
        _ascii(cid.number, "number", MDMF_MAX_NUMBER, digits=True)
        if not cid.number.isdigit():
            raise ValueError(f"number {cid.number!r}: DTMF caller ID carries digits 0-9 only")
        return f"{start}{cid.number}{end}"
    if cid.number_absence is not None:
        return f"B{DTMF_INFO_FOR[cid.number_absence]}{end}"
    raise ValueError("DTMF caller ID needs a number or a number absence reason")


def dtmf_cid_decode(digits: str) -> CallerId | DecodeFailure:
    """Parse one DTMF caller ID frame (start code through end code).

    Supported: A<number>C, A<number>#, D<number>C (Taiwan, China),
    A<number>D<redirecting>C (the redirecting number is dropped),
    A<number>B<info>C, B00C / B10C (absence), D1# / D2# / D3#.
    """
    s = digits.upper()
    if len(s) < 2 or s[0] not in "ABD":
        return DecodeFailure(f"DTMF caller ID {digits!r} does not start with A, B or D")
    if s[-1] not in "C#":
        return DecodeFailure(f"DTMF caller ID {digits!r} has no end code (C or #)")
    body = s[1:-1]
    if s[0] == "D" and s[-1] == "#" and body in DTMF_D_CODES:
        return CallerId(number_absence=DTMF_D_CODES[body], format="dtmf")
    number, info = "", None
    if s[0] in "AD":
        i = 0
        while i < len(body) and body[i].isdigit():
            i += 1
        number, rest = body[:i], body[i:]
        if s[0] == "A" and rest.startswith("D"):  # redirecting number: skip its digits
            j = 1
            while j < len(rest) and rest[j].isdigit():
                j += 1
            rest = rest[j:]
        if rest.startswith("B"):
            info = rest[1:]
        elif rest:
            return DecodeFailure(f"DTMF caller ID {digits!r}: unexpected {rest!r} after the number")
    else:
        info = body
    if info is not None and not number:
        if info not in DTMF_INFO_CODES:
            return DecodeFailure(f"DTMF caller ID {digits!r}: unknown information code {info!r}")
        return CallerId(number_absence=DTMF_INFO_CODES[info], format="dtmf")
    if not number:
        return DecodeFailure(f"DTMF caller ID {digits!r} carries no number")
    return CallerId(number=number, format="dtmf")


@dataclass
class DtmfCidParser:
    """Per-channel sans-I/O framer: DTMF digits in, caller ID frames out.

    Feed digits (with their onset sample position) as the DTMF detector
    reports them; a frame opens at A, B or D and closes at C or #. A frame
    whose end code never comes is closed `timeout` samples after its last
    digit and accepted if it carries a number (some exchanges drop the end
    code; the first ring follows anyway). Digits outside a frame are ordinary
    DTMF and are ignored.
    """
    timeout: int = RATE  # samples (1 s; digits in a frame are ~70 ms apart)
    digits: str = ""
    start: int = -1
    last: int = -1

    def feed(self, digit: str, pos: int) -> tuple[CallerId | DecodeFailure, int, int] | None:
        """One digit; returns (result, start, end) when a frame closes."""
        digit = digit.upper()
        done = self.poll(pos)
        if not self.digits:
            if digit in "ABD":
                self.digits, self.start, self.last = digit, pos, pos
            return done
        self.digits += digit
        self.last = pos
        if digit in "C#" and not (self.digits == "D" + digit):
            frame, start = self.digits, self.start
            self.digits = ""
            return dtmf_cid_decode(frame), start, pos
        return done

    def poll(self, pos: int) -> tuple[CallerId | DecodeFailure, int, int] | None:
        """Close an open frame whose end code has not come within `timeout`."""
        if self.digits and pos - self.last > self.timeout:
            frame, start, last = self.digits, self.start, self.last
            self.digits = ""
            res = dtmf_cid_decode(frame + "C")
            if isinstance(res, CallerId) and res.number is not None:
                return res, start, last
            return DecodeFailure(f"DTMF caller ID {frame!r} without end code"), start, last
        return None

    @property
    def open(self) -> bool:
        return bool(self.digits)


def dtmf_cid_audio(cid: CallerId, start: str = "A", end: str = "C", on_ms: int = 70, off_ms: int = 70,
                   level_dbm0: tuple[float, float] = (-9.0, -11.0)) -> np.ndarray:
    """DTMF caller ID as int16[n] at 8 kHz through dsp.dtmf.DtmfGenerator."""
    from dsp.dtmf import DtmfGenerator  # imported when used: DTMF is another component
    digits = dtmf_cid_encode(cid, start, end)
    gen = DtmfGenerator(1, level_dbm0=level_dbm0, on_ms=on_ms, off_ms=off_ms)
    gen.send(0, digits)
    n = len(digits) * (on_ms + off_ms) * RATE // 1000 + RATE // 10
    out = np.zeros((1, n), dtype=np.int16)
    gen.tx(out)
    return out[0]


# ---------------------------------------------------------------- detector


class CallerIdEvent(NamedTuple):
    """A caller ID found on a channel.

    `start`/`end` are sample positions since the detector's init (FSK: from
    carrier onset to the checksum; DTMF: first to last digit). `standard` is
    what was heard: 'bell202', 'v23' or 'dtmf'. A garbled caller ID message
    (bad checksum, cut short) comes back with `callerid=None` and `error`
    saying why, so the control plane can log it; `format` is then the
    message type seen ('sdmf', 'mdmf') or 'fsk' when unknown.
    """
    chan: int
    callerid: CallerId | None
    format: str
    start: int
    end: int
    standard: str = ""
    error: str | None = None


def butter_lowpass_sos(order: int, cutoff_hz: float, rate: float) -> np.ndarray:
    """Butterworth low-pass as second-order sections, as scipy.signal.butter(output="sos") gives.

    Designed with numpy (bilinear transform, pre-warped) so that making a
    detector does not import scipy.signal (0.8 s). Even orders only.
    """
    if order < 2 or order % 2:
        raise ValueError(f"order {order}: an even order >= 2 is supported")
    k = np.arange(order)
    fs2 = 2.0 * rate
    wo = fs2 * math.tan(math.pi * cutoff_hz / rate)
    poles = wo * np.exp(1j * np.pi * (2 * k + order + 1) / (2 * order))
    gain = wo ** order / np.real(np.prod(fs2 - poles))
    pz = (fs2 + poles) / (fs2 - poles)
    upper = pz[pz.imag > 0]
    upper = upper[np.argsort(np.abs(upper))]  # poles nearest the unit circle last
    sos = np.zeros((order // 2, 6))
    for i, q in enumerate(upper):
        sos[i] = [1.0, 2.0, 1.0, 1.0, -2.0 * q.real, abs(q) ** 2]
    sos[0, :3] *= gain
    return sos


def _discriminator_hz(mean_d: float) -> float:
    """Tone frequency from the kernel's mean normalised phase step (1700 Hz centre)."""
    return 1700.0 + math.asin(max(-1.0, min(1.0, mean_d))) * RATE / (2.0 * math.pi)


class CallerIdDetector:
    """FSK (Bell 202 and/or V.23) and DTMF caller ID on a set of channels.

    Runs continuously on every channel by default; `armed=False` starts with
    every channel disarmed, and `arm(chan)` / `disarm(chan)` switch one (the
    media engine arms a channel at the first ring and disarms it when the
    call is answered, so speech never reaches the receiver). The FSK
    receiver is one batched Cython kernel; the DTMF path uses
    dsp.dtmf.DtmfDetector and the sans-I/O DtmfCidParser. Python work per
    rx() is O(events).

    standard: 'any' (default), 'bell202' or 'v23' (FSK messages heard with
    the other standard's mark frequency are dropped).
    min_level_dbm0: carrier detect threshold (off 3 dB below).
    dtmf: run a DtmfDetector on the same blocks; set False when the engine
    already runs one and feed its events to `dtmf_events()`.
    require_seizure: report an FSK message (decoded or garbled) only after a
    plausible preamble: a channel seizure (alternating bits, at least
    SEIZURE_BITS of them, within PREAMBLE_S before the first byte) and a
    mark run at a mark frequency. For scanning recordings, where noise and
    speech run for hours (`voiceboard cid` sets it); GR-30 type 2 (call
    waiting) sends no seizure, so the media engine leaves it off.
    """

    LOWPASS_HZ = 800.0
    POWER_ALPHA = 1.0 / 40.0
    MIN_IDLE_BITS = 10   # mark bits before a message's first byte (GR-30 180, ETSI 80)
    MAX_GAP_BITS = 20    # mark bits allowed between bytes inside a message

    # require_seizure: what a plausible FSK preamble is
    SEIZURE_BITS = 64        # alternating bits the check looks for (GR-30 / ETSI send 300)
    SEIZURE_SCORE = 0.5      # share of the discriminator at 600 Hz (clean seizure 0.79, noise < 0.3)
    PREAMBLE_S = 1.0         # how far before the first byte the seizure is looked for
    MARK_HZ = (1120.0, 1380.0)  # mark run frequency: Bell 202 1200 Hz, V.23 1300 Hz, +-80 Hz

    def __init__(self, nchan: int, standard: str = "any", min_level_dbm0: float = -48.0,
                 dtmf: bool = True, armed: bool = True, report_errors: bool = True,
                 require_seizure: bool = False) -> None:
        from dsp import _fsk
        if not isinstance(nchan, (int, np.integer)) or nchan < 1:
            raise ValueError(f"nchan must be a positive integer, got {nchan!r}")
        if standard not in ("any", *STANDARDS):
            raise ValueError(f"standard {standard!r}: expected 'any', 'bell202' or 'v23'")
        self._k = _fsk
        self.nchan = int(nchan)
        self.standard = standard
        self.report_errors = report_errors
        self.pos = 0
        nf, nd, ni = _fsk.STATE_SHAPE
        self._fs = np.zeros((self.nchan, nf), np.float32)
        self._ds = np.zeros((self.nchan, nd), np.float64)
        self._is = np.zeros((self.nchan, ni), np.int64)
        self._msg = np.zeros((self.nchan, _fsk.MESSAGE_MAX), np.uint8)
        self._armed = np.full(self.nchan, 1 if armed else 0, np.uint8)
        self._ev = np.empty((0, 5), np.int64)
        self._evb = np.empty((0, _fsk.MESSAGE_MAX), np.uint8)
        self._evm = np.empty(0, np.float64)
        self._sos = np.ascontiguousarray(butter_lowpass_sos(4, self.LOWPASS_HZ, RATE), np.float32)
        self.require_seizure = require_seizure
        # the kernel's seizure window (its sums, then its terms): tracked only when required
        self._seizure_win = int(self.SEIZURE_BITS * RATE / BAUD)
        self._sz = np.zeros((self.nchan, _fsk.SEIZURE_SUMS + 3 * self._seizure_win)) \
            if require_seizure else None
        self._evs = np.empty(0, np.int64)
        k = np.arange(_fsk.LO_LEN)
        self._lo_c = np.cos(2 * np.pi * 1700.0 * k / RATE).astype(np.float32)
        self._lo_s = (-np.sin(2 * np.pi * 1700.0 * k / RATE)).astype(np.float32)
        on = (dbm0_to_rms(min_level_dbm0) / 32768.0) ** 2 / 2.0  # |z|^2 of a sine at that level
        self._cd_on, self._cd_off = np.float32(on), np.float32(on / 2.0)
        spb = RATE / BAUD
        self._min_idle = self.MIN_IDLE_BITS * spb
        self._max_gap = self.MAX_GAP_BITS * spb
        self._dtmf = None
        if dtmf:
            from dsp.dtmf import DtmfDetector
            self._dtmf = DtmfDetector(self.nchan)
        self._parsers = [DtmfCidParser() for _ in range(self.nchan)]
        self._open: set[int] = set()
        self._onset: dict[int, int] = {}

    # -- arming
    def _check_chan(self, chan: int) -> None:
        if not 0 <= chan < self.nchan:
            raise ValueError(f"channel {chan} out of range 0..{self.nchan - 1}")

    def arm(self, chan: int) -> None:
        """Start listening on chan from a clean state."""
        self._check_chan(chan)
        if not self._armed[chan]:
            self._fs[chan] = 0
            self._ds[chan] = 0
            self._is[chan] = 0
            if self._sz is not None:
                self._sz[chan] = 0
            self._parsers[chan] = DtmfCidParser()
            self._open.discard(chan)
            self._armed[chan] = 1

    def disarm(self, chan: int) -> None:
        self._check_chan(chan)
        self._armed[chan] = 0

    def armed(self, chan: int) -> bool:
        self._check_chan(chan)
        return bool(self._armed[chan])

    # -- receive
    def rx(self, block: np.ndarray) -> list[CallerIdEvent]:
        """Feed int16[nchan, n]; caller IDs completed in this block come back."""
        block = check_audio(block, "CallerIdDetector.rx", shape=(self.nchan, None))
        block = np.ascontiguousarray(block)
        n = block.shape[1]
        events: list[CallerIdEvent] = []
        if n == 0:
            return events
        # An event needs >= 20 bit times (133 samples), so n // 100 + 2 rows per
        # channel always suffice; the buffers are kept and only ever grow.
        cap = self.nchan * (n // 100 + 2)
        if self._ev.shape[0] < cap:
            self._ev = np.empty((cap, 5), np.int64)
            self._evb = np.empty((cap, self._k.MESSAGE_MAX), np.uint8)
            self._evm = np.empty(cap, np.float64)
            self._evs = np.empty(cap if self._sz is not None else 0, np.int64)
        ev, evb, evm, evs = self._ev, self._evb, self._evm, self._evs
        nev = self._k.fsk_rx(block, self.pos, self._fs, self._ds, self._is, self._msg, self._armed,
                             self._sos, self._lo_c, self._lo_s, self.POWER_ALPHA, self._cd_on,
                             self._cd_off, self._min_idle, self._max_gap, ev, evb, evm,
                             self._sz, evs if self._sz is not None else None, self.SEIZURE_SCORE)
        for k in range(nev):
            e = self._fsk_event(ev[k], bytes(evb[k, :ev[k, 4]]), float(evm[k]),
                                int(evs[k]) if self._sz is not None else 0)
            if e is not None:
                events.append(e)
        if self._dtmf is not None:
            events.extend(e for e in self.dtmf_events(self._dtmf.rx(block), self.pos + n) if self._keep(e))
        self.pos += n
        events.sort(key=lambda e: (e.end, e.chan))
        return events

    def _preamble_ok(self, end: int, nbytes: int, mark_hz: float, seizure_end: int) -> bool:
        """A channel seizure (alternating bits) and a mark run before the message.

        The kernel found the seizure (the last window of SEIZURE_BITS that
        looked like one, with carrier throughout, before the message's first
        start bit, ends at `seizure_end`); it must lie within PREAMBLE_S before
        the first byte, and the mark run before the message at a mark frequency.
        """
        if not self.MARK_HZ[0] <= mark_hz <= self.MARK_HZ[1]:
            return False
        first = end - int(((nbytes - 1) * 10 + 9.5) * RATE / BAUD)  # first start bit, no gaps
        return seizure_end > 0 and seizure_end - self._seizure_win >= first - int(self.PREAMBLE_S * RATE)

    def _fsk_event(self, ev: np.ndarray, data: bytes, mean_d: float,
                   seizure_end: int) -> CallerIdEvent | None:
        chan, kind, start, end = (int(v) for v in ev[:4])
        mark_hz = _discriminator_hz(mean_d)
        heard = "bell202" if mark_hz < 1250.0 else "v23"
        if self.standard != "any" and heard != self.standard:
            return None
        fmt = {SDMF_CALLERID: "sdmf", MDMF_CALLERID: "mdmf"}.get(data[0] if data else -1)
        if kind == self._k.EVENT_MESSAGE:
            res = decode_message(data)
            if isinstance(res, CallerId):
                if self.require_seizure and not self._preamble_ok(end, len(data), mark_hz, seizure_end):
                    return None
                return CallerIdEvent(chan, res, res.format, start, end, heard)
            reason = res.reason
        else:
            reason = {self._k.EVENT_CARRIER_LOST: "carrier lost",
                      self._k.EVENT_FRAMING: "framing error (stop bit missing)",
                      self._k.EVENT_GAP: "gap in the byte stream"}[kind]
            reason = f"{reason} after {len(data)} bytes"
        # Garbled: only worth reporting when it looked like caller ID.
        # A fragment of one or two bytes is line noise after carrier, not a message.
        if not self.report_errors or fmt is None or len(data) < 3:
            return None
        if self.require_seizure and not self._preamble_ok(end, len(data), mark_hz, seizure_end):
            return None
        return CallerIdEvent(chan, None, fmt, start, end, heard, reason)

    def dtmf_events(self, digits: Sequence, now: int | None = None) -> list[CallerIdEvent]:
        """DTMF caller ID from DtmfEvent(chan, digit, start, end) (onsets count).

        `now` (sample position) closes frames whose end code never came.
        """
        out: list[CallerIdEvent] = []
        for d in digits:
            if not self._armed[d.chan]:
                continue
            # Each digit counts once: at its onset, or at its release when
            # the onset was not reported separately (a digit inside one block).
            if d.end is None:
                self._onset[d.chan] = d.start
            elif self._onset.get(d.chan) == d.start:
                continue
            res = self._parsers[d.chan].feed(d.digit, d.start)
            if self._parsers[d.chan].open:
                self._open.add(d.chan)
            else:
                self._open.discard(d.chan)
            if res is not None:
                out.append(self._dtmf_event(d.chan, *res))
        if now is not None:
            for chan in list(self._open):
                res = self._parsers[chan].poll(now)
                if res is not None:
                    self._open.discard(chan)
                    out.append(self._dtmf_event(chan, *res))
        return out

    def _dtmf_event(self, chan: int, res: CallerId | DecodeFailure, start: int,
                    end: int) -> CallerIdEvent:
        if isinstance(res, CallerId):
            return CallerIdEvent(chan, res, "dtmf", start, end, "dtmf")
        return CallerIdEvent(chan, None, "dtmf", start, end, "dtmf", res.reason)

    def _keep(self, e: CallerIdEvent) -> bool:
        return e.error is None or self.report_errors
