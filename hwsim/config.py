"""Simulated boards from TOML: spans, channels, and what each port is wired to.

    [clock]
    start = 2026-01-05T09:00:00+08:00     # simulated wall clock at tick 0

    [[board]]
    name = "hotline"
    law = "alaw"                          # alaw | ulaw
    companding = false                    # true: audio goes through G.711 both ways
    [[board.span]]
    kind = "analog"                       # analog | e1
    channels = 8                          # analog only; e1 spans have 30 (+ TS16 if ccs)
    [[board.fxo]]                         # FXO ports wired to central-office lines
    channels = "0-3"
    disconnect = "busy-tone"              # loop-drop | battery-reversal | busy-tone
    [[board.fxs]]                         # FXS ports wired to phones
    channels = "4-7"

    [[cable]]                             # a back-to-back E1 cable between two spans
    a = "e1pair:0"                        # BOARD:SPAN (on one board or two)
    b = "e1pair:1"

E1 CAS spans take `signalling = "r2"` (default: the far end is a China
No.1 exchange, line and MF R2 register signalling) or "line" (line
signalling only, no register phase).

Errors are `boarddrv.tomlconfig.ConfigError`: FILE:LINE: key 'a.b': what.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from boarddrv.tomlconfig import Config, ConfigError, Node, load, loads
from hwsim.e1signals import R2Timers
from hwsim.simtime import DEFAULT_START

__all__ = ["FxoLine", "FxsPort", "SpanConfig", "ChanConfig", "BoardConfig", "SimConfig",
           "load_config", "parse_config", "ConfigError", "parse_channels"]

DISCONNECTS = ("loop-drop", "battery-reversal", "busy-tone")
CALLERIDS = ("fsk", "dtmf", "none")
SIGNALLINGS = ("r2", "line")
E1_TIMESLOTS = tuple(list(range(1, 16)) + list(range(17, 32)))


@dataclass(frozen=True)
class FxoLine:
    """An FXO port and the central-office line behind it."""
    chan: int
    number: str | None = None
    disconnect: str = "busy-tone"
    callerid: str = "fsk"
    ring_cadence: tuple[float, ...] = (1.0, 4.0)   # on, off, [on, off ...] seconds
    ring_hz: float = 25.0
    cid_delay: float = 0.5        # after the end of the first ring
    loop_drop: float = 0.8        # open-loop interval of a loop-drop disconnect
    dial_timeout: float = 3.0     # host silence that ends outbound dialling
    answer_reversal: bool = False # polarity reversal when an outbound call is answered


@dataclass(frozen=True)
class FxsPort:
    """An FXS port and the phone plugged into it."""
    chan: int
    number: str | None = None


@dataclass(frozen=True)
class SpanConfig:
    index: int
    kind: str                      # "analog" | "e1"
    first_chan: int
    nchan: int
    framing: str = ""              # e1: cas | ccs
    coding: str = ""               # e1: hdb3 | ami
    crc4: bool = False
    timing: int = 0
    signalling: str = ""           # e1 cas: r2 (China No.1 line + MF R2 register) | line (line only)
    r2: R2Timers = R2Timers()      # the exchange's timers and register choices ([board.span.r2])


@dataclass(frozen=True)
class ChanConfig:
    index: int
    span: int
    type: str                      # FXO | FXS | E1_CAS | E1_BEARER | E1_DCHAN
    timeslot: int = 0


@dataclass
class BoardConfig:
    name: str
    law: str
    spans: list[SpanConfig]
    channels: list[ChanConfig]
    fxo: dict[int, FxoLine] = field(default_factory=dict)
    fxs: dict[int, FxsPort] = field(default_factory=dict)
    companding: bool = False       # pass audio through G.711 (law) both ways, like a real trunk
    cables: list[tuple[int, int]] = field(default_factory=list)   # back-to-back E1 spans (span indices)
    linked: dict[int, tuple[str, int]] = field(default_factory=dict)  # span -> (board, span) cabled to another board

    @property
    def nchan(self) -> int:
        return len(self.channels)


@dataclass
class SimConfig:
    boards: list[BoardConfig]
    start: datetime = DEFAULT_START
    file: str = "<config>"

    def board(self, name: str) -> BoardConfig:
        for b in self.boards:
            if b.name == name:
                return b
        raise KeyError(f"no board {name!r} in {self.file} (boards: {', '.join(b.name for b in self.boards)})")


def parse_channels(node: Node, key: str, nchan: int) -> list[int]:
    """`channels` as an int, a list of ints, or a string of ranges "0-3,6"."""
    value = node.get(key)
    if value is None:
        raise node.error(key, "missing (required: channel numbers, e.g. \"0-3\" or [0, 1])")
    out: list[int] = []
    if isinstance(value, bool):
        raise node.error(key, "expected channel numbers, got a boolean")
    if isinstance(value, int):
        out = [value]
    elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        out = list(value)
    elif isinstance(value, str):
        try:
            for part in value.replace(" ", "").split(","):
                lo, _, hi = part.partition("-")
                out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise node.error(key, f"expected ranges like \"0-3,6\", got {value!r}") from None
    else:
        raise node.error(key, f"expected channel numbers, got {value!r}")
    for c in out:
        if not 0 <= c < nchan:
            raise node.error(key, f"channel {c} out of range 0..{nchan - 1}")
    if len(set(out)) != len(out):
        raise node.error(key, "a channel is listed twice")
    return out


def read_start(node: Node, key: str, default: datetime) -> datetime:
    """A simulated wall-clock start (TOML date-time or ISO string; no zone: UTC), or `default`."""
    value = node.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise node.error(key, f"expected a date-time like 2026-01-05T09:00:00+08:00, got {value!r}") from None
    if not isinstance(value, datetime):
        raise node.error(key, f"expected a date-time, got {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _r2_timers(node: Node) -> R2Timers:
    """[board.span.r2]: the exchange's timers (seconds) and register choices."""
    d = R2Timers()
    seconds = ("seize_ack", "mf_back_cycle", "mf_fwd_safety", "mf_pulse", "answer_delay", "glare_hold")
    node.check_keys(set(seconds) | {"max_dnis", "ani_after_digits"})
    values = {k: node.get_float(k, getattr(d, k), min=0.02, max=600.0) for k in seconds}
    return R2Timers(**values, max_dnis=node.get_int("max_dnis", d.max_dnis, min=1, max=40),
                    ani_after_digits=node.get_int("ani_after_digits", d.ani_after_digits, min=0, max=40))


def _board(node: Node, names: set[str]) -> BoardConfig:
    node.check_keys({"name", "law", "companding", "span", "fxo", "fxs"})
    name = node.get_str("name")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise node.error("name", f"board names are letters, digits, '-', '_', '.'; got {name!r}")
    if name in names:
        raise node.error("name", f"board {name!r} defined twice")
    law = node.get_str("law", "alaw", choices=("alaw", "ulaw"))
    companding = node.get_bool("companding", False)
    spans: list[SpanConfig] = []
    channels: list[ChanConfig] = []
    for sn in node.tables("span", required=True):
        sn.check_keys({"kind", "channels", "count", "framing", "coding", "crc4", "timing", "signalling", "r2"})
        kind = sn.get_str("kind", choices=("analog", "e1"))
        count = sn.get_int("count", 1, min=1, max=64)
        for _ in range(count):
            idx, first = len(spans), len(channels)
            if kind == "analog":
                if "count" in sn:
                    raise sn.error("count", "only e1 spans take count")
                n = sn.get_int("channels", min=1, max=256)
                spans.append(SpanConfig(idx, kind, first, n))
                channels += [ChanConfig(first + i, idx, "") for i in range(n)]  # typed below
            else:
                if "channels" in sn:
                    raise sn.error("channels", "an e1 span always has 30 bearer channels")
                framing = sn.get_str("framing", "cas", choices=("cas", "ccs"))
                coding = sn.get_str("coding", "hdb3", choices=("hdb3", "ami"))
                crc4 = sn.get_bool("crc4", True)
                timing = sn.get_int("timing", 0, min=0, max=64)
                signalling = sn.get_str("signalling", "r2", choices=SIGNALLINGS)
                if framing != "cas" and "signalling" in sn:
                    raise sn.error("signalling", "only a CAS span has line signalling (framing = \"cas\")")
                if "r2" in sn and (framing != "cas" or signalling != "r2"):
                    raise sn.error("r2", "only a span with signalling = \"r2\" has an R2 exchange to set")
                r2 = _r2_timers(sn.table("r2"))
                if framing == "cas":
                    chans = [ChanConfig(first + i, idx, "E1_CAS", ts) for i, ts in enumerate(E1_TIMESLOTS)]
                else:
                    tss = list(range(1, 32))
                    chans = [ChanConfig(first + i, idx, "E1_DCHAN" if ts == 16 else "E1_BEARER", ts)
                             for i, ts in enumerate(tss)]
                spans.append(SpanConfig(idx, kind, first, len(chans), framing, coding, crc4, timing,
                                        signalling if framing == "cas" else "", r2))
                channels += chans
    nchan = len(channels)
    fxo: dict[int, FxoLine] = {}
    fxs: dict[int, FxsPort] = {}
    analog = {c.index for c in channels if spans[c.span].kind == "analog"}

    def claim(n: Node, c: int) -> None:
        if c not in analog:
            raise n.error("channels", f"channel {c} is not on an analog span")
        if c in fxo or c in fxs:
            raise n.error("channels", f"channel {c} is already an {'fxo' if c in fxo else 'fxs'} port")

    for fn in node.tables("fxo"):
        fn.check_keys({"channels", "numbers", "disconnect", "callerid", "ring_cadence", "ring_hz",
                       "cid_delay", "loop_drop", "dial_timeout", "answer_reversal"})
        port_chans = parse_channels(fn, "channels", nchan)
        numbers = fn.get_list("numbers", [], item=str)
        if numbers and len(numbers) != len(port_chans):
            raise fn.error("numbers", f"expected {len(port_chans)} numbers (one per channel), got {len(numbers)}")
        cadence = tuple(float(x) for x in fn.get_list("ring_cadence", [1.0, 4.0], item=float))
        if len(cadence) < 2 or len(cadence) % 2 or any(x <= 0 for x in cadence):
            raise fn.error("ring_cadence", "expected an even number of positive seconds: on, off, ...")
        fxo_line = functools.partial(
            FxoLine,
            disconnect=fn.get_str("disconnect", "busy-tone", choices=DISCONNECTS),
            callerid=fn.get_str("callerid", "fsk", choices=CALLERIDS),
            ring_cadence=cadence,
            ring_hz=fn.get_float("ring_hz", 25.0, min=10.0, max=70.0),
            cid_delay=fn.get_float("cid_delay", 0.5, min=0.0, max=10.0),
            loop_drop=fn.get_float("loop_drop", 0.8, min=0.02, max=10.0),
            dial_timeout=fn.get_float("dial_timeout", 3.0, min=0.1, max=60.0),
            answer_reversal=fn.get_bool("answer_reversal", False),
        )
        for i, chan in enumerate(port_chans):
            claim(fn, chan)
            fxo[chan] = fxo_line(chan, numbers[i] if numbers else None)
    for pn in node.tables("fxs"):
        pn.check_keys({"channels", "numbers"})
        port_chans = parse_channels(pn, "channels", nchan)
        numbers = pn.get_list("numbers", [], item=str)
        if numbers and len(numbers) != len(port_chans):
            raise pn.error("numbers", f"expected {len(port_chans)} numbers (one per channel), got {len(numbers)}")
        for i, chan in enumerate(port_chans):
            claim(pn, chan)
            fxs[chan] = FxsPort(chan, numbers[i] if numbers else None)
    for i, c in enumerate(channels):
        if c.index in analog:
            if c.index not in fxo and c.index not in fxs:
                raise node.error(None, f"channel {c.index} of analog span {c.span} is neither "
                                       f"an [[board.fxo]] nor an [[board.fxs]] port")
            channels[i] = ChanConfig(c.index, c.span, "FXO" if c.index in fxo else "FXS", 0)
    return BoardConfig(name, law, spans, channels, fxo, fxs, companding)


def _span_ref(node: Node, key: str, boards: list[BoardConfig]) -> tuple[BoardConfig, int]:
    text = node.get_str(key)
    board, _, idx = text.partition(":")
    if not idx.isdigit():
        raise node.error(key, f"expected BOARD:SPAN like \"e1pair:0\", got {text!r}")
    for b in boards:
        if b.name == board:
            if int(idx) >= len(b.spans) or b.spans[int(idx)].kind != "e1":
                raise node.error(key, f"span {idx} of board {board!r} is not an E1 span")
            return b, int(idx)
    raise node.error(key, f"no board {board!r} (boards: {', '.join(b.name for b in boards)})")


def _cable(node: Node, boards: list[BoardConfig], used: set[tuple[str, int]]) -> None:
    """A back-to-back E1 cable: what each span's host sends the other's host receives."""
    node.check_keys({"a", "b"})
    (ba, sa), (bb, sb) = _span_ref(node, "a", boards), _span_ref(node, "b", boards)
    if ba is bb and sa == sb:
        raise node.error("b", "a cable joins two different spans")
    if ba.spans[sa].framing != bb.spans[sb].framing:
        raise node.error("b", f"span {sa} of {ba.name!r} is {ba.spans[sa].framing} and span {sb} of "
                              f"{bb.name!r} is {bb.spans[sb].framing}: a cable joins spans of the same framing")
    for key, b, s in (("a", ba, sa), ("b", bb, sb)):
        if (b.name, s) in used:
            raise node.error(key, f"span {s} of board {b.name!r} already has a cable")
        used.add((b.name, s))
    if ba is bb:
        ba.cables.append((sa, sb))
    else:
        ba.linked[sa] = (bb.name, sb)
        bb.linked[sb] = (ba.name, sa)


def parse_config(cfg: Config) -> SimConfig:
    """Validate a parsed TOML document into a SimConfig."""
    cfg.check_keys({"clock", "board", "cable"})
    clock = cfg.table("clock")
    clock.check_keys({"start"})
    start = read_start(clock, "start", DEFAULT_START)
    boards: list[BoardConfig] = []
    for bn in cfg.tables("board", required=True):
        boards.append(_board(bn, {b.name for b in boards}))
    used: set[tuple[str, int]] = set()
    for cn in cfg.tables("cable"):
        _cable(cn, boards, used)
    return SimConfig(boards, start, cfg.file)


def load_config(path: str | os.PathLike[str]) -> SimConfig:
    """Read and validate an hwsim config file (ConfigError names FILE:LINE: key)."""
    return parse_config(load(path))


def config_from_text(text: str, file: str = "<string>") -> SimConfig:
    return parse_config(loads(text, file))
