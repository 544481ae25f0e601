"""What happens in the simulated world: callers, agents, outbound results, faults.

A Scenario is data (a TOML file or built in Python) and deterministic: a
Poisson arrival process draws from its own generator seeded by (seed,
process index), so the same seed gives the same calls in lockstep.

    [scenario]
    start = 2026-01-05T09:00:00+08:00   # simulated wall clock at tick 0
    duration = 120.0                     # seconds of simulated time, then stop
    seed = 7

    [[caller]]                           # one call
    at = 1.0
    line = "hotline:0"                   # BOARD or BOARD:CHANNELS (any idle one)
    number = "13800138000"
    script = [{ after_silence = 1.0, digits = "1" }, { after = 5.0, hangup = true }]
    glare = false                        # true: ring in at the host's next seizure of the
                                         # line (one FXO line), from `at` on: glare
    called = "95588"                     # E1 (China No.1): the DNIS; `number` is the ANI
    category = "national_subscriber"     # E1: calling party category (group II)

    [[arrivals]]                         # a Poisson process of callers
    lines = "hotline:0-3"
    rate_per_hour = 360

    [[agent]]                            # the people at FXS phones
    phones = "hotline:4-7"
    answer_after = 2.0

    [[dial]]                             # a phone calls the host
    at = 5.0
    phone = "hotline:4"
    digits = "8001"

    [[outbound]]                         # what the host's outgoing calls meet
    lines = "hotline:0-3"
    result = "answer"                    # answer | busy | no-answer (E1 also: congestion |
    ring = 3.0                           #   unallocated | out-of-order)
    called = "95588"                     # E1: the standing plan for this DNIS

    [[fault]]
    at = 30.0
    kind = "alarm-set"                   # line-cut | line-restore | alarm-set | alarm-clear
    span = "e1site:0"                    # | counter | cas | hangup | block | unblock | board-removed
    alarm = "LOS"

Targets name a board and channels (`BOARD:0-3,6`) or a span (`BOARD:SPAN`).
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, overload

import numpy as np

from boarddrv.chanref import split_board
from boarddrv.tomlconfig import ConfigError, Node, load
from hwsim.config import read_start
from hwsim.e1signals import COUNTERS, alarm_bit, category_signal
from hwsim.parties import Action
from hwsim.simtime import DEFAULT_START

FAULT_KINDS = ("line-cut", "line-restore", "alarm-set", "alarm-clear", "counter", "cas",
               "hangup", "block", "unblock", "board-removed")
RESULTS = ("answer", "busy", "no-answer", "congestion", "unallocated", "out-of-order")
E1_ONLY_RESULTS = ("congestion", "unallocated", "out-of-order")   # B signals; an FXO line has no such answer


@dataclass(frozen=True)
class Where:
    """Where a scenario item was written, for errors found later (e.g. an
    unknown board only shows when the scenario meets the config)."""
    file: str = "<python>"
    line: int | None = None
    key: str | None = None

    def error(self, message: str) -> ConfigError:
        return ConfigError(self.file, self.line, self.key, message)


@dataclass(frozen=True)
class Target:
    board: str
    chans: tuple[int, ...] | None = None    # None: any suitable channel of the board

    @classmethod
    def parse(cls, text: str) -> Target:
        board, rest = (text, "") if ":" not in text else split_board(text, what="CHANNELS")
        if not board:
            raise ValueError(f"expected BOARD or BOARD:CHANNELS, got {text!r}")
        if not rest:
            return cls(board)
        chans: list[int] = []
        for part in rest.replace(" ", "").split(","):
            lo, _, hi = part.partition("-")
            chans.extend(range(int(lo), int(hi or lo) + 1))
        return cls(board, tuple(chans))

    def __str__(self) -> str:
        return self.board if self.chans is None else f"{self.board}:{','.join(map(str, self.chans))}"


@dataclass
class CallerSpec:
    at: float
    line: Target
    number: str | None = None
    name: str | None = None
    script: list[Action] = field(default_factory=list)
    hangup_after: float | None = None
    give_up: float | None = 60.0
    where: Where = Where()
    glare: bool = False               # collide with the host's next seizure of `line`
    called: str | None = None         # E1 (China No.1): the DNIS the exchange sends; `number` is the ANI
    category: str | int | None = None # E1: calling party category (name or group II signal 1-15)
    clear_back_hold: float = 0.0      # E1: after the host clears back, wait this long (re-answer) before clearing


@dataclass
class ArrivalSpec:
    """Poisson arrivals: exponential gaps with mean 1/rate seconds."""
    lines: Target
    rate: float                       # calls per second
    start: float = 0.0
    stop: float | None = None
    limit: int | None = None
    numbers: list[str] = field(default_factory=list)
    number_prefix: str = "138"
    script: list[Action] = field(default_factory=list)
    hangup_after: float | None = None
    hangup_after_mean: float | None = None
    give_up: float | None = 60.0
    where: Where = Where()
    called: list[str] = field(default_factory=list)   # E1: DNIS, cycled
    category: str | int | None = None

    def times(self, rng: np.random.Generator) -> Iterator[float]:
        """Arrival times in seconds (lazily; deterministic for a given rng)."""
        t, n = self.start, 0
        while self.limit is None or n < self.limit:
            t += float(rng.exponential(1.0 / self.rate))
            if self.stop is not None and t >= self.stop:
                return
            n += 1
            yield t

    def number(self, rng: np.random.Generator, k: int) -> str:
        if self.numbers:
            return self.numbers[k % len(self.numbers)]
        digits = max(0, 11 - len(self.number_prefix))
        return self.number_prefix + "".join(str(int(d)) for d in rng.integers(0, 10, digits))

    def called_number(self, k: int) -> str | None:
        return self.called[k % len(self.called)] if self.called else None

    def hold(self, rng: np.random.Generator) -> float | None:
        if self.hangup_after_mean is not None:
            return float(rng.exponential(self.hangup_after_mean))
        return self.hangup_after


@dataclass
class AgentSpec:
    phones: Target
    answer_after: float | None = 2.0
    script: list[Action] = field(default_factory=list)
    hangup_after: float | None = None
    where: Where = Where()


@dataclass
class DialSpec:
    at: float
    phone: Target
    digits: str = ""
    script: list[Action] = field(default_factory=list)
    hangup_after: float | None = None
    dial_after: float = 1.0
    where: Where = Where()


@dataclass
class OutboundPlan:
    """What a call the host places meets; plans are used in order, per line.

    On E1 (China No.1) `result` is the B signal (answer: B-1, or B-7 with
    charge = false; no-answer: B-1 and no answer; busy B-2, congestion
    B-4, unallocated B-5, out-of-order B-8) and `ring` the delay from it to
    the answer. A plan with `called` is the standing answer for that DNIS:
    it is not used up."""
    lines: Target | None = None
    result: str = "answer"
    ring: float = 3.0
    script: list[Action] = field(default_factory=list)
    hangup_after: float | None = None
    where: Where = Where()
    called: str | None = None
    charge: bool = True


@dataclass
class FaultSpec:
    at: float
    kind: str
    line: Target | None = None      # channel faults: line-cut, line-restore, cas, hangup
    span: tuple[str, int] | None = None
    board: str | None = None
    alarm: str | None = None
    counter: str | None = None
    n: int = 1
    abcd: int | None = None
    where: Where = Where()

    @property
    def board_name(self) -> str:
        if self.line is not None:
            return self.line.board
        if self.span is not None:
            return self.span[0]
        assert self.board is not None
        return self.board


@dataclass
class Scenario:
    """Everything that happens, in simulated seconds from tick 0."""
    start: datetime | None = None
    duration: float | None = None
    seed: int = 0
    callers: list[CallerSpec] = field(default_factory=list)
    arrivals: list[ArrivalSpec] = field(default_factory=list)
    agents: list[AgentSpec] = field(default_factory=list)
    dials: list[DialSpec] = field(default_factory=list)
    outbound: list[OutboundPlan] = field(default_factory=list)
    faults: list[FaultSpec] = field(default_factory=list)
    file: str = "<python>"

    # -- Python API (each returns self, to chain) ---------------------------------
    def caller(self, at: float, line: str, number: str | None = None, *, script: Sequence[Action] = (),
               **kw) -> Scenario:
        self.callers.append(CallerSpec(at, Target.parse(line), number, script=list(script), **kw))
        return self

    def poisson(self, lines: str, rate: float, **kw) -> Scenario:
        if rate <= 0:
            raise ValueError(f"arrival rate must be > 0, got {rate}")
        self.arrivals.append(ArrivalSpec(Target.parse(lines), rate, **kw))
        return self

    def agent(self, phones: str, answer_after: float | None = 2.0, **kw) -> Scenario:
        self.agents.append(AgentSpec(Target.parse(phones), answer_after, **kw))
        return self

    def dial(self, at: float, phone: str, digits: str, **kw) -> Scenario:
        self.dials.append(DialSpec(at, Target.parse(phone), digits, **kw))
        return self

    def plan_outbound(self, lines: str | None = None, result: str = "answer", **kw) -> Scenario:
        if result not in RESULTS:
            raise ValueError(f"outbound result must be one of {', '.join(RESULTS)}, got {result!r}")
        self.outbound.append(OutboundPlan(Target.parse(lines) if lines else None, result, **kw))
        return self

    def fault(self, at: float, kind: str, target: str | None = None, **kw) -> Scenario:
        """kind in FAULT_KINDS; target 'BOARD:CHAN' (line faults), 'BOARD:SPAN' (alarms,
        counters) or 'BOARD' (board-removed)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        if target is None:
            raise ValueError(f"fault {kind!r} needs a target")
        board, _, rest = target.partition(":")
        if kind in ("alarm-set", "alarm-clear", "counter"):
            self.faults.append(FaultSpec(at, kind, span=(board, int(rest or 0)), **kw))
        elif kind == "board-removed":
            self.faults.append(FaultSpec(at, kind, board=board, **kw))
        else:
            self.faults.append(FaultSpec(at, kind, line=Target.parse(target), **kw))
        return self

    def for_board(self, name: str) -> Scenario:
        """The part of the scenario that happens on one board."""
        return replace(
            self,
            callers=[c for c in self.callers if c.line.board == name],
            arrivals=[a for a in self.arrivals if a.lines.board == name],
            agents=[a for a in self.agents if a.phones.board == name],
            dials=[d for d in self.dials if d.phone.board == name],
            outbound=[o for o in self.outbound if o.lines is None or o.lines.board == name],
            faults=[f for f in self.faults if f.board_name == name],
        )

    def targets(self) -> Iterator[tuple[str, Where]]:
        """(board name, where it was written) for every item."""
        yield from ((c.line.board, c.where) for c in self.callers)
        yield from ((a.lines.board, a.where) for a in self.arrivals)
        yield from ((a.phones.board, a.where) for a in self.agents)
        yield from ((d.phone.board, d.where) for d in self.dials)
        yield from ((o.lines.board, o.where) for o in self.outbound if o.lines is not None)
        yield from ((f.board_name, f.where) for f in self.faults)

    def boards(self) -> set[str]:
        return {board for board, _ in self.targets()}


# -- TOML ---------------------------------------------------------------------

def _where(node: Node, key: str | None = None) -> Where:
    path = node.keypath + ((key,) if key else ())
    from boarddrv.tomlconfig import format_key
    return Where(node.config.file, node.config.line_of(path), format_key(path) if path else None)


@overload
def _target(node: Node, key: str, required: Literal[True] = True) -> Target: ...
@overload
def _target(node: Node, key: str, required: bool) -> Target | None: ...
def _target(node: Node, key: str, required: bool = True) -> Target | None:
    if key not in node:
        if required:
            raise node.error(key, "missing (required: BOARD or BOARD:CHANNELS, e.g. \"hotline:0-3\")")
        return None
    text = node.get_str(key)
    try:
        return Target.parse(text)
    except ValueError:
        raise node.error(key, f"expected BOARD or BOARD:CHANNELS like \"hotline:0-3\", got {text!r}") from None


@overload
def _seconds(node: Node, key: str) -> float | None: ...
@overload
def _seconds(node: Node, key: str, default: float) -> float: ...
def _seconds(node: Node, key: str, default: float | None = None) -> float | None:
    return node.get_float(key, default, min=0.0)


def _script(node: Node, base: str) -> list[Action]:
    out = []
    for i, item in enumerate(node.get_list("script", [])):
        if not isinstance(item, dict):
            raise node.error(("script", i), "expected a table like { at = 2.0, digits = \"1\" }")
        sub = Node(node.config, node.keypath + ("script", i), item)
        sub.check_keys({"at", "after", "after_silence", "digits", "play", "hangup", "flash"})
        play = sub.get_str("play", None)
        if play is not None and not os.path.isabs(play):
            play = os.path.join(base, play)
        if play is not None and not os.path.exists(play):
            raise sub.error("play", f"no such audio file {play}")
        digits = sub.get_str("digits", None)
        if digits is not None and (not digits or any(d not in "0123456789*#ABCDabcd" for d in digits)):
            raise sub.error("digits", f"expected DTMF digits 0-9 * # A-D, got {digits!r}")
        try:
            out.append(Action(at=_seconds(sub, "at"), after=_seconds(sub, "after"),
                              after_silence=_seconds(sub, "after_silence"), digits=digits,
                              play=play, hangup=sub.get_bool("hangup", False),
                              flash=sub.get_bool("flash", False)))
        except ValueError as exc:
            raise sub.error(None, str(exc)) from None
    return out


def _number(node: Node, key: str) -> str | None:
    """An E1 address (DNIS/ANI): digits 0-9 only (MF R2 has no * or #)."""
    text = node.get_str(key, None)
    if text is not None and (not text or not text.isdigit() or not text.isascii()):
        raise node.error(key, f"expected digits 0-9 (MF R2 carries no other), got {text!r}")
    return text


def _called_list(node: Node) -> list[str]:
    """`called` of an arrival process: one DNIS or a list, cycled."""
    value = node.get("called")
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if value is None:
        return []
    if not items or not all(isinstance(v, str) and v.isdigit() and v.isascii() for v in items):
        raise node.error("called", f"expected a DNIS or a list of them (digits 0-9), got {value!r}")
    return list(items)


def _category(node: Node) -> str | int | None:
    value = node.get("category")
    if value is None:
        return None
    try:
        category_signal(value)
    except ValueError as exc:
        raise node.error("category", str(exc)) from None
    return value


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read a scenario TOML file; errors are ConfigError (FILE:LINE: key ...)."""
    cfg = load(path)
    base = os.path.dirname(os.path.abspath(path))
    cfg.check_keys({"scenario", "caller", "arrivals", "agent", "dial", "outbound", "fault"})
    head = cfg.table("scenario")
    head.check_keys({"start", "duration", "seed"})
    sc = Scenario(start=read_start(head, "start", DEFAULT_START) if "start" in head else None,
                  duration=head.get_float("duration", None, min=0.0),
                  seed=head.get_int("seed", 0, min=0), file=cfg.file)
    for n in cfg.tables("caller"):
        n.check_keys({"at", "line", "number", "name", "script", "hangup_after", "give_up",
                      "glare", "called", "category", "clear_back_hold"})
        line = _target(n, "line")
        glare = n.get_bool("glare", False)
        if glare and (line.chans is None or len(line.chans) != 1):
            raise n.error("line", f"a glare caller needs one line (\"BOARD:CHANNEL\"), "
                                  f"got {str(line)!r}")
        sc.callers.append(CallerSpec(
            n.get_float("at", min=0.0), line, n.get_str("number", None),
            n.get_str("name", None), _script(n, base), _seconds(n, "hangup_after"),
            _seconds(n, "give_up", 60.0), _where(n), glare, _number(n, "called"), _category(n),
            _seconds(n, "clear_back_hold", 0.0)))
    for n in cfg.tables("arrivals"):
        n.check_keys({"lines", "rate", "rate_per_hour", "start", "stop", "limit", "numbers",
                      "number_prefix", "script", "hangup_after", "hangup_after_mean", "give_up",
                      "called", "category"})
        if ("rate" in n) == ("rate_per_hour" in n):
            raise n.error(None, "give exactly one of rate (calls per second) or rate_per_hour")
        rate = n.get_float("rate") if "rate" in n else n.get_float("rate_per_hour") / 3600.0
        if rate <= 0:
            raise n.error("rate" if "rate" in n else "rate_per_hour", "must be > 0")
        if "hangup_after" in n and "hangup_after_mean" in n:
            raise n.error("hangup_after_mean", "give hangup_after (fixed) or hangup_after_mean, not both")
        sc.arrivals.append(ArrivalSpec(
            _target(n, "lines"), rate, _seconds(n, "start", 0.0), _seconds(n, "stop"),
            n.get_int("limit", None, min=0), n.get_list("numbers", [], item=str),
            n.get_str("number_prefix", "138"), _script(n, base), _seconds(n, "hangup_after"),
            _seconds(n, "hangup_after_mean"), _seconds(n, "give_up", 60.0), _where(n),
            _called_list(n), _category(n)))
    for n in cfg.tables("agent"):
        n.check_keys({"phones", "answer_after", "script", "hangup_after", "never_answer"})
        never = n.get_bool("never_answer", False)
        sc.agents.append(AgentSpec(_target(n, "phones"), None if never else _seconds(n, "answer_after", 2.0),
                                   _script(n, base), _seconds(n, "hangup_after"), _where(n)))
    for n in cfg.tables("dial"):
        n.check_keys({"at", "phone", "digits", "script", "hangup_after", "dial_after"})
        digits = n.get_str("digits", "")
        if any(d not in "0123456789*#ABCDabcd" for d in digits):
            raise n.error("digits", f"expected DTMF digits 0-9 * # A-D, got {digits!r}")
        sc.dials.append(DialSpec(n.get_float("at", min=0.0), _target(n, "phone"), digits,
                                 _script(n, base), _seconds(n, "hangup_after"),
                                 _seconds(n, "dial_after", 1.0), _where(n)))
    for n in cfg.tables("outbound"):
        n.check_keys({"lines", "result", "ring", "script", "hangup_after", "called", "charge"})
        sc.outbound.append(OutboundPlan(_target(n, "lines", required=False),
                                        n.get_str("result", "answer", choices=RESULTS),
                                        _seconds(n, "ring", 3.0), _script(n, base),
                                        _seconds(n, "hangup_after"), _where(n),
                                        _number(n, "called"), n.get_bool("charge", True)))
    for n in cfg.tables("fault"):
        n.check_keys({"at", "kind", "line", "span", "board", "alarm", "counter", "n", "abcd"})
        kind = n.get_str("kind", choices=FAULT_KINDS)
        f = FaultSpec(n.get_float("at", min=0.0), kind, where=_where(n))
        if kind in ("alarm-set", "alarm-clear", "counter"):
            text = n.get_str("span")
            try:
                board, idx = split_board(text, what="SPAN")
            except ValueError:
                board, idx = "", ""
            if not idx.isdigit():
                raise n.error("span", f"expected BOARD:SPAN like \"e1site:0\", got {text!r}")
            f.span = (board, int(idx))
            if kind == "counter":
                f.counter = n.get_str("counter", choices=COUNTERS)
                f.n = n.get_int("n", 1, min=1)
            else:
                f.alarm = n.get_str("alarm")
                try:
                    alarm_bit(f.alarm)
                except ValueError as exc:
                    raise n.error("alarm", str(exc)) from None
        elif kind == "board-removed":
            f.board = n.get_str("board")
        else:
            f.line = _target(n, "line")
            if kind == "cas":
                text = n.get_str("abcd")
                if len(text) != 4 or any(c not in "01" for c in text):
                    raise n.error("abcd", f"expected four bits like \"0011\", got {text!r}")
                f.abcd = int(text, 2)
        sc.faults.append(f)
    return sc



