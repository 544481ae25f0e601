"""Between the server and the ACD: carry out its commands, feed it what happens.

The ACD (voiceserver.acd.distributor) decides; this module acts on channels: rings an
agent's phone or dials an agent's number, bridges, plays music and
announcements, dials an overflow number, records a voicemail. What the
channels then do (answered, busy, hung up, a digit, speech, a line going
idle) goes back to the ACD. Time is the server's simulated ms.

Every seizure of an outbound trunk goes through a hunt group
(voiceserver.acd.hunt): external agents and overflow numbers through the
ACD's, the IVR's transfers through ``transfer`` here. When a seizure meets
glare (the trunk reports its outbound call ended with reason ``glare`` and
turns into an inbound call), the caller is not hung up: the call is tried
again on another line of the group, up to ``[queues] glare_retries``
times.
"""
from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boarddrv.chanref import ChannelRef
from voiceserver.acd import distributor as acdmod
from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import Acd, AcdSettings
from voiceserver.acd.hunt import HuntGroup, Seizure
from voiceserver.acd.queues import Member, QueueSpec
from voiceserver.core.channels import FxoTrunk, FxsPhone, State
from voiceserver.core.events import ServerEventKind
from voiceserver.core.runtime import Conflict, Key
from voiceserver.ivr.flows import QueueAction

if TYPE_CHECKING:
    from voiceserver.config.server import ServerConfig
    from voiceserver.core.runtime import BoardRuntime, CallHost, Leg



def default_settings(cfg: ServerConfig) -> AcdSettings:
    """No [agents]/[queues] in the config: every agent phone is an agent
    (named after its board and channel, e.g. hotline4) and every queue the IVR
    names hands calls to the longest-idle of them."""
    agents = tuple(AgentSpec(f"{ref.board}{ref.chan}", phone=ref) for ref in cfg.channels.agents)
    names = sorted({a.queue for a in _queue_actions(cfg)})
    members = tuple(Member(a.name) for a in agents)
    return AcdSettings(agents, tuple(QueueSpec(n, members) for n in names))


def _queue_actions(cfg: ServerConfig) -> list[QueueAction]:
    from voiceserver.config.server import _ivr_actions
    return [a for _, a in _ivr_actions(cfg.ivr) if isinstance(a, QueueAction)]


@dataclass
class _Ring:
    """An agent being rung (or dialled) for a call, on line `key`."""
    agent: str
    call_id: str
    key: Key
    overflow: bool = False
    leg: Leg | None = None          # the leg on `key` (trunk legs: detached on failure)


@dataclass
class _Transfer:
    """An IVR transfer being dialled on a trunk (for glare retry)."""
    caller: Key
    call_id: str                       # the caller's call
    number: str
    seizure: Seizure
    leg: Leg


@dataclass
class _RouteWait:
    """A caller waiting for a client of the API to say where it goes (external routing)."""
    call_id: str
    key: Key                           # the caller's trunk
    queue: str                         # the queue the IVR sent it to: where it goes by default
    lang: str
    asked: int                         # ms, the ACD's clock
    deadline: int                      # ms: no answer by then, the queue


ROUTES_REMEMBERED = 1_000      # decided routes kept to explain a late answer's 409


def _ring_failure(reason: str) -> str:
    """The ACD's ring_failed reason for a trunk leg that ended before answer."""
    if "glare" in reason:
        return "glare"
    if "busy" in reason:
        return "busy"
    if "congestion" in reason or "blocked" in reason:
        return "congestion"
    return "no-answer"


class AgentConflict(Conflict):
    """An agent state change the agent's state does not allow (HTTP 409)."""


class AcdLink:
    def __init__(self, server: CallHost, acd: Acd,
                 feature_codes: dict[str, str] | None = None) -> None:
        self.s = server
        self.acd = acd
        # dialled code -> action (login | logout | ready | not_ready)
        self.features = {code: action for action, code in
                         (feature_codes or acdmod.FEATURE_CODES).items()}
        self.callers: dict[str, Key] = {}        # call id -> the caller's trunk
        self.rings: dict[Key, _Ring] = {}        # agent / overflow legs by line
        self.transfers: dict[Key, _Transfer] = {}   # IVR transfers being dialled, by trunk
        self._deadline: int | None = None
        self.routes: dict[str, _RouteWait] = {}     # callers waiting for a route decision, by call id
        self.decided: dict[str, str | None] = {}    # decided before the IVR's queue: call id -> agent or None
        self.routed: OrderedDict[str, str] = OrderedDict()   # recent decisions: call id -> what became of it

    # -- addressing ------------------------------------------------------
    def key(self, ref: ChannelRef) -> Key:
        for rt in self.s.boards:
            if rt.name == ref[0]:
                return (rt.index, ref[1])
        raise KeyError(f"no board named {ref[0]!r}")

    def ref(self, key: Key) -> ChannelRef:
        return ChannelRef(self.s.boards[key[0]].name, key[1])

    def now(self) -> int:
        return self.s.now_ms(self.s.boards[0])

    def knows(self, call_id: str) -> bool:
        return call_id in self.callers

    # -- from the IVR ----------------------------------------------------
    def queue(self, rt: BoardRuntime, tick: int, chan: int, leg: Leg, queue: str, lang: str) -> None:
        """The IVR sends a caller to `queue`: the ACD takes it, or (external routing) the API's
        clients are asked first. A route the API decided already (`decided`) is not asked:
        to the queue, or rung straight to its agent."""
        cid = leg.call.call_id
        self.callers[cid] = (rt.index, chan)
        decided = cid in self.decided
        agent = self.decided.pop(cid, None)
        if agent is not None:
            self.do(tick, self.acd.offer_to(cid, agent, self.now(), queue, leg.call.caller, lang))
            return
        settings = self.s.cfg.acd
        if not decided and settings is not None and settings.external_routing:
            self._ask_route(rt, tick, chan, leg, queue, lang, settings.routing_deadline_ms)
            return
        self.do(tick, self.acd.call_arrived(cid, queue, leg.call.caller, None, self.now(), lang=lang))

    # -- external routing: route.request, a client's answer or the deadline -------------
    def _ask_route(self, rt: BoardRuntime, tick: int, chan: int, leg: Leg, queue: str, lang: str,
                   wait_ms: int) -> None:
        call = leg.call
        now = self.now()
        w = _RouteWait(call.call_id, (rt.index, chan), queue, lang, now, now + wait_ms)
        self.routes[call.call_id] = w
        self.s.play_moh(rt, chan)
        at = self.s.boards[0].clock_start + dt.timedelta(milliseconds=w.deadline)
        self.s.bus.publish(tick, ServerEventKind.ROUTE_REQUEST, chan=chan, call_id=call.call_id, board=rt.name,
                           caller=call.caller, name=call.data.get("caller_name"),
                           dnis=call.data.get("dnis") or call.called, queue=queue, ivr_path=list(leg.path),
                           deadline=at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                           deadline_ms=wait_ms)
        self._arm(tick)

    def awaiting_route(self, call_id: str) -> bool:
        """The caller waits for a client's route decision (a route.request is out)."""
        return call_id in self.routes

    def route_outcome(self, call_id: str) -> str | None:
        """What became of a route.request decided already (for a late answer's 409), or None."""
        return self.routed.get(call_id)

    def _route_done(self, tick: int, w: _RouteWait, decided_by: str, by: str | None, reason: str | None,
                    **target: str) -> None:
        """The wait is over: route.decided (who decided, and where the caller goes)."""
        self.routes.pop(w.call_id, None)
        where = ", ".join(f"{k} {v}" for k, v in target.items())
        self._remember(w.call_id, f"decided by {by or decided_by}: {where}")
        self.s.bus.publish(tick, ServerEventKind.ROUTE_DECIDED, chan=w.key[1], call_id=w.call_id,
                           decided_by=decided_by, by=by, reason=reason, waited_ms=self.now() - w.asked, **target)

    def _remember(self, call_id: str, outcome: str) -> None:
        self.routed[call_id] = outcome
        while len(self.routed) > ROUTES_REMEMBERED:
            self.routed.popitem(last=False)

    def route_fallback(self, tick: int, call_id: str, reason: str) -> str:
        """No decision that can be carried out: the caller goes to the queue the IVR named
        (`route.decided` by "fallback"); that queue's name."""
        w = self.routes[call_id]
        self._route_done(tick, w, "fallback", None, reason, queue=w.queue)
        leg = self.s.legs.get(w.key)
        self.do(tick, self.acd.call_arrived(call_id, w.queue, leg.call.caller if leg else None, None,
                                            self.now(), lang=w.lang))
        return w.queue

    def route_to_queue(self, tick: int, call_id: str, queue: str, by: str) -> None:
        """A client's decision: the waiting caller to `queue` (checked to exist)."""
        w = self.routes[call_id]
        self._route_done(tick, w, "client", by, None, queue=queue)
        leg = self.s.legs.get(w.key)
        self.do(tick, self.acd.call_arrived(call_id, queue, leg.call.caller if leg else None, None,
                                            self.now(), lang=w.lang))

    def route_elsewhere(self, tick: int, call_id: str, by: str, **target: str) -> Key:
        """A client's decision the controller carries out (a blind transfer): the wait ends;
        the caller's trunk. The caller is no longer the ACD's."""
        w = self.routes[call_id]
        self._route_done(tick, w, "client", by, None, **target)
        self.callers.pop(call_id, None)
        return w.key

    # -- straight to an agent (the API's route {"agent": ...}) --------------------------
    def home_queue(self, agent: str) -> str:
        """The queue a caller routed to `agent` waits in if the agent does not answer, when the
        request names none: the first queue (in the config's order) the agent is a member of."""
        for q in self.acd.queues.values():
            if any(m.agent == agent for m in q.spec.members):
                return q.name
        raise AgentConflict(f"agent {agent} is a member of no queue: name the queue the caller waits in "
                            f"if the agent does not answer ({{\"agent\": \"{agent}\", \"queue\": ...}})")

    def check_offer(self, agent: str) -> None:
        """LookupError: no such agent; AgentConflict: it cannot be rung now (logged out, busy...)."""
        if agent not in self.acd.agents:
            raise LookupError(f"no agent {agent!r} (known: {', '.join(sorted(self.acd.agents))})")
        why = self.acd.why_not_offer(agent)
        if why is not None:
            raise AgentConflict(why)

    def offer_agent(self, tick: int, call_id: str, agent: str, queue: str | None = None,
                    by: str | None = None) -> dict[str, Any]:
        """Ring `agent` alone for a caller waiting in a queue, or for one waiting for a route
        decision (then `queue`, or the queue the IVR named, is where it waits if unanswered)."""
        self.check_offer(agent)
        w = self.routes.get(call_id)
        if w is not None:
            home = queue or w.queue
            if home not in self.acd.queues and home not in self.acd.entries:
                raise LookupError(f"no queue {home!r} (queues: {', '.join(sorted(self.acd.queues))})")
            self._route_done(tick, w, "client", by, None, agent=agent, queue=home)
            leg = self.s.legs.get(w.key)
            self.do(tick, self.acd.offer_to(call_id, agent, self.now(), home, leg.call.caller if leg else None,
                                            w.lang))
            return {"call_id": call_id, "agent": agent, "queue": home}
        call = self.acd.calls.get(call_id)
        if call is None:
            raise AgentConflict(f"call {call_id} is not waiting in a queue (voicemail, or sent elsewhere): "
                                f"it cannot be offered to an agent")
        try:
            cmds = self.acd.offer_to(call_id, agent, self.now())
        except ValueError as exc:
            raise AgentConflict(str(exc)) from None
        self.do(tick, cmds)
        return {"call_id": call_id, "agent": agent, "queue": call.queue}

    def voicemail(self, rt: BoardRuntime, tick: int, chan: int, leg: Leg, mailbox: str, lang: str) -> None:
        cid = leg.call.call_id
        self.callers[cid] = (rt.index, chan)
        self.do(tick, self.acd.voicemail(cid, mailbox, self.now(), caller=leg.call.caller, lang=lang))

    # -- what happened ---------------------------------------------------
    def digit(self, tick: int, call_id: str, d: str) -> None:
        self.do(tick, self.acd.digit(call_id, d, self.now()))

    def speech(self, tick: int, call_id: str, active: bool) -> None:
        if call_id in self.acd.vms:
            self.do(tick, self.acd.speech(call_id, active, self.now()))

    def play_done(self, tick: int, call_id: str) -> None:
        self.do(tick, self.acd.prompt_done(call_id, self.now()))

    def timer(self, tick: int) -> None:
        self._deadline = None
        now = self.now()
        for w in [w for w in self.routes.values() if now >= w.deadline]:
            self.route_fallback(tick, w.call_id, f"no decision within {w.deadline - w.asked} ms")
        self.do(tick, self.acd.tick(now))

    def line_state(self, tick: int, key: Key, state: State) -> None:
        st = "idle" if state is State.IDLE else "alarm" if state is State.BLOCKED else "busy"
        self.do(tick, self.acd.line_state(self.ref(key), st, self.now()))

    def answered(self, tick: int, key: Key) -> bool:
        """An agent's phone or dialled number answered; False if not ours."""
        r = self.rings.get(key)
        if r is None:
            return False
        if r.overflow:
            self._bridge(tick, r.call_id, key)
        else:
            self.do(tick, self.acd.ring_answered(r.agent, r.call_id, self.now()))
        return True

    def leg_ended(self, tick: int, key: Key, reason: str) -> None:
        """A call ended on `key` (a caller, an agent line or an overflow line)."""
        t = self.transfers.pop(key, None)
        if t is not None:
            if "glare" in reason and t.leg.call.answer_tick is None:
                t.leg.partner = None       # the caller stays: the transfer is tried again
                self._transfer_glare(tick, t, key)
            return
        r = self.rings.pop(key, None)
        if r is not None:
            trunk = isinstance(self.s.boards[key[0]].channels[key[1]], FxoTrunk)   # analog or E1
            unanswered = r.leg is not None and r.leg.call.answer_tick is None
            if trunk and unanswered and r.leg is not None:
                r.leg.partner = None       # a failed dial-out does not end the caller's call
            if r.overflow:
                if trunk and unanswered and "glare" in reason:
                    self.do(tick, self.acd.overflow_failed(r.call_id, "glare", self.now()))
                elif trunk and "outbound" in reason:
                    self.do(tick, self.acd.overflow_failed(r.call_id, reason, self.now()))
                else:
                    self.do(tick, self.acd.overflow_done(r.call_id, self.now()))
            elif r.call_id in self.acd.calls and self.acd.calls[r.call_id].agent == r.agent:
                self.do(tick, self.acd.call_ended(r.agent, r.call_id, self.now()))
            else:
                self.do(tick, self.acd.ring_failed(r.agent, r.call_id, _ring_failure(reason),
                                                   self.now()))
            return
        for cid, k in list(self.callers.items()):
            if k == key:
                del self.callers[cid]
                w = self.routes.pop(cid, None)
                if w is not None:      # hung up while a route decision was awaited
                    self.s.bus.publish(tick, ServerEventKind.ROUTE_CANCELLED, chan=key[1], call_id=cid,
                                       reason=f"the caller hung up ({reason})" if reason else "the caller hung up",
                                       waited_ms=self.now() - w.asked)
                    self._remember(cid, "the caller hung up")
                if cid in self.acd.calls or cid in self.acd.vms:
                    self.do(tick, self.acd.caller_left(cid, self.now()))

    # -- agent state: feature codes and the admin API -----------------------
    def agent_at(self, key: Key) -> str | None:
        """The agent whose phone is the FXS line `key`, or None."""
        ref = self.ref(key)
        for a in self.acd.agents.values():
            if a.spec.phone == ref:
                return a.name
        return None

    def agent_control(self, tick: int, agent: str, action: str, by: str, reason: str | None = None) -> dict:
        """Log an agent in or out, or set it ready / not ready, now.

        LookupError: no such agent. AgentConflict: ready / not ready while logged
        out. Asking for the state the agent is in already changes nothing
        (``changed: false``). `reason`: a not-ready's reason code (the agent's `why`;
        default "set by BY"). A logout or not-ready asked while the agent rings or
        talks: a ring is stopped and the logout is at once; on a call it waits
        for the end of the call (``pending``).
        """
        action = action.replace("-", "_")
        if action not in acdmod.FEATURE_ACTIONS:
            raise LookupError(f"no agent action {action!r} (known: {', '.join(acdmod.FEATURE_ACTIONS)})")
        a = self.acd.agents.get(agent)
        if a is None:
            raise LookupError(f"no agent {agent!r} (known: {', '.join(sorted(self.acd.agents))})")
        old, old_pending = a.state.value, a.pending
        logged_out = old == "logged_out"
        t = self.now()
        if action in ("ready", "not_ready") and logged_out:
            self.s.bus.publish(tick, ServerEventKind.AGENT_STATE_REFUSED, agent=agent, action=action, by=by,
                               state=old, why="logged out: log in first")
            raise AgentConflict(f"agent {agent} is logged out: log in first")
        if action == "login":
            cmds = [] if not logged_out and a.pending != "logout" else self.acd.login(agent, t)
        elif action == "logout":
            cmds = [] if logged_out or a.pending == "logout" else self.acd.logout(agent, t)
        elif action == "ready":
            cmds = [] if old == "ready" else self.acd.ready(agent, t)
        else:
            cmds = ([] if old == "not_ready" or a.pending == "not_ready"
                    else self.acd.not_ready(agent, t, reason or f"set by {by}"))
        # the state the change set (a ready agent may be rung in the same breath: `now`)
        state = next((c.data["state"] for c in cmds if isinstance(c, acdmod.Event)
                      and c.kind == ServerEventKind.ACD_AGENT and c.data.get("agent") == agent), old)
        row: dict[str, Any] = {"agent": agent, "action": action, "old": old, "state": state, "now": a.state.value,
               "pending": a.pending, "changed": state != old or a.pending != old_pending,
               "by": by}
        self.s.bus.publish(tick, ServerEventKind.AGENT_STATE, **row)
        self.do(tick, cmds)
        return row

    def queue_member(self, tick: int, agent: str, queue: str, join: bool, by: str, tier: int = 1,
                     penalty: int = 0) -> dict[str, Any]:
        """An agent joins (at `tier`, with `penalty`) or leaves a queue now (Acd.member);
        `acd.member` says who asked."""
        changed, cmds = self.acd.member(queue, agent, join, self.now(), tier, penalty)
        for cmd in cmds:
            if isinstance(cmd, acdmod.Event) and cmd.kind == ServerEventKind.ACD_MEMBER:
                cmd.data["why"] = by
        self.do(tick, cmds)
        row = {"agent": agent, "queue": queue, "member": join, "changed": changed}
        member = next((m for m in self.acd.queues[queue].spec.members if m.agent == agent), None)
        if member is not None:       # a member now: its tier and penalty (as given, or kept when already one)
            row.update(tier=member.tier, penalty=member.penalty)
        return row

    # -- commands ----------------------------------------------------------
    def do(self, tick: int, cmds: list) -> None:
        s = self.s
        for cmd in cmds:
            if isinstance(cmd, acdmod.Event):
                data = dict(cmd.data)
                s.bus.publish(tick, cmd.kind, call_id=data.pop("call_id", None), **data)
                continue
            key = self.callers.get(getattr(cmd, "call", None) or "")
            if isinstance(cmd, acdmod.Ring):
                self._ring(tick, cmd, key)
            elif isinstance(cmd, acdmod.StopRing):
                self._stop_ring(tick, cmd)
            elif key is None:
                continue  # the caller has gone; nothing to act on
            elif isinstance(cmd, acdmod.Connect):
                self._bridge(tick, cmd.call, self._line_of(cmd.agent, cmd.call))
            elif isinstance(cmd, acdmod.Moh):
                self._moh(key, cmd.on, cmd.music)
            elif isinstance(cmd, (acdmod.Announce, acdmod.Play)):
                segs = [s.segment(n, cmd.lang) for n in cmd.prompts]
                s.media.play(key[0], key[1], segs, token=("acd", cmd.call))
            elif isinstance(cmd, acdmod.Beep):
                rt = s.boards[key[0]]
                s.media.tone(rt.index, key[1], "record_warning")   # its first 0.4 s burst is the beep
                s.media.call_at(rt.index, tick + rt.tick_at(400), key[1], ("beep_off",))
            elif isinstance(cmd, acdmod.RecordStart):
                s.voicemail_record(tick, key, cmd.call, cmd.mailbox, cmd.max_ms)
            elif isinstance(cmd, acdmod.RecordStop):
                s.voicemail_stop(tick, key, cmd.call, cmd.mailbox, cmd.reason)
            elif isinstance(cmd, acdmod.Overflow):
                if cmd.line is not None and cmd.target.number:
                    self._dial(tick, self.key(cmd.line), cmd.target.number, cmd.call, key,
                               agent="", overflow=True)
            elif isinstance(cmd, acdmod.Hangup):
                ch = s.boards[key[0]].channels[key[1]]
                ch.hangup(tick, f"acd: {cmd.reason}")
                s.settle(s.boards[key[0]], tick, {key[1]})
            # Voicemail is informational: RecordStart follows the greeting.
        for change in self.acd.all_busy_changes(self.now()):   # agent states change in batches like this
            s.bus.publish(tick, ServerEventKind.ACD_ALL_BUSY, **change)
        self._arm(tick)

    def rearm(self, tick: int) -> None:
        """The board whose engine held the ACD's timer was lost, or a board is back:
        arm the timer again, on a board that is up."""
        self._deadline = None
        self._arm(tick)

    def _arm(self, tick: int) -> None:
        """The ACD's next deadline as a timer on the first board that is up (any
        engine will do: the ACD's clock is the control plane's, not a board's)."""
        dl = self.acd.deadline
        if self.routes:        # the first route decision's deadline too
            first = min(w.deadline for w in self.routes.values())
            dl = first if dl is None else min(dl, first)
        rt = next((b for b in self.s.boards if b.lost is None), None)
        if dl is None or dl == self._deadline or rt is None:
            return
        self._deadline = dl
        # `tick` may be another board's: the timer goes by this board's own ticks
        at = max(rt.tick_at(dl), rt.tick + 1)
        self.s.media.call_at(rt.index, at, next(iter(rt.channels), 0), ("acd",))

    def _line_of(self, agent: str, call_id: str) -> Key:
        for k, r in self.rings.items():
            if r.agent == agent and r.call_id == call_id:
                return k
        raise KeyError(f"agent {agent} has no line for call {call_id}")

    def _ring(self, tick: int, cmd: acdmod.Ring, caller: Key | None) -> None:
        if caller is None or cmd.line is None:
            return
        key = self.key(cmd.line)
        if cmd.number is not None:
            self._dial(tick, key, cmd.number, cmd.call, caller, agent=cmd.agent)
            return
        rt = self.s.boards[key[0]]
        phone = rt.channels[key[1]]
        assert isinstance(phone, FxsPhone)
        caller_leg = self.s.legs[caller]
        phone.ring(tick, caller_leg.call)
        self.s.legs[key] = self.s.new_leg(caller_leg.call, partner=caller)
        self.rings[key] = _Ring(cmd.agent, cmd.call, key)
        self.s.settle(rt, tick, {key[1]})

    def _dial(self, tick: int, key: Key, number: str, call_id: str, caller: Key, *,
              agent: str, overflow: bool = False) -> None:
        rt = self.s.boards[key[0]]
        trunk = rt.channels[key[1]]
        assert isinstance(trunk, FxoTrunk)
        out = trunk.dial(tick, number)
        out.data["for_call"] = call_id
        leg = self.s.legs[key] = self.s.new_leg(out, partner=caller)
        self.rings[key] = _Ring(agent, call_id, key, overflow, leg)
        self.s.settle(rt, tick, {key[1]})

    # -- IVR transfers -------------------------------------------------------
    def trunk_status(self, ref: ChannelRef, board: int) -> str:
        """A trunk line as a transfer from `board` sees it (hunt.LINE_STATES)."""
        key = self.key(ref)
        ch = self.s.boards[key[0]].channels.get(key[1])
        if not isinstance(ch, FxoTrunk):
            return "blocked"
        if ch.state is State.BLOCKED:
            return "alarm"
        if key[0] != board or ch.state is not State.IDLE or key in self.s.legs:
            return "busy"          # (a line on another board cannot be bridged: busy for us)
        return self.acd.line_status(ref)

    def transfer(self, tick: int, caller: Key, leg: Leg, number: str, group: str) -> bool:
        """Dial `number` for the caller on a line the group's hunt picks. False: no free line."""
        hunt = self.acd.hunt.get(group)
        if hunt is None:
            lines = self.s.cfg.channels.outbound.get(group)
            if not lines:
                return False
            hunt = self.acd.hunt[group] = HuntGroup(group, list(lines))
        sz = Seizure(hunt, self.acd.glare_retries)
        line = sz.start(lambda ref: self.trunk_status(ref, caller[0]))
        if line is None:
            return False
        self._transfer_dial(tick, _Transfer(caller, leg.call.call_id, number, sz, leg), line)
        return True

    def _transfer_dial(self, tick: int, t: _Transfer, line: ChannelRef) -> None:
        key = self.key(line)
        rt = self.s.boards[key[0]]
        trunk = rt.channels[key[1]]
        assert isinstance(trunk, FxoTrunk)
        out = trunk.dial(tick, t.number)
        out.data["transfer_of"] = t.call_id
        t.leg = self.s.legs[key] = self.s.new_leg(out, partner=t.caller)
        caller_leg = self.s.legs.get(t.caller)
        if caller_leg is not None:
            caller_leg.partner = key
        self.transfers[key] = t
        self.s.settle(rt, tick, {key[1]})

    def _transfer_glare(self, tick: int, t: _Transfer, key: Key) -> None:
        caller_leg = self.s.legs.get(t.caller)
        if caller_leg is None:
            return                      # the caller has gone meanwhile: nothing to retry
        old = self.ref(key)
        line = t.seizure.glare(old, lambda ref: self.trunk_status(ref, t.caller[0]))
        self.s.bus.publish(tick, ServerEventKind.CALL_TRANSFER_RETRY, call_id=t.call_id, chan=t.caller[1], why="glare",
                           line=f"{old[0]}:{old[1]}",
                           retry=None if line is None else f"{line[0]}:{line[1]}",
                           hunt=t.seizure.choices[-1].explain())
        if line is not None:
            self._transfer_dial(tick, t, line)
            return
        caller_leg.partner = None
        rt = self.s.boards[t.caller[0]]
        self.s.bus.publish(tick, ServerEventKind.CALL_TRANSFER_FAILED, chan=t.caller[1], call_id=t.call_id,
                           trunk=t.seizure.group.name, reason="glare, no line left to retry")
        rt.channels[t.caller[1]].hangup(tick, f"transfer failed: glare on every line tried "
                                              f"in {t.seizure.group.name}")
        self.s.settle(rt, tick, {t.caller[1]})

    def _stop_ring(self, tick: int, cmd: acdmod.StopRing) -> None:
        for k, r in list(self.rings.items()):
            if r.agent == cmd.agent and r.call_id == cmd.call:
                del self.rings[k]
                self.s.legs.pop(k, None)
                rt = self.s.boards[k[0]]
                ch = rt.channels[k[1]]
                if isinstance(ch, FxsPhone):
                    ch.stop_ringing(tick, cmd.reason)
                else:
                    ch.hangup(tick, cmd.reason)
                self.s.settle(rt, tick, {k[1]})

    def _bridge(self, tick: int, call_id: str, line: Key) -> None:
        caller = self.callers.get(call_id)
        if caller is None:
            return
        self.s.connect(tick, caller, line, self.rings[line].agent or None)

    def _moh(self, key: Key, on: bool, music: str) -> None:
        rt = self.s.boards[key[0]]
        if on:
            self.s.play_moh(rt, key[1], music, token=("moh",))
        else:
            self.s.media.stop_play(rt.index, key[1])

