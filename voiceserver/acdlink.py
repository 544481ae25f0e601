"""Between the server and the ACD: carry out its commands, feed it what happens.

The ACD (voiceserver.acd) decides; this module acts on channels: rings an
agent's phone or dials an agent's number, bridges, plays music and
announcements, dials an overflow number, records a voicemail. What the
channels then do (answered, busy, hung up, a digit, speech, a line going
idle) goes back to the ACD. Time is the server's simulated ms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voiceserver import acd as acdmod
from voiceserver.acd import Acd, AcdSettings
from voiceserver.agents import AgentSpec
from voiceserver.channels import FxoTrunk, FxsPhone, State
from voiceserver.ivr import QueueAction
from voiceserver.queues import Member, QueueSpec

if TYPE_CHECKING:
    from voiceserver.config import ServerConfig
    from voiceserver.server import BoardRuntime, VoiceServer, _Leg

Key = tuple[int, int]   # (board index, channel)


def default_settings(cfg: "ServerConfig") -> AcdSettings:
    """No [agents]/[queues] in the config: every agent phone is an agent
    (named after its board and channel, e.g. hotline4) and every queue the IVR
    names hands calls to the longest-idle of them."""
    agents = tuple(AgentSpec(f"{board}{chan}", phone=(board, chan)) for board, chan in cfg.channels.agents)
    names = sorted({a.queue for a in _queue_actions(cfg)})
    members = tuple(Member(a.name) for a in agents)
    return AcdSettings(agents, tuple(QueueSpec(n, members) for n in names))


def _queue_actions(cfg: "ServerConfig") -> list[QueueAction]:
    from voiceserver.config import _ivr_actions
    return [a for _, a in _ivr_actions(cfg.ivr) if isinstance(a, QueueAction)]


@dataclass
class _Ring:
    """An agent being rung (or dialled) for a call, on line `key`."""
    agent: str
    call_id: str
    key: Key
    overflow: bool = False


class AcdLink:
    def __init__(self, server: "VoiceServer", acd: Acd) -> None:
        self.s = server
        self.acd = acd
        self.callers: dict[str, Key] = {}        # call id -> the caller's trunk
        self.rings: dict[Key, _Ring] = {}        # agent / overflow legs by line
        self._deadline: int | None = None

    # -- addressing ------------------------------------------------------
    def key(self, ref: tuple[str, int]) -> Key:
        for rt in self.s.boards:
            if rt.name == ref[0]:
                return (rt.index, ref[1])
        raise KeyError(f"no board named {ref[0]!r}")

    def ref(self, key: Key) -> tuple[str, int]:
        return (self.s.boards[key[0]].name, key[1])

    def now(self) -> int:
        return self.s.now_ms(self.s.boards[0])

    def knows(self, call_id: str) -> bool:
        return call_id in self.callers

    # -- from the IVR ----------------------------------------------------
    def queue(self, rt: "BoardRuntime", tick: int, chan: int, leg: "_Leg", queue: str, lang: str) -> None:
        cid = leg.call.call_id
        self.callers[cid] = (rt.index, chan)
        self.do(tick, self.acd.call_arrived(cid, queue, leg.call.caller, None, self.now(), lang=lang))

    def voicemail(self, rt: "BoardRuntime", tick: int, chan: int, leg: "_Leg", mailbox: str, lang: str) -> None:
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
        self.do(tick, self.acd.tick(self.now()))

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
        r = self.rings.pop(key, None)
        if r is not None:
            if r.overflow:
                if self.s.boards[key[0]].channels[key[1]].kind == "fxo" and "outbound" in reason:
                    self.do(tick, self.acd.overflow_failed(r.call_id, reason, self.now()))
                else:
                    self.do(tick, self.acd.overflow_done(r.call_id, self.now()))
            elif r.call_id in self.acd.calls and self.acd.calls[r.call_id].agent == r.agent:
                self.do(tick, self.acd.call_ended(r.agent, r.call_id, self.now()))
            else:
                why = "busy" if "busy" in reason else "congestion" if "congestion" in reason else "no-answer"
                self.do(tick, self.acd.ring_failed(r.agent, r.call_id, why, self.now()))
            return
        for cid, k in list(self.callers.items()):
            if k == key:
                del self.callers[cid]
                if cid in self.acd.calls or cid in self.acd.vms:
                    self.do(tick, self.acd.caller_left(cid, self.now()))

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
                s.boards[key[0]].engine.play(key[1], segs, token=("acd", cmd.call))
            elif isinstance(cmd, acdmod.Beep):
                rt = s.boards[key[0]]
                rt.engine.tone(key[1], "record_warning")   # its first 0.4 s burst is the beep
                rt.engine.call_at(tick + math.ceil(400 / rt.ms_per_tick), key[1], ("beep_off",))
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
        self._arm(tick)

    def _arm(self, tick: int) -> None:
        dl = self.acd.deadline
        if dl is None or dl == self._deadline or not self.s.boards:
            return
        self._deadline = dl
        rt = self.s.boards[0]
        at = max(math.ceil(dl / rt.ms_per_tick), tick + 1)
        rt.engine.call_at(at, next(iter(rt.channels), 0), ("acd",))

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
        self.s.legs[key] = self.s.new_leg(out, partner=caller)
        self.rings[key] = _Ring(agent, call_id, key, overflow)
        self.s.settle(rt, tick, {key[1]})

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
        eng = self.s.boards[key[0]].engine
        seg = self.s.moh_segment(music)
        if on and seg is not None:
            eng.play(key[1], [seg], loop=True, gain_db=-6.0, token=("moh",))
        elif not on:
            eng.stop_play(key[1])

