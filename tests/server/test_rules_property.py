"""Rule evaluation against a reference model: the precedence order transcribed plainly.

Hypothesis generates rule sets (as TOML text, the way an administrator
writes them) and call facts; the model below re-states the documented
order with sets and fnmatch, no code shared with voiceserver.recording.rules except
the sampling hash (whose definition is the documented one).
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from voiceserver.recording.rules import CallFacts, loads_rules

SH = ZoneInfo("Asia/Shanghai")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AGENT_IDS = list(range(1000, 1012))
AGENT_NAMES = ["alice", "bob"]
NUMBERS = ["13800138000", "13800138001", "13912345678", "4008001234", "4001234567", "95588"]
BOARDS = {"h": 8, "e": 10}          # channels per board; board e has spans of 5 channels
QUEUES = ["q1", "q2", "q3"]
MENUS = ["m1", "m2", "m3"]
HOLIDAY = dt.date(2026, 11, 25)     # a Wednesday
DIRS = ("inbound", "outbound", "internal")


def span_of(board: str, chan: int) -> int | None:
    return chan // 5 if board == "e" else None


# ----------------------------------------------------------------- rule sets
@dataclass
class Model:
    lists: dict[str, dict[str, list[tuple[str, bool]]]] = field(default_factory=dict)
    window: tuple[frozenset[int], int, int] | None = None
    holiday: bool = False
    directions: tuple[str, ...] = DIRS
    queues: dict[str, bool] = field(default_factory=dict)
    other_queues: bool = True
    ivr: dict[str, bool] = field(default_factory=dict)
    other_ivr: bool = True
    sampling: dict[str, float] = field(default_factory=dict)

    def toml(self) -> str:
        out = []
        if self.holiday:
            out.append(f"holidays = [{HOLIDAY.isoformat()}]")
        out.append(f"[select]\ndirections = {list(self.directions)!r}".replace("'", '"'))
        out.append("queues = {" + ", ".join(f"{k} = {str(v).lower()}" for k, v in self.queues.items()) + "}")
        out.append(f"other_queues = {str(self.other_queues).lower()}")
        out.append("ivr = {" + ", ".join(f"{k} = {str(v).lower()}" for k, v in self.ivr.items()) + "}")
        out.append(f"other_ivr = {str(self.other_ivr).lower()}")
        out.append("[sampling]")
        out += [f"{d} = {r}" for d, r in self.sampling.items()]
        for stage, keys in self.lists.items():
            out.append(f"[{stage}]")
            for key, items in keys.items():
                text = ",".join(("!" if neg else "") + item for item, neg in items)
                out.append(f'{key} = "{text}"')
        if self.window is not None:
            days, start, end = self.window
            out.append("[[window]]\nname = \"w\"")
            out.append("days = [" + ", ".join(f'"{DAYS[d]}"' for d in sorted(days)) + "]")
            out.append(f'from = "{start:02d}:00"\nto = "{end:02d}:00"')
        return "\n".join(out) + "\n"


agent_item = st.one_of(
    st.tuples(st.sampled_from(AGENT_IDS), st.integers(0, 3)).map(
        lambda t: f"{t[0]}-{t[0] + t[1]}" if t[1] else str(t[0])),
    st.sampled_from(AGENT_NAMES))
chan_item = st.one_of(
    st.just("h"), st.just("e"),
    st.tuples(st.sampled_from(sorted(BOARDS)), st.integers(0, 7), st.integers(0, 2)).map(
        lambda t: f"{t[0]}:{t[1]}-{t[1] + t[2]}" if t[2] else f"{t[0]}:{t[1]}"),
    st.integers(0, 1).map(lambda s: f"e:span{s}"))
number_item = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(["138*", "1380013800?", "400*", "9*", "*", "139????????"]))


def items(item: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, bool]]]:
    # at least one positive item first (an item list of negations alone names nothing)
    return st.tuples(item, st.lists(st.tuples(item, st.booleans()), max_size=3)).map(
        lambda t: [(t[0], False)] + t[1])


@st.composite
def models(draw) -> Model:
    m = Model()
    for stage in ("never", "force", "exclude"):
        keys = {}
        if draw(st.booleans()):
            keys["agents"] = draw(items(agent_item))
        if stage == "exclude" and draw(st.booleans()):
            keys["channels"] = draw(items(chan_item))
        for key in ("numbers", "callers", "called"):
            if draw(st.integers(0, 3)) == 0:
                keys[key] = draw(items(number_item))
        if keys:
            m.lists[stage] = keys
    if draw(st.booleans()):
        start, end = draw(st.integers(0, 23)), draw(st.integers(1, 24))
        if start != end:
            m.window = (frozenset(draw(st.sets(st.integers(0, 6), min_size=1))), start, end)
    m.holiday = draw(st.booleans())
    m.directions = tuple(d for d in DIRS if draw(st.integers(0, 4)) > 0)
    m.queues = draw(st.dictionaries(st.sampled_from(QUEUES), st.booleans(), max_size=3))
    m.other_queues = draw(st.booleans())
    m.ivr = draw(st.dictionaries(st.sampled_from(MENUS), st.booleans(), max_size=3))
    m.other_ivr = draw(st.booleans())
    m.sampling = {d: draw(st.sampled_from([0, 30, 50, 100])) for d in DIRS if draw(st.booleans())}
    return m


@st.composite
def facts(draw) -> tuple[CallFacts, dt.datetime]:
    board = draw(st.sampled_from(sorted(BOARDS)))
    chan = draw(st.integers(0, BOARDS[board] - 1))
    agent = draw(st.one_of(st.none(), st.sampled_from([str(a) for a in AGENT_IDS] + AGENT_NAMES)))
    number = st.one_of(st.none(), st.sampled_from(NUMBERS))
    f = CallFacts(call_id=f"c{draw(st.integers(0, 10**6))}",
                  direction=draw(st.sampled_from(DIRS)), board=board, chan=chan,
                  span=span_of(board, chan), caller=draw(number), called=draw(number),
                  agent=agent, queue=draw(st.one_of(st.none(), st.sampled_from(QUEUES))),
                  ivr_path=tuple(draw(st.lists(st.sampled_from(MENUS), max_size=3))))
    # Monday 2026-11-23 .. the next Monday, whole and odd minutes
    at = dt.datetime(2026, 11, 23, tzinfo=SH) + dt.timedelta(minutes=draw(st.integers(0, 8 * 1440)))
    return f, at


# ----------------------------------------------------------- the reference
def agent_set(items_: list[tuple[str, bool]]) -> set[str]:
    def expand(item: str) -> set[str]:
        if item in AGENT_NAMES:
            return {item}
        a, _, b = item.partition("-")
        return {str(n) for n in range(int(a), int(b or a) + 1)}
    pos = set().union(*[expand(i) for i, neg in items_ if not neg])
    return pos - set().union(*[expand(i) for i, neg in items_ if neg])


def chan_set(items_: list[tuple[str, bool]]) -> set[tuple[str, int]]:
    def expand(item: str) -> set[tuple[str, int]]:
        board, _, rest = item.partition(":")
        every = {(board, c) for c in range(BOARDS[board])}
        if not rest:
            return every
        if rest.startswith("span"):
            return {(b, c) for b, c in every if span_of(b, c) == int(rest[4:])}
        a, _, b = rest.partition("-")
        return {(board, c) for c in range(int(a), int(b or a) + 1)}
    pos = set().union(*[expand(i) for i, neg in items_ if not neg])
    return pos - set().union(*[expand(i) for i, neg in items_ if neg])


def number_in(items_: list[tuple[str, bool]], number: str | None) -> bool:
    if number is None:
        return False
    if any(neg and fnmatch.fnmatchcase(number, p) for p, neg in items_):
        return False
    return any(not neg and fnmatch.fnmatchcase(number, p) for p, neg in items_)


def in_window(m: Model, at: dt.datetime) -> bool:
    local = at.astimezone(SH)
    day, minute = local.date(), local.hour * 60 + local.minute
    yesterday = day - dt.timedelta(days=1)

    def open_day(d: dt.date, days: frozenset[int]) -> bool:
        return d.weekday() in days and not (m.holiday and d == HOLIDAY)
    if m.window is None:
        return not (m.holiday and day == HOLIDAY)
    days, start, end = m.window[0], m.window[1] * 60, m.window[2] * 60
    if start < end:
        return open_day(day, days) and start <= minute < end
    return (open_day(day, days) and minute >= start) or (open_day(yesterday, days) and minute < end)


def reference(m: Model, f: CallFacts, at: dt.datetime,
              mid_call: bool = False) -> tuple[bool, str, set[str]]:
    """(record, key of the deciding rule, stages left pending) in the documented order.

    ``mid_call``: a recheck, where windows and sampling are not re-made."""
    for stage, verdict in (("never", False), ("force", True), ("exclude", False)):
        keys = m.lists.get(stage, {})
        order = ["agents", "channels", "numbers", "callers", "called"]
        for key in (k for k in order if k in keys):
            if key == "agents":
                hit = f.agent is not None and f.agent in agent_set(keys[key])
            elif key == "channels":
                hit = (f.board, f.chan) in chan_set(keys[key])
            else:
                sides = {"numbers": (f.caller, f.called), "callers": (f.caller,),
                         "called": (f.called,)}[key]
                hit = any(number_in(keys[key], n) for n in sides)
            if hit:
                return verdict, f"{stage}.{key}", set()
    if not mid_call and not in_window(m, at):
        local = at.astimezone(SH).date()
        return False, ("holidays" if m.holiday and local == HOLIDAY else "window"), set()
    if f.direction not in m.directions:
        return False, "select.directions", set()
    pending = set()
    if f.queue is not None and m.queues.get(f.queue) is False:
        return False, f"select.queues.{f.queue}", set()
    if f.queue is not None and not m.queues.get(f.queue) and not m.other_queues:
        return False, "select.other_queues", set()
    if f.queue is None and not m.other_queues:
        pending.add("queue")
    off = [b for b in f.ivr_path if m.ivr.get(b) is False]
    if off:
        return False, f"select.ivr.{off[0]}", set()
    if not any(m.ivr.get(b) for b in f.ivr_path) and not m.other_ivr:
        pending.add("ivr")
    rate = m.sampling.get(f.direction, 100)
    if rate < 100 and not mid_call:
        h = hashlib.sha256(f"voiceboard:{f.call_id}".encode()).digest()
        if int.from_bytes(h[:8], "big") / 2 ** 64 * 100 >= rate:
            return False, f"sampling.{f.direction}", set()
    return True, "default", pending


@settings(max_examples=200, deadline=None)
@given(models(), st.lists(facts(), min_size=1, max_size=8))
def test_decide_agrees_with_the_reference_model(m: Model, calls):
    rules = loads_rules(m.toml(), "gen.toml")
    for f, at in calls:
        d = rules.decide(f, at)
        record, key, pending = reference(m, f, at)
        assert (d.record, d.rule.key) == (record, key), (m.toml(), f, at, d.reason)
        assert {p.stage for p in d.pending} == pending
        decided = [c for c in d.checks if c.verdict in ("record", "no-record")]
        assert len(decided) == 1 and decided[0].rule == d.rule
        assert d.checks[-1].stage == "default"


@settings(max_examples=100, deadline=None)
@given(models(), facts(), facts())
def test_recheck_stops_only_on_exclusion_and_never_restarts(m: Model, first, second):
    rules = loads_rules(m.toml(), "gen.toml")
    f1, at = first
    f2 = second[0].__class__(**{**second[0].__dict__, "call_id": f1.call_id,
                                "direction": f1.direction})
    d = rules.decide(f1, at)
    d2 = rules.recheck(d, f2, second[1])
    record2, key2, _ = reference(m, f2, at, mid_call=True)
    excluded = not record2 and key2.startswith(("never.", "exclude.", "select."))
    forced = record2 and key2.startswith("force.")
    if d.record:
        assert d2.record == (not excluded)
        assert d2.stopped == excluded
        if excluded:
            assert d2.rule.key == key2
            # the part before is kept unless the first facts are excluded too
            r1, k1, _ = reference(m, f1, at, mid_call=True)
            assert d2.discard == (not r1 and k1.startswith(("never.", "exclude.", "select.")))
    else:
        assert d2.record == forced and d2.started_mid_call == forced


# ------------------------------------------------------------------ pausing
PAUSE_RULES = """\
pause_on_ivr = ["account"]
pause_while_collecting = ["card"]
[[pause_dtmf]]
start = "*9"
stop = "#"
max_digits = 4
timeout_seconds = 5
"""

pause_event = st.one_of(
    st.tuples(st.just("menu"), st.sampled_from(["main", "account", "card", None])),
    st.tuples(st.just("collecting"), st.sampled_from(["main", "account", "card", None])),
    st.tuples(st.just("digit"), st.sampled_from(list("19*#"))),
    st.tuples(st.just("command"), st.booleans()),
    st.tuples(st.just("tick"), st.none()))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(pause_event, st.integers(0, 3000)), max_size=40))
def test_pause_control_pauses_exactly_while_a_source_holds(events):
    pc = loads_rules(PAUSE_RULES, "p.toml").pause_control()
    menu = collecting = None
    command = False
    dtmf_until: int | None = None     # deadline of a DTMF pause
    count = 0
    recent = ""
    t = 0
    paused = False
    for (kind, arg), dt_ms in events:
        t += dt_ms
        if dtmf_until is not None and t >= dtmf_until:
            dtmf_until = None
        if kind == "menu":
            menu, collecting = arg, None
            out = pc.menu(arg, t)
        elif kind == "collecting":
            collecting = arg
            out = pc.collecting(arg, t)
        elif kind == "command":
            command = arg
            out = pc.command(arg, t)
        elif kind == "tick":
            out = pc.tick(t)
        else:
            out = pc.digit(arg, t)
            if dtmf_until is not None:
                count += 1
                if arg == "#" or count >= 4:
                    dtmf_until = None
            elif menu == "account" or collecting == "card":
                recent = ""        # keys into a paused IVR menu are its (secret) input
            else:
                recent += arg
                if recent.endswith("*9"):
                    recent, count, dtmf_until = "", 0, t + 5000
        now = (menu == "account" or collecting == "card" or dtmf_until is not None or command)
        assert pc.paused == now
        assert [c.paused for c in out] == ([now] if now != paused else [])
        assert all(c.t == t for c in out)
        paused = now
