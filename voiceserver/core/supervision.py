"""Supervisors on agent calls (listen, whisper, barge in, intercept, conference), the
consultative transfer, and the API's mute: who hears whom on an agent call.

`Supervising` is a part of `voiceserver.core.controller.CallController` (its base class):
the controller's state and the helpers used here are declared below, and the controller
defines them. Sans-I/O as the controller: a command returns (its answer row, the media
commands for the engines); the phones' answers and hang-ups come back through the
controller's tick (`_supervisor_joined`, `_consult_joined`, `..._leg_gone`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voiceserver.core.channels import FxoTrunk, FxsPhone, State
from voiceserver.core.controllerstate import ControllerState
from voiceserver.core.events import ServerEventKind
from voiceserver.core.media import MediaCommand
from voiceserver.core.runtime import BoardRuntime, Conflict, Key, Leg

SUPERVISE_MODES = ("listen", "whisper", "barge", "intercept", "conference")
HEARD_BY_CALLER = ("barge", "conference")          # the modes whose party the caller hears
HEARD_BY_AGENT = ("whisper", "barge", "conference")
MUTE_PARTIES = ("caller", "agent")                 # the API's mute: who is not heard


@dataclass
class Supervision:
    """A supervisor's phone on an agent call: rung, then mixed in as `mode` says."""
    call_id: str
    supervisor: str          # the agent id or BOARD:CHANNEL it was asked for
    caller: Key              # the caller's trunk
    agent: Key               # the agent's phone
    mode: str                # listen, whisper, barge (intercept ends the supervision)
    by: str
    joined: bool = False     # the supervisor's phone answered


@dataclass
class Consult:
    """A consultative transfer in progress: the caller on hold, the agent talking to `party`'s phone."""
    call_id: str
    party: str               # the agent id or BOARD:CHANNEL it was asked for
    caller: Key
    agent: Key
    by: str
    joined: bool = False     # the party's phone answered


class Supervising(ControllerState):
    """Supervision, consultation and mute (a base of CallController, which holds the state)."""

    # the controller's state used here (voiceserver.core.controller.CallController)
    supervisions: dict[Key, Supervision]
    consults: dict[Key, Consult]

    if TYPE_CHECKING:   # the controller's helpers used here
        def _hold(self, rt: BoardRuntime, tick: int, phone: FxsPhone, on: bool, why: str) -> set[int]: ...

    # -- supervisors: listen, whisper, barge in, intercept -------------------
    def supervise(self, call_id: str, mode: str, supervisor: str,
                  by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """A supervisor joins a connected agent call from outside a tick (the API): its phone
        (an agent id's phone, or BOARD:CHANNEL of an FXS line) rings, and once answered the
        engine mixes it in as `mode` says; asked again with another mode on the same call, the
        mix changes at once. Several may join one call (each its own phone); `conference` adds a
        party that all hear and that hears all (a conference of three or more). LookupError: no
        such call or phone; Conflict: not now."""
        if mode not in SUPERVISE_MODES:
            raise LookupError(f"no supervisor mode {mode!r} ({', '.join(SUPERVISE_MODES)})")
        rt, caller, agent = self._agent_call(call_id)
        sup_key = self._supervisor_phone(supervisor)
        tick = max(self.tick, rt.tick)
        sup = self.supervisions.get(sup_key)
        if sup is not None:
            if sup.call_id != call_id:
                raise Conflict(f"supervisor {supervisor} is on call {sup.call_id}: hang up first")
            sup.mode, sup.by = mode, by
            if sup.joined:
                self.settle(rt, tick, self._supervision_mix(rt, tick, sup, "changed"))
            return self._supervise_row(sup, sup_key), self.media.take()
        if sup_key[0] != rt.index:
            raise Conflict(f"supervisor {supervisor}'s phone is on another board than the call")
        if sup_key in (caller, agent):
            raise Conflict(f"{supervisor} is a party of call {call_id}")
        phone = rt.channels[sup_key[1]]
        assert isinstance(phone, FxsPhone)
        if phone.state is not State.IDLE:
            raise Conflict(f"supervisor {supervisor}'s phone is busy ({phone.state.value})")
        sup = self.supervisions[sup_key] = Supervision(call_id, supervisor, caller, agent, mode, by)
        call = self.legs[caller].call
        self.legs[sup_key] = Leg(call)
        phone.ring(tick, call)
        self._publish_supervise(tick, sup, sup_key, "ringing")
        self.settle(rt, tick, {phone.chan})
        return self._supervise_row(sup, sup_key), self.media.take()

    def _agent_call(self, call_id: str) -> tuple[BoardRuntime, Key, Key]:
        """The board, caller's trunk and agent's phone of a call connected to an agent now."""
        for rt in self.boards:
            for chan, ch in rt.channels.items():
                leg = self.legs.get((rt.index, chan))
                if leg is None or leg.call.call_id != call_id or not isinstance(ch, FxoTrunk):
                    continue
                other = rt.channels.get(leg.partner[1]) if leg.partner is not None else None
                if not isinstance(other, FxsPhone) or other.state is not State.CONNECTED:
                    raise Conflict(f"call {call_id} is not connected to an agent's phone: nothing to supervise")
                if other.on_hold:
                    raise Conflict(f"call {call_id} is on hold: supervise it once retrieved")
                return rt, (rt.index, chan), (rt.index, other.chan)
        raise LookupError(f"no call {call_id!r} in progress")

    def _supervisor_phone(self, supervisor: str) -> Key:
        """The FXS phone of an agent id, or of BOARD:CHANNEL. LookupError: no such phone."""
        agent = self.acd.acd.agents.get(supervisor) if self.acd is not None else None
        if agent is not None:
            if agent.spec.phone is None:
                raise LookupError(f"agent {supervisor} has no phone on the card (a number): it cannot supervise")
            key: Key = self.acd.key(agent.spec.phone)
        else:
            board, _, chan = supervisor.rpartition(":")
            rt = next((r for r in self.boards if r.name == board), None)
            if rt is None or not chan.isdigit():
                raise LookupError(f"no supervisor {supervisor!r}: an agent id or BOARD:CHANNEL of a phone")
            key = (rt.index, int(chan))
        if not isinstance(self.boards[key[0]].channels.get(key[1]), FxsPhone):
            raise LookupError(f"supervisor {supervisor!r}: not a phone (FXS line) of the server")
        return key

    def _supervisor_joined(self, rt: BoardRuntime, tick: int, sup: Supervision) -> set[int]:
        sup.joined = True
        return self._supervision_mix(rt, tick, sup, "joined")

    def _supervision_mix(self, rt: BoardRuntime, tick: int, sup: Supervision, state: str) -> set[int]:
        """The engine's mix for the supervisor's mode; intercept bridges the caller with the
        supervisor and drops the agent."""
        key = next(k for k, s in self.supervisions.items() if s is sup)
        if sup.mode == "intercept":
            return self._intercept(rt, tick, sup, key)
        self._remix(rt, sup.call_id)
        self._publish_supervise(tick, sup, key, state)
        return set()

    def _remix(self, rt: BoardRuntime, call_id: str, pair: tuple[int, int] | None = None) -> None:
        """What each party of a supervised call hears, from every supervisor joined on it: the
        caller and the agent hear each other and the supervisors whose mode they hear; each
        supervisor hears the caller, the agent and every other supervisor not just listening.
        No supervisor left: the caller and the agent are bridged as before. A muted party
        (`mutes`, the API's mute) is not heard by the other one; `pair`: the call's (caller,
        agent) channels, for a muted call with no supervisor on it."""
        sups = [(k[1], s) for k, s in self.supervisions.items() if s.call_id == call_id and s.joined]
        muted = self.mutes.get(call_id, set())
        if sups:
            caller, agent = sups[0][1].caller[1], sups[0][1].agent[1]
        elif pair is not None and muted:
            caller, agent = pair
        else:
            return
        # a muted party is not heard by the other (the supervisors still hear it)
        rows: dict[int, tuple[int, ...]] = {
            caller: (*(() if "agent" in muted else (agent,)), *(me for me, s in sups if s.mode in HEARD_BY_CALLER)),
            agent: (*(() if "caller" in muted else (caller,)), *(me for me, s in sups if s.mode in HEARD_BY_AGENT))}
        for me, _ in sups:
            rows[me] = (caller, agent, *(other for other, s in sups if other != me and s.mode != "listen"))
        self.media.mix(rt.index, rows)

    def _intercept(self, rt: BoardRuntime, tick: int, sup: Supervision, key: Key) -> set[int]:
        """The supervisor takes the call: the agent's leg ends (its ACD call is over, busy
        tone on its phone), the caller is bridged with the supervisor's phone."""
        del self.supervisions[key]
        caller_leg, agent_leg, my_leg = self.legs.get(sup.caller), self.legs.get(sup.agent), self.legs.get(key)
        agent_name = caller_leg.agent if caller_leg is not None else None
        if agent_leg is not None:
            agent_leg.partner = None        # its end must not end the caller's call
        if caller_leg is not None:
            caller_leg.partner = key
        if my_leg is not None:
            my_leg.partner = sup.caller
        phone = rt.channels[sup.agent[1]]
        phone.hangup(tick, f"intercepted by supervisor {sup.supervisor}")
        self.settle(rt, tick, {phone.chan})
        self.media.bridge(rt.index, sup.caller[1], key[1])
        if self.recording is not None:   # the supervisor on the right of the same file
            self.recording.bridged(rt, tick, sup.caller[1], key[1], sup.supervisor)
        self.bus.publish(tick, ServerEventKind.CALL_INTERCEPT, chan=sup.caller[1], call_id=sup.call_id,
                         supervisor=sup.supervisor, phone=key[1], agent=agent_name, why=sup.by)
        return set()

    def _supervision_leg_gone(self, rt: BoardRuntime, tick: int, key: Key, reason: str) -> set[int]:
        """A leg of a supervised call ended: the supervisor's (the caller and agent talk as
        before), or the caller's or agent's (the supervisor's phone gets busy tone)."""
        touched: set[int] = set()
        for sup_key, sup in list(self.supervisions.items()):
            if key not in (sup_key, sup.caller, sup.agent):
                continue
            del self.supervisions[sup_key]
            self.bus.publish(tick, ServerEventKind.CALL_SUPERVISE_END, chan=sup.caller[1], call_id=sup.call_id,
                             supervisor=sup.supervisor, phone=sup_key[1], reason=reason or "hung up")
            if key == sup_key:
                if sup.joined and sup.caller in self.legs and sup.agent in self.legs:
                    if any(s.call_id == sup.call_id and s.joined for s in self.supervisions.values()):
                        self._remix(rt, sup.call_id)      # the others stay on the call
                    else:
                        self._rejoin(rt, sup.call_id, sup.caller[1], sup.agent[1])
                continue
            self.legs.pop(sup_key, None)
            phone = rt.channels.get(sup_key[1])
            if isinstance(phone, FxsPhone):
                if phone.state is State.RINGING:
                    phone.stop_ringing(tick, "supervised call ended")
                else:
                    phone.hangup(tick, "supervised call ended")
                self.media.unbridge(rt.index, sup_key[1])
                touched.add(sup_key[1])
        return touched

    def _publish_supervise(self, tick: int, sup: Supervision, key: Key, state: str) -> None:
        caller_leg = self.legs.get(sup.caller)
        self.bus.publish(tick, ServerEventKind.CALL_SUPERVISE, chan=sup.caller[1], call_id=sup.call_id,
                         supervisor=sup.supervisor, phone=key[1], mode=sup.mode, state=state,
                         agent=caller_leg.agent if caller_leg is not None else None, why=sup.by)

    def _supervise_row(self, sup: Supervision, key: Key) -> dict[str, Any]:
        return {"call_id": sup.call_id, "supervisor": sup.supervisor, "phone": key[1], "mode": sup.mode,
                "joined": sup.joined}

    # -- consultative transfer ----------------------------------------------
    def consult(self, call_id: str, action: str, party: str | None,
                by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """A consultative transfer from outside a tick (the API). `start`: the caller goes on
        hold (music) and `party`'s phone rings; answered, the agent and it talk. `complete`:
        the caller is bridged with that phone and the agent's leg is dropped. `cancel`: that
        phone is hung up and the caller is back with the agent. LookupError: no such call,
        phone or consultation; Conflict: not now."""
        if action == "start":
            rt, caller, agent = self._agent_call(call_id)
            if any(s.call_id == call_id for s in self.supervisions.values()):
                raise Conflict(f"call {call_id} is supervised or in conference: consult without them")
            key = self._supervisor_phone(str(party))
            if key[0] != rt.index or key in (caller, agent):
                raise Conflict(f"{party} is a party of call {call_id} or on another board")
            phone = rt.channels[key[1]]
            assert isinstance(phone, FxsPhone)
            if phone.state is not State.IDLE:
                raise Conflict(f"{party}'s phone is busy ({phone.state.value})")
            tick = max(self.tick, rt.tick)
            agent_phone = rt.channels[agent[1]]
            assert isinstance(agent_phone, FxsPhone)
            con = self.consults[key] = Consult(call_id, str(party), caller, agent, by)
            touched = self._hold(rt, tick, agent_phone, True, by)
            call = self.legs[caller].call
            self.legs[key] = Leg(call)
            phone.ring(tick, call)
            self._publish_consult(tick, con, key, "ringing")
            self.settle(rt, tick, touched | {phone.chan})
            return self._consult_row(con, key, "ringing"), self.media.take()
        found = [(k, c) for k, c in self.consults.items() if c.call_id == call_id]
        if not found:
            if not any(leg.call.call_id == call_id for leg in self.legs.values()):
                raise LookupError(f"no call {call_id!r} in progress")
            raise Conflict(f"call {call_id} has no consultation in progress: consult first")
        key, con = found[0]
        rt = self.boards[key[0]]
        tick = max(self.tick, rt.tick)
        if action == "complete":
            if not con.joined:
                raise Conflict(f"{con.party} has not answered yet: cancel, or complete once answered")
            touched = self._consult_complete(rt, tick, key, con)
            state = "completed"
        elif action == "cancel":
            touched = self._consult_end(rt, tick, key, con, "cancelled", hang_up=True)
            state = "cancelled"
        else:
            raise LookupError(f"no consult action {action!r} (start, complete, cancel)")
        self.settle(rt, tick, touched)
        return self._consult_row(con, key, state), self.media.take()

    def _consult_joined(self, rt: BoardRuntime, tick: int, key: Key, con: Consult) -> set[int]:
        con.joined = True
        self.media.bridge(rt.index, con.agent[1], key[1])
        self._publish_consult(tick, con, key, "joined")
        return set()

    def _consult_complete(self, rt: BoardRuntime, tick: int, key: Key, con: Consult) -> set[int]:
        """The caller to the consulted phone; the agent's leg ends (its ACD call is over)."""
        del self.consults[key]
        agent_phone = rt.channels[con.agent[1]]
        assert isinstance(agent_phone, FxsPhone)
        agent_phone.hold(False)           # a hang-up now ends its leg, no recall
        caller_leg, agent_leg, party_leg = self.legs.get(con.caller), self.legs.get(con.agent), self.legs.get(key)
        if agent_leg is not None:
            agent_leg.partner = None
        if caller_leg is not None:
            caller_leg.partner = key
        if party_leg is not None:
            party_leg.partner = con.caller
        agent_phone.hangup(tick, f"transferred to {con.party}")
        self.settle(rt, tick, {agent_phone.chan})
        self.media.stop_play(rt.index, con.caller[1])
        self.media.bridge(rt.index, con.caller[1], key[1])
        if self.recording is not None:   # the consulted party on the right of the same file
            self.recording.bridged(rt, tick, con.caller[1], key[1], con.party)
        self._publish_consult(tick, con, key, "completed")
        return set()

    def _consult_end(self, rt: BoardRuntime, tick: int, key: Key, con: Consult, state: str,
                     hang_up: bool) -> set[int]:
        """The consultation is over without a transfer: the caller back with the agent."""
        del self.consults[key]
        phone = rt.channels[key[1]]
        if hang_up and isinstance(phone, FxsPhone):
            self.legs.pop(key, None)
            if phone.state is State.RINGING:
                phone.stop_ringing(tick, "consultation cancelled")
            else:
                phone.hangup(tick, "consultation cancelled")
        self.media.unbridge(rt.index, key[1])     # before the agent is bridged with the caller again
        agent_phone = rt.channels.get(con.agent[1])
        touched = {key[1]}
        if isinstance(agent_phone, FxsPhone) and agent_phone.on_hold and con.caller in self.legs:
            touched |= self._hold(rt, tick, agent_phone, False, f"consultation {state}")
        self._publish_consult(tick, con, key, state)
        return touched

    def _consult_leg_gone(self, rt: BoardRuntime, tick: int, key: Key) -> set[int]:
        """A leg of a consultation ended: the consulted phone's (the caller back with the
        agent), or the caller's or agent's (the consulted phone is hung up)."""
        touched: set[int] = set()
        for con_key, con in list(self.consults.items()):
            if con_key == key:
                touched |= self._consult_end(rt, tick, key, con, "ended", hang_up=False)
            elif key in (con.caller, con.agent):
                touched |= self._consult_end(rt, tick, con_key, con, "ended", hang_up=True)
        return touched

    def _publish_consult(self, tick: int, con: Consult, key: Key, state: str) -> None:
        caller_leg = self.legs.get(con.caller)
        self.bus.publish(tick, ServerEventKind.CALL_CONSULT, chan=con.caller[1], call_id=con.call_id,
                         party=con.party, phone=key[1], state=state,
                         agent=caller_leg.agent if caller_leg is not None else None, why=con.by)

    @staticmethod
    def _consult_row(con: Consult, key: Key, state: str) -> dict[str, Any]:
        return {"call_id": con.call_id, "party": con.party, "phone": key[1], "state": state}

    # -- the API's mute: the same mixing of an agent call ---------------------------
    def mute(self, call_id: str, party: str, on: bool, by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Mute (or unmute) one party of a connected agent call from outside a tick (the API): a
        muted agent is not heard by the caller, a muted caller not by the agent (the engine's
        rows; a supervisor on the call still hears both). Held and retrieved, or a supervisor
        gone, the call stays as muted as it was. LookupError: no such call or party; Conflict:
        not connected to an agent now (or on hold)."""
        if party not in MUTE_PARTIES:
            raise LookupError(f"no party {party!r} to mute ({', '.join(MUTE_PARTIES)})")
        rt, caller, agent = self._agent_call(call_id)
        tick = max(self.tick, rt.tick)
        muted = self.mutes.setdefault(call_id, set())
        changed = (party in muted) != on
        if on:
            muted.add(party)
        else:
            muted.discard(party)
        if not muted:
            del self.mutes[call_id]
        self._mute_pairs[call_id] = (caller, agent)
        if changed:
            self._rejoin(rt, call_id, caller[1], agent[1])
            caller_leg = self.legs.get(caller)
            self.bus.publish(tick, ServerEventKind.CALL_MUTE, chan=caller[1], call_id=call_id, party=party,
                             muted=on, phone=agent[1], agent=caller_leg.agent if caller_leg is not None else None,
                             why=by)
        return ({"call_id": call_id, "party": party, "muted": on, "changed": changed,
                 "muted_parties": sorted(muted)}, self.media.take())

    def _rejoin(self, rt: BoardRuntime, call_id: str, caller: int, agent: int) -> None:
        """The caller and the agent hear each other again (retrieved, a supervisor gone, unmuted):
        bridged, or mixed as the supervisors still on the call and the mutes say."""
        if self.mutes.get(call_id) or any(s.call_id == call_id and s.joined for s in self.supervisions.values()):
            self._remix(rt, call_id, (caller, agent))
        else:
            self.media.bridge(rt.index, caller, agent)
