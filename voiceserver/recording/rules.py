"""Recording rules: which calls are recorded, which recordings are kept, and why.

Administrators write the rules in TOML (a file of its own, or the
``[recording]`` section of the server config; docs/recording-rules.md is
the reference). This module turns them into an immutable
``RecordingRules`` and evaluates them as pure functions of the rules, the
call's facts and an instant, so a decision can be re-made and explained
later (``voiceboard rules explain``) and tested without a server.

Precedence (one order, no exceptions):

1. ``never`` lists (agents, numbers): not recorded;
2. ``force`` lists: recorded, whatever follows says;
3. ``exclude`` lists (agents, channels, numbers): not recorded;
4. windows (holidays, ``[[window]]``), then the selections: direction,
   queue, IVR branch;
5. sampling, per direction, deterministic per call id;
6. otherwise recorded.

Every ``Decision`` carries the rule that made it (``RuleRef``: file, line,
key, name) and the chain of checks in that order. The decision types live in
``voiceserver.recording.decision``, the agent/channel/number lists in
``voiceserver.recording.rulelists``; this module is the rules themselves:
windows, sampling, precedence, pausing, loading and warnings.

Entry points::

    rules = load_rules(path)                 # or RecordingRules.from_node(node, plan)
    d = rules.decide(facts, at)              # at answer
    d = rules.recheck(d, facts, at)          # facts changed, or new rules after a reload
    k = rules.keep(d, duration_s)            # at the end
    pc = rules.pause_control()               # per recorded call: when to pause / resume
"""
from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from boarddrv.tomlconfig import ErrorCollector, Node, format_key
from boarddrv.tomlconfig import load as load_toml
from boarddrv.tomlconfig import loads as loads_toml
from voiceserver.acd.agentid import is_numeric_id
from voiceserver.config.sections import parse_dates, parse_numbering
from voiceserver.ivr.blacklist import NumberingPlan, normalize_number
from voiceserver.ivr.schedule import DAY_NAMES, Schedule, TimeRange, parse_days, parse_hhmm
from voiceserver.recording.decision import CallFacts, Check, Decision, Keep, Pending, RuleRef, RuleWarning
from voiceserver.recording.rulelists import (
    ChanItem,
    ListRule,
    NumberPattern,
    agent_item,
    parse_agents,
    parse_channels,
    parse_numbers,
)

__all__ = ["RecordingRules", "CallFacts", "Decision", "Keep", "Check", "RuleRef", "Pending",
           "RuleWarning", "PauseControl", "PauseChange", "load_rules", "loads_rules", "agent_warnings",
           "sample_point", "parse_agents", "parse_channels", "parse_numbers",
           "DIRECTIONS", "FORMATS", "LAYOUTS", "TOP_KEYS"]

DIRECTIONS = ("inbound", "outbound", "internal")
FORMATS = ("wav-pcm16", "wav-alaw")
LAYOUTS = ("mono", "stereo")
TOP_KEYS = ("timezone", "format", "layout", "min_seconds", "max_seconds", "holidays", "workdays",
            "workday_as", "numbering", "window", "select", "sampling", "never", "force",
            "exclude", "pause_on_ivr", "pause_while_collecting", "pause_by_command", "pause_dtmf")
LIST_KEYS = ("agents", "numbers", "callers", "called")


# ------------------------------------------------------------------ windows
@dataclass(frozen=True)
class Window:
    name: str
    schedule: Schedule         # one range; Schedule gives midnight and holiday semantics
    ref: RuleRef
    text: str


@dataclass(frozen=True)
class PauseDtmf:
    name: str
    start: str
    stop: str
    max_digits: int
    timeout_ms: int
    ref: RuleRef


# ----------------------------------------------------------------- sampling
def sample_point(seed: str, call_id: str) -> float:
    """A call's fixed point in [0, 1): sha256(seed:call_id); sampled if < rate/100."""
    h = hashlib.sha256(f"{seed}:{call_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def _pct(x: float) -> str:
    return f"{x:g}%"


# -------------------------------------------------------------- the rules
@dataclass(frozen=True)
class RecordingRules:
    """A validated, immutable rule set. Evaluate with decide / recheck / keep."""

    file: str
    timezone: str = "Asia/Shanghai"
    format: str = "wav-pcm16"
    layout: str = "stereo"
    min_seconds: float = 0.0
    max_seconds: float | None = None
    plan: NumberingPlan = NumberingPlan()
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()
    workday_as: int = 0
    windows: tuple[Window, ...] = ()
    never: tuple[ListRule, ...] = ()
    force: tuple[ListRule, ...] = ()
    exclude: tuple[ListRule, ...] = ()
    directions: frozenset[str] = frozenset(DIRECTIONS)
    queues: tuple[tuple[str, bool], ...] = ()
    other_queues: bool = True
    ivr: tuple[tuple[str, bool], ...] = ()
    other_ivr: bool = True
    sampling: tuple[tuple[str, float], ...] = (("inbound", 100.0), ("outbound", 100.0),
                                               ("internal", 100.0))
    seed: str = "voiceboard"
    pause_on_ivr: tuple[str, ...] = ()
    pause_while_collecting: tuple[str, ...] = ()
    pause_by_command: bool = True
    pause_dtmf: tuple[PauseDtmf, ...] = ()
    refs: tuple[tuple[str, RuleRef], ...] = ()   # setting key -> where written
    warnings: tuple[RuleWarning, ...] = ()
    source_hash: str = ""

    @classmethod
    def from_node(cls, node: Node, plan: NumberingPlan | None = None) -> RecordingRules:
        """Validate the rules in table ``node`` (a file's root, or a server config's [recording])."""
        return _from_node(node, plan)

    # -- where --------------------------------------------------------------
    def ref(self, key: str) -> RuleRef:
        r = self._refs.get(key)
        return r if r is not None else RuleRef(self.file, None, key)  # not written: a default

    @cached_property
    def _refs(self) -> dict[str, RuleRef]:
        return dict(self.refs)

    # -- what the rules read, worked out once per rule set --------------------
    @cached_property
    def _queue_setting(self) -> dict[str, bool]:
        """select.queues as a mapping (queue -> recorded or not)."""
        return self._selections[0][1]

    @cached_property
    def _ivr_off(self) -> frozenset[str]:
        """The IVR branches whose selection is false: the only way the IVR path can stop a
        call. Empty (no such rule): a call's IVR branches never change whether it records."""
        return frozenset(n for n, v in self.ivr if not v)

    @cached_property
    def _selections(self) -> tuple[tuple[str, dict[str, bool], frozenset[str], str, bool, RuleRef,
                                         str, str], ...]:
        """The queue and IVR selections as the chain reads them: (stage, setting, names
        recorded, their text, other_*, its ref, noun, key)."""
        out = []
        for stage, table, other, noun, key in (
                ("queue", self.queues, self.other_queues, "queue", "queues"),
                ("ivr", self.ivr, self.other_ivr, "IVR branch", "ivr")):
            on = frozenset(n for n, v in table if v)
            out.append((stage, dict(table), on, ", ".join(sorted(on)), other,
                        self.ref(f"select.other_{key}"), noun, key))
        return tuple(out)

    @cached_property
    def _sampling(self) -> dict[str, float]:
        return dict(self.sampling)

    @cached_property
    def _any_time(self) -> Schedule:
        """The schedule of a rule set without windows: open every day but holidays."""
        return self._schedule(TimeRange(frozenset(range(7)), 0, 24 * 60))

    # -- evaluation ---------------------------------------------------------
    def decide(self, facts: CallFacts, at: dt.datetime, *, explain: bool = True) -> Decision:
        """The decision at answer time (``at``: an aware datetime).

        Without `explain` (the server at answer: nothing there reads the chain) the checks
        are only the one that decided; the decision is otherwise the same."""
        checks, record, rule, reason, pending = self._chain(facts, at, mid_call=False,
                                                            explain=explain)
        return self._decision(record, rule, reason, checks, facts, at, pending)

    def recheck(self, decision: Decision, facts: CallFacts, at: dt.datetime) -> Decision:
        """Re-evaluate a call in progress after a reload (self = the new rules) or a fact change.

        The call keeps ``decision`` unless these rules exclude it now (never,
        exclusions, or a direction/queue/IVR selection): then the recording
        stops (``stopped``), and what was recorded is discarded too when
        these rules exclude the facts it was recorded under. Windows and
        sampling are answer-time checks and are not re-made. A force rule
        may start a recording that was not running; a stopped one stays
        stopped.
        """
        _aware(at)
        record, forced = self._verdict(facts)
        if decision.record and record:       # the answers below that need no explanation
            return replace(decision, facts=facts)
        if not decision.record and (decision.stopped or not forced):
            return decision
        return self._recheck_explained(decision, facts, at)

    def _recheck_explained(self, decision: Decision, facts: CallFacts, at: dt.datetime
                           ) -> Decision:
        """`recheck` through the whole chain, its explanation included (a stop, a start)."""
        checks, record, rule, reason, pending = self._chain(facts, at, mid_call=True)
        forced = any(c.stage.startswith("force.") and c.verdict == "record" for c in checks)
        if decision.record and not record:
            before = decision.facts or facts
            _, rec_before, _, _, _ = self._chain(before, at, mid_call=True)
            return replace(decision, record=False, rule=rule, reason=f"stopped: {reason}",
                           checks=tuple(checks), facts=facts, at=at, stopped=True,
                           discard=not rec_before, pending=())
        if not decision.record and not decision.stopped and forced:
            d = self._decision(True, rule, f"started during the call: {reason}", checks, facts,
                               at, ())
            return replace(d, started_mid_call=True)
        if decision.record:
            return replace(decision, facts=facts)
        return decision

    def keep(self, decision: Decision, duration_s: float) -> Keep:
        """Keep or discard a finished recording of ``duration_s`` seconds."""
        if not decision.record and not decision.stopped:
            return Keep(False, decision.rule, f"nothing was recorded: {decision.reason}")
        if decision.stopped and decision.discard:
            return Keep(False, decision.rule, f"discarded: {decision.reason}; the rules now "
                                              f"exclude what was recorded before too")
        facts = decision.facts
        for p in decision.pending:
            have = set(facts.ivr_path) if facts and p.stage == "ivr" else (
                {facts.queue} if facts and facts.queue else set())
            if not have & p.wanted:
                what = "queue" if p.stage == "queue" else "IVR branch"
                return Keep(False, p.rule, f"discarded: the call never reached a recorded {what} "
                                           f"({', '.join(sorted(p.wanted))})")
        if duration_s < decision.min_seconds:
            return Keep(False, self.ref("min_seconds"),
                        f"discarded: {duration_s:g} s is shorter than min_seconds = "
                        f"{decision.min_seconds:g}")
        if decision.max_seconds is not None and duration_s >= decision.max_seconds:
            return Keep(True, self.ref("max_seconds"),
                        f"kept: stopped at max_seconds = {decision.max_seconds:g} "
                        f"(the call went on)")
        if decision.stopped:
            return Keep(True, decision.rule, f"kept the part before the stop "
                                             f"({duration_s:g} s): {decision.reason}")
        return Keep(True, decision.rule, f"kept: {duration_s:g} s, at least min_seconds = "
                                         f"{decision.min_seconds:g}")

    def pause_control(self) -> PauseControl:
        """A fresh per-call pause/resume helper for these rules."""
        return PauseControl(self)

    # -- the chain ----------------------------------------------------------
    def _decision(self, record: bool, rule: RuleRef, reason: str, checks: list[Check],
                  facts: CallFacts, at: dt.datetime, pending: tuple[Pending, ...]) -> Decision:
        return Decision(record, rule, reason, self.format, self.layout, self.max_seconds,
                        self.min_seconds, tuple(checks), facts, at, pending if record else ())

    def _norm(self, number: str | None) -> str | None:
        if not number:
            return None
        try:
            return normalize_number(number, self.plan)
        except ValueError:
            return None

    def _list_hit(self, lr: ListRule, facts: CallFacts) -> tuple[str, Any] | None:
        """What of this call list rule ``lr`` names, or None: ("agent", None),
        ("channel", the ChanItem) or (the side, caller or called, and its NumberPattern)."""
        if lr.agents is not None:
            return ("agent", None) if facts.agent in lr.agents else None
        if lr.channels is not None:
            item = lr.channels.match(facts.board, facts.chan, facts.span)
            return ("channel", item) if item is not None else None
        assert lr.numbers is not None
        for side in _SIDES[lr.key]:
            p = lr.numbers.match(self._norm(getattr(facts, side)))
            if p is not None:
                return side, p
        return None

    def _list_match(self, lr: ListRule, facts: CallFacts) -> str | None:
        """Why list rule ``lr`` names this call, or None."""
        hit = self._list_hit(lr, facts)
        if hit is None:
            return None
        what, item = hit
        if what == "agent":
            assert lr.agents is not None
            return f"agent {facts.agent} is in {lr.ref.key} ({lr.agents.text})"
        if what == "channel":
            return f"channel {facts.channel_text()} is in {lr.ref.key} ({item.text()})"
        return f"{what} {getattr(facts, what)} matches {item.written!r} in {lr.ref.key}"

    def _list_miss(self, lr: ListRule, facts: CallFacts) -> str:
        """The 'pass' sentence for a list that does not name the call."""
        if lr.agents is not None:
            return f"agent {facts.agent or '(none)'} is not in {lr.ref.key} ({lr.agents.text})"
        if lr.channels is not None:
            return f"channel {facts.channel_text()} is not in {lr.ref.key} ({lr.channels.text})"
        said = " and ".join(f"{s} {getattr(facts, s) or '(none)'}" for s in _SIDES[lr.key])
        return f"{said}: no match in {lr.ref.key}"

    def _chain(self, facts: CallFacts, at: dt.datetime, *, mid_call: bool, explain: bool = True
               ) -> tuple[list[Check], bool, RuleRef, str, tuple[Pending, ...]]:
        """Run every check in precedence order; the first decisive one decides.

        Without `explain` the checks that decide nothing are not written (their sentences
        were most of a decision's cost) and the chain stops at the one that decides."""
        _aware(at)
        checks: list[Check] = []
        decided: tuple[bool, RuleRef, str] | None = None

        def add(stage: str, verdict: str, reason: str, rule: RuleRef | None) -> None:
            nonlocal decided
            if decided is not None:
                checks.append(Check(stage, "not reached", reason, rule))
                return
            checks.append(Check(stage, verdict, reason, rule))
            if verdict in ("record", "no-record"):
                assert rule is not None
                decided = (verdict == "record", rule, reason)

        def result() -> tuple[list[Check], bool, RuleRef, str, tuple[Pending, ...]]:
            assert decided is not None
            record, rule, reason = decided
            return checks, record, rule, reason, tuple(pending)

        pending: list[Pending] = []
        for stage, lists, verdict in (("never", self.never, "no-record"),
                                      ("force", self.force, "record"),
                                      ("exclude", self.exclude, "no-record")):
            if not lists and explain:
                add(stage, "skip", f"no {stage} lists", None)
            for lr in lists:
                why = self._list_match(lr, facts)
                if why is not None:
                    add(f"{stage}.{lr.key}", verdict, why, lr.ref)
                    if not explain:
                        return result()
                elif explain:
                    add(f"{stage}.{lr.key}", "pass", self._list_miss(lr, facts), lr.ref)

        if mid_call:
            if explain:
                add("window", "skip", "windows are checked at answer only", None)
        else:
            stage, verdict, reason, rule = self._window_check(at, explain)
            if explain or verdict != "pass":
                add(stage, verdict, reason, rule)
            if decided is not None and not explain:
                return result()

        r = self.ref("select.directions")
        if facts.direction in self.directions:
            if explain:
                add("direction", "pass", f"{facts.direction} calls are selected", r)
        else:
            add("direction", "no-record", f"{facts.direction} calls are not selected "
                                          f"(select.directions = {sorted(self.directions)})", r)
            if not explain:
                return result()

        for (stage, setting, on, on_text, other, other_ref, noun, key), have in zip(
                self._selections, ([facts.queue] if facts.queue else [], list(facts.ivr_path)), strict=True):
            off = [n for n in have if setting.get(n) is False]
            if off:
                add(stage, "no-record", f"{noun} {off[0]!r} is not recorded",
                    self.ref(f"select.{key}.{off[0]}"))
                if not explain:
                    return result()
            elif any(n in on for n in have):
                if explain:
                    n = next(n for n in have if n in on)
                    add(stage, "pass", f"{noun} {n!r} is recorded", self.ref(f"select.{key}.{n}"))
            elif other:
                if explain:
                    add(stage, "pass", f"{noun} {have[-1]!r} has no rule (other_{key} = true)"
                        if have else f"no {noun} reached yet, other_{key} = true", other_ref)
            elif have and stage == "queue":
                add(stage, "no-record", f"{noun} {have[0]!r} is not one of the recorded "
                                        f"queues ({on_text or 'none'})", other_ref)
                if not explain:
                    return result()
            else:
                # not reached yet: record now, settle at the end (keep)
                if decided is None:
                    pending.append(Pending(stage, frozenset(on), other_ref))
                if explain:
                    add(stage, "pending", f"kept only if the call reaches {noun} "
                                          f"{on_text or '(none)'} (other_{key} = false)", other_ref)

        if mid_call:
            if explain:
                add("sampling", "skip", "sampling is decided at answer only", None)
        else:
            rate = self._sampling.get(facts.direction, 100.0)
            r = self.ref(f"sampling.{facts.direction}")
            if rate >= 100.0:
                if explain:
                    add("sampling", "pass", f"{facts.direction} sampling is {_pct(rate)}", r)
            else:
                point = sample_point(self.seed, facts.call_id)
                if point * 100.0 < rate:
                    if explain:
                        add("sampling", "pass", f"call {facts.call_id} is in the {_pct(rate)} "
                                                f"{facts.direction} sample (point {point:.4f})", r)
                else:
                    add("sampling", "no-record", f"call {facts.call_id} is outside the "
                                                 f"{_pct(rate)} {facts.direction} sample "
                                                 f"(point {point:.4f})", r)
                    if not explain:
                        return result()
        add("default", "record", "no rule stops it: recorded", RuleRef(self.file, None, "default"))
        return result()

    def _verdict(self, facts: CallFacts) -> tuple[bool, bool]:
        """(record, forced) of the chain in the middle of a call (``_chain(mid_call=True)``),
        without its explanation: what `recheck` needs to see that nothing changes.

        The same precedence as `_chain`, stage by stage; stages the rules cannot
        decide at (no list, every direction, no IVR branch set false) cost
        nothing. tests/server/test_rules_recheck_fast.py holds the two to agreement.
        """
        for lr in self.never:
            if self._list_hit(lr, facts) is not None:
                return False, False
        for lr in self.force:
            if self._list_hit(lr, facts) is not None:
                return True, True
        for lr in self.exclude:
            if self._list_hit(lr, facts) is not None:
                return False, False
        if facts.direction not in self.directions:
            return False, False
        if facts.queue:
            recorded = self._queue_setting.get(facts.queue)
            if recorded is False or (recorded is None and not self.other_queues):
                return False, False
        if self._ivr_off and not self._ivr_off.isdisjoint(facts.ivr_path):
            return False, False
        return True, False

    def _window_check(self, at: dt.datetime, explain: bool = True
                      ) -> tuple[str, str, str, RuleRef | None]:
        """Without `explain` a pass says nothing (its sentence is not read)."""
        local = at.astimezone(ZoneInfo(self.timezone))
        if not self.windows:
            if self._any_time.is_open(at):
                return "window", "pass", f"no windows: any time ({self._stamp(local)})" if explain else "", None
            return "window", "no-record", f"{local.date()} is a holiday ({self._stamp(local)})", \
                self.ref("holidays")
        for w in self.windows:
            if w.schedule.is_open(at):
                return ("window", "pass", f"{self._stamp(local)} is in window {w.name!r} ({w.text})"
                        if explain else "", w.ref)
        day = local.date()
        if day in self.holidays and day not in self.workdays:
            return "window", "no-record", f"{day} is a holiday and no window covers " \
                                          f"{self._stamp(local)}", self.ref("holidays")
        return "window", "no-record", f"{self._stamp(local)} is outside every window", self.ref("window")

    def _stamp(self, local: dt.datetime) -> str:
        return f"{local:%a %Y-%m-%d %H:%M} {self.timezone}"

    def _schedule(self, tr: TimeRange) -> Schedule:
        return Schedule((tr,), "in", "out", self.timezone, self.holidays, self.workdays,
                        self.workday_as)

    # -- description (audit diffs) ----------------------------------------
    def describe(self) -> dict[str, str]:
        """Every rule and setting as key -> canonical text; two rule sets diff key by key."""
        out: dict[str, str] = {
            "timezone": self.timezone, "format": self.format, "layout": self.layout,
            "min_seconds": f"{self.min_seconds:g}",
            "max_seconds": "none" if self.max_seconds is None else f"{self.max_seconds:g}",
            "numbering": (f"+{self.plan.country_code} trunk {self.plan.trunk_prefix!r} intl "
                          f"{self.plan.international_prefix!r} local_area "
                          f"{self.plan.local_area!r}"),
            "holidays": _dates_text(self.holidays), "workdays": _dates_text(self.workdays),
            "workday_as": DAY_NAMES[self.workday_as],
            "select.directions": ",".join(d for d in DIRECTIONS if d in self.directions),
            "select.other_queues": str(self.other_queues).lower(),
            "select.other_ivr": str(self.other_ivr).lower(),
            "sampling.seed": self.seed,
            "pause_on_ivr": ",".join(self.pause_on_ivr),
            "pause_while_collecting": ",".join(self.pause_while_collecting),
            "pause_by_command": str(self.pause_by_command).lower(),
        }
        for d, rate in self.sampling:
            out[f"sampling.{d}"] = _pct(rate)
        for n, v in self.queues:
            out[f"select.queues.{n}"] = "on" if v else "off"
        for n, v in self.ivr:
            out[f"select.ivr.{n}"] = "on" if v else "off"
        for w in self.windows:
            out[f"window.{w.name}"] = w.text
        for lr in self.never + self.force + self.exclude:
            out[f"{lr.stage}.{lr.key}"] = lr.describe()
        for p in self.pause_dtmf:
            out[f"pause_dtmf.{p.name}"] = (f"start {p.start!r} stop {p.stop!r} max_digits "
                                           f"{p.max_digits} timeout {p.timeout_ms / 1000:g} s")
        return out


_SIDES = {"numbers": ("caller", "called"), "callers": ("caller",), "called": ("called",)}


def _aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("recording rules need an aware datetime (with tzinfo)")


def _dates_text(days: frozenset[dt.date]) -> str:
    return ",".join(d.isoformat() for d in sorted(days))


# ------------------------------------------------------------------ pausing
@dataclass(frozen=True)
class PauseChange:
    """Pause (``paused=True``) or resume the recording at ``t`` (ms); the recorder marks the gap."""

    paused: bool
    t: int
    reason: str
    rule: RuleRef


class PauseControl:
    """When a recording pauses and resumes; fed IVR and DTMF events, sans-I/O.

    Sources (any active one pauses): the IVR is in a ``pause_on_ivr`` menu;
    digits are being collected in a ``pause_while_collecting`` menu; a
    ``[[pause_dtmf]]`` key sequence was typed and its stop key, digit count
    or timeout has not come yet; a pause command. A resume command ends
    only a command pause: rule-driven pauses protect card numbers and an
    operator cannot lift them. Time ``t`` is the server clock in ms.
    """

    def __init__(self, rules: RecordingRules) -> None:
        self.rules = rules
        self._active: dict[str, tuple[str, RuleRef]] = {}
        self._recent = ""
        self._dtmf: tuple[PauseDtmf, int, int] | None = None   # rule, digits seen, deadline
        self._keys_pause = bool(rules.pause_dtmf)
        self._ivr_pauses = bool(rules.pause_on_ivr or rules.pause_while_collecting)

    @property
    def paused(self) -> bool:
        return bool(self._active)

    @property
    def hears_keys(self) -> bool:
        """False if no key can change anything (no [[pause_dtmf]] rule): `digit` may be skipped."""
        return self._keys_pause

    @property
    def hears_ivr(self) -> bool:
        """False if no IVR step can change anything now (no pause_on_ivr or
        pause_while_collecting rule, no DTMF pause whose time may run out):
        `ivr_command` may be skipped."""
        return self._ivr_pauses or self._dtmf is not None

    @property
    def deadline(self) -> int | None:
        """When ``tick`` must next be called (a DTMF pause's timeout), or None."""
        return self._dtmf[2] if self._dtmf else None

    def _change(self, t: int, key: str, on: bool, reason: str = "",
                rule: RuleRef | None = None) -> list[PauseChange]:
        return self._apply(t, [(key, on, reason, rule)])

    def _apply(self, t: int, updates: list[tuple[str, bool, str, RuleRef | None]]
               ) -> list[PauseChange]:
        """Apply several source changes as one instant: at most one PauseChange."""
        was = self.paused
        started: tuple[str, RuleRef] | None = None
        ended: tuple[str, RuleRef] | None = None
        for key, on, reason, rule in updates:
            if on:
                assert rule is not None
                self._active[key] = started = (reason, rule)
            else:
                ended = self._active.pop(key, None) or ended
        if self.paused == was:
            return []
        if self.paused:
            assert started is not None
            return [PauseChange(True, t, *started)]
        assert ended is not None
        return [PauseChange(False, t, f"end of: {ended[0]}", ended[1])]

    def menu(self, name: str | None, t: int) -> list[PauseChange]:
        """The IVR entered menu ``name`` (None: the call left the IVR)."""
        on = name is not None and name in self.rules.pause_on_ivr
        return self._apply(t, self._expired(t) + [
            ("collect", False, "", None),
            ("menu", on, f"IVR menu {name!r} (pause_on_ivr)" if on else "",
             self.rules.ref("pause_on_ivr") if on else None)])

    def collecting(self, menu: str | None, t: int) -> list[PauseChange]:
        """Digit collection started in ``menu`` (None: the collection ended)."""
        if menu is not None and menu in self.rules.pause_while_collecting:
            return self._apply(t, self._expired(t) + [
                ("collect", True, f"collecting digits in menu {menu!r} (pause_while_collecting)",
                 self.rules.ref("pause_while_collecting"))])
        return self._apply(t, self._expired(t) + [("collect", False, "", None)])

    def digit(self, d: str, t: int, *, secret: bool = False) -> list[PauseChange]:
        """A DTMF key from either side of the call.

        A key that is an IVR's secret input (``secret``, or typed while an
        IVR pause is on: a card number going into a menu) counts toward an
        active DTMF pause but never toward a start sequence, and is not
        kept; of other keys only the last few a start sequence needs are.
        """
        out = self.tick(t)
        if self._dtmf is not None:
            rule, n, deadline = self._dtmf
            if d in rule.stop:
                self._dtmf = None
                return out + self._change(t, "dtmf", False)
            n += 1
            if n >= rule.max_digits:
                self._dtmf = None
                return out + self._change(t, "dtmf", False)
            self._dtmf = (rule, n, deadline)
            return out
        if secret or "collect" in self._active or "menu" in self._active:
            self._recent = ""
            return out
        longest = max((len(r.start) for r in self.rules.pause_dtmf), default=0)
        self._recent = (self._recent + d)[-longest:] if longest else ""
        for rule in self.rules.pause_dtmf:
            if self._recent.endswith(rule.start):
                self._recent = ""
                self._dtmf = (rule, 0, t + rule.timeout_ms)
                return out + self._change(t, "dtmf", True, f"keys {rule.start!r} "
                                                           f"(pause_dtmf {rule.name})", rule.ref)
        return out

    def tick(self, t: int) -> list[PauseChange]:
        """The clock: ends a DTMF pause whose timeout has passed."""
        return self._apply(t, self._expired(t))

    def _expired(self, t: int) -> list[tuple[str, bool, str, RuleRef | None]]:
        """A DTMF pause whose timeout has passed by `t` ends with whatever else happens at `t`."""
        if self._dtmf is not None and t >= self._dtmf[2]:
            self._dtmf = None
            return [("dtmf", False, "", None)]
        return []

    def command(self, pause: bool, t: int, who: str = "command") -> list[PauseChange]:
        """A pause/resume command (API, agent key); refused (empty list) if not allowed."""
        if not self.rules.pause_by_command:
            return []
        return self._apply(t, self._expired(t) + [("command", pause, f"pause by {who}",
                                                   self.rules.ref("pause_by_command"))])

    def ivr_command(self, cmd: Any, t: int) -> list[PauseChange]:
        """Convenience for the server: feed each voiceserver.ivr.flows command as it is carried out.

        ``Collect(menu, spec)`` starts a collection; ``Log(PathStep("menu",
        name))`` enters a menu; a step that ends input (key, input, invalid,
        timeouts, fallback) ends the collection; Hangup/Queue/Voicemail/
        Transfer leave the IVR.
        """
        kind = type(cmd).__name__
        if kind == "Collect":
            return self.collecting(cmd.menu, t)
        if kind == "Log":
            what = cmd.step.what
            if what == "menu":
                return self.menu(cmd.step.detail, t)
            if what in ("key", "input", "invalid", "first_timeout", "inter_timeout",
                        "total_timeout", "timeout", "fallback", "caller_hangup"):
                return self.collecting(None, t)
            return []
        if kind in ("Hangup", "Queue", "Voicemail", "Transfer"):
            return self.menu(None, t)
        return []


# ------------------------------------------------------------------ loading
def load_rules(path: str | os.PathLike[str], plan: NumberingPlan | None = None) -> RecordingRules:
    """Load a rules file (the rules at its top level). ``plan``: the server's [numbering]."""
    cfg = load_toml(path)
    return _with_hash(_from_node(cfg, plan), cfg.text)


def loads_rules(text: str, file: str = "<string>", plan: NumberingPlan | None = None
                ) -> RecordingRules:
    cfg = loads_toml(text, file)
    return _with_hash(_from_node(cfg, plan), text)


def _with_hash(rules: RecordingRules, text: str) -> RecordingRules:
    return replace(rules, source_hash=hashlib.sha256(text.encode()).hexdigest())


def _ref(node: Node, key: str | None, name: str = "") -> RuleRef:
    """Where ``key`` of table ``node`` is written (the full key: recording.x in a server config)."""
    path = node.keypath + ((key,) if key is not None else ())
    line = node.config.line_of(path) if path else None
    return RuleRef(node.config.file, line, format_key(path) if path else "(root)", name)


def _numbering(node: Node, default: NumberingPlan | None) -> NumberingPlan:
    if "numbering" not in node:
        return default or NumberingPlan()
    return parse_numbering(node.table("numbering"))


def _from_node(node: Node, plan: NumberingPlan | None = None) -> RecordingRules:
    """Validate the rules in table ``node`` (a file's root or [recording]); ConfigError if bad."""
    node.check_keys(TOP_KEYS)
    file = node.config.file
    refs: dict[str, RuleRef] = {}

    def keyref(key: str) -> RuleRef:
        r = refs[key] = _ref(node, key)
        return r

    tz = node.get_str("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(tz)
    except (KeyError, ValueError):
        raise node.error("timezone", f"unknown timezone {tz!r} (an IANA name such as "
                                     f"'Asia/Shanghai')") from None
    for k in ("timezone", "format", "layout", "min_seconds", "max_seconds", "holidays",
              "workdays", "pause_on_ivr", "pause_while_collecting", "pause_by_command"):
        keyref(k)
    refs["window"] = _ref(node, "window")
    fmt = node.get_str("format", "wav-pcm16", choices=FORMATS)
    layout = node.get_str("layout", "stereo", choices=LAYOUTS)
    min_s = node.get_float("min_seconds", 0.0, min=0)
    max_s = node.get_float("max_seconds", 0.0, min=0)
    max_seconds = max_s if max_s > 0 else None
    if max_seconds is not None and min_s >= max_seconds:
        raise node.error("min_seconds", f"min_seconds = {min_s:g} is not below max_seconds = "
                                        f"{max_s:g}: no recording could be kept")
    the_plan = _numbering(node, plan)
    holidays = parse_dates(node, "holidays")
    workdays = parse_dates(node, "workdays")
    workday_as = DAY_NAMES.index(node.get_str("workday_as", "mon", choices=DAY_NAMES))

    errs = ErrorCollector()    # each window, list and pause rule on its own: all errors at once
    windows: list[Window] = []
    names: set[str] = set()

    def window(i: int, w: Node) -> None:
        w.check_keys({"name", "days", "from", "to"})
        name = w.get_str("name", f"window[{i}]")
        if name in names:
            raise w.error("name", f"two windows named {name!r}")
        names.add(name)
        days_v = w.get("days", "mon-sun")
        if not isinstance(days_v, (str, list)):
            raise w.error("days", "expected days like \"mon-fri\" or [\"sat\", \"sun\"]")
        try:
            days = parse_days(days_v) if days_v != [] else frozenset()
        except ValueError as exc:
            raise w.error("days", str(exc)) from None
        try:
            start = parse_hhmm(w.get_str("from", "00:00"))
        except ValueError as exc:
            raise w.error("from", str(exc)) from None
        try:
            end = parse_hhmm(w.get_str("to", "24:00"), allow_24=True)
        except ValueError as exc:
            raise w.error("to", str(exc)) from None
        if start == end:
            raise w.error("to", "an empty window (from == to)")
        dtext = ",".join(DAY_NAMES[d] for d in sorted(days)) or "no days"
        text = f"{dtext} {w.get_str('from', '00:00')}-{w.get_str('to', '24:00')}"
        ref = _ref(w, None, name=name)
        sched = Schedule((TimeRange(days, start, end),), "in", "out", tz, holidays, workdays,
                         workday_as)
        windows.append(Window(name, sched, ref, text))
        refs[f"window.{name}"] = ref

    for i, w in enumerate(node.tables("window")):
        errs.attempt(window, i, w)

    lists: dict[str, list[ListRule]] = {"never": [], "force": [], "exclude": []}
    for stage in lists:
        t = node.table(stage)
        allowed = (("agents", "channels") if stage == "exclude" else ("agents",)) + LIST_KEYS[1:]
        t.check_keys(allowed)
        for key in allowed:
            if key not in t:
                continue
            ref = _ref(t, key)
            v = t.get(key)
            lr = errs.attempt(_list_rule, stage, key, ref, v, t, the_plan)
            if lr is not None:
                lists[stage].append(lr)
            refs[f"{stage}.{key}"] = ref

    sel = node.table("select")
    sel.check_keys({"directions", "queues", "other_queues", "ivr", "other_ivr"})
    dirs = sel.get_list("directions", list(DIRECTIONS), item=str)
    for i, d in enumerate(dirs):
        if d not in DIRECTIONS:
            raise sel.error(("directions", i), f"expected one of {', '.join(DIRECTIONS)}, "
                                               f"got {d!r}")
    refs["select.directions"] = _ref(sel, "directions")
    tables: dict[str, list[tuple[str, bool]]] = {}
    for key in ("queues", "ivr"):
        t = sel.table(key)
        tables[key] = [(n, t.get_bool(n)) for n in t.keys()]
        for n in t.keys():
            refs[f"select.{key}.{n}"] = _ref(t, n)
        refs[f"select.other_{key}"] = _ref(sel, f"other_{key}")
    other_queues = sel.get_bool("other_queues", True)
    other_ivr = sel.get_bool("other_ivr", True)

    smp = node.table("sampling")
    smp.check_keys(DIRECTIONS + ("seed",))
    sampling = tuple((d, smp.get_float(d, 100.0, min=0, max=100)) for d in DIRECTIONS)
    for d in DIRECTIONS:
        refs[f"sampling.{d}"] = _ref(smp, d)
    seed = smp.get_str("seed", "voiceboard")

    pdtmf: list[PauseDtmf] = []

    def pause_dtmf(i: int, p: Node) -> None:
        p.check_keys({"name", "start", "stop", "max_digits", "timeout_seconds"})
        start_keys = p.get_str("start")
        if not start_keys or not re.fullmatch(r"[0-9*#A-D]{1,16}", start_keys):
            raise p.error("start", f"expected 1-16 DTMF keys, got {start_keys!r}")
        stop = p.get_str("stop", "#")
        if not re.fullmatch(r"[0-9*#A-D]*", stop):
            raise p.error("stop", f"expected DTMF keys (any one ends the pause), got {stop!r}")
        pdtmf.append(PauseDtmf(p.get_str("name", f"pause_dtmf[{i}]"), start_keys, stop,
                               p.get_int("max_digits", 32, min=1, max=64),
                               int(p.get_float("timeout_seconds", 30.0, min=1, max=3600) * 1000),
                               _ref(p, None, name=p.get_str("name", ""))))

    for i, p in enumerate(node.tables("pause_dtmf")):
        errs.attempt(pause_dtmf, i, p)
    errs.check()

    return RecordingRules(
        file=file, timezone=tz, format=fmt, layout=layout, min_seconds=min_s,
        max_seconds=max_seconds, plan=the_plan, holidays=holidays, workdays=workdays,
        workday_as=workday_as, windows=tuple(windows), never=tuple(lists["never"]),
        force=tuple(lists["force"]), exclude=tuple(lists["exclude"]),
        directions=frozenset(dirs), queues=tuple(tables["queues"]), other_queues=other_queues,
        ivr=tuple(tables["ivr"]), other_ivr=other_ivr, sampling=sampling, seed=seed,
        pause_on_ivr=tuple(node.get_list("pause_on_ivr", [], item=str)),
        pause_while_collecting=tuple(node.get_list("pause_while_collecting", [], item=str)),
        pause_by_command=node.get_bool("pause_by_command", True),
        pause_dtmf=tuple(pdtmf), refs=tuple(refs.items()),
        warnings=tuple(_warnings(node, windows, lists, dirs, sampling, tables, other_queues,
                                 other_ivr)))


def _list_rule(stage: str, key: str, ref: RuleRef, value: Any, node: Node,
               plan: NumberingPlan) -> ListRule:
    """One `never`/`force`/`exclude` list (ErrorCollector.attempt collects what it raises)."""
    if key == "agents":
        return ListRule(stage, key, ref, agents=parse_agents(value, node, key))
    if key == "channels":
        return ListRule(stage, key, ref, channels=parse_channels(value, node, key))
    return ListRule(stage, key, ref, numbers=parse_numbers(value, node, key, plan))


# ----------------------------------------------------------------- warnings
def _warn(node: Node, key: Any, message: str) -> RuleWarning:
    e = node.error(key, message)
    return RuleWarning(e.file, e.line, e.key or "", e.message)


def _warnings(node: Node, windows: Sequence[Window], lists: dict[str, list[ListRule]],
              dirs: list[str], sampling: tuple[tuple[str, float], ...],
              tables: dict[str, list[tuple[str, bool]]], other_queues: bool,
              other_ivr: bool) -> list[RuleWarning]:
    """What ``rules check`` warns about: rules that never apply or contradict each other."""
    out: list[RuleWarning] = []
    # windows: no day, overlap (minutes of the week, a midnight range spilling into the next day)
    week = 7 * 1440
    cover: list[list[tuple[int, int]]] = []     # half-open minute-of-week intervals
    for w, wn in zip(windows, node.tables("window"), strict=False):
        tr = w.schedule.hours[0]
        if not tr.days:
            out.append(_warn(wn, "days", f"window {w.name!r} is on no day: it never opens"))
        iv: list[tuple[int, int]] = []
        for d in tr.days:
            a, b = d * 1440 + tr.start, d * 1440 + (tr.end + 1440 if tr.wraps else tr.end)
            iv += [(a, min(b, week))] + ([(0, b - week)] if b > week else [])
        cover.append(iv)
    for i in range(len(windows)):
        for j in range(i):
            both = [max(a, c) for a, b in cover[i] for c, d in cover[j] if max(a, c) < min(b, d)]
            if both:
                m = min(both)
                out.append(_warn(node.tables("window")[i], None,
                                 f"window {windows[i].name!r} overlaps window {windows[j].name!r} "
                                 f"(e.g. {DAY_NAMES[m // 1440]} {m % 1440 // 60:02d}:"
                                 f"{m % 60:02d})"))
    # shadowed lists: never before force before exclude
    def item_shadowed(lr: ListRule, by: ListRule) -> bool:
        return lr.key == by.key or (by.key == "numbers" and lr.key in ("callers", "called"))

    order = [("never", lists["never"]), ("force", lists["force"]), ("exclude", lists["exclude"])]
    for k, (stage, stage_lists) in enumerate(order):
        for lr in stage_lists:
            t = node.table(stage)
            for earlier_stage, earlier in order[:k]:
                for by in earlier:
                    if not item_shadowed(lr, by):
                        continue
                    for item, where, negated in _items(lr):
                        if negated:
                            continue
                        if _covers(by, item):
                            out.append(_warn(t, where, f"{_item_text(item)!r} is unreachable: "
                                                       f"{earlier_stage}.{by.key} covers it and "
                                                       f"{earlier_stage} is checked first"))
            if lr.agents is not None and not lr.agents:
                out.append(_warn(t, lr.key, "names no agent (only negations?): matches nothing"))
            if lr.channels is not None and not lr.channels:
                out.append(_warn(t, lr.key, "names no channel (only negations?): matches nothing"))
            if lr.numbers is not None and not lr.numbers:
                out.append(_warn(t, lr.key, "names no number (only negations?): matches nothing"))
    sel = node.table("select")
    if not dirs:
        out.append(_warn(sel, "directions", "no direction selected: nothing is ever recorded"))
    smp = node.table("sampling")
    for direction, rate in sampling:
        if rate == 0 and direction in dirs:
            out.append(_warn(smp, direction, f"sampling {direction} is 0%: no {direction} call is recorded "
                                             f"(leave {direction} out of select.directions to say so)"))
    for key, other in (("queues", other_queues), ("ivr", other_ivr)):
        if not other and not any(v for _, v in tables[key]):
            out.append(_warn(sel, f"other_{key}", f"other_{key} = false and no select.{key} "
                                                  f"entry is true: every recording is discarded"))
    return sorted(out, key=lambda w: w.line or 0)


def agent_warnings(rules: RecordingRules, agents: Iterable[str], where: str) -> list[RuleWarning]:
    """Agent list items that name no agent of the server (``agents``: its agent ids).

    A rule for an agent the server does not have never applies; ``where``
    says which server config the agents come from, for the message.
    """
    ids = set(agents)
    numeric = sorted(int(a) for a in ids if is_numeric_id(a))
    out: list[RuleWarning] = []
    for lr in rules.never + rules.force + rules.exclude:
        if lr.agents is None:
            continue
        for item, _, negated in lr.agents.items:
            if negated:       # leaving out an agent the server lacks changes nothing
                continue
            lo, hi = agent_item(item)
            if lo is None:
                missing = item not in ids
            else:
                assert hi is not None
                i = bisect.bisect_left(numeric, lo)
                missing = i == len(numeric) or numeric[i] > hi
            if missing:
                what = "no agent" if lo is not None and lo != hi else "no such agent"
                out.append(RuleWarning(lr.ref.file, lr.ref.line, lr.ref.key,
                                       f"{item}: {what} in {where} "
                                       f"[agents] (it has: {', '.join(sorted(ids)) or 'none'}); "
                                       f"this item never applies"))
    return out


def _items(lr: ListRule) -> Iterable[tuple[Any, Any, bool]]:
    s = lr.agents or lr.channels or lr.numbers
    if s is None:
        return ()
    if lr.agents is not None:
        return lr.agents.items
    return s.items


def _covers(by: ListRule, item: Any) -> bool:
    if by.agents is not None and isinstance(item, str):
        return by.agents.covers_item(item)
    if by.channels is not None and isinstance(item, ChanItem):
        return by.channels.covers_item(item)
    if by.numbers is not None and isinstance(item, NumberPattern):
        return by.numbers.covers_item(item)
    return False


def _item_text(item: Any) -> str:
    if isinstance(item, ChanItem):
        return item.text()
    if isinstance(item, NumberPattern):
        return item.written
    return str(item)
