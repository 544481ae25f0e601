"""One simulated board and the world behind it, stepped one tick at a time.

Sans-I/O: `step(tick, tx, commands, rx)` takes what the host sent (the tx
block of the previous tick and its control commands), advances every line,
phone, span and scenario item to `tick`, writes what the host will receive
into `rx`, and returns the events and register changes for the card. The
Simulator wires this to a SimDevice; tests drive it directly.

Cost per tick: Python work is O(commands + timers due + parties waiting on
silence); audio work is whole-board numpy/Cython calls (the Player kernel
for far-end audio, one fancy-index copy for cross-connects and loopbacks,
one for capture).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from dsp.mix import AudioBank, Player
from hwsim import signals
from hwsim.cable import CableEnd, Frame
from hwsim.calls import CallRecord
from hwsim.capture import Capture
from hwsim.config import BoardConfig
from hwsim.e1 import E1Span
from hwsim.lines import CoLine
from hwsim.parties import Action, Party, Polled, load_speech
from hwsim.phones import AgentBehaviour, Phone
from hwsim.r2far import R2Trunk
from hwsim.r2mf import MfDetector
from hwsim.scenario import E1_ONLY_RESULTS, OutboundPlan, Scenario
from hwsim.simtime import SimClock, Timeline
from hwsim.trunks import CasTrunk


class HostCommand(NamedTuple):
    """A control command from the host (boarddrv Command, by kind name)."""
    kind: str          # HOOK | RING | CAS | XCONNECT | LOOPBACK | START | STOP
    chan: int
    value: int


class Post(NamedTuple):
    """An event for the host."""
    kind: str          # an EventKind name
    chan: int
    value: int
    span: int


class SetAlarms(NamedTuple):
    span: int
    bits: int


class AddCounter(NamedTuple):
    span: int
    name: str
    n: int


class Remove(NamedTuple):
    """The card vanishes (scenario fault board-removed)."""


Output = Post | SetAlarms | AddCounter | Remove


class BoardWorld:
    """Lines, phones, spans, audio and the scenario of one board."""

    def __init__(self, cfg: BoardConfig, clock: SimClock, scenario: Scenario | None = None,
                 *, callerid_audio: dict[str, Callable[..., np.ndarray]] | None = None,
                 on_call_end: Callable[[CallRecord], None] | None = None,
                 cable_ends: list[CableEnd] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.nchan = cfg.nchan
        self.timeline = Timeline()
        self.out: list[Output] = []
        self.calls: list[CallRecord] = []          # finished calls (unless on_call_end takes them)
        self.on_call_end = on_call_end
        self.live: dict[int, CallRecord] = {}
        self._seq = 0
        self.span_of = np.array([c.span for c in cfg.channels], np.int64)
        # audio
        self.bank = AudioBank()
        self.player = Player(self.nchan, self.bank)
        self._on_done: dict[int, Callable[[], None]] = {}
        self._clips: dict[str, Any] = {}
        self.capture = Capture(self.nchan, clock.block)
        self._dead = np.zeros(self.nchan, bool)
        self._any_dead = False
        self._xc_peer = np.full(self.nchan, -1, np.int64)
        self._xc = np.zeros(0, np.int64)
        self._lb = np.zeros(0, np.int64)
        self._lb_set: set[int] = set()
        self._pollers: dict[int, Polled] = {}
        self.ended = False
        self.removed = False
        if cfg.companding:
            from dsp import g711
            self._compress = g711.alaw_encode if cfg.law == "alaw" else g711.ulaw_encode
            self._expand = g711.alaw_decode if cfg.law == "alaw" else g711.ulaw_decode
        # models
        hooks = dict(callerid_audio) if callerid_audio is not None else {
            k: signals.default_callerid_audio(k) for k in ("fsk", "dtmf")}
        self.lines: dict[int, CoLine] = {
            c: CoLine(self, fx, hooks.get(fx.callerid)) for c, fx in cfg.fxo.items()}
        self.phones: dict[int, Phone] = {c: Phone(self, p) for c, p in cfg.fxs.items()}
        self.spans: dict[int, E1Span] = {s.index: E1Span(self, s) for s in cfg.spans if s.kind == "e1"}
        # back-to-back cables: channel N of one span is channel N of the other (no exchange behind)
        self._cable_peer = np.full(self.nchan, -1, np.int64)
        for a, b in cfg.cables:
            sa, sb = cfg.spans[a], cfg.spans[b]
            for i in range(min(sa.nchan, sb.nchan)):
                self._cable_peer[sa.first_chan + i] = sb.first_chan + i
                self._cable_peer[sb.first_chan + i] = sa.first_chan + i
        self._cabled = np.flatnonzero(self._cable_peer >= 0)
        # cables to a span of another board (hwsim.cable): frames in and out each tick
        self.cable_ends = list(cable_ends or ())
        self._cable_in: list[tuple[slice, np.ndarray]] = []
        linked = {c.index for c in cfg.channels if c.span in cfg.linked}
        # where callers can arrive: FXO lines and E1 CAS channels (a China No.1 exchange on
        # `signalling = "r2"` spans, line signalling only on "line" spans)
        self.cas: dict[int, CasTrunk | R2Trunk] = {
            c.index: (R2Trunk(self, self.spans[c.span], c.index, cfg.spans[c.span].r2)
                      if cfg.spans[c.span].signalling == "r2" else CasTrunk(self, self.spans[c.span], c.index))
            for c in cfg.channels
            if c.type == "E1_CAS" and self._cable_peer[c.index] < 0 and c.index not in linked}
        self.trunks: dict[int, CoLine | CasTrunk | R2Trunk] = {**self.lines, **self.cas}
        # the host's MF R2 signals, heard by the exchanges in a register phase
        self._mf_detectors = {True: MfDetector(forward=True), False: MfDetector(forward=False)}
        self._mf_chans: dict[bool, dict[int, None]] = {True: {}, False: {}}
        self._outbound: list[OutboundPlan] = []
        self.scenario = scenario
        if scenario is not None:
            self._load_scenario(scenario)

    # ---------------------------------------------------------------- time
    @property
    def now(self) -> int:
        return self.timeline.now

    @property
    def seconds(self) -> float:
        return round(self.clock.seconds(self.now), 6)

    def cid_when(self) -> tuple[int, int, int, int]:
        t = self.clock.wallclock(self.now)
        return (t.month, t.day, t.hour, t.minute)

    # ---------------------------------------------------------------- outputs
    def post(self, kind: str, chan: int, value: int = 0) -> None:
        self.out.append(Post(kind, chan, value, int(self.span_of[chan])))

    def set_alarms(self, span: int, bits: int, bit: int, on: bool) -> None:
        self.out.append(SetAlarms(span, bits))
        self.out.append(Post("ALARM_SET" if on else "ALARM_CLEAR", -1, bit, span))

    def add_counter(self, span: int, name: str, n: int) -> None:
        self.out.append(AddCounter(span, name, n))

    # ---------------------------------------------------------------- audio
    def tone(self, name: str) -> Any:
        key = "tone:" + name
        if key not in self._clips:
            self._clips[key] = self.bank.add(signals.tone(name), key)
        return self._clips[key]

    def clip(self, audio: np.ndarray, key: str | None = None) -> Any:
        if key is not None and key in self._clips:
            return self._clips[key]
        seg = self.bank.add(np.ascontiguousarray(audio, dtype=np.int16))
        if key is not None:
            self._clips[key] = seg
        return seg

    def play(self, chan: int, what: Any, loop: bool = False,
             on_done: Callable[[], None] | None = None) -> None:
        """Far end sends `what` (a bank Segment or int16 samples) toward the host."""
        seg = what if not isinstance(what, np.ndarray) else self.clip(what)
        self.player.play(chan, [seg], loop=loop)
        if on_done is not None:
            self._on_done[chan] = on_done
        else:
            self._on_done.pop(chan, None)

    def stop_audio(self, chan: int) -> None:
        self.player.stop(chan)
        self._on_done.pop(chan, None)

    def speech(self, path: str) -> Any:
        key = "file:" + path
        if key not in self._clips:
            self._clips[key] = self.bank.add(load_speech(path), key)
        return self._clips[key]

    def span_signal(self, span: int, ok: bool) -> None:
        """A span lost (calls on it drop) or regained its signal."""
        cfg = self.cfg.spans[span]
        for ch in range(cfg.first_chan, cfg.first_chan + cfg.nchan):
            trunk = self.cas.get(ch)
            if trunk is not None:
                trunk.restore() if ok else trunk.cut()

    def set_dead(self, chan: int, dead: bool) -> None:
        self._dead[chan] = dead
        self._any_dead = bool(self._dead.any())

    def set_dead_range(self, first: int, n: int, dead: bool) -> None:
        self._dead[first:first + n] = dead
        self._any_dead = bool(self._dead.any())

    # ---------------------------------------------------------------- calls
    def open_call(self, chan: int, kind: str, direction: str, **fields: Any) -> CallRecord:
        self._seq += 1
        rec = CallRecord(f"{self.cfg.name}-{self._seq:05d}", self.cfg.name, chan, kind, direction,
                         offered=self.seconds, wallclock=self.clock.wallclock(self.now).isoformat(),
                         **fields)
        self.live[chan] = rec
        return rec

    def close_call(self, rec: CallRecord) -> None:
        if self.capture.listening(rec.channel) and self.live.get(rec.channel) is rec:
            self.unlisten(rec.channel, rec)
        if self.live.get(rec.channel) is rec:
            del self.live[rec.channel]
        if self.on_call_end is not None:
            self.on_call_end(rec)
        else:
            self.calls.append(rec)

    def listen(self, chan: int) -> None:
        self.capture.start(chan, self.now)

    def unlisten(self, chan: int, rec: CallRecord) -> None:
        if self.capture.listening(chan):
            audio = self.capture.stop(chan)
            rec.heard = audio if rec.heard is None else np.concatenate([rec.heard, audio])
            rec.heard_samples = len(rec.heard)

    def decode_dialled(self, chan: int) -> str | None:
        """Digits the host dialled so far on chan, if dsp.dtmf can decode them."""
        try:
            from dsp.dtmf import DtmfDetector
        except ImportError:
            return None
        audio = self.capture.peek(chan)
        det = DtmfDetector(1)
        events = det.rx(audio[None, :].copy())
        return "".join(e.digit for e in events if e.end is None) or None

    def party(self, chan: int, script: list[Action], hangup_after: float | None,
              hangup: Callable[[], None], *, flash: Callable[[], None] | None,
              call: CallRecord | None, record_digits: bool = True) -> Party:
        """A far-end person on chan running `script`."""
        def digits(ds: str, done: Callable[[], None]) -> None:
            if call is not None and record_digits:
                call.digits.append({"digits": ds, "at": self.seconds})
            self.play(chan, self.clip(signals.dtmf(ds), "dtmf:" + ds), on_done=done)

        def play(path: str, done: Callable[[], None]) -> None:
            self.play(chan, self.speech(path), on_done=done)

        def do_flash() -> None:
            if flash is not None:
                flash()

        return Party(self, chan, script, {"digits": digits, "play": play, "flash": do_flash,
                                          "hangup": hangup}, hangup_after)

    def peer(self, chan: int) -> int:
        """The channel chan is cross-connected to, or -1."""
        return int(self._xc_peer[chan])

    def looped(self, chan: int) -> bool:
        return chan in self._lb_set

    # per-tick polling (parties waiting for host silence, lines being dialled)
    def poll(self, obj: Polled) -> None:
        """Call obj.poll() every tick until unpoll(obj): for waits on audio
        conditions (host silence, dialling), O(waiting objects) per tick."""
        self._pollers[id(obj)] = obj

    def unpoll(self, obj: Polled) -> None:
        self._pollers.pop(id(obj), None)

    def outbound_plan(self, chan: int) -> OutboundPlan:
        """The next plan for a call out on FXO line chan (E1 plans are skipped)."""
        for i, p in enumerate(self._outbound):
            if p.called is not None or p.result in E1_ONLY_RESULTS:
                continue
            if p.lines is None or p.lines.chans is None or chan in p.lines.chans:
                return self._outbound.pop(i)
        return OutboundPlan(result="answer", ring=3.0)

    def e1_answer(self, chan: int, called: str) -> OutboundPlan:
        """What the host's E1 call to `called` on chan meets: the standing plan for that
        number, else the next plan without a number (used up), else answer after 3 s."""
        def here(p: OutboundPlan) -> bool:
            return p.lines is None or p.lines.chans is None or chan in p.lines.chans
        for p in self._outbound:
            if p.called == called and here(p):
                return p
        for i, p in enumerate(self._outbound):
            if p.called is None and here(p):
                return self._outbound.pop(i)
        return OutboundPlan(result="answer", ring=3.0)

    def mf_listen(self, chan: int, forward: bool) -> None:
        """Detect the host's MF R2 signals of one set on chan; changes go to the exchange's mf()."""
        self.mf_unlisten(chan)
        self._mf_chans[forward][chan] = None

    def mf_unlisten(self, chan: int) -> None:
        for forward, chans in self._mf_chans.items():
            if chans.pop(chan, 0) is None:
                self._mf_detectors[forward].forget(chan)

    # ---------------------------------------------------------------- scenario
    def _load_scenario(self, sc: Scenario) -> None:
        ck = self.clock.ticks
        for c in sc.callers:
            if c.glare:
                chans = self._chans(c.line, self.lines, c.where, "an FXO line")
                if len(chans) != 1:
                    raise c.where.error(f"a glare caller needs one line, got {c.line}")
                self.timeline.at(ck(c.at), functools.partial(
                    self.lines[chans[0]].arm_glare, c.number, c.name, c.script, c.hangup_after, c.give_up))
                continue
            chans = self._chans(c.line, self.trunks, c.where, "an FXO line or E1 CAS channel")
            self.timeline.at(ck(c.at), functools.partial(
                self._arrive, chans, c.number, c.name, c.script, c.hangup_after, c.give_up,
                c.called, c.category, c.clear_back_hold))
        for i, a in enumerate(sc.arrivals):
            chans = self._chans(a.lines, self.trunks, a.where, "an FXO line or E1 CAS channel")
            rng = np.random.default_rng([sc.seed, i])
            self._next_arrival(a, chans, rng, a.times(rng), 0)
        for agent in sc.agents:
            for ch in self._chans(agent.phones, self.phones, agent.where, "an FXS phone"):
                self.phones[ch].agent = AgentBehaviour(agent.answer_after, agent.script, agent.hangup_after)
        for d in sc.dials:
            chans = self._chans(d.phone, self.phones, d.where, "an FXS phone")
            self.timeline.at(ck(d.at), functools.partial(
                self.phones[chans[0]].call_out, d.digits, d.script, d.hangup_after, d.dial_after))
        for o in sc.outbound:
            if o.lines is not None:
                e1_only = o.called is not None or o.result in E1_ONLY_RESULTS
                self._chans(o.lines, self.cas if e1_only else self.trunks, o.where,
                            "an E1 CAS channel" if e1_only else "an FXO line or E1 CAS channel")
            self._outbound.append(o)
        for f in sc.faults:
            self._check_fault(f)
            self.timeline.at(ck(f.at), functools.partial(self._fault, f))
        if sc.duration is not None:
            self.timeline.at(ck(sc.duration), self._end)

    def _chans(self, target: Any, table: dict[int, Any], where: Any, what: str) -> list[int]:
        if target.chans is None:
            if not table:
                raise where.error(f"board {target.board!r} has no {what}")
            return sorted(table)
        for ch in target.chans:
            if ch not in table:
                raise where.error(f"channel {ch} of board {target.board!r} is not {what}")
        return list(target.chans)

    def _check_fault(self, f: Any) -> None:
        if f.span is not None and f.span[1] not in self.spans:
            raise f.where.error(f"span {f.span[1]} of board {f.span[0]!r} is not an E1 span")
        if f.line is not None:
            for ch in f.line.chans or ():
                if not 0 <= ch < self.nchan:
                    raise f.where.error(f"channel {ch} out of range 0..{self.nchan - 1}")
                if f.kind == "cas" and self.cfg.channels[ch].type != "E1_CAS":
                    raise f.where.error(f"channel {ch} of board {f.line.board!r} is not an E1 CAS channel")
                if f.kind in ("block", "unblock") and not isinstance(self.cas.get(ch), R2Trunk):
                    raise f.where.error(f"channel {ch} of board {f.line.board!r} has no China No.1 "
                                        f"exchange behind it (an E1 CAS channel of a signalling = \"r2\" span)")

    def _arrive(self, chans: list[int], number: str | None, name: str | None, script: list[Action],
                hangup_after: float | None, give_up: float | None,
                called: str | None = None, category: str | int | None = None,
                clear_back_hold: float = 0.0) -> None:
        for ch in chans:
            line = self.trunks[ch]
            if line.state == "idle" and not line.host_offhook:
                if isinstance(line, R2Trunk):
                    line.offer(number, name, script, hangup_after, give_up, called=called, category=category,
                               clear_back_hold=clear_back_hold)
                else:
                    line.offer(number, name, script, hangup_after, give_up)
                return
        prev = self.live.get(chans[0])      # the call holding that line stays live
        rec = self.open_call(chans[0], "e1" if chans[0] in self.cas else "fxo", "in",
                             number=number, name=name)
        rec.hangup = self.seconds
        rec.who_hung_up = "blocked"
        rec.notes.append(f"no idle line among {chans}: the caller heard busy")
        if prev is not None:
            self.live[chans[0]] = prev
        else:
            del self.live[chans[0]]
        if self.on_call_end is not None:
            self.on_call_end(rec)
        else:
            self.calls.append(rec)

    def _next_arrival(self, a: Any, chans: list[int], rng: np.random.Generator, times: Any, k: int) -> None:
        t = next(times, None)
        if t is None:
            return

        def fire() -> None:
            self._arrive(chans, a.number(rng, k), None, a.script, a.hold(rng), a.give_up,
                         a.called_number(k), a.category)
            self._next_arrival(a, chans, rng, times, k + 1)
        self.timeline.at(self.clock.ticks(t), fire)

    def _fault(self, f: Any) -> None:
        if f.kind == "board-removed":
            self.removed = True
            self.out.append(Remove())
            return
        if f.kind in ("alarm-set", "alarm-clear"):
            self.spans[f.span[1]].set_alarm(f.alarm, f.kind == "alarm-set")
            return
        if f.kind == "counter":
            self.spans[f.span[1]].add_counter(f.counter, f.n)
            return
        for ch in f.line.chans if f.line.chans is not None else sorted(self.lines):
            model = self.trunks.get(ch) or self.phones.get(ch)
            if f.kind == "cas":
                self.spans[int(self.span_of[ch])].far_cas(ch, f.abcd)
            elif f.kind == "line-cut" and model is not None:
                model.cut()
            elif f.kind == "line-restore" and model is not None:
                model.restore()
            elif f.kind in ("block", "unblock"):
                trunk = self.cas.get(ch)
                if isinstance(trunk, R2Trunk):
                    trunk.block() if f.kind == "block" else trunk.unblock()
            elif f.kind == "hangup":
                if ch in self.trunks:
                    self.trunks[ch].caller_hangup()
                elif ch in self.phones:
                    self.phones[ch].hangup()

    def _end(self) -> None:
        self.ended = True

    def finish(self) -> None:
        """Close every live call (the simulation stops): who_hung_up 'end'. A call whose
        line the host still holds (off-hook, or a phone it still rings) is marked
        `never_released`: the host never let go of it."""
        for rec in list(self.live.values()):
            if rec.hangup is None:
                rec.hangup = self.seconds
                rec.who_hung_up = "end"
            line = self.trunks.get(rec.channel)
            phone = self.phones.get(rec.channel)
            if rec.released is None and ((line is not None and line.host_offhook)
                                         or (phone is not None and phone.ringing)):
                rec.never_released = True
                rec.notes.append("the host never released the line: still seized when the simulation ended")
            self.close_call(rec)

    # ---------------------------------------------------------------- host commands
    def command(self, cmd: HostCommand) -> None:
        k, ch, v = cmd.kind, cmd.chan, cmd.value
        if k == "HOOK" and ch in self.lines:
            self.lines[ch].host_hook(v)
        elif k == "RING" and ch in self.phones:
            self.phones[ch].host_ring(bool(v))
        elif k == "CAS" and int(self.span_of[ch]) in self.spans:
            self.spans[int(self.span_of[ch])].host_cas(ch, v)
            if ch in self.cas:
                self.cas[ch].host_cas(v & 0xF)
            peer = int(self._cable_peer[ch])
            if peer >= 0:           # over the cable: the other span's host receives the bits
                self.spans[int(self.span_of[peer])].far_cas(peer, v & 0xF)
        elif k == "XCONNECT":
            old = int(self._xc_peer[ch])
            if old >= 0:
                self._xc_peer[old] = -1
            self._xc_peer[ch] = -1
            if v >= 0:
                if self._xc_peer[v] >= 0:
                    self._xc_peer[self._xc_peer[v]] = -1
                self._xc_peer[ch] = v
                self._xc_peer[v] = ch
            self._xc = np.flatnonzero(self._xc_peer >= 0)
        elif k == "LOOPBACK":
            (self._lb_set.add if v else self._lb_set.discard)(ch)
            self._lb = np.array(sorted(self._lb_set), np.int64)

    # ---------------------------------------------------------------- the tick
    def step(self, tick: int, tx: np.ndarray, commands: list[HostCommand], rx: np.ndarray) -> list[Output]:
        """Advance to `tick`; fill rx; return the outputs for the card."""
        self.timeline.now = tick
        for cmd in commands:
            self.command(cmd)
        for end in self.cable_ends:
            self._cable_pull(end)
        self.timeline.run(tick)
        for obj in list(self._pollers.values()):
            obj.poll()
        # far ends -> host
        rx[...] = 0
        for ch in self.player.tx(rx):
            fn = self._on_done.pop(ch, None)
            if fn is not None:
                fn()
        # what the far ends hear: the host's tx, or the peer's line when cross-connected
        heard = tx
        if len(self._xc):
            heard = tx.copy()
            heard[self._xc] = rx[self._xc_peer[self._xc]]
        if len(self._cabled):
            rx[self._cabled] = tx[self._cable_peer[self._cabled]]
        for rows, audio in self._cable_in:
            rx[rows] = audio
        self._cable_in.clear()
        if len(self._lb):
            rx[self._lb] = tx[self._lb]
        if self._any_dead:
            rx[self._dead] = 0
            if heard is tx:
                heard = tx.copy()
            heard[self._dead] = 0
        if self.cfg.companding:
            rx[...] = self._expand(self._compress(rx))
            heard = self._expand(self._compress(heard))
        self.capture.step(heard, tick)
        for forward, listening in self._mf_chans.items():
            if listening:
                chans = list(listening)
                for ch, signal in self._mf_detectors[forward].feed(chans, heard[chans]):
                    trunk = self.cas.get(ch)
                    if isinstance(trunk, R2Trunk):
                        trunk.mf(signal)
        for end in self.cable_ends:
            span = self.spans[end.span]
            rows = slice(span.cfg.first_chan, span.cfg.first_chan + span.cfg.nchan)
            end.link.push(end.side, Frame(tx[rows], span.cas_tx))
        out, self.out = self.out, []
        return out

    def _cable_pull(self, end: CableEnd) -> None:
        """What the other board's host sent on the cable one tick ago: its bits reach
        this host as CAS events (on change), its audio this tick's rx."""
        got = end.link.pull(end.side, self.clock.block)
        if got is None:
            return
        audio, cas = got
        span = self.spans[end.span]
        first = span.cfg.first_chan
        if cas is not None:
            for i, abcd in enumerate(cas.tolist()[:span.cfg.nchan]):
                span.far_cas(first + i, abcd)
        n = min(span.cfg.nchan, len(audio))
        self._cable_in.append((slice(first, first + n), audio[:n]))
