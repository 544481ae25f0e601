"""The network API's call commands inside the call controller: answer a call held for the
API, bridge and unbridge two calls, originate on a trunk group (with glare retry), and play
to or collect digits from a call taken from the IVR.

`ApiCommands` is a part of `voiceserver.core.controller.CallController` (its base class):
the controller's state and the helpers these commands use are declared below, and the
controller defines them. Sans-I/O as the controller: each command returns (its answer row,
the media commands for the engines); the server runs them between ticks (`catch_up` first).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boarddrv.chanref import ChannelRef
from dsp.mix import Segment
from voiceserver.acd.hunt import HuntGroup, Seizure
from voiceserver.config.server import ServerConfig
from voiceserver.core.channels import Channel, FxoTrunk, FxsPhone, State
from voiceserver.core.controllerstate import ControllerState
from voiceserver.core.e1 import E1R2Trunk
from voiceserver.core.events import ServerEventKind
from voiceserver.core.masking import MASK, masked, pause_menus
from voiceserver.core.media import MediaCommand
from voiceserver.core.runtime import BoardRuntime, Conflict, Key, Leg
from voiceserver.ivr import flows as ivrmod
from voiceserver.ivr.collect import CollectResult, CollectSpec, DigitCollector
from voiceserver.ivr.prompts import PromptError

if TYPE_CHECKING:
    from voiceserver.recording.rules import RecordingRules


@dataclass
class Join:
    """One side of two calls bridged by the API (`bridge`): each keeps its own state."""
    other: Key               # the other call's trunk
    call_id: str             # this side's call
    other_call: str
    by: str
    hang_up_with: bool = False   # an originated call made for the other: it ends with it


@dataclass
class Originate:
    """An outbound call of the API (`originate`): dialled on `line`, then `then` once answered."""
    call_id: str
    trunk: str               # the trunk group
    number: str
    then: dict[str, str]     # {"ivr": MENU} | {"agent": ID} | {"call": CALL_ID} | {"play": "P1&P2"} | {"queue": Q} | {}
    by: str
    line: str                # BOARD:CHANNEL
    seizure: Seizure | None = None   # the group's hunt with glare retry: the next line on glare
    board: int | None = None         # the board the line must be on (its target's), or any


@dataclass
class ApiPrompt:
    """A call the network API took from the IVR to play to or collect digits from
    (`api_play`, `api_collect`): what it plays and collects now. It stays answered under
    the API's control between commands, until a route, an ivr jump or a hang-up."""
    play_id: int | None = None                # the API's prompt list playing (its token)
    barge_in: bool = True                     # a key stops it
    collector: DigitCollector | None = None   # the IVR's collector, when collecting
    secret: bool = False                      # the input is masked in every event
    timer: int | None = None                  # the tick the collector's timer is armed for


class ApiCommands(ControllerState):
    """The API's call commands (a base of CallController, which holds the state)."""

    # the controller's state these commands use (voiceserver.core.controller.CallController)
    cfg: ServerConfig
    segment: Callable[[str, str], Segment]
    joins: dict[Key, Join]
    originates: dict[Key, Originate]
    originate_rings: dict[Key, Key]
    awaiting: dict[Key, ivrmod.IvrCall]
    api_prompts: dict[Key, ApiPrompt]
    _api_play_ids: itertools.count[int]
    _playing: dict[Key, tuple[int, list[str]]]

    if TYPE_CHECKING:   # the controller's helpers these commands use
        def now_ms(self, rt: BoardRuntime) -> int: ...
        def play_moh(self, rt: BoardRuntime, chan: int, music: str = "default", token: Any = None) -> None: ...
        def _ivr_commands(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg,
                          cmds: list[ivrmod.Command]) -> None: ...
        def _ivr_play(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Play) -> None: ...
        def _lang(self, leg: Leg) -> str: ...
        def _pause_rules(self) -> RecordingRules | None: ...
        def _play_done_event(self, tick: int, chan: int, call_id: str | None, key: Key, how: str) -> None: ...
        def _play_segments(self, cmd: ivrmod.Play) -> list[Segment]: ...
        def _supervisor_phone(self, supervisor: str) -> Key: ...

    # -- answer, bridge two calls, originate ------------------------------------
    def _answer_offered(self, rt: BoardRuntime, tick: int, ch: FxoTrunk, leg: Leg, ivr: ivrmod.IvrCall) -> set[int]:
        """Answer an offered inbound call and start its IVR (at once, or at the API's answer)."""
        self.awaiting.pop((rt.index, ch.chan), None)
        call = leg.call
        ch.answer(tick)
        ivr.secret_menus |= pause_menus(self._pause_rules())   # their input is secret too
        leg.ivr = ivr
        if self.recording is not None:   # rules decide; recording starts with this tick
            self.recording.answered(rt, tick, ch.chan, leg)
        cmds = ivr.call_started(call.caller or "", call.called or "", self.now_ms(rt))
        self._ivr_commands(rt, tick, ch, leg, cmds)
        return {ch.chan}

    def _await_answer(self, rt: BoardRuntime, tick: int, ch: FxoTrunk, leg: Leg, ivr: ivrmod.IvrCall) -> set[int]:
        """A line with answer = "api": the call rings on until the API answers it (`answer_call`)
        or, `api_answer_fallback_ms` later, the IVR does as on any line. An analog line rings
        at the exchange; an E1 R2 line has accepted the call (B signal) and holds the answer
        signal back, its caller hearing our ringback meanwhile."""
        key = (rt.index, ch.chan)
        self.awaiting[key] = ivr
        ms = self.cfg.channels.api_answer_fallback_ms
        self.media.call_at(rt.index, tick + max(1, round(ms / rt.ms_per_tick)), ch.chan,
                           ("api_answer", leg.call.call_id))
        self._publish_api_answer(tick, ch, leg, "waiting", fallback_ms=ms)
        if isinstance(ch, E1R2Trunk):
            ch.hold_answer(tick)
            return {ch.chan}
        return set()

    def _publish_api_answer(self, tick: int, ch: FxoTrunk, leg: Leg, state: str, **more: Any) -> None:
        self.bus.publish(tick, ServerEventKind.CALL_API_ANSWER, chan=ch.chan, call_id=leg.call.call_id, state=state,
                         caller=leg.call.caller, name=leg.call.data.get("caller_name"), **more)

    def _answer_fallback(self, rt: BoardRuntime, tick: int, ch: Channel, call_id: str) -> None:
        """No answer from the API in time: the IVR answers the call (if it still rings)."""
        key = (rt.index, ch.chan)
        leg, ivr = self.legs.get(key), self.awaiting.get(key)
        if leg is None or ivr is None or leg.call.call_id != call_id or not isinstance(ch, FxoTrunk) \
                or ch.state is not State.RINGING:
            return
        self._publish_api_answer(tick, ch, leg, "fallback", why="not answered by the API in time")
        self.settle(rt, tick, self._answer_offered(rt, tick, ch, leg, ivr))

    def answer_call(self, call_id: str, by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Answer a call ringing on an answer = "api" line from outside a tick (the API): the
        line goes off-hook and the call's IVR flow starts, as an answer by the server would.
        LookupError: no such call; Conflict: not waiting for the API's answer."""
        rt, key, ch, leg = self._call_trunk(call_id)
        ivr = self.awaiting.get(key)
        if ivr is None or ch.state is not State.RINGING:
            raise Conflict(f"call {call_id} is not waiting for an answer ({ch.state.value}): only a call on an "
                           f"answer_api line rings until the API answers it")
        tick = max(self.tick, rt.tick)
        self._publish_api_answer(tick, ch, leg, "answered", why=by)
        self.settle(rt, tick, self._answer_offered(rt, tick, ch, leg, ivr))
        return {"call_id": call_id, "answered": True}, self.media.take()

    def _call_trunk(self, call_id: str) -> tuple[BoardRuntime, Key, FxoTrunk, Leg]:
        """The board, trunk (analog or E1), its channel and leg of a call in progress."""
        for rt in self.boards:
            for chan, ch in rt.channels.items():
                leg = self.legs.get((rt.index, chan))
                if leg is not None and leg.call.call_id == call_id and isinstance(ch, FxoTrunk):
                    return rt, (rt.index, chan), ch, leg
        raise LookupError(f"no call {call_id!r} in progress")

    def _joinable(self, key: Key, ch: FxoTrunk, leg: Leg) -> None:
        """Conflict unless this call can be bridged with another now: answered, not bridged
        already, not with an agent or a number, not queued."""
        cid = leg.call.call_id
        if ch.state is not State.CONNECTED:
            raise Conflict(f"call {cid} is not answered ({ch.state.value}): it cannot be bridged")
        if key in self.joins:
            raise Conflict(f"call {cid} is bridged with call {self.joins[key].other_call} already: unbridge first")
        if leg.partner is not None or self.acd.knows(cid):
            raise Conflict(f"call {cid} is queued or talking to an agent or a number: it cannot be bridged")

    def bridge_calls(self, call_id: str, other_id: str, by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Join two calls' audio from outside a tick (the API): each trunk hears the other in
        the engine's rows, and each call keeps its own state (an IVR goes on, its prompts heard
        over the other party); `unbridge_calls` separates them, and a hang-up of either does.
        LookupError: no such call; Conflict: the same call, another board, or not bridgeable
        now (see `_joinable`)."""
        if call_id == other_id:
            raise Conflict(f"call {call_id} cannot be bridged with itself")
        rt, a, ach, aleg = self._call_trunk(call_id)
        rt_b, b, bch, bleg = self._call_trunk(other_id)
        if rt_b is not rt:
            raise Conflict(f"calls {call_id} and {other_id} are on different boards: they cannot be bridged")
        self._joinable(a, ach, aleg)
        self._joinable(b, bch, bleg)
        self._join(rt, max(self.tick, rt.tick), a, b, by)
        return {"call_id": call_id, "other": other_id, "state": "joined"}, self.media.take()

    def _join(self, rt: BoardRuntime, tick: int, a: Key, b: Key, by: str, hang_up_with: bool = False) -> None:
        """Bridge trunk `a` with trunk `b`; `hang_up_with`: b (an originated call made for a)
        ends when a does."""
        aid, bid = self.legs[a].call.call_id, self.legs[b].call.call_id
        self.joins[a] = Join(b, aid, bid, by)
        self.joins[b] = Join(a, bid, aid, by, hang_up_with)
        self.media.stop_play(rt.index, b[1])
        self.media.mix(rt.index, {a[1]: (b[1],), b[1]: (a[1],)})
        for key, side in ((a, self.joins[a]), (b, self.joins[b])):
            self.bus.publish(tick, ServerEventKind.CALL_JOIN, chan=key[1], call_id=side.call_id,
                             other=side.other_call, other_chan=side.other[1], state="joined", why=by)

    def unbridge_calls(self, call_id: str, by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Separate a call from the call it was bridged with (`bridge_calls`): each goes on
        alone, in its own state. LookupError: no such call; Conflict: not bridged."""
        rt, key, _, _ = self._call_trunk(call_id)
        join = self.joins.get(key)
        if join is None:
            raise Conflict(f"call {call_id} is not bridged with another call")
        self._separate(rt, max(self.tick, rt.tick), key, "separated", by)
        return {"call_id": call_id, "other": join.other_call, "state": "separated"}, self.media.take()

    def _separate(self, rt: BoardRuntime, tick: int, key: Key, state: str, why: str) -> None:
        join = self.joins.pop(key)
        other = self.joins.pop(join.other, None)
        self.media.mix(rt.index, {key[1]: (), join.other[1]: ()})
        for k, side in ((key, join), (join.other, other)):
            if side is not None:
                self.bus.publish(tick, ServerEventKind.CALL_JOIN, chan=k[1], call_id=side.call_id,
                                 other=side.other_call, other_chan=side.other[1], state=state, why=why)

    def originate(self, trunk: str, number: str, then: dict[str, str],
                  by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Dial `number` on a free line of trunk group `trunk` (its hunt picks it, as an IVR
        transfer's) from outside a tick (the API); once answered, `then`: {"ivr": MENU} the
        called party is in that IVR menu; {"agent": ID} the agent's phone (or BOARD:CHANNEL)
        rings and, answered, talks to it; {"call": CALL_ID} it is bridged with that call (and
        ends with it); {"play": "P1&P2"} it hears those prompts ('&'-separated, as Asterisk's
        Playback) and is hung up, as the IVR's hangup action with prompts; {"queue": Q} it
        joins that queue as the IVR's queue action (no route.request: decided here); {}
        nothing (the API drives it). `call.originate` events follow the call: dialing,
        answered, connected (an agent), failed (with its cause). LookupError: no such group,
        menu, prompt, queue, agent or call; Conflict: no free line, or the target is busy."""
        lines = self.cfg.channels.outbound.get(trunk)
        if not lines:
            raise LookupError(f"no trunk group {trunk!r} (groups: {', '.join(sorted(self.cfg.channels.outbound))})")
        what, target = next(iter(then.items()), (None, None))
        board: int | None = None                    # the line must be on the target's board
        if what == "ivr":
            if target not in self.cfg.ivr.menus:
                raise LookupError(f"no menu {target!r} (menus: {', '.join(sorted(self.cfg.ivr.menus))})")
        elif what == "agent":
            phone_key = self._supervisor_phone(str(target))
            phone = self.boards[phone_key[0]].channels[phone_key[1]]
            if phone.state is not State.IDLE or phone_key in self.legs:
                raise Conflict(f"{target}'s phone is busy ({phone.state.value})")
            board = phone_key[0]
        elif what == "call":
            _, other, och, oleg = self._call_trunk(str(target))
            self._joinable(other, och, oleg)
            board = other[0]
        elif what == "play":
            self._originate_prompts(str(target))
        elif what == "queue":
            if target not in self.acd.acd.queues and target not in self.acd.acd.entries:
                raise LookupError(f"no queue {target!r} (queues: {', '.join(sorted(self.acd.acd.queues))})")
        elif what is not None:
            raise LookupError(f"no originate target {what!r} (ivr, agent, call, play, queue)")
        acd = self.acd.acd
        hunt = acd.hunt.get(trunk)
        if hunt is None:
            hunt = acd.hunt[trunk] = HuntGroup(trunk, list(lines))
        seizure = Seizure(hunt, acd.glare_retries)
        line = seizure.start(self._originate_line_status(board))
        if line is None:
            raise Conflict(f"no free line in trunk group {trunk}")
        o = self._originate_dial(line, Originate("", trunk, number, dict(then), by, "", seizure, board))
        return ({"call_id": o.call_id, "trunk": trunk, "number": number, "line": o.line, "then": o.then},
                self.media.take())

    def _originate_line_status(self, board: int | None) -> Callable[[ChannelRef], str]:
        """The hunt's view of a line for an originate: free, busy... (on `board` only, if given)."""
        return lambda ref: self.acd.trunk_status(ref, self.acd.key(ref)[0] if board is None else board)

    def _originate_dial(self, line: ChannelRef, o: Originate,
                        glared: tuple[int, Key, Originate, str] | None = None) -> Originate:
        """Seize `line` and dial the originate's number on it: a new call (call.originate
        dialing). `glared`: (tick, key, originate, reason) of the call this one retries after
        glare, which says so first (call.originate retry, naming the new call)."""
        key = self.acd.key(line)
        rt = self.boards[key[0]]
        ch = rt.channels[key[1]]
        assert isinstance(ch, FxoTrunk)
        tick = max(self.tick, rt.tick)
        call = ch.dial(tick, o.number)
        call.data["originated_by"] = o.by
        self.legs[key] = Leg(call)
        o.call_id, o.line = call.call_id, f"{rt.name}:{key[1]}"
        self.originates[key] = o
        if glared is not None:
            at, old_key, old, reason = glared
            self._publish_originate(at, old_key, old, "retry", cause="glare", reason=reason, retry=o.call_id)
        self._publish_originate(tick, key, o, "dialing")
        self.settle(rt, tick, {key[1]})
        return o

    def _originate_glare(self, tick: int, key: Key, o: Originate, reason: str) -> bool:
        """An originated call met glare on its line (the far end seized it as we did): dial again
        on another line of the group, as an IVR transfer does, up to [queues] glare_retries times
        (call.originate retry, naming the new call). False: no retry left, or no free line."""
        if o.seizure is None or o.seizure.line != self.acd.ref(key):
            return False
        line = o.seizure.glare(self.acd.ref(key), self._originate_line_status(o.board))
        if line is None:
            return False
        self._originate_dial(line, Originate("", o.trunk, o.number, o.then, o.by, "", o.seizure, o.board),
                             glared=(tick, key, o, reason))
        return True

    def _originate_prompts(self, names: str) -> tuple[ivrmod.Prompt, ...]:
        """The prompts of an originate's {"play": "P1&P2"}, each checked to exist in the
        default language. LookupError: none given, or one missing (named)."""
        prompts = tuple(ivrmod.Prompt(n.strip()) for n in names.split("&") if n.strip())
        if not prompts:
            raise LookupError("play: no prompt named")
        lang = self.cfg.prompts.default_lang
        for p in prompts:
            try:
                self.segment(p.name, lang)
            except PromptError as exc:
                raise LookupError(f"no prompt {p.name!r} in {lang}: {exc}") from None
        return prompts

    def _publish_originate(self, tick: int, key: Key, o: Originate, state: str, **more: Any) -> None:
        self.bus.publish(tick, ServerEventKind.CALL_ORIGINATE, chan=key[1], call_id=o.call_id, state=state,
                         trunk=o.trunk, number=o.number, line=o.line, then=o.then, why=o.by, **more)

    def _originate_answered(self, rt: BoardRuntime, tick: int, key: Key) -> set[int]:
        """An originated call answered (its `then` runs), or the agent's phone rung for one."""
        if key in self.originate_rings:            # the agent's phone: it talks to the called party
            trunk = self.originate_rings.pop(key)
            trunk_leg, o = self.legs.get(trunk), self.originates.get(trunk)
            if trunk_leg is None or o is None:
                return set()
            self.media.stop_play(rt.index, trunk[1])
            self.media.bridge(rt.index, trunk[1], key[1])
            trunk_leg.agent = o.then.get("agent")
            if self.recording is not None:
                self.recording.bridged(rt, tick, trunk[1], key[1], trunk_leg.agent)
            self._publish_originate(tick, trunk, o, "connected")
            return set()
        o = self.originates[key]
        leg, ch = self.legs.get(key), rt.channels[key[1]]
        if leg is None or not isinstance(ch, FxoTrunk):
            return set()
        self._publish_originate(tick, key, o, "answered")
        what, target = next(iter(o.then.items()), (None, None))
        try:
            if what in ("ivr", "play", "queue"):    # the IVR runs a menu, prompts then a hang-up, or a queue
                start: ivrmod.Action = ivrmod.SubmenuAction(str(target))
                if what == "play":
                    start = ivrmod.HangupAction(self._originate_prompts(str(target)))
                elif what == "queue":
                    start = ivrmod.QueueAction(str(target))
                    self.acd.decided[o.call_id] = None     # decided here: no route.request for it
                ivr = ivrmod.IvrCall(self.cfg.ivr, start=start, lang=self.cfg.prompts.default_lang)
                ivr.secret_menus |= pause_menus(self._pause_rules())
                leg.ivr = ivr
                self._ivr_commands(rt, tick, ch, leg, ivr.call_started("", o.number, self.now_ms(rt)))
                return {key[1]}
            if what == "agent":
                phone_key = self._supervisor_phone(str(target))
                phone = rt.channels.get(phone_key[1])
                if phone_key[0] != rt.index or not isinstance(phone, FxsPhone) or phone.state is not State.IDLE \
                        or phone_key in self.legs:
                    raise Conflict(f"{target}'s phone is busy")
                self.legs[phone_key] = Leg(leg.call, partner=key)
                leg.partner = phone_key
                self.originate_rings[phone_key] = key
                phone.ring(tick, leg.call)
                self.play_moh(rt, key[1])
                self.settle(rt, tick, {phone.chan})
                return set()
            if what == "call":
                _, other, och, oleg = self._call_trunk(str(target))
                self._joinable(other, och, oleg)
                self._join(rt, tick, other, key, o.by, hang_up_with=True)
        except (LookupError, Conflict, ivrmod.IvrError) as exc:
            ch.hangup(tick, f"originate: {str(exc).strip(chr(39) + chr(34))}")
            return {key[1]}
        return set()

    def _api_leg_gone(self, rt: BoardRuntime, tick: int, key: Key, leg: Leg, reason: str) -> set[int]:
        """A leg ended: the mutes of its pair go, its bridge with another call ends (an
        originated call made for it is hung up), an originated call that never answered says
        why (`call.originate` failed, with its cause)."""
        touched: set[int] = set()
        cid = leg.call.call_id
        self.awaiting.pop(key, None)
        if key in self._mute_pairs.get(cid, ()):
            self.mutes.pop(cid, None)
            self._mute_pairs.pop(cid, None)
        join = self.joins.get(key)
        if join is not None:
            other = self.joins.get(join.other)
            self._separate(rt, tick, key, "ended", reason or "hung up")
            other_ch = rt.channels.get(join.other[1])
            if other is not None and other.hang_up_with and other_ch is not None:
                other_ch.hangup(tick, f"the call it was bridged with ({join.call_id}) ended")
                touched.add(join.other[1])
        o = self.originates.pop(key, None)
        if o is not None and leg.call.answer_tick is None:
            if not (originate_cause(reason) == "glare" and self._originate_glare(tick, key, o, reason)):
                self._publish_originate(tick, key, o, "failed", cause=originate_cause(reason), reason=reason)
        self.originate_rings.pop(key, None)
        for phone, trunk in list(self.originate_rings.items()):
            if trunk == key:
                del self.originate_rings[phone]
        return touched


    # -- the API's play and collect: a call taken from the IVR under the API's control ------
    def _api_call(self, call_id: str, doing: str) -> tuple[BoardRuntime, Key, FxoTrunk, Leg]:
        """An answered call the API may play to or collect from now: in the IVR or under the
        API's control already. Conflict: not answered, queued, with an agent or bridged."""
        rt, key, ch, leg = self._call_trunk(call_id)
        if ch.state is not State.CONNECTED:
            raise Conflict(f"call {call_id} is not answered ({ch.state.value}): nothing can be {doing} it")
        if leg.partner is not None or self.acd.knows(call_id) or key in self.joins:
            raise Conflict(f"call {call_id} is queued, with an agent or a number, or bridged: "
                           f"nothing can be {doing} it now")
        return rt, key, ch, leg

    def _api_take(self, rt: BoardRuntime, tick: int, ch: FxoTrunk, key: Key, leg: Leg, by: str) -> ApiPrompt:
        """The API takes the line: the IVR flow is left (its prompt stops, as for a route) and
        whatever the API played or collected before ends; the call stays answered."""
        if leg.ivr is not None and not leg.ivr.done:
            self._ivr_commands(rt, tick, ch, leg, leg.ivr.leave(rt.ms_at(tick), by))
        self._api_release(rt, tick, key)
        prompt = self.api_prompts[key] = ApiPrompt()
        return prompt

    def _api_release(self, rt: BoardRuntime, tick: int, key: Key, how: str = "stopped") -> None:
        """The API's play (and collection) on `key` ends: its prompt stops (call.play_done `how`),
        and a collection still running gives the digits so far (ivr.input, reason replaced), so
        that a client waiting for its result hears how it ended."""
        prompt = self.api_prompts.pop(key, None)
        if prompt is None:
            return
        if prompt.play_id is not None:
            self._api_stop(rt, tick, key, prompt, how)
        if prompt.collector is not None:
            self._api_input(tick, key, prompt, prompt.collector.digits, "replaced", len(prompt.collector.digits))

    def _api_call_ending(self, tick: int, key: Key) -> None:
        """The call ends (either side, the API's hangup, an alarm) while the API collects from
        it: ivr.input with the digits so far, reason hangup (before its call.end)."""
        prompt = self.api_prompts.get(key)
        if prompt is not None and prompt.collector is not None:
            digits = prompt.collector.digits
            prompt.collector = None
            self._api_input(tick, key, prompt, digits, "hangup", len(digits))

    def _api_stop(self, rt: BoardRuntime, tick: int, key: Key, prompt: ApiPrompt, how: str) -> None:
        leg = self.legs.get(key)
        if leg is not None and leg.play_id == prompt.play_id:
            leg.play_id = None
        self.media.stop_play(rt.index, key[1])
        if self._playing.get(key, (None,))[0] == prompt.play_id:
            self._play_done_event(tick, key[1], leg.call.call_id if leg else None, key, how)
        prompt.play_id = None

    def _api_start_play(self, rt: BoardRuntime, tick: int, ch: FxoTrunk, leg: Leg, prompt: ApiPrompt,
                        cmd: ivrmod.Play) -> None:
        self._ivr_play(rt, tick, ch, leg, cmd)      # the engine's Play, call.play, as the IVR's
        prompt.play_id, prompt.barge_in = cmd.id, cmd.barge_in

    def _api_items(self, leg: Leg, items: list[ivrmod.PlayItem], barge_in: bool, lang: str | None) -> ivrmod.Play:
        """The Play of `items`, every prompt checked to exist first. ValueError: a prompt is
        missing (named) or a say value is not one saynumber can say."""
        play = ivrmod.Play(next(self._api_play_ids), tuple(items), barge_in, lang or self._lang(leg))
        for item in items:
            try:
                self._play_segments(ivrmod.Play(play.id, (item,), barge_in, play.lang))
            except PromptError as exc:
                name = item.name if isinstance(item, ivrmod.Prompt) else item_name(item)
                raise ValueError(f"no prompt {name!r} in {item.lang or play.lang}: {exc}") from None
            except (ValueError, ArithmeticError) as exc:
                raise ValueError(f"{item_name(item)}: {exc}") from None
        return play

    def api_play(self, call_id: str, items: list[ivrmod.PlayItem], barge_in: bool, lang: str | None,
                 by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Play prompts and said numbers to a caller from outside a tick (the API), with the
        engine's Play as the IVR's (call.play, then call.play_done with how). The call leaves
        its IVR flow and stays answered under the API's control. `barge_in`: a key stops it.
        ValueError: a prompt missing (nothing plays); LookupError: no such call; Conflict: see
        `_api_call`."""
        rt, key, ch, leg = self._api_call(call_id, "played to")
        play = self._api_items(leg, items, barge_in, lang)
        tick = max(self.tick, rt.tick)
        prompt = self._api_take(rt, tick, ch, key, leg, by)
        self._api_start_play(rt, tick, ch, leg, prompt, play)
        return ({"call_id": call_id, "items": [item_name(i) for i in items], "barge_in": barge_in,
                 "lang": play.lang}, self.media.take())

    def api_collect(self, call_id: str, spec: CollectSpec, secret: bool, items: list[ivrmod.PlayItem],
                    lang: str | None, by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Collect digits from a caller with the IVR's collector and its termination conditions,
        from outside a tick (the API); `items` (optional) play first, a key stops them. The
        result comes later as ivr.input (menu "api", the value masked when `secret`). The
        call leaves its IVR flow. ValueError, LookupError, Conflict: as `api_play`."""
        rt, key, ch, leg = self._api_call(call_id, "collected from")
        play = self._api_items(leg, items, spec.barge_in, lang) if items else None
        tick = max(self.tick, rt.tick)
        prompt = self._api_take(rt, tick, ch, key, leg, by)
        prompt.secret = secret
        now = rt.ms_at(tick)
        prompt.collector = DigitCollector(spec, now)
        if play is not None:
            self._api_start_play(rt, tick, ch, leg, prompt, play)
        else:
            prompt.collector.prompt_done(now)     # nothing to say: the timers run now
        self._api_arm(rt, tick, key, prompt)
        return ({"call_id": call_id, "collecting": True, "max_digits": spec.max_digits, "secret": secret},
                self.media.take())

    def _api_arm(self, rt: BoardRuntime, tick: int, key: Key, prompt: ApiPrompt) -> None:
        """The collector's timer, armed again only for an earlier deadline (as the IVR's)."""
        deadline = prompt.collector.deadline if prompt.collector is not None else None
        if deadline is None:
            return
        at = max(rt.tick_at(deadline), tick + 1)
        if prompt.timer is None or at < prompt.timer:
            prompt.timer = at
            self.media.call_at(rt.index, at, key[1], ("api_collect", at))

    def _api_prompt_done(self, rt: BoardRuntime, tick: int, ch: Channel, token: Any) -> None:
        key = (rt.index, ch.chan)
        prompt = self.api_prompts[key]
        if prompt.play_id != token:
            return
        prompt.play_id = None
        if prompt.collector is not None:
            self._api_result(rt, tick, key, prompt, prompt.collector.prompt_done(self.now_ms(rt)))

    def _api_digit(self, rt: BoardRuntime, tick: int, ch: Channel, digit: str) -> None:
        key = (rt.index, ch.chan)
        prompt = self.api_prompts[key]
        col = prompt.collector
        if col is None:
            if prompt.play_id is not None and prompt.barge_in:
                self._api_stop(rt, tick, key, prompt, "barge_in")
            return
        if col.complete:
            return                   # the input is complete; it ends with the prompt
        now = self.now_ms(rt)
        res = col.feed(digit, now)
        if col.barged_in and prompt.play_id is not None:
            self._api_stop(rt, tick, key, prompt, "barge_in")
            res = col.prompt_done(now) or res
        self._api_result(rt, tick, key, prompt, res)

    def _api_timer(self, rt: BoardRuntime, tick: int, ch: Channel, at: int) -> None:
        key = (rt.index, ch.chan)
        prompt = self.api_prompts.get(key)
        if prompt is None or prompt.timer != at or prompt.collector is None:
            return                   # a timer a later one replaced, or the collection ended
        prompt.timer = None
        self._api_result(rt, tick, key, prompt, prompt.collector.tick(self.now_ms(rt)))

    def _api_result(self, rt: BoardRuntime, tick: int, key: Key, prompt: ApiPrompt,
                    res: CollectResult | None) -> None:
        """The collection ended (ivr.input with its reason) or goes on (its timer armed)."""
        if res is None:
            self._api_arm(rt, tick, key, prompt)
            return
        prompt.collector = None
        if prompt.play_id is not None:
            self._api_stop(rt, tick, key, prompt, "stopped")
        self._api_input(tick, key, prompt, res.digits, res.reason.value, len(res.digits) + 1)

    def _api_input(self, tick: int, key: Key, prompt: ApiPrompt, digits: str, reason: str, keys: int) -> None:
        """ivr.input (menu api) of a collection that ended: `digits` masked as their call.digit
        events were (secret, or a [[pause_dtmf]] sequence covered one of the last `keys` keys)."""
        leg = self.legs[key]
        secret = prompt.secret or (bool(digits) and MASK in leg.digits[-keys:])
        self.bus.publish(tick, ServerEventKind.IVR_INPUT, chan=key[1], call_id=leg.call.call_id, menu="api",
                         store=None, value=masked(digits) if secret else digits, masked=secret, reason=reason)


def item_name(item: Any) -> str:
    """A prompt list item as events name it (a say-number item with its value masked when secret)."""
    if isinstance(item, ivrmod.Prompt):
        return item.name
    return f"say_{item.kind}({masked(item.value) if item.secret else item.value})"


def originate_cause(reason: str) -> str:
    """The cause of an originated call that ended before an answer, from its end reason (the
    trunk's: busy tone, the E1 B signal, the no-answer timer): busy, congestion, no-answer,
    unallocated-number, glare, blocked, cancelled (hung up from here) or failed."""
    if reason.startswith("outbound "):
        return reason.removeprefix("outbound ").split(" (")[0].replace(" ", "-")
    for word, cause in (("glare", "glare"), ("blocked", "blocked"), ("board lost", "blocked"),
                        ("congestion", "congestion"), ("busy", "busy")):
        if word in reason:
            return cause
    return "cancelled" if reason else "failed"
