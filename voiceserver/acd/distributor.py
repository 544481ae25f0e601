"""The ACD: queues, agents, strategies and voicemail as one sans-I/O state machine.

Like websockets' protocol objects, ``Acd`` does no I/O and reads no
clock. The server feeds it what happened (a call arrived, an agent
answered, a digit, the time) and carries out the commands it returns
(ring this agent, connect, play these prompts, overflow, record). Every
method takes ``t``, the server's clock in ms, and returns a list of
commands; ``acd.deadline`` says when ``tick(t)`` is next needed.

Inputs::

    call_arrived(call_id, queue, caller, priority=None, t=..., lang=None)
    caller_left(call_id, t)            digit(call_id, d, t)
    prompt_done(call_id, t)            speech(call_id, active, t)
    voicemail(call_id, mailbox, t, caller=None, lang=None)     (the IVR's Voicemail)
    login(agent, t) / logout(agent, t) / ready(agent, t) / not_ready(agent, t, reason)
    ring_answered(agent, call_id, t)   ring_failed(agent, call_id, reason, t)
    call_ended(agent, call_id, t)      line_state(line, state, t)
    overflow_failed(call_id, reason, t) tick(t)

Commands: Ring, StopRing, Connect, Moh, Announce, Play, Beep, RecordStart,
RecordStop, Overflow, Voicemail, Hangup, Event (see each class). Every
allocation decision is an ``Event("acd.decision", ...)`` carrying the
strategy's order and the agents skipped with why; ``explain(call_id)``
returns the last one for a call.

Guarantees (the load test checks them): an agent never rings for or talks
on two calls; a busy, ringing, wrapping-up, not-ready or logged-out agent
is never rung; every call that arrives ends in exactly one outcome
(answered, abandoned, voicemail, overflowed, rejected).
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from boarddrv.chanref import ChannelRef
from voiceserver.acd.agents import Agent, AgentSpec, AgentState
from voiceserver.acd.hunt import HuntGroup, Seizure
from voiceserver.acd.queues import Member, Queue, QueueSpec, Target, WaitingCall
from voiceserver.acd.strategies import order as strategy_order
from voiceserver.acd.strategies import ring_mode
from voiceserver.core.events import ServerEventKind
from voiceserver.ivr import saynumber

__all__ = ["Acd", "AcdSettings", "VoicemailSpec", "Mailbox", "Ring", "StopRing", "Connect", "Moh", "Announce",
           "Play", "Beep", "RecordStart", "RecordStop", "Overflow", "Voicemail", "Hangup",
           "Event", "Command", "OUTCOMES", "MISS_REASONS"]

OUTCOMES = ("answered", "abandoned", "voicemail", "overflowed", "rejected")
FEATURE_ACTIONS = ("login", "logout", "ready", "not_ready")
# dialled on an agent's phone ([queues] feature_codes = { login = "*21", ... })
FEATURE_CODES = {"login": "*21", "logout": "*22", "ready": "*23", "not_ready": "*24"}
MISS_REASONS = ("no-answer", "rejected")     # ring_failed reasons that count as a miss


# ---------------------------------------------------------------- commands
@dataclass(frozen=True)
class Ring:
    """Ring `agent` for `call`: the FXS phone `line`, or `number` dialled on trunk `line`."""
    agent: str
    call: str
    line: ChannelRef | None
    number: str | None = None


@dataclass(frozen=True)
class StopRing:
    agent: str
    call: str
    reason: str


@dataclass(frozen=True)
class Connect:
    """Bridge the caller with the agent who answered (stop music/announcements first)."""
    call: str
    agent: str


@dataclass(frozen=True)
class Moh:
    call: str
    on: bool
    music: str = "default"


@dataclass(frozen=True)
class Announce:
    """Queue announcement (prompt names in `lang`); report prompt_done when it ends."""
    call: str
    prompts: tuple[str, ...]
    lang: str


@dataclass(frozen=True)
class Play:
    """Voicemail prompts (greeting, saved); report prompt_done when it ends."""
    call: str
    prompts: tuple[str, ...]
    lang: str


@dataclass(frozen=True)
class Beep:
    """The tone before recording (e.g. the tone plan's record_warning burst)."""
    call: str


@dataclass(frozen=True)
class RecordStart:
    call: str
    mailbox: str
    max_ms: int


@dataclass(frozen=True)
class RecordStop:
    call: str
    mailbox: str
    reason: str          # terminator | silence | max_length | caller_left


@dataclass(frozen=True)
class Overflow:
    """The call leaves its queue for `target`; for a number, seize `line` and dial."""
    call: str
    target: Target
    line: ChannelRef | None = None
    reason: str = ""


@dataclass(frozen=True)
class Voicemail:
    """The call goes to voicemail `mailbox` (Play, Beep and RecordStart follow)."""
    call: str
    mailbox: str


@dataclass(frozen=True)
class Hangup:
    call: str
    reason: str


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any]


Command = (Ring | StopRing | Connect | Moh | Announce | Play | Beep | RecordStart | RecordStop
           | Overflow | Voicemail | Hangup | Event)


# ---------------------------------------------------------------- voicemail
@dataclass(frozen=True)
class Mailbox:
    name: str
    greeting: tuple[str, ...] = ()      # empty: VoicemailSpec.greeting
    owner: str | None = None            # an agent, a queue, or free text


@dataclass(frozen=True)
class VoicemailSpec:
    greeting: tuple[str, ...] = ("leave_message",)
    saved: tuple[str, ...] = ("message_saved", "goodbye")
    max_ms: int = 120_000
    silence_ms: int = 5_000
    terminators: str = "#"
    mailboxes: Mapping[str, Mailbox] = field(default_factory=dict)   # empty: any name
    strict: bool = False                # True: only the named mailboxes exist


@dataclass
class _Vm:
    call_id: str
    mailbox: str
    lang: str
    queue: str | None
    state: str = "greeting"          # greeting | recording | closing
    started: int = 0
    quiet_since: int | None = None   # None while the caller speaks
    reason: str = ""


@dataclass
class _Out:
    """A call sent to an external number (overflow), for glare retry."""
    call_id: str
    target: Target
    seizure: Seizure
    queue: str


# ---------------------------------------------------------------- settings
@dataclass(frozen=True)
class AcdSettings:
    """The [agents], [queues] and [voicemail] sections, validated (voiceserver.config.server)."""

    agents: tuple[AgentSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    entries: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    hunt: Mapping[str, str] = field(default_factory=dict)     # trunk group -> method
    glare_retries: int = 2
    voicemail: VoicemailSpec = field(default_factory=VoicemailSpec)
    feature_codes: Mapping[str, str] = field(default_factory=lambda: dict(FEATURE_CODES))
    hold_recall_ms: int = 30_000     # a held caller's recall rings this long, then the call ends
    external_routing: bool = False   # ask the API's clients where a caller goes (route.request)
    routing_deadline_ms: int = 2_000  # ... and wait this long for an answer, then its queue

    def build(self, outbound: Mapping[str, Sequence[ChannelRef]], *, default_lang: str = "zh",
              normalize: Callable[[str], str] | None = None, t: int = 0) -> Acd:
        """A fresh Acd; `outbound` are the [channels.outbound] trunk groups."""
        hunt = {name: HuntGroup(name, list(lines), self.hunt.get(name, "ascending"))
                for name, lines in outbound.items()}
        return Acd(self.agents, self.queues, entries=self.entries, hunt=hunt,
                   glare_retries=self.glare_retries, voicemail=self.voicemail,
                   default_lang=default_lang, normalize=normalize, t=t)


# ---------------------------------------------------------------- the ACD
class Acd:
    """See the module docstring. Construct from specs; feed inputs; carry out commands."""

    def __init__(self, agents: Sequence[AgentSpec], queues: Sequence[QueueSpec], *,
                 entries: Mapping[str, tuple[str, int | None]] | None = None,
                 hunt: Mapping[str, HuntGroup] | None = None, glare_retries: int = 2,
                 voicemail: VoicemailSpec | None = None, default_lang: str = "zh",
                 max_overflow_hops: int = 3, t: int = 0, journal: int = 1000,
                 normalize: Callable[[str], str] | None = None) -> None:
        self.agents: dict[str, Agent] = {}
        for spec in agents:
            if spec.name in self.agents:
                raise ValueError(f"agent {spec.name} defined twice")
            self.agents[spec.name] = Agent(spec, t)
        self.queues: dict[str, Queue] = {}
        for qs in queues:
            if qs.name in self.queues:
                raise ValueError(f"queue {qs.name} defined twice")
            for m in qs.members:
                if m.agent not in self.agents:
                    raise ValueError(f"queue {qs.name}: no agent named {m.agent}")
            self.queues[qs.name] = Queue(qs)
        self.entries = dict(entries or {})
        for name, (q, _) in self.entries.items():
            if q not in self.queues:
                raise ValueError(f"queue entry {name}: no queue named {q}")
        self.hunt = dict(hunt or {})
        for a in self.agents.values():
            if a.spec.trunk is not None and a.spec.trunk not in self.hunt:
                raise ValueError(f"agent {a.name}: no trunk group {a.spec.trunk}")
        self._wrapup = any(a.spec.wrapup_ms > 0 for a in self.agents.values())
        self.glare_retries = glare_retries
        self.vm = voicemail or VoicemailSpec()
        self.lang = default_lang
        self.max_hops = max_overflow_hops
        self.normalize = normalize      # caller IDs compared with VIP lists in this form
        self.calls: dict[str, WaitingCall] = {}       # in a queue (waiting, ringing) or connected
        self.vms: dict[str, _Vm] = {}
        self.outbound: dict[str, _Out] = {}
        self.ring_lines: dict[tuple[str, str], Seizure] = {}   # (agent, call) -> trunk seizure
        self.lines: dict[ChannelRef, str] = {}            # line states the server reported
        self.seized: set[ChannelRef] = set()              # lines we handed out and not yet released
        self.outcomes: dict[str, str] = {}             # call -> outcome (every call gets one)
        self.decisions: deque[dict[str, Any]] = deque(maxlen=journal)
        self.all_busy: dict[str, bool] = {q: False for q in self.queues}   # as last published
        self._seq = 0
        self.t = t

    # -- helpers ---------------------------------------------------------
    def _agent(self, name: str) -> Agent:
        a = self.agents.get(name)
        if a is None:
            raise KeyError(f"no agent named {name!r} (have {', '.join(sorted(self.agents))})")
        return a

    def _norm(self, caller: str | None) -> str | None:
        if caller is None or self.normalize is None:
            return caller
        try:
            return self.normalize(caller)
        except ValueError:
            return caller      # an unparsable caller ID is simply no VIP

    def line_status(self, line: ChannelRef) -> str:
        """A line as the ACD sees it: idle | busy | alarm | blocked (seized by the ACD: busy)."""
        if line in self.seized:
            return "busy"
        return self.lines.get(line, "idle")

    def _reach(self, a: Agent) -> str | None:
        """Why the agent's line cannot carry a ring now, or None."""
        if a.spec.phone is not None:
            st = self.line_status(a.spec.phone)
            return None if st == "idle" else f"phone line {st}"
        group = self.hunt[a.spec.trunk or ""]
        if all(self.line_status(x) != "idle" for x in group.lines):
            return f"no free line in trunk group {group.name}"
        return None

    def _outcome(self, call_id: str, outcome: str, out: list[Command], **data: Any) -> None:
        if call_id in self.outcomes:
            raise AssertionError(f"call {call_id} already ended as {self.outcomes[call_id]}")
        self.outcomes[call_id] = outcome
        out.append(Event(ServerEventKind.ACD_OUTCOME, {"call_id": call_id, "outcome": outcome, **data}))

    # -- calls -----------------------------------------------------------
    def call_arrived(self, call_id: str, queue: str, caller: str | None = None,
                     priority: int | None = None, t: int = 0, lang: str | None = None
                     ) -> list[Command]:
        """A caller asks for `queue` (a queue or an entry alias with its own priority)."""
        self.t = t
        if call_id in self.calls or call_id in self.vms or call_id in self.outcomes:
            raise ValueError(f"call {call_id} is already known to the ACD")
        if queue in self.entries:
            queue, entry_prio = self.entries[queue]
            if priority is None:
                priority = entry_prio
        q = self.queues.get(queue)
        out: list[Command] = []
        if q is None:
            out.append(Event(ServerEventKind.ACD_ERROR, {"call_id": call_id, "error": f"no queue {queue!r}"}))
            out.append(Hangup(call_id, f"no queue {queue}"))
            self._outcome(call_id, "rejected", out, queue=queue, reason="no such queue")
            return out
        self._seq += 1
        call = WaitingCall(call_id, queue, self._norm(caller), 0, t, t, self._seq,
                           lang or self.lang)
        call.priority = q.priority_for(call.caller, priority)
        self._join(q, call, t, out)
        self._dispatch(t, out)          # (leave_when_empty too: a queue empty at join)
        return out

    # -- routed from outside: one agent (the network API's route {"agent": ...}) ----------
    def why_not_offer(self, agent: str) -> str | None:
        """Why `agent` cannot be offered a call now (logged out, not ready, busy, its line),
        or None. KeyError: no such agent."""
        a = self._agent(agent)
        if a.state is AgentState.LOGGED_OUT:
            return f"agent {agent} is not logged in"
        if a.state is not AgentState.READY:
            doing = {AgentState.NOT_READY: "not ready", AgentState.RINGING: "busy: being rung for a call",
                     AgentState.ON_CALL: "busy: on a call", AgentState.WRAP_UP: "busy: in wrap-up"}
            return f"agent {agent} is {doing.get(a.state, a.state.value)}"
        why = self._reach(a)
        return None if why is None else f"agent {agent} cannot be rung: {why}"

    def offer_to(self, call_id: str, agent: str, t: int, queue: str | None = None,
                 caller: str | None = None, lang: str | None = None) -> list[Command]:
        """Ring `agent` alone for a call, the agent chosen from outside. A caller new to the
        ACD joins `queue` first (a queue or an entry alias), the queue it waits in if the agent
        does not answer; a caller waiting in a queue stays in it. The ring lasts the queue's
        ring_timeout; unanswered or refused, the call waits in its queue like any other.
        ValueError: the agent cannot take it now (`why_not_offer`), or the call is not
        waiting (ringing or connected already)."""
        self.t = t
        why = self.why_not_offer(agent)
        if why is not None:
            raise ValueError(why)
        call = self.calls.get(call_id)
        out: list[Command] = []
        if call is None:
            if call_id in self.vms or call_id in self.outcomes or queue is None:
                raise ValueError(f"call {call_id} is not waiting in a queue")
            name, priority = self.entries.get(queue, (queue, None))
            q = self.queues.get(name)
            if q is None:
                raise KeyError(f"no queue {queue!r}")
            self._seq += 1
            call = WaitingCall(call_id, name, self._norm(caller), 0, t, t, self._seq, lang or self.lang)
            call.priority = q.priority_for(call.caller, priority)
            self._join(q, call, t, out)
            if call_id not in self.calls:        # refused (join_empty = false): its empty target
                return self._dispatch(t, out)
        elif call.state != "waiting" or call.ringing:
            raise ValueError(f"call {call_id} is {call.state} (agents: {', '.join(call.ringing) or call.agent}): "
                             f"only a waiting call can be offered to an agent")
        q = self.queues[call.queue]
        call.direct = agent
        self._ring(call, self.agents[agent], t, out)
        decision = {"call_id": call_id, "queue": q.name, "strategy": "direct", "mode": "one", "t": t,
                    "wait_ms": call.wait_ms(t), "position": q.position(call), "priority": call.priority,
                    "order": [{"agent": agent, "key": None}], "skipped": [], "chosen": [agent]}
        call.last_decision = decision
        self.decisions.append(decision)
        out.append(Event(ServerEventKind.ACD_DECISION, decision))
        return self._dispatch(t, out)

    def _join(self, q: Queue, call: WaitingCall, t: int, out: list[Command]) -> None:
        call.history.append(q.name)
        call.queue = q.name
        call.joined = t
        call.state = "waiting"
        call.offered.clear()
        call.plan.clear()
        call.next_try = t
        call.priority = max(call.priority, q.priority_for(call.caller, None))
        if not q.spec.join_empty and q.logged_in(self.agents) == 0:
            q.stats["rejected"] += 1
            out.append(Event(ServerEventKind.ACD_JOIN_REFUSED, {"call_id": call.call_id, "queue": q.name,
                                                  "why": "no agent logged in (join_empty = false)"}))
            self._leave(call, q.spec.empty_target, "queue empty", t, out, joined=False)
            return
        q.add(call)
        self.calls[call.call_id] = call
        call.next_announce = q.first_announce(t)
        out.append(Moh(call.call_id, True, q.spec.moh))
        out.append(Event(ServerEventKind.ACD_JOINED, {"call_id": call.call_id, "queue": q.name,
                                        "caller": call.caller, "priority": call.priority,
                                        "position": q.position(call)}))

    def caller_left(self, call_id: str, t: int) -> list[Command]:
        self.t = t
        out: list[Command] = []
        call = self.calls.get(call_id)
        if call is not None:
            if call.state == "connected":
                assert call.agent is not None
                return self.call_ended(call.agent, call_id, t)
            q = self.queues[call.queue]
            self._stop_rings(call, "caller hung up", t, out)
            q.remove(call)
            q.stats["abandoned"] += 1
            del self.calls[call_id]
            self._outcome(call_id, "abandoned", out, queue=q.name, wait_ms=call.wait_ms(t))
            self._dispatch(t, out)
            return out
        vm = self.vms.get(call_id)
        if vm is not None:
            if vm.state == "recording":
                out.append(RecordStop(call_id, vm.mailbox, "caller_left"))
                out.append(Event(ServerEventKind.ACD_VOICEMAIL_SAVED, {"call_id": call_id, "mailbox": vm.mailbox,
                                                         "reason": "caller_left",
                                                         "length_ms": t - vm.started}))
            else:
                out.append(Event(ServerEventKind.ACD_VOICEMAIL_ABANDONED, {"call_id": call_id,
                                                             "mailbox": vm.mailbox,
                                                             "state": vm.state}))
            del self.vms[call_id]
            return out
        o = self.outbound.pop(call_id, None)
        if o is not None and o.seizure.line is not None:
            self.seized.discard(o.seizure.line)
        return out

    def digit(self, call_id: str, d: str, t: int) -> list[Command]:
        self.t = t
        out: list[Command] = []
        call = self.calls.get(call_id)
        if call is not None and call.state in ("waiting", "ringing"):
            q = self.queues[call.queue]
            if q.spec.exit_key is not None and d == q.spec.exit_key:
                self._stop_rings(call, "caller pressed the exit key", t, out)
                q.remove(call)
                q.stats["exited"] += 1
                del self.calls[call_id]
                self._leave(call, q.spec.exit_target, f"exit key {d}", t, out)
                self._dispatch(t, out)
            return out
        vm = self.vms.get(call_id)
        if vm is not None and vm.state == "recording" and d in self.vm.terminators:
            self._vm_stop(vm, "terminator", t, out)
        return out

    def prompt_done(self, call_id: str, t: int) -> list[Command]:
        self.t = t
        out: list[Command] = []
        call = self.calls.get(call_id)
        if call is not None and call.announcing:
            call.announcing = False
            if call.state in ("waiting", "ringing"):
                out.append(Moh(call_id, True, self.queues[call.queue].spec.moh))
            return out
        vm = self.vms.get(call_id)
        if vm is not None:
            if vm.state == "greeting":
                vm.state = "recording"
                vm.started = t
                vm.quiet_since = t
                out.append(Beep(call_id))
                out.append(RecordStart(call_id, vm.mailbox, self.vm.max_ms))
            elif vm.state == "closing":
                del self.vms[call_id]
                out.append(Hangup(call_id, "voicemail done"))
        return out

    def speech(self, call_id: str, active: bool, t: int) -> list[Command]:
        """Voice activity on a recording call (silence ends the message)."""
        self.t = t
        vm = self.vms.get(call_id)
        if vm is not None and vm.state == "recording":
            vm.quiet_since = None if active else t
        return []

    def voicemail(self, call_id: str, mailbox: str, t: int, caller: str | None = None,
                  lang: str | None = None) -> list[Command]:
        """Straight to voicemail (the IVR's Voicemail command)."""
        self.t = t
        out: list[Command] = []
        if call_id in self.calls or call_id in self.vms or call_id in self.outcomes:
            raise ValueError(f"call {call_id} is already known to the ACD")
        self._start_vm(call_id, mailbox, lang or self.lang, None, t, out)
        return out

    def _start_vm(self, call_id: str, mailbox: str, lang: str, queue: str | None, t: int,
                  out: list[Command]) -> None:
        if self.vm.strict and mailbox not in self.vm.mailboxes:
            out.append(Event(ServerEventKind.ACD_ERROR, {"call_id": call_id,
                                           "error": f"no mailbox {mailbox!r}"}))
            out.append(Hangup(call_id, f"no mailbox {mailbox}"))
            self._outcome(call_id, "rejected", out, queue=queue, reason="no such mailbox")
            return
        box = self.vm.mailboxes.get(mailbox)
        greeting = (box.greeting if box is not None and box.greeting else self.vm.greeting)
        self.vms[call_id] = _Vm(call_id, mailbox, lang, queue)
        out.append(Voicemail(call_id, mailbox))
        out.append(Play(call_id, greeting, lang))
        self._outcome(call_id, "voicemail", out, queue=queue, mailbox=mailbox)

    def _vm_stop(self, vm: _Vm, reason: str, t: int, out: list[Command]) -> None:
        vm.state = "closing"
        out.append(RecordStop(vm.call_id, vm.mailbox, reason))
        out.append(Event(ServerEventKind.ACD_VOICEMAIL_SAVED, {"call_id": vm.call_id, "mailbox": vm.mailbox,
                                                 "reason": reason, "length_ms": t - vm.started}))
        out.append(Play(vm.call_id, self.vm.saved, vm.lang))

    # -- leaving a queue without an agent ---------------------------------
    def _leave(self, call: WaitingCall, target: Target, reason: str, t: int,
               out: list[Command], joined: bool = True) -> None:
        """The call leaves its queue (already removed from it) for `target`."""
        cid = call.call_id
        qname = call.queue
        q = self.queues[qname]
        data = {"call_id": cid, "queue": qname, "target": target.describe(), "reason": reason,
                "wait_ms": call.wait_ms(t)}
        if target.kind == "queue":
            assert target.name is not None
            nq = self.queues.get(target.name)
            hops = len(call.history)
            if nq is None or target.name in call.history or hops > self.max_hops:
                why = ("no such queue" if nq is None else
                       "already visited" if target.name in call.history else "too many hops")
                out.append(Event(ServerEventKind.ACD_OVERFLOW_REFUSED, {**data, "why": why}))
                out.append(Moh(cid, False))
                out.append(Hangup(cid, f"{reason}; overflow to {target.describe()} refused: {why}"))
                self.calls.pop(cid, None)
                self._outcome(cid, "rejected", out, queue=qname, reason=f"{reason}: {why}")
                return
            if joined:
                q.stats["overflowed"] += 1
            out.append(Overflow(cid, target, None, reason))
            out.append(Event(ServerEventKind.ACD_OVERFLOW, data))
            self.calls.pop(cid, None)
            self._join(nq, call, t, out)
            return
        self.calls.pop(cid, None)
        out.append(Moh(cid, False))
        if target.kind == "voicemail":
            assert target.name is not None
            box = q.spec.mailbox if target.name == "queue" else target.name
            if box is None:
                out.append(Hangup(cid, f"{reason}; queue {qname} has no mailbox"))
                self._outcome(cid, "rejected", out, queue=qname, reason=f"{reason}: no mailbox")
                return
            if joined:
                q.stats["voicemail"] += 1
            out.append(Event(ServerEventKind.ACD_OVERFLOW, data))
            self._start_vm(cid, box, call.lang, qname, t, out)
            return
        if target.kind == "number":
            group = self.hunt.get(target.trunk or "")
            if group is None:
                out.append(Hangup(cid, f"{reason}; no trunk group {target.trunk}"))
                self._outcome(cid, "rejected", out, queue=qname,
                              reason=f"{reason}: no trunk group {target.trunk}")
                return
            sz = Seizure(group, self.glare_retries)
            line = sz.start(self.line_status)
            if line is None:
                out.append(Event(ServerEventKind.ACD_OVERFLOW_REFUSED, {**data, "why": "no free line",
                                                          "hunt": sz.choices[-1].explain()}))
                out.append(Hangup(cid, f"{reason}; no free line in {group.name}"))
                self._outcome(cid, "rejected", out, queue=qname, reason=f"{reason}: no free line")
                return
            self.seized.add(line)
            self.outbound[cid] = _Out(cid, target, sz, qname)
            if joined:
                q.stats["overflowed"] += 1
            out.append(Overflow(cid, target, line, reason))
            out.append(Event(ServerEventKind.ACD_OVERFLOW, {**data, "hunt": sz.choices[-1].explain()}))
            self._outcome(cid, "overflowed", out, queue=qname, target=target.describe())
            return
        out.append(Hangup(cid, reason))
        self._outcome(cid, "rejected", out, queue=qname, reason=reason)

    def overflow_failed(self, call_id: str, reason: str, t: int) -> list[Command]:
        """The outbound leg of a number overflow failed; glare retries on another line."""
        self.t = t
        out: list[Command] = []
        o = self.outbound.get(call_id)
        if o is None:
            return out
        old = o.seizure.line
        if old is not None:
            self.seized.discard(old)
        if reason == "glare" and old is not None:
            self.lines[old] = "busy"       # the exchange's inbound call has it now
            line = o.seizure.glare(old, self.line_status)
            out.append(Event(ServerEventKind.ACD_GLARE, {"call_id": call_id, "line": f"{old[0]}:{old[1]}",
                                           "retry": None if line is None else f"{line[0]}:{line[1]}",
                                           "hunt": o.seizure.choices[-1].explain()}))
            if line is not None:
                self.seized.add(line)
                out.append(Overflow(call_id, o.target, line, "glare retry"))
                return out
            reason = "glare, no line left to retry"
        del self.outbound[call_id]
        out.append(Hangup(call_id, f"overflow to {o.target.describe()} failed: {reason}"))
        return out

    def overflow_done(self, call_id: str, t: int) -> list[Command]:
        """The overflow call to a number is over: its trunk line is free for the ACD again."""
        self.t = t
        o = self.outbound.pop(call_id, None)
        if o is not None and o.seizure.line is not None:
            self.seized.discard(o.seizure.line)
        return self._dispatch(t, [])

    # -- agents ------------------------------------------------------------
    def login(self, agent: str, t: int, ready: bool = True) -> list[Command]:
        self.t = t
        a = self._agent(agent)
        a.login(t, ready)
        out: list[Command] = [Event(ServerEventKind.ACD_AGENT, {"agent": agent, "state": a.state.value,
                                                  "why": "login"})]
        return self._dispatch(t, out)

    def logout(self, agent: str, t: int) -> list[Command]:
        self.t = t
        a = self._agent(agent)
        out: list[Command] = []
        if a.state is AgentState.RINGING and a.call is not None:
            call = self.calls.get(a.call)
            out.append(StopRing(agent, a.call, "agent logged out"))
            self._release_ring_line(agent, a.call)
            if call is not None:
                call.ringing.pop(agent, None)
                if not call.ringing and call.state == "ringing":
                    call.state = "waiting"
            a.ring_over(a.call, t, missed=False)
        a.logout(t)
        out.append(Event(ServerEventKind.ACD_AGENT, {"agent": agent, "state": a.state.value,
                                       "pending_logout": a.logout_pending, "why": "logout"}))
        return self._dispatch(t, out)

    def ready(self, agent: str, t: int) -> list[Command]:
        self.t = t
        a = self._agent(agent)
        a.set_ready(t)
        out: list[Command] = [Event(ServerEventKind.ACD_AGENT, {"agent": agent, "state": a.state.value,
                                                  "why": "ready"})]
        return self._dispatch(t, out)

    def not_ready(self, agent: str, t: int, reason: str = "by agent") -> list[Command]:
        self.t = t
        a = self._agent(agent)
        a.set_not_ready(t, reason)
        return self._dispatch(t, [Event(ServerEventKind.ACD_AGENT, {"agent": agent, "state": a.state.value,
                                                      "why": reason})])

    def member(self, queue: str, agent: str, join: bool, t: int, tier: int = 1,
               penalty: int = 0) -> tuple[bool, list[Command]]:
        """`agent` joins (`join`) or leaves `queue` at run time (AMI QueueAdd/QueueRemove):
        (changed, commands). A joining agent is a member of tier `tier` with `penalty` (AMI's
        Penalty: voiceserver.acd.queues) after the configured ones and may be rung at once for
        a caller waiting; one leaving is offered none of the queue's calls from now on (a ring
        or call in progress goes on). Until the server restarts: the config's members are the
        ones it starts with. LookupError: no such queue or agent; ValueError: a tier below 1
        or a negative penalty."""
        self.t = t
        q = self.queues.get(queue)
        if q is None:
            raise LookupError(f"no queue {queue!r} (queues: {', '.join(sorted(self.queues))})")
        if agent not in self.agents:
            raise LookupError(f"no agent {agent!r} (known: {', '.join(sorted(self.agents))})")
        if (agent in q.positions) == join:
            return False, []
        if tier < 1 or penalty < 0:
            raise ValueError(f"tier is 1 or more, penalty 0 or more (not {tier}, {penalty})")
        members = (q.spec.members + (Member(agent, tier, penalty),) if join
                   else tuple(m for m in q.spec.members if m.agent != agent))
        q.set_members(members)
        data: dict[str, Any] = {"agent": agent, "queue": queue, "joined": join}
        if join:
            data |= {"tier": tier, "penalty": penalty}
        return True, self._dispatch(t, [Event(ServerEventKind.ACD_MEMBER, data)])

    def line_state(self, line: ChannelRef, state: str, t: int) -> list[Command]:
        """The server's view of a line (agent phone or trunk): idle | busy | alarm | blocked."""
        self.t = t
        if state not in ("idle", "busy", "alarm", "blocked"):
            raise ValueError(f"line state {state!r}: idle, busy, alarm or blocked")
        if self.lines.get(line, "idle") == state:   # ringing -> answered -> hung up: still busy
            return []
        self.lines[line] = state
        return self._dispatch(t, [])

    def _release_ring_line(self, agent: str, call_id: str) -> None:
        sz = self.ring_lines.pop((agent, call_id), None)
        if sz is not None and sz.line is not None:
            self.seized.discard(sz.line)

    def ring_answered(self, agent: str, call_id: str, t: int) -> list[Command]:
        self.t = t
        a = self._agent(agent)
        out: list[Command] = []
        call = self.calls.get(call_id)
        if call is None or agent not in call.ringing or a.state is not AgentState.RINGING \
                or a.call != call_id:
            # The ring was already stopped (the caller left, another agent was
            # faster): the server hangs the agent's leg up.
            out.append(Event(ServerEventKind.ACD_LATE_ANSWER, {"agent": agent, "call_id": call_id}))
            out.append(Hangup(call_id, f"late answer by {agent}: call no longer offered"))
            return out
        a.answered(call_id, t)
        del call.ringing[agent]
        self._stop_rings(call, f"answered by {agent}", t, out)
        q = self.queues[call.queue]
        q.remove(call)
        call.state = "connected"
        call.agent = agent
        q.stats["answered"] += 1
        wait = call.wait_ms(t)
        q.wait_total_ms += wait
        q.longest_answered_ms = max(q.longest_answered_ms, wait)
        out.append(Moh(call_id, False))
        out.append(Connect(call_id, agent))
        self._outcome(call_id, "answered", out, queue=q.name, agent=agent, wait_ms=wait)
        self._dispatch(t, out)
        return out

    def ring_failed(self, agent: str, call_id: str, reason: str, t: int) -> list[Command]:
        """The ring could not go on: no-answer / rejected (misses), busy, congestion, glare..."""
        self.t = t
        a = self._agent(agent)
        out: list[Command] = []
        call = self.calls.get(call_id)
        if call is None or agent not in call.ringing:
            return out
        sz = self.ring_lines.get((agent, call_id))
        if reason == "glare" and sz is not None and sz.line is not None:
            old = sz.line
            self.seized.discard(old)
            self.lines[old] = "busy"
            line = sz.glare(old, self.line_status)
            out.append(Event(ServerEventKind.ACD_GLARE, {"call_id": call_id, "agent": agent,
                                           "line": f"{old[0]}:{old[1]}",
                                           "retry": None if line is None else f"{line[0]}:{line[1]}",
                                           "hunt": sz.choices[-1].explain()}))
            if line is not None:
                self.seized.add(line)
                out.append(Ring(agent, call_id, line, a.spec.number))
                return out
        self._release_ring_line(agent, call_id)
        del call.ringing[agent]
        now_nr = a.ring_over(call_id, t, missed=reason in MISS_REASONS)
        out.append(Event(ServerEventKind.ACD_RING_FAILED, {"agent": agent, "call_id": call_id, "reason": reason,
                                             "misses": a.misses, "not_ready": now_nr,
                                             "agent_state": a.state.value}))
        self._after_ring_end(call, t)
        return self._dispatch(t, out)

    def call_ended(self, agent: str, call_id: str, t: int) -> list[Command]:
        self.t = t
        a = self._agent(agent)
        out: list[Command] = []
        call = self.calls.get(call_id)
        if call is None and self.outcomes.get(call_id) == "answered":
            return out      # already ended from the other side (caller_left, then the agent)
        if call is None or call.state != "connected" or call.agent != agent:
            raise ValueError(f"call_ended: {call_id} is not connected to {agent}")
        talk = t - (a.answered_at if a.answered_at is not None else t)
        a.ended(call_id, t)
        self._release_ring_line(agent, call_id)
        self.queues[call.queue].handled(talk)
        del self.calls[call_id]
        out.append(Event(ServerEventKind.ACD_CALL_ENDED, {"call_id": call_id, "agent": agent, "talk_ms": talk,
                                            "agent_state": a.state.value}))
        return self._dispatch(t, out)

    # -- ringing -----------------------------------------------------------
    def _stop_rings(self, call: WaitingCall, reason: str, t: int, out: list[Command]) -> None:
        for name in list(call.ringing):
            a = self.agents[name]
            out.append(StopRing(name, call.call_id, reason))
            self._release_ring_line(name, call.call_id)
            a.ring_over(call.call_id, t, missed=False)
        call.ringing.clear()
        call.next_add = None

    def _after_ring_end(self, call: WaitingCall, t: int) -> None:
        if not call.ringing and call.state == "ringing":
            call.state = "waiting"
            call.next_add = None

    def _ring(self, call: WaitingCall, a: Agent, t: int, out: list[Command]) -> bool:
        line = a.spec.phone
        if a.spec.external:
            sz = Seizure(self.hunt[a.spec.trunk or ""], self.glare_retries)
            line = sz.start(self.line_status)
            if line is None:
                return False
            self.seized.add(line)
            self.ring_lines[(a.name, call.call_id)] = sz
        a.offer(call.call_id, t)
        call.ringing[a.name] = t
        call.offered.add(a.name)
        call.state = "ringing"
        out.append(Ring(a.name, call.call_id, line, a.spec.number))
        return True

    # -- the allocation loop -------------------------------------------------
    def _order_calls(self) -> list[WaitingCall]:
        out: list[tuple[int, int, int, WaitingCall]] = []
        for q in self.queues.values():
            for _i, c in enumerate(q.calls):
                out.append((-q.spec.weight, -c.priority, c.seq, c))
        out.sort(key=lambda x: x[:3])
        return [x[3] for x in out]

    def _dispatch(self, t: int, out: list[Command]) -> list[Command]:
        """Offer waiting calls to free agents, highest priority first."""
        # leave_when_empty first: a logout (now, or one that waited for the end of
        # a call) or a caller joining a queue nobody is logged in to
        self._empty_check(t, out)

        def free() -> bool:
            return any(a.state is AgentState.READY for a in self.agents.values())
        if not free():
            return out
        for call in self._order_calls():
            if call.state not in ("waiting", "ringing"):
                continue
            q = self.queues[call.queue]
            mode = ring_mode(q.spec.strategy)
            if mode == "one" and call.ringing or call.direct is not None and call.direct in call.ringing:
                continue        # (rung directly: that agent alone, until its ring ends)
            if mode == "progressive" and call.ringing and (call.next_add is None
                                                           or t < call.next_add):
                continue
            if not call.ringing and t < call.next_try:
                continue
            n = len(out)
            self._decide(q, call, mode, t, out)
            if len(out) != n and not free():
                break
        return out

    def _decide(self, q: Queue, call: WaitingCall, mode: str, t: int, out: list[Command]) -> None:
        elig = q.eligible(call, self.agents, t)
        cands = []
        skipped = list(elig.skipped)
        for c in elig.candidates:
            why = self._reach(c.agent)
            if why is None:
                cands.append(c)
            else:
                skipped.append((c.agent.name, why))
        cands, higher = q.lowest_penalty(cands)
        skipped += higher
        if not cands and not call.ringing and any(w.startswith("already offered")
                                                   for _, w in skipped):
            # Everyone free has been tried once: a new round, after the retry pause.
            call.offered.clear()
            call.next_try = t + q.spec.retry_ms
            if q.spec.retry_ms > 0:
                return
            self._decide(q, call, mode, t, out)
            return
        if not cands:
            if mode == "progressive" and call.ringing:
                call.next_add = t + q.spec.progressive_ms   # look again later
            return
        ranked = strategy_order(q.spec.strategy, cands, t=t, members=len(q.spec.members),
                                cursor=q.cursor, rng=q.rng, tiebreak=q.spec.tiebreak)
        if mode == "all":
            chosen = [c for c, _ in ranked]
        else:
            chosen = [ranked[0][0]]
        rung = [c for c in chosen if self._ring(call, c.agent, t, out)]
        if mode == "progressive" and call.ringing:
            call.next_add = t + q.spec.progressive_ms
        if not rung:
            return
        if q.spec.strategy == "round-robin" or (q.spec.strategy == "skill-based"
                                                and q.spec.tiebreak == "round-robin"):
            q.cursor = rung[-1].position
        decision = {
            "call_id": call.call_id, "queue": q.name, "strategy": q.spec.strategy,
            "mode": mode, "t": t, "wait_ms": call.wait_ms(t), "position": q.position(call),
            "priority": call.priority,
            "order": [{"agent": c.agent.name, "key": k} for c, k in ranked],
            "skipped": [{"agent": n, "why": w} for n, w in skipped],
            "chosen": [c.agent.name for c in rung],
        }
        if q.spec.strategy == "skill-based":
            decision["tiebreak"] = q.spec.tiebreak
        lines = {c.agent.name: self.ring_lines[(c.agent.name, call.call_id)].choices[-1].explain()
                 for c in rung if (c.agent.name, call.call_id) in self.ring_lines}
        if lines:
            decision["hunt"] = lines
        call.last_decision = decision
        self.decisions.append(decision)
        out.append(Event(ServerEventKind.ACD_DECISION, decision))

    def explain(self, call_id: str) -> dict[str, Any] | None:
        """The last allocation decision for a call (None if it never rang anyone)."""
        call = self.calls.get(call_id)
        if call is not None:
            last: dict[str, Any] | None = call.last_decision
            return last
        for d in reversed(self.decisions):
            if d["call_id"] == call_id:
                found: dict[str, Any] = d
                return found
        return None

    def why_not(self, call_id: str, t: int) -> list[dict[str, str]]:
        """For a waiting call: every member that could not be rung now, and why."""
        call = self.calls.get(call_id)
        if call is None:
            raise KeyError(f"call {call_id} is not waiting in a queue")
        q = self.queues[call.queue]
        elig = q.eligible(call, self.agents, t)
        rows = [{"agent": n, "why": w} for n, w in elig.skipped]
        reachable = []
        for c in elig.candidates:
            why = self._reach(c.agent)
            if why is None:
                reachable.append(c)
            else:
                rows.append({"agent": c.agent.name, "why": why})
        kept, higher = q.lowest_penalty(reachable)
        rows += [{"agent": n, "why": w} for n, w in higher]
        rows += [{"agent": c.agent.name, "why": "free: will be offered"} for c in kept]
        return rows

    def _empty_check(self, t: int, out: list[Command]) -> None:
        for q in self.queues.values():
            if q.spec.leave_when_empty and q.calls and q.logged_in(self.agents) == 0:
                for call in list(q.calls):
                    self._stop_rings(call, "queue empty", t, out)
                    q.remove(call)
                    self._leave(call, q.spec.empty_target, "queue empty (leave_when_empty)",
                                t, out)

    # -- time --------------------------------------------------------------
    @property
    def deadline(self) -> int | None:
        """The earliest time `tick` has work to do, or None."""
        best: float = math.inf
        if self._wrapup:
            for a in self.agents.values():
                if a.state is AgentState.WRAP_UP and a.wrap_until is not None:
                    best = min(best, a.wrap_until)
        for call in self.calls.values():
            if call.state not in ("waiting", "ringing"):
                continue
            q = self.queues[call.queue]
            s = q.spec
            for start in call.ringing.values():
                best = min(best, start + s.ring_timeout_ms)
            if call.next_add is not None and call.ringing and call.next_add > self.t:
                best = min(best, call.next_add)   # a past one waits for a free agent
            if not call.ringing and call.next_try > self.t:
                best = min(best, call.next_try)
            if call.next_announce is not None:
                best = min(best, call.next_announce)
            if s.max_wait_ms > 0:
                best = min(best, call.joined + s.max_wait_ms)
            for tier in q.tiers:
                opens = call.joined + s.tier_opens_at(tier)
                if opens > self.t:
                    best = min(best, opens)
        for vm in self.vms.values():
            if vm.state == "recording":
                best = min(best, vm.started + self.vm.max_ms)
                if vm.quiet_since is not None:
                    best = min(best, vm.quiet_since + self.vm.silence_ms)
        return None if best == math.inf else int(best)

    def tick(self, t: int) -> list[Command]:
        self.t = t
        out: list[Command] = []
        for a in self.agents.values():
            if a.tick(t):
                out.append(Event(ServerEventKind.ACD_AGENT, {"agent": a.name, "state": a.state.value,
                                               "why": "wrap-up over"}))
        for call in list(self.calls.values()):
            if call.state not in ("waiting", "ringing"):
                continue
            q = self.queues[call.queue]
            s = q.spec
            for name, start in list(call.ringing.items()):
                if t >= start + s.ring_timeout_ms:
                    a = self.agents[name]
                    del call.ringing[name]
                    out.append(StopRing(name, call.call_id, "no answer"))
                    self._release_ring_line(name, call.call_id)
                    now_nr = a.ring_over(call.call_id, t, missed=True)
                    out.append(Event(ServerEventKind.ACD_RING_TIMEOUT, {
                        "agent": name, "call_id": call.call_id, "misses": a.misses,
                        "not_ready": now_nr, "agent_state": a.state.value}))
            self._after_ring_end(call, t)
            if s.max_wait_ms > 0 and t >= call.joined + s.max_wait_ms:
                self._stop_rings(call, "max wait", t, out)
                q.remove(call)
                q.stats["timeouts"] += 1
                self._leave(call, s.timeout_target, "max wait", t, out)
                continue
            if call.next_announce is not None and t >= call.next_announce:
                call.next_announce = q.next_announce(t)
                if not call.announcing:
                    prompts = self._announcement(q, call)
                    if prompts:
                        call.announcing = True
                        out.append(Moh(call.call_id, False))
                        out.append(Announce(call.call_id, tuple(prompts), call.lang))
        for vm in list(self.vms.values()):
            if vm.state != "recording":
                continue
            if t >= vm.started + self.vm.max_ms:
                self._vm_stop(vm, "max_length", t, out)
            elif vm.quiet_since is not None and t >= vm.quiet_since + self.vm.silence_ms:
                self._vm_stop(vm, "silence", t, out)
        return self._dispatch(t, out)

    def _announcement(self, q: Queue, call: WaitingCall) -> list[str]:
        lang = call.lang if call.lang in saynumber.LANGUAGES else "en"
        prompts: list[str] = []
        pos = q.position(call)
        if q.spec.announce_position:
            prompts += saynumber.say_queue_position(pos, lang)
        if q.spec.announce_wait:
            staffed = sum(1 for m in q.spec.members
                          if self.agents[m.agent].state not in (AgentState.LOGGED_OUT,
                                                                AgentState.NOT_READY))
            est = q.expected_wait_ms(pos, staffed)
            if est is not None:
                prompts += ["expected_wait", *saynumber.say_duration_minutes(
                    int(round(est / 60_000)), lang)]
        return prompts

    def all_busy_changes(self, t: int) -> list[dict[str, Any]]:
        """The queues whose all-busy state changed since the last call (queue, busy, waiting):
        the ACD link asks after each batch of commands, where agent states change."""
        changed = []
        for q in self.queues.values():
            busy = q.all_busy(t, self.agents)
            if busy != self.all_busy.get(q.name, False):
                self.all_busy[q.name] = busy
                waiting = sum(1 for c in q.calls if c.state in ("waiting", "ringing"))   # not yet answered
                changed.append({"queue": q.name, "busy": busy, "waiting": waiting})
        return changed

    # -- views -------------------------------------------------------------
    def queue_rows(self, t: int | None = None, recent: int = 5) -> list[dict[str, Any]]:
        """Each queue's snapshot; every waiting caller with its last decision and
        why each member is not being rung now; the queue's `recent` last decisions."""
        t = self.t if t is None else t
        rows = []
        last: dict[str, list[dict[str, Any]]] = {q: [] for q in self.queues}
        for d in reversed(self.decisions):
            lst = last.get(d["queue"])
            if lst is not None and len(lst) < recent:
                lst.append(d)
        for q in self.queues.values():
            row = q.snapshot(t, self.agents)
            for c in row["callers"]:
                call = self.calls.get(c["call_id"])
                c["decision"] = call.last_decision if call is not None else None
                c["why_not"] = self.why_not(c["call_id"], t) if call is not None else []
            row["decisions"] = last[q.name][::-1]
            rows.append(row)
        return rows

    def agent_rows(self, t: int | None = None) -> list[dict[str, Any]]:
        t = self.t if t is None else t
        rows = []
        for a in self.agents.values():
            row = a.snapshot(t)
            row["queues"] = [q.name for q in self.queues.values() if a.name in q.positions]
            row["why_unavailable"] = a.unavailable(t) or self._reach(a)
            rows.append(row)
        return rows

    def active_calls(self) -> Iterable[str]:
        return list(self.calls) + list(self.vms) + list(self.outbound)
