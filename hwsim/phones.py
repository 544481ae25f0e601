"""An FXS port and the phone (with its agent) plugged into it (sans-I/O).

The host rings the phone (RING 1/0: it makes the cadence); the agent
answers after `answer_after` seconds of alerting (HOOK_OFF) and runs their
script; they hang up (HOOK_ON) or flash (FLASH). A phone can also call out:
off-hook, wait for dial tone, dial DTMF toward the host, then its script.
The host cannot hang up a phone; if the host stops ringing for longer than
`alert_gap` the alert is over (the call was not answered).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwsim.calls import CallRecord
from hwsim.config import FxsPort
from hwsim.parties import Action, Party
from hwsim.ports import PhoneWorld

if TYPE_CHECKING:
    from hwsim.simtime import Timer


@dataclass
class AgentBehaviour:
    """How the person at a phone answers calls the host puts through."""
    answer_after: float | None = 2.0    # None: never answers
    script: list[Action] = field(default_factory=list)
    hangup_after: float | None = None


class Phone:
    """States: onhook, alerting, offhook, cut."""

    def __init__(self, world: PhoneWorld, cfg: FxsPort, agent: AgentBehaviour | None = None,
                 alert_gap: float = 6.0) -> None:
        self.world = world
        self.cfg = cfg
        self.chan = cfg.chan
        self.agent = agent
        self.alert_gap = alert_gap
        self.state = "onhook"
        self.ringing = False
        self.call: CallRecord | None = None
        self.party: Party | None = None
        self._answer_timer: Timer | None = None
        self._gap_timer: Timer | None = None

    # -- host ----------------------------------------------------------------
    def host_ring(self, on: bool) -> None:
        w = self.world
        if self.state in ("offhook", "cut") or on == self.ringing:
            self.ringing = on and self.state != "cut"
            return
        self.ringing = on
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        if on:
            if self.state == "onhook":
                self.state = "alerting"
                self.call = w.open_call(self.chan, "fxs", "in", number=self.cfg.number)
                if self.agent is not None and self.agent.answer_after is not None:
                    self._answer_timer = w.timeline.after(w.clock.ticks(self.agent.answer_after),
                                                          self._answer)
            assert self.call is not None
            self.call.ring.append(w.seconds)
        else:
            self._gap_timer = w.timeline.after(w.clock.ticks(self.alert_gap), self._alert_over)

    def _alert_over(self) -> None:
        if self.state == "alerting" and not self.ringing:
            if self._answer_timer is not None:
                self._answer_timer.cancel()
            self.state = "onhook"
            assert self.call is not None
            self.call.hangup = self.world.seconds
            self.call.who_hung_up = "unanswered"
            self.world.close_call(self.call)
            self.call = None

    def _answer(self) -> None:
        w = self.world
        if self.state != "alerting" or self.call is None:
            return
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        self.state = "offhook"
        self.ringing = False
        self.call.answer = w.seconds
        w.post("HOOK_OFF", self.chan)
        w.listen(self.chan)
        agent = self.agent or AgentBehaviour()
        self.party = w.party(self.chan, agent.script, agent.hangup_after, self.hangup,
                             flash=self.flash, call=self.call)
        self.party.start()

    # -- the person ------------------------------------------------------------
    def call_out(self, digits: str, script: list[Action], hangup_after: float | None = None,
                 dial_after: float = 1.0) -> CallRecord | None:
        """Lift the handset and dial `digits` toward the host after `dial_after` s."""
        w = self.world
        if self.state != "onhook":
            return None
        self.state = "offhook"
        self.call = w.open_call(self.chan, "fxs", "out", number=self.cfg.number)
        self.call.answer = w.seconds
        self.call.dialled = digits
        w.post("HOOK_OFF", self.chan)
        w.listen(self.chan)
        full = ([Action(after=dial_after, digits=digits)] if digits else []) + list(script)
        self.party = w.party(self.chan, full, hangup_after, self.hangup, flash=self.flash,
                             call=self.call, record_digits=False)
        self.party.start()
        return self.call

    def hangup(self, who: str = "agent") -> None:
        w = self.world
        if self.state != "offhook":
            return
        if self.party is not None:
            self.party.stop()
            self.party = None
        w.stop_audio(self.chan)
        self.state = "onhook"
        w.post("HOOK_ON", self.chan)
        if self.call is not None:
            self.call.hangup = self.call.released = w.seconds
            self.call.who_hung_up = who
            w.unlisten(self.chan, self.call)
            w.close_call(self.call)
            self.call = None

    def flash(self) -> None:
        if self.state == "offhook":
            self.world.post("FLASH", self.chan)
            if self.call is not None:
                self.call.flashes.append(self.world.seconds)

    def cut(self) -> None:
        """The phone's wire is cut: an off-hook phone looks on-hook to the card."""
        if self.state == "offhook":
            self.hangup("fault")
        elif self.state == "alerting":
            if self._answer_timer is not None:
                self._answer_timer.cancel()
            self.ringing = False
            self._alert_over()
        self.state = "cut"
        self.world.set_dead(self.chan, True)

    def restore(self) -> None:
        if self.state == "cut":
            self.state = "onhook"
            self.world.set_dead(self.chan, False)
