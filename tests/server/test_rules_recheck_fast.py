"""The recording rules' fast paths give what the whole chain gives.

`RecordingRules.recheck` runs on every IVR branch, queue and agent a call
takes; it asks `_verdict` (record or not, forced or not: no explanation)
and runs the whole chain only when the decision changes (a stop, a start).
At answer the server asks `decide` without the explanation (`explain=False`):
only the deciding check is written. The recording service skips `PauseControl.digit` when no ``[[pause_dtmf]]``
rule exists and `ivr_command` when no IVR pause rule exists and no DTMF
pause runs (`hears_keys`, `hears_ivr`). Hypothesis draws rule sets the way an
administrator writes them (TOML: docs/recording-rules.md) and calls that
move through IVR branches, queues and agents, with reloads between, and
holds each fast path to the full one: the same decisions, explanations
(every check's text), pauses and deadlines.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from voiceserver.ivr import flows
from voiceserver.recording.rules import CallFacts, PauseControl, RecordingRules, loads_rules

SH = ZoneInfo("Asia/Shanghai")
DIRS = ("inbound", "outbound", "internal")
AGENTS = ["1001", "1002", "1003", "alice"]
NUMBERS = ["13800138000", "13912345678", "4008001234", "95588"]
QUEUES = ["sales", "support", "vip"]
MENUS = ["main", "account", "card", "billing"]
BOARDS = {"h": 8, "e": 10}            # channels per board; board e has spans of 5 channels


def span_of(board: str, chan: int) -> int | None:
    return chan // 5 if board == "e" else None


# ------------------------------------------------------------------ rule sets
agent_items = st.lists(st.sampled_from(["1001", "1002-1003", "alice", "!1002"]), min_size=1,
                       max_size=3)
chan_items = st.lists(st.sampled_from(["h:0-3", "e:span1", "h", "!h:2", "e:7"]), min_size=1,
                      max_size=3)
number_items = st.lists(st.sampled_from(["138*", "13912345678", "400*", "!4008001234", "9*"]),
                        min_size=1, max_size=3)


def _list_text(items: list[str]) -> str:
    return '"' + ",".join(items) + '"'


@st.composite
def rule_texts(draw) -> str:
    """A rules file: lists, selections (IVR branches often unset), sampling, a window, pauses."""
    out = []
    if draw(st.booleans()):
        out.append("pause_on_ivr = [" + ", ".join(
            f'"{m}"' for m in draw(st.lists(st.sampled_from(MENUS), max_size=2))) + "]")
    if draw(st.booleans()):
        out.append("pause_while_collecting = [" + ", ".join(
            f'"{m}"' for m in draw(st.lists(st.sampled_from(MENUS), max_size=2))) + "]")
    out.append("[select]")
    dirs = [d for d in DIRS if draw(st.integers(0, 3)) > 0]
    out.append("directions = [" + ", ".join(f'"{d}"' for d in dirs) + "]")
    queues = draw(st.dictionaries(st.sampled_from(QUEUES), st.booleans(), max_size=3))
    out.append("queues = {" + ", ".join(f"{k} = {str(v).lower()}" for k, v in queues.items()) + "}")
    out.append(f"other_queues = {str(draw(st.booleans())).lower()}")
    # no IVR selection half the time: the IVR path can then never stop a call
    ivr = draw(st.one_of(st.just({}), st.dictionaries(st.sampled_from(MENUS), st.booleans(),
                                                      max_size=3)))
    out.append("ivr = {" + ", ".join(f"{k} = {str(v).lower()}" for k, v in ivr.items()) + "}")
    out.append(f"other_ivr = {str(draw(st.booleans())).lower()}")
    out.append("[sampling]")
    out += [f"{d} = {draw(st.sampled_from([0, 50, 100]))}" for d in DIRS if draw(st.booleans())]
    for stage in ("never", "force", "exclude"):
        keys = []
        if draw(st.integers(0, 2)) == 0:
            keys.append(f"agents = {_list_text(draw(agent_items))}")
        if stage == "exclude" and draw(st.integers(0, 2)) == 0:
            keys.append(f"channels = {_list_text(draw(chan_items))}")
        for key in ("numbers", "callers", "called"):
            if draw(st.integers(0, 4)) == 0:
                keys.append(f"{key} = {_list_text(draw(number_items))}")
        if keys:
            out += [f"[{stage}]"] + keys
    if draw(st.booleans()):
        out += ["[[window]]", 'name = "day"', 'days = "mon-fri"', 'from = "08:00"', 'to = "20:00"']
    if draw(st.booleans()):
        out += ["[[pause_dtmf]]", f'start = "{draw(st.sampled_from(["*9", "*", "12"]))}"',
                'stop = "#"', f"max_digits = {draw(st.integers(1, 6))}", "timeout_seconds = 1"]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ calls
@st.composite
def first_facts(draw) -> CallFacts:
    board = draw(st.sampled_from(sorted(BOARDS)))
    chan = draw(st.integers(0, BOARDS[board] - 1))
    number = st.one_of(st.none(), st.sampled_from(NUMBERS))
    return CallFacts(f"c{draw(st.integers(0, 10 ** 6))}", draw(st.sampled_from(DIRS)), board,
                     chan, span_of(board, chan), draw(number), draw(number))


# what happens to a call after its answer, as the server sees it (RecordingService)
change = st.one_of(
    st.tuples(st.just("ivr"), st.sampled_from(MENUS)),        # a new IVR branch
    st.tuples(st.just("queue"), st.sampled_from(QUEUES)),      # joins a queue
    st.tuples(st.just("agent"), st.sampled_from(AGENTS)),      # an agent takes it
    st.tuples(st.just("reload"), st.integers(0, 1)))           # the rules are reloaded


def apply_change(facts: CallFacts, what: str, value: object) -> CallFacts:
    if what == "ivr":
        return facts if value in facts.ivr_path else replace(facts,
                                                              ivr_path=facts.ivr_path + (value,))
    if what == "queue":
        return replace(facts, queue=value)
    if what == "agent":
        return replace(facts, agent=value)
    return facts


def full_verdict(rules: RecordingRules, facts: CallFacts, at: dt.datetime) -> tuple[bool, bool]:
    """(record, forced) as the whole chain says it in the middle of a call."""
    checks, record, _, _, _ = rules._chain(facts, at, mid_call=True)
    forced = any(c.stage.startswith("force.") and c.verdict == "record" for c in checks)
    return record, forced


@settings(max_examples=250, deadline=None)
@given(st.lists(rule_texts(), min_size=2, max_size=2), first_facts(),
       st.integers(0, 7 * 1440), st.lists(change, max_size=10))
def test_recheck_gives_what_the_whole_chain_gives(texts, facts, minute, changes):
    """Decision by decision: record, rule, reason, every check's text, facts, stop, discard."""
    rule_sets = [loads_rules(t, f"r{i}.toml") for i, t in enumerate(texts)]
    rules = rule_sets[0]
    at = dt.datetime(2026, 11, 23, tzinfo=SH) + dt.timedelta(minutes=minute)
    fast = full = rules.decide(facts, at)
    for what, value in changes:
        at += dt.timedelta(seconds=7)
        if what == "reload":
            rules = rule_sets[value]
        facts = apply_change(facts, what, value)
        assert rules._verdict(facts) == full_verdict(rules, facts, at), (texts, facts)
        fast = rules.recheck(fast, facts, at)
        full = rules._recheck_explained(full, facts, at)
        assert fast == full, (texts, facts)
        assert fast.as_dict() == full.as_dict()
        assert fast.reason == full.reason and fast.checks == full.checks


@settings(max_examples=400, deadline=None)
@given(rule_texts(), first_facts(), st.integers(0, 7 * 1440), st.lists(change, max_size=6))
def test_a_decision_without_its_explanation_is_the_same_decision(text, facts, minute, changes):
    """The server's decide (explain=False) at answer: record, rule, reason, pending, facts,
    and the one check that decided, as the whole chain says them; then the same rechecks."""
    rules = loads_rules(text, "r.toml")
    at = dt.datetime(2026, 11, 23, tzinfo=SH) + dt.timedelta(minutes=minute)
    for what, value in changes[:2]:          # facts known at answer (an IVR branch, a queue...)
        facts = apply_change(facts, what, value)
    full = rules.decide(facts, at)
    short = rules.decide(facts, at, explain=False)
    deciding = [c for c in full.checks if c.verdict in ("record", "no-record")][:1]
    assert short.checks == tuple(deciding), (text, facts)
    assert replace(short, checks=full.checks) == full, (text, facts)
    for what, value in changes[2:]:
        at += dt.timedelta(seconds=7)
        facts = apply_change(facts, what, value)
        short, full = rules.recheck(short, facts, at), rules.recheck(full, facts, at)
        assert replace(short, checks=full.checks) == full, (text, facts)


def test_an_ivr_branch_set_false_stops_the_call_with_the_chains_explanation():
    rules = loads_rules("[select]\nivr = {card = false}\n", "r.toml")
    at = dt.datetime(2026, 11, 23, 10, tzinfo=SH)
    facts = CallFacts("c1", "inbound", "h", 1)
    d = rules.decide(facts, at)
    d = rules.recheck(d, replace(facts, ivr_path=("main",)), at)
    assert d.record and d.facts.ivr_path == ("main",)
    d = rules.recheck(d, replace(facts, ivr_path=("main", "card")), at)
    assert d.stopped and not d.record and d.reason == "stopped: IVR branch 'card' is not recorded"
    assert [c.verdict for c in d.checks if c.stage == "ivr"] == ["no-record"]


def test_without_ivr_rules_the_ivr_path_is_not_read_but_the_decision_carries_it():
    rules = loads_rules("[select]\nqueues = {vip = true}\nother_queues = false\n", "r.toml")
    assert not rules._ivr_off
    at = dt.datetime(2026, 11, 23, 10, tzinfo=SH)
    facts = CallFacts("c1", "inbound", "h", 1)
    d = rules.decide(facts, at)
    d = rules.recheck(d, replace(facts, ivr_path=("main", "card")), at)
    assert d.record and d.facts.ivr_path == ("main", "card")
    d = rules.recheck(d, replace(facts, ivr_path=("main", "card"), queue="sales"), at)
    assert d.stopped and d.reason == ("stopped: queue 'sales' is not one of the recorded queues "
                                      "(vip)")


def test_a_force_rule_starts_a_recording_mid_call_with_the_chains_explanation():
    rules = loads_rules('[select]\ndirections = ["outbound"]\n[force]\nagents = "1001"\n', "r.toml")
    at = dt.datetime(2026, 11, 23, 10, tzinfo=SH)
    facts = CallFacts("c1", "inbound", "h", 1)
    d = rules.decide(facts, at)
    assert not d.record
    assert rules.recheck(d, replace(facts, agent="1002"), at) is d
    d = rules.recheck(d, replace(facts, agent="1001"), at)
    assert d.record and d.started_mid_call
    assert d.reason == "started during the call: agent 1001 is in force.agents (1001)"


# ------------------------------------------------------------------ pausing
@st.composite
def pause_texts(draw) -> str:
    """Pause rules only, each of the three kinds there or not (a DTMF pause most often)."""
    out = []
    for key in ("pause_on_ivr", "pause_while_collecting"):
        if draw(st.booleans()):
            menus = draw(st.lists(st.sampled_from(MENUS), max_size=2))
            out.append(f"{key} = [" + ", ".join(f'"{m}"' for m in menus) + "]")
    if draw(st.integers(0, 3)) > 0:
        out += ["[[pause_dtmf]]", f'start = "{draw(st.sampled_from(["*", "*9"]))}"',
                'stop = "#"', f"max_digits = {draw(st.integers(1, 6))}", "timeout_seconds = 1"]
    return "\n".join(out) + "\n"


pause_event = st.one_of(
    st.tuples(st.just("digit"), st.tuples(st.sampled_from(list("**9129#")), st.booleans())),
    st.tuples(st.just("ivr"), st.one_of(
        st.sampled_from(MENUS).map(lambda m: flows.Log(flows.PathStep(0, "menu", m))),
        st.sampled_from(MENUS).map(lambda m: flows.Collect(m, None)),   # spec: not read
        st.sampled_from(["key", "input", "invalid", "timeout", "play"]).map(
            lambda w: flows.Log(flows.PathStep(0, w, "x"))),
        st.sampled_from([flows.Hangup("done"), flows.Queue("sales"), flows.Voicemail("1"),
                         flows.Transfer("95588", "e")]))),
    st.tuples(st.just("command"), st.booleans()),
    st.tuples(st.just("tick"), st.none()))


def feed(pc: PauseControl, kind: str, arg: object, t: int, *, skip: bool) -> list:
    """One event; ``skip``: as the recording service does, not at all when the control says
    it cannot hear it (`hears_keys`, `hears_ivr`)."""
    if kind == "digit":
        return pc.digit(arg[0], t, secret=arg[1]) if pc.hears_keys or not skip else []
    if kind == "ivr":
        return pc.ivr_command(arg, t) if pc.hears_ivr or not skip else []
    if kind == "command":
        return pc.command(arg, t)
    return pc.tick(t)


@settings(max_examples=250, deadline=None)
@given(pause_texts(), st.lists(st.tuples(pause_event, st.integers(0, 1500)), max_size=40))
def test_skipping_what_the_pause_control_cannot_hear_changes_nothing(text, events):
    rules = loads_rules(text, "p.toml")
    skipping, full = rules.pause_control(), rules.pause_control()
    t = 0
    for (kind, arg), step_ms in events:
        t += step_ms
        out = feed(skipping, kind, arg, t, skip=True)
        assert out == feed(full, kind, arg, t, skip=False), (text, kind, arg)
        assert (skipping.paused, skipping.deadline) == (full.paused, full.deadline)


def test_an_ivr_step_ends_a_dtmf_pause_whose_time_is_up_without_ivr_pause_rules():
    pc = loads_rules('[[pause_dtmf]]\nstart = "*"\ntimeout_seconds = 1\n', "p.toml").pause_control()
    assert not pc.hears_ivr and pc.hears_keys
    assert [c.paused for c in pc.digit("*", 100)] == [True]
    assert pc.hears_ivr                      # a DTMF pause runs: its timeout may end it
    out = pc.ivr_command(flows.Log(flows.PathStep(0, "menu", "main")), 1100)
    assert [(c.paused, c.t) for c in out] == [(False, 1100)]
    assert not pc.hears_ivr


def test_without_pause_rules_keys_and_ivr_steps_are_not_heard():
    pc = loads_rules("pause_on_ivr = []\n", "p.toml").pause_control()
    assert not pc.hears_keys and not pc.hears_ivr
    assert pc.digit("*", 0) == [] and pc.ivr_command(flows.Hangup("x"), 0) == []
    assert [c.paused for c in pc.command(True, 5)] == [True]
    assert not pc.hears_ivr                  # a command pause is not the IVR's to end
