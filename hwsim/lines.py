"""An FXO port and the central-office line behind it (sans-I/O).

Inbound: the line rings with the configured cadence (RING_START/RING_STOP at
the cadence edges), sends caller ID (DTMF before the first ring, or the FSK
slot between the first and second ring), and when the host goes off-hook the
caller's script runs. When the caller hangs up the line signals the way the
line is configured: `loop-drop` (LOOP_DROP, LOOP_RESTORE after the open
interval), `battery-reversal` (BATTERY_REVERSAL) or `busy-tone` (no
supervision: busy tone until the host hangs up).

Outbound: host off-hook on an idle line gives dial tone; the first sound
from the host stops it; after `dial_timeout` of host silence the number is
taken as dialled and the world's outbound plan decides: ringback then
answer (the callee's script runs), busy, or no answer.

Glare: a caller armed with `arm_glare` (scenario `glare = true`) seizes the
line at the moment the host next goes off-hook on it to call out: instead
of dial tone the host gets RING_START (the exchange was already ringing),
and its off-hook trips the ring `RING_TRIP` s later: RING_STOP, and the
caller is connected to the host as an answered inbound call.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hwsim.calls import CallRecord
from hwsim.config import FxoLine
from hwsim.parties import Action, Party
from hwsim.ports import LineWorld

if TYPE_CHECKING:
    from hwsim.scenario import OutboundPlan
    from hwsim.simtime import Timer

# (number, name, (month, day, hour, minute)) -> int16[n]: dsp.callerid.callerid_audio's shape
CallerIdAudio = Callable[["str | None", "str | None", tuple[int, int, int, int]], np.ndarray]

RING_TRIP = 0.2     # seconds from the host's off-hook to the exchange tripping the ring (glare)


class CoLine:
    """States: idle, alerting, connected, cleared (far end gone, host still
    off-hook), dialtone, dialling, ringback, busy, cut."""

    def __init__(self, world: LineWorld, cfg: FxoLine,
                 callerid_audio: CallerIdAudio | None = None) -> None:
        self.world = world
        self.cfg = cfg
        self.chan = cfg.chan
        self.callerid_audio = callerid_audio
        self.state = "idle"
        self.host_offhook = False
        self.ring_on = False
        self.call: CallRecord | None = None
        self.party: Party | None = None
        self._timers: list[Timer] = []
        self._plan: OutboundPlan | None = None
        self._dial_heard = False
        self._glare: tuple | None = None          # an armed glare caller (arm_glare)
        self._glare_timer: Timer | None = None

    # -- helpers ---------------------------------------------------------------
    def _after(self, seconds: float, fn: Callable[[], None]) -> None:
        self._timers.append(self.world.timeline.after(self.world.clock.ticks(seconds), fn))

    def _cancel(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()

    def _end_party(self) -> None:
        if self.party is not None:
            self.party.stop()
            self.party = None

    def _stop_ring(self) -> None:
        if self.ring_on:
            self.ring_on = False
            self.world.post("RING_STOP", self.chan)

    def _finish(self, who: str, *, released: bool = False) -> None:
        """The call is over for the far end; the record closes when the host lets go."""
        self._cancel()
        self._end_party()
        self._stop_ring()
        self.world.stop_audio(self.chan)
        self.world.unpoll(self)
        call = self.call
        if call is not None and call.hangup is None:
            call.hangup = self.world.seconds
            call.who_hung_up = who
            self.world.unlisten(self.chan, call)
        if released or not self.host_offhook:
            self._close()

    def _close(self) -> None:
        if self.call is not None:
            if self.host_offhook is False and self.call.released is None and self.call.answer is not None:
                self.call.released = self.world.seconds
            self.world.close_call(self.call)
            self.call = None

    # -- the scenario's side ---------------------------------------------------
    def offer(self, number: str | None, name: str | None, script: list[Action],
              hangup_after: float | None = None, give_up: float | None = None) -> CallRecord | None:
        """A caller dials this line. None if the line is not idle (caller hears busy)."""
        if self.state != "idle" or self.host_offhook:
            return None
        w = self.world
        self.call = w.open_call(self.chan, "fxo", "in", number=number, name=name)
        self.call.callerid = self.cfg.callerid if number else None
        self._script = (script, hangup_after)
        self.state = "alerting"
        lead = 0.0
        if self.cfg.callerid == "dtmf" and number and self.callerid_audio is not None:
            audio = self.callerid_audio(number, name, w.cid_when())
            w.play(self.chan, audio)
            lead = len(audio) / 8000.0 + 0.3
        self._ring_t0 = w.now + w.clock.ticks(lead)
        self._edge = 0
        self._schedule_edge()
        if give_up is not None:
            self._after(lead + give_up, self._abandon)
        return self.call

    def arm_glare(self, number: str | None, name: str | None, script: list[Action],
                  hangup_after: float | None = None, give_up: float | None = None) -> None:
        """From now on, a caller rings in at the moment the host next seizes this
        line to call out (glare). Not seized within `give_up` s: abandoned."""
        self._glare = (number, name, script, hangup_after)
        if self._glare_timer is not None:
            self._glare_timer.cancel()
        self._glare_timer = None
        if give_up is not None:
            self._glare_timer = self.world.timeline.after(self.world.clock.ticks(give_up),
                                                          self._glare_expired)

    def _glare_expired(self) -> None:
        if self._glare is None:
            return
        number, name, _, _ = self._glare
        self._glare = None
        w = self.world
        prev = w.live.get(self.chan)
        rec = w.open_call(self.chan, "fxo", "in", number=number, name=name)
        if prev is not None:
            w.live[self.chan] = prev
        else:
            del w.live[self.chan]
        rec.hangup = w.seconds
        rec.who_hung_up = "abandoned"
        rec.notes.append("glare caller: the host never seized the line to call out")
        w.close_call(rec)

    def _glare_in(self) -> None:
        """The host went off-hook to call out just as the exchange seized the line for a caller."""
        w = self.world
        assert self._glare is not None
        number, name, script, hangup_after = self._glare
        self._glare = None
        if self._glare_timer is not None:
            self._glare_timer.cancel()
            self._glare_timer = None
        self.call = w.open_call(self.chan, "fxo", "in", number=number, name=name)
        self.call.glare = True
        self.call.notes.append("glare: the exchange seized the line for this caller as the host "
                               "seized it to call out; the host's off-hook answered the call")
        self._script = (script, hangup_after)
        self.state = "alerting"
        self.ring_on = True
        w.post("RING_START", self.chan)
        self.call.ring.append(w.seconds)
        self._after(RING_TRIP, self._answer_inbound)

    def _edge_tick(self, k: int) -> int:
        cad = self.cfg.ring_cadence
        period = sum(cad)
        t = (k // len(cad)) * period + sum(cad[:k % len(cad)])
        return self._ring_t0 + self.world.clock.ticks(t)

    def _schedule_edge(self) -> None:
        self._timers.append(self.world.timeline.at(self._edge_tick(self._edge), self._ring_edge))

    def _ring_edge(self) -> None:
        if self.state != "alerting":
            return
        k = self._edge
        self._edge += 1
        if k % 2 == 0:
            self.ring_on = True
            self.world.post("RING_START", self.chan)
            assert self.call is not None
            self.call.ring.append(self.world.seconds)
        else:
            self.ring_on = False
            self.world.post("RING_STOP", self.chan)
            if k == 1 and self.cfg.callerid == "fsk" and self.call and self.call.number:
                self._after(self.cfg.cid_delay, self._send_fsk)
        self._schedule_edge()

    def _send_fsk(self) -> None:
        if self.state != "alerting" or self.call is None:
            return
        if self.callerid_audio is None:
            self.call.notes.append("fsk caller ID not sent: no encoder (dsp.callerid) configured")
            return
        self.world.play(self.chan, self.callerid_audio(self.call.number, self.call.name, self.world.cid_when()))

    def _abandon(self) -> None:
        if self.state == "alerting":
            self.state = "idle"
            self._finish("abandoned")

    def caller_hangup(self) -> None:
        """The far end puts the phone down (script, deadline or scenario)."""
        if self.state == "alerting":
            self._abandon()
            return
        if self.state not in ("connected",):
            return
        self._end_party()
        self.world.stop_audio(self.chan)
        self.state = "cleared"
        style = self.cfg.disconnect
        if self.call is not None:
            self.call.disconnect = style
        self._finish("caller")
        if style == "loop-drop":
            self.world.post("LOOP_DROP", self.chan)
            self._after(self.cfg.loop_drop, lambda: self.world.post("LOOP_RESTORE", self.chan))
        elif style == "battery-reversal":
            self.world.post("BATTERY_REVERSAL", self.chan)
        else:
            self.world.play(self.chan, self.world.tone("busy"), loop=True)

    def cut(self) -> None:
        """The line is cut: no loop current, no audio, no calls until restored."""
        was_busy = self.state not in ("idle", "cut")
        if was_busy:
            self._finish("fault")
        self._cancel()
        self.world.stop_audio(self.chan)
        if self.host_offhook:
            self.world.post("LOOP_DROP", self.chan)
        self.state = "cut"
        self.world.set_dead(self.chan, True)

    def restore(self) -> None:
        if self.state != "cut":
            return
        self.world.set_dead(self.chan, False)
        if self.host_offhook:
            self.world.post("LOOP_RESTORE", self.chan)
            self.state = "cleared"
        else:
            self.state = "idle"

    # -- the host's side -------------------------------------------------------
    def host_hook(self, value: int) -> None:
        """HOOK command: 0 on-hook, 1 off-hook, 2 flash."""
        w = self.world
        if value == 2:
            if self.call is not None:
                self.call.flashes.append(w.seconds)
            return
        off = value == 1
        if off == self.host_offhook:
            return
        self.host_offhook = off
        if off:
            if self.state == "alerting":
                self._answer_inbound()
            elif self.state == "idle":
                self._start_outbound()
            return
        # on-hook
        if self.state in ("connected", "alerting", "dialtone", "dialling", "ringback", "busy"):
            if self.call is not None and self.call.released is None:
                self.call.released = w.seconds
            self._finish("host", released=True)
            self.state = "idle"
        elif self.state in ("cleared", "cut"):
            if self.state == "cleared":
                self._cancel()
            w.stop_audio(self.chan)
            if self.call is not None:
                self.call.released = w.seconds
            self._close()
            if self.state == "cleared":
                self.state = "idle"      # a cut line stays cut until restored

    def _answer_inbound(self) -> None:
        w = self.world
        self._cancel()
        self._stop_ring()
        w.stop_audio(self.chan)  # a caller-ID burst in progress
        self.state = "connected"
        assert self.call is not None
        self.call.answer = w.seconds
        w.listen(self.chan)
        script, hangup_after = self._script
        self._start_party(script, hangup_after)

    def _start_party(self, script: list[Action], hangup_after: float | None) -> None:
        self.party = self.world.party(self.chan, script, hangup_after, self.caller_hangup,
                                      flash=None, call=self.call)
        self.party.start()

    def _start_outbound(self) -> None:
        if self._glare is not None:
            self._glare_in()
            return
        w = self.world
        self.call = w.open_call(self.chan, "fxo", "out", number=self.cfg.number)
        self.state = "dialtone"
        self._dial_heard = False
        self._dial_start = w.now
        w.listen(self.chan)
        w.play(self.chan, w.tone("dial"), loop=True)
        w.poll(self)

    def poll(self) -> None:
        """Each tick while the host dials: first sound stops dial tone, then
        `dial_timeout` of silence ends the number."""
        w = self.world
        last = int(w.capture.last_sound[self.chan])
        if self.state == "dialtone":
            if last > self._dial_start:
                self.state = "dialling"
                w.stop_audio(self.chan)
            return
        if self.state == "dialling" and w.now - last >= w.clock.ticks(self.cfg.dial_timeout):
            w.unpoll(self)
            self._dialled()

    def _dialled(self) -> None:
        w = self.world
        assert self.call is not None
        self.call.dialled = w.decode_dialled(self.chan)
        plan = w.outbound_plan(self.chan)
        self._plan = plan
        self.call.result = plan.result
        if plan.result == "busy":
            self.state = "busy"
            w.play(self.chan, w.tone("busy"), loop=True)
            return
        self.state = "ringback"
        w.play(self.chan, w.tone("ringback"), loop=True)
        if plan.result == "answer":
            self._after(plan.ring, self._far_answer)

    def _far_answer(self) -> None:
        w = self.world
        if self.state != "ringback" or self.call is None or self._plan is None:
            return
        w.stop_audio(self.chan)
        self.state = "connected"
        self.call.answer = w.seconds
        if self.cfg.answer_reversal or self.cfg.disconnect == "battery-reversal":
            w.post("BATTERY_REVERSAL", self.chan)
        self._start_party(self._plan.script, self._plan.hangup_after)
