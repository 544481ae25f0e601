"""Channel configuration: which board, which spans, what each channel is.

The TOML equivalent of DAHDI's ``/etc/dahdi/system.conf``: an integrator
states what is plugged in (span framing and coding, which timeslots carry
which signalling, law, tone zone) and we check it before anything runs, so a
typo is a one-line error naming the file, line and key instead of a channel
that silently never rings. See docs/boards.md for the full format::

    [[boards]]
    uri = "sim://e1site"
    law = "alaw"                 # alaw (default) | ulaw
    tone_zone = "cn"             # cn (default) | us | uk | eu

    [[boards.spans]]
    span = 0                     # span index as `voiceboard scan` shows it
    kind = "e1"
    framing = "cas"              # cas | ccs
    coding = "hdb3"              # hdb3 | ami
    crc4 = false
    timing = 1                   # clock source priority; 0 = never the clock

    [[boards.channels]]
    span = 0
    channels = "1-15,17-31"      # E1: timeslots; analog: ports (both from 1)
    signalling = "e1_cas"
    cas_variant = "china"        # China No.1 (ABCD idle 1011)

Signalling names the *port type on the card*, the same words as
``boarddrv.ChannelType``: an FXO port (it faces the exchange line) takes
``fxo_ks``/``fxo_ls``, an FXS port (it feeds a phone) takes ``fxs_ks``/
``fxs_ls``. This is the opposite of DAHDI's system.conf, where an FXO module
is given fxs signalling; ``check_board`` says so when it sees the swap.

API: ``load(path) -> SystemConfig``; ``parse(node) -> SystemConfig`` for a
config file that embeds ``[[boards]]`` among other sections (the server's);
``check_board(board_cfg, board) -> list[ConfigError]`` compares a board's
config with the opened hardware; ``channel_map(board_cfg, board)`` gives
board channel index -> ChannelConfig; ``parse_ranges("1-15,17-31", lo, hi)``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .tomlconfig import Config, ConfigError, Node
from .tomlconfig import load as load_toml

__all__ = ["SystemConfig", "BoardConfig", "SpanConfig", "ChannelConfig", "load", "parse",
           "parse_ranges", "format_ranges", "check_board", "channel_map",
           "SIGNALLING", "LAWS", "TONE_ZONES"]

LAWS = ("alaw", "ulaw")
TONE_ZONES = ("cn", "us", "uk", "eu")
SPAN_KINDS = ("analog", "e1")
FRAMINGS = ("cas", "ccs")
CODINGS = ("hdb3", "ami")
CAS_VARIANTS = ("china", "itu")

# signalling -> (ChannelType name, span kind it belongs on, framing it needs or None)
SIGNALLING: dict[str, tuple[str, str, str | None]] = {
    "fxo_ks": ("FXO", "analog", None),
    "fxo_ls": ("FXO", "analog", None),
    "fxs_ks": ("FXS", "analog", None),
    "fxs_ls": ("FXS", "analog", None),
    "e1_cas": ("E1_CAS", "e1", "cas"),
    "bearer": ("E1_BEARER", "e1", "ccs"),
    "dchan": ("E1_DCHAN", "e1", "ccs"),
}

E1_TIMESLOTS = 31          # TS1..TS31 (TS0 is framing)
E1_SIGNALLING_TS = 16      # TS16: CAS multiframe, or the D channel on CCS
MAX_ANALOG_PORTS = 64

BOARD_KEYS = ("uri", "law", "tone_zone", "spans", "channels")
SPAN_KEYS_COMMON = ("span", "kind")
SPAN_KEYS_ANALOG = ("ports",)
SPAN_KEYS_E1 = ("framing", "coding", "crc4", "timing", "lbo")
CHANNEL_KEYS = ("span", "channels", "signalling", "cas_variant", "rx_gain", "tx_gain")


@dataclass(frozen=True)
class SpanConfig:
    """One span as configured. `size` is ports (analog) or 31 timeslots (E1)."""
    index: int
    kind: str
    size: int
    framing: str | None = None
    coding: str | None = None
    crc4: bool | None = None
    timing: int = 0
    lbo: int = 0
    line: int | None = None
    key: str = ""          # where it came from, e.g. "boards[0].spans[1]"


@dataclass(frozen=True)
class ChannelConfig:
    """One channel: `member` is the E1 timeslot or the analog port, from 1."""
    span: int
    member: int
    signalling: str
    cas_variant: str | None = None
    rx_gain: float = 0.0
    tx_gain: float = 0.0
    line: int | None = None
    key: str = ""          # the channel group, e.g. "boards[0].channels[2]"

    @property
    def channel_type(self) -> str:
        """The boarddrv.ChannelType name this signalling needs on the card."""
        return SIGNALLING[self.signalling][0]


@dataclass
class BoardConfig:
    uri: str
    law: str
    tone_zone: str
    spans: list[SpanConfig]
    channels: list[ChannelConfig]
    file: str = "<string>"
    line: int | None = None
    source: Config | None = field(default=None, repr=False, compare=False)

    def span(self, index: int) -> SpanConfig | None:
        return next((s for s in self.spans if s.index == index), None)

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError at the line where `key` (a full key path) is in the file."""
        line = self.source.line_of(key) if self.source is not None else None
        return ConfigError(self.file, line, key, message)


@dataclass
class SystemConfig:
    boards: list[BoardConfig] = field(default_factory=list)
    file: str = "<string>"

    def board(self, uri: str) -> BoardConfig:
        for b in self.boards:
            if b.uri == uri:
                return b
        known = ", ".join(b.uri for b in self.boards) or "none"
        raise KeyError(f"{self.file}: no [[boards]] entry with uri = {uri!r} (configured: {known})")


# -- ranges ---------------------------------------------------------------------

def parse_ranges(text: str | int, lo: int, hi: int) -> list[int]:
    """'1-15,17-31' -> [1..15, 17..31]; ValueError says which piece is wrong.

    Numbers outside lo..hi and a number listed twice are errors, because a
    range that silently clips or repeats hides a mistake in the plan."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"expected a range string like \"1-15,17-31\", got {text!r}")
    pieces = [str(text)] if isinstance(text, int) else text.split(",")
    out: list[int] = []
    seen: set[int] = set()
    for raw in pieces:
        piece = raw.strip()
        if not piece:
            raise ValueError(f"empty item in range {text!r}")
        a, sep, b = piece.partition("-")
        try:
            first = int(a.strip())
            last = int(b.strip()) if sep else first
        except ValueError:
            raise ValueError(f"bad range item {piece!r} in {text!r} (expected N or N-M)") from None
        if last < first:
            raise ValueError(f"range {piece!r} runs backwards")
        for n in (first, last):
            if not lo <= n <= hi:
                raise ValueError(f"{n} is out of range {lo}..{hi} (in {piece!r})")
        for n in range(first, last + 1):
            if n in seen:
                raise ValueError(f"{n} is listed twice in {text!r}")
            seen.add(n)
            out.append(n)
    return out


def format_ranges(numbers: list[int]) -> str:
    """[1,2,3,5] -> '1-3,5' (for tables and messages)."""
    out: list[str] = []
    nums = sorted(set(numbers))
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(out)


# -- parsing --------------------------------------------------------------------

def load(path: str | os.PathLike[str]) -> SystemConfig:
    """Load a board config file (only [[boards]] at the top level)."""
    cfg = load_toml(path)
    cfg.check_keys(["boards"])
    return parse(cfg, file=cfg.file)


def parse(node: Node, file: str | None = None) -> SystemConfig:
    """Parse the [[boards]] of `node` (a Config or a section of a larger file)."""
    file = file or node.config.file
    system = SystemConfig(file=file)
    uris: dict[str, Node] = {}
    for bnode in node.tables("boards", required=True):
        board = _parse_board(bnode)
        if board.uri in uris:
            raise bnode.error("uri", f"board {board.uri!r} is configured twice "
                                     f"(first at line {uris[board.uri].line_of('uri')})")
        uris[board.uri] = bnode
        system.boards.append(board)
    return system


def _parse_board(b: Node) -> BoardConfig:
    b.check_keys(BOARD_KEYS)
    uri = b.get_str("uri")
    if "://" not in uri:
        raise b.error("uri", f"expected a board URI like sim://NAME or dahdi:///dev/dahdi, got {uri!r}")
    board = BoardConfig(uri=uri, law=b.get_str("law", "alaw", choices=LAWS),
                        tone_zone=b.get_str("tone_zone", "cn", choices=TONE_ZONES),
                        spans=[], channels=[], file=b.config.file, line=b.line,
                        source=b.config)
    span_nodes: dict[int, Node] = {}
    timing: dict[int, Node] = {}
    for s in b.tables("spans", required=True):
        span = _parse_span(s)
        if span.index in span_nodes:
            raise s.error("span", f"span {span.index} is configured twice "
                                  f"(first at line {span_nodes[span.index].line})")
        if span.timing:
            if span.timing in timing:
                raise s.error("timing", f"timing priority {span.timing} is already used by span "
                                        f"{timing[span.timing].get_int('span')} (line "
                                        f"{timing[span.timing].line_of('timing')}); "
                                        "each clock source needs its own priority")
            timing[span.timing] = s
        span_nodes[span.index] = s
        board.spans.append(span)

    owner: dict[tuple[int, int], Node] = {}   # (span, member) -> group that claimed it
    for c in b.tables("channels", required=True):
        board.channels.extend(_parse_channels(c, board, owner))

    for span in board.spans:
        if span.kind == "e1" and span.framing == "ccs":
            dch = [ch for ch in board.channels if ch.span == span.index and ch.signalling == "dchan"]
            if len(dch) != 1:
                what = "no D channel" if not dch else f"{len(dch)} D channels"
                raise span_nodes[span.index].error(
                    "framing", f"a ccs span needs exactly one dchan timeslot (usually 16), "
                               f"span {span.index} has {what}")
    board.channels.sort(key=lambda ch: (ch.span, ch.member))
    return board


def _parse_span(s: Node) -> SpanConfig:
    index = s.get_int("span", min=0, max=255)
    kind = s.get_str("kind", choices=SPAN_KINDS)
    if kind == "analog":
        s.check_keys(SPAN_KEYS_COMMON + SPAN_KEYS_ANALOG + _explain(s, SPAN_KEYS_E1, "e1"))
        ports = s.get_int("ports", min=1, max=MAX_ANALOG_PORTS)
        return SpanConfig(index=index, kind=kind, size=ports, line=s.line, key=s.key)
    s.check_keys(SPAN_KEYS_COMMON + SPAN_KEYS_E1 + _explain(s, SPAN_KEYS_ANALOG, "analog"))
    return SpanConfig(index=index, kind=kind, size=E1_TIMESLOTS,
                      framing=s.get_str("framing", choices=FRAMINGS),
                      coding=s.get_str("coding", "hdb3", choices=CODINGS),
                      crc4=s.get_bool("crc4", False),
                      timing=s.get_int("timing", 0, min=0, max=255),
                      lbo=s.get_int("lbo", 0, min=0, max=7),
                      line=s.line, key=s.key)


def _explain(s: Node, keys: tuple[str, ...], kind: str) -> tuple[str, ...]:
    """Keys of the other span kind get a better message than 'unknown key'."""
    for key in keys:
        if key in s:
            raise s.error(key, f"'{key}' applies to {kind} spans only; span {s.get('span')} "
                               f"is kind = {s.get('kind')!r}")
    return ()


def _parse_channels(c: Node, board: BoardConfig,
                    owner: dict[tuple[int, int], Node]) -> list[ChannelConfig]:
    c.check_keys(CHANNEL_KEYS)
    span_index = c.get_int("span", min=0, max=255)
    span = board.span(span_index)
    if span is None:
        known = ", ".join(str(s.index) for s in board.spans)
        raise c.error("span", f"span {span_index} is not configured in this board's [[boards.spans]] "
                              f"(configured: {known})")
    sig = c.get_str("signalling", choices=SIGNALLING)
    _, sig_kind, sig_framing = SIGNALLING[sig]
    if sig_kind != span.kind:
        fit = ", ".join(n for n, (_, k, f) in SIGNALLING.items()
                        if k == span.kind and f in (None, span.framing))
        raise c.error("signalling", f"{sig} signalling is for {sig_kind} channels, but span "
                                    f"{span.index} is {span.kind} (use one of {fit})")
    if sig_framing is not None and sig_framing != span.framing:
        fit = ", ".join(n for n, (_, k, f) in SIGNALLING.items() if f == span.framing)
        raise c.error("signalling", f"{sig} needs a {sig_framing} span, but span {span.index} "
                                    f"has framing = {span.framing!r} (use {fit})")
    if "cas_variant" in c and sig != "e1_cas":
        raise c.error("cas_variant", f"cas_variant applies to e1_cas channels, not {sig}")
    variant = c.get_str("cas_variant", "china", choices=CAS_VARIANTS) if sig == "e1_cas" else None

    raw = c.get("channels")
    if raw is None:
        raise c.error("channels", "missing (required: a range like \"1-15,17-31\")")
    unit = "timeslot" if span.kind == "e1" else "port"
    try:
        members = parse_ranges(raw, 1, span.size)
    except ValueError as exc:
        raise c.error("channels", f"{exc} ({unit}s of span {span.index} are 1..{span.size})") from None
    if span.kind == "e1" and E1_SIGNALLING_TS in members:
        if span.framing == "cas":
            raise c.error("channels", "timeslot 16 carries the CAS signalling on a cas span; "
                                      "use \"1-15,17-31\"")
    if sig == "dchan" and len(members) != 1:
        raise c.error("channels", f"a dchan is one timeslot, got {format_ranges(members)}")
    for m in members:
        prev = owner.get((span.index, m))
        if prev is not None:
            raise c.error("channels", f"{unit} {m} of span {span.index} is already configured "
                                      f"at line {prev.line_of('channels')}")
        owner[(span.index, m)] = c
    rx_gain = c.get_float("rx_gain", 0.0, min=-24.0, max=24.0)
    tx_gain = c.get_float("tx_gain", 0.0, min=-24.0, max=24.0)
    line = c.line_of("channels")
    return [ChannelConfig(span=span.index, member=m, signalling=sig, cas_variant=variant,
                          rx_gain=rx_gain, tx_gain=tx_gain, line=line, key=c.key) for m in members]


# -- against the hardware -----------------------------------------------------------

def _name(x: Any) -> str:
    """Enum member, or plain string, -> its name in lower/upper-insensitive form."""
    return str(getattr(x, "name", x)).upper()


def _member_of(board: Any, ch: Any) -> int:
    """Port/timeslot number (from 1) of a board channel, as the config counts them.

    ChannelInfo.timeslot is the E1 timeslot or the analog port number from 1
    (docs/internals.md), which is exactly the config's `channels` numbering."""
    return int(ch.timeslot)


def channel_map(cfg: BoardConfig, board: Any) -> dict[int, ChannelConfig]:
    """Board channel index -> its ChannelConfig (only channels the config names)."""
    where = {(c.span, _member_of(board, c)): c.index for c in board.channels}
    return {where[(c.span, c.member)]: c for c in cfg.channels if (c.span, c.member) in where}


def check_board(cfg: BoardConfig, board: Any) -> list[ConfigError]:
    """Every way `cfg` disagrees with the opened `board`; [] if it fits.

    A list rather than the first error so that `scan` can show all of them
    at once to the person standing at the rack."""
    problems: list[ConfigError] = []
    hw_spans = list(board.spans)
    where = {(c.span, _member_of(board, c)): c for c in board.channels}
    for span in cfg.spans:
        if span.index >= len(hw_spans):
            problems.append(cfg.error(f"{span.key}.span", f"span {span.index} does not exist on "
                                      f"{cfg.uri} (it has {len(hw_spans)} span(s))"))
            continue
        hw = hw_spans[span.index]
        if str(hw.kind) != span.kind:
            problems.append(cfg.error(f"{span.key}.kind", f"span {span.index} of {cfg.uri} is "
                                      f"{hw.kind}, config says {span.kind}"))
            continue
        if span.kind == "e1":
            for key in ("framing", "coding", "crc4"):
                want, got = getattr(span, key), getattr(hw, key, None)
                if got is not None and got != want:
                    problems.append(cfg.error(f"{span.key}.{key}", f"span {span.index} of {cfg.uri} "
                                              f"runs {key} = {got!r}, config says {want!r}"))
        elif span.size > hw.nchan:
            problems.append(cfg.error(f"{span.key}.ports", f"span {span.index} of {cfg.uri} has "
                                      f"{hw.nchan} ports, config says {span.size}"))
    for ch in cfg.channels:
        span_cfg = cfg.span(ch.span)
        assert span_cfg is not None   # loading refuses a channel on a span not configured
        if ch.span >= len(hw_spans) or str(hw_spans[ch.span].kind) != span_cfg.kind:
            continue  # already reported at the span
        unit = "timeslot" if span_cfg.kind == "e1" else "port"
        hw = where.get((ch.span, ch.member))
        if hw is None:
            problems.append(cfg.error(f"{ch.key}.channels", f"{unit} {ch.member} of span {ch.span} "
                                      f"has no channel on {cfg.uri}"))
            continue
        got, want = _name(hw.type), ch.channel_type
        if got != want:
            hint = ""
            if {got, want} == {"FXO", "FXS"}:
                hint = (f" (signalling names the port type here: an {got} port takes "
                        f"{got.lower()}_ks or {got.lower()}_ls; DAHDI's system.conf uses the "
                        "opposite words)")
            problems.append(cfg.error(f"{ch.key}.signalling",
                                      f"{unit} {ch.member} of span {ch.span} (channel {hw.index}) "
                                      f"is {got} on {cfg.uri}, {ch.signalling} needs {want}{hint}"))
    return problems
