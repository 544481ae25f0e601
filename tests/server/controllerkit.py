"""The card and the engine around one call controller, for tests at the event level.

No hwsim, no engine thread, no event loop: the test plays the card and the
engine. It hands the controller each tick's events, keeps the timers the
controller starts, finishes the prompts it plays when the test says so, and
looks at the typed media commands it returns and the events on its bus.
Commands made outside a tick (the API's: mute, originate, route...) go
through `Card.apply`, as the server's `_apply` sends them to the engine.
"""
from __future__ import annotations

import datetime as dt
import heapq
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from boarddrv import Event, EventKind
from dsp.dtmf import DtmfEvent
from dsp.mix import AudioBank
from voiceserver.acd.link import AcdLink, default_settings
from voiceserver.config.server import load_config
from voiceserver.core import media
from voiceserver.core.callids import CallIds
from voiceserver.core.channels import FxoTrunk, FxsPhone, State
from voiceserver.core.controller import CallController
from voiceserver.core.engine import PlayDone, Timer
from voiceserver.core.events import EventBus, ServerEventKind
from voiceserver.core.runtime import BoardRuntime
from voiceserver.ivr.blacklist import normalize_number

CONFIGS = Path(__file__).parent / "configs"
TPS = 50                     # ticks per second at the 160-sample block
START = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


def controller_for(cfg: Any, rt: BoardRuntime, bus: EventBus, segment: Any, segments: Any) -> CallController:
    """The call controller on one board, with its ACD link as the server builds it."""
    ctl = CallController(cfg, [rt], bus, segment, segments)
    settings = cfg.acd or default_settings(cfg)
    ctl.acd = AcdLink(ctl, settings.build(
        cfg.channels.outbound, default_lang=cfg.prompts.default_lang,
        normalize=lambda n: normalize_number(n, cfg.numbering)), feature_codes=dict(settings.feature_codes))
    return ctl


class EngineSide:
    """What the engine keeps of a controller's commands, in every harness: the timers it
    started (in order) and the prompt list each channel plays."""

    def __init__(self) -> None:
        self.timers: list[tuple[int, int, int, Any]] = []
        self.playing: dict[int, Any] = {}          # chan -> the token of the prompts it plays
        self._n = 0

    def keep(self, cmd: media.MediaCommand) -> bool:
        """Keep a timer or note a prompt started or stopped; False: not the engine's part."""
        match cmd:
            case media.StartTimer(_, at, chan, token):
                self._n += 1
                heapq.heappush(self.timers, (at, self._n, chan, token))
            case media.Play(_, chan, _, token):
                self.playing[chan] = token
            case media.StopPlay(_, chan):
                self.playing.pop(chan, None)
            case _:
                return False
        return True


class Card(EngineSide):
    """The card and the engine around one controller: the test's side of the interface."""

    def __init__(self, library: Any, config: Path = CONFIGS / "server-acd.toml") -> None:
        cfg = load_config(config, library=library)
        bank = AudioBank()
        segments: dict[tuple[str, str], Any] = {("moh", "default"): bank.add(library.music_on_hold("default"))}

        def segment(name: str, lang: str) -> Any:
            if (lang, name) not in segments:
                segments[(lang, name)] = bank.add(library.get(name, lang))
            return segments[(lang, name)]

        self.rt = BoardRuntime(0, "hotline", SimpleNamespace(block=160), engine=None)
        self.rt.clock_start = START
        ids = CallIds.without_database("t", START)
        for chan in range(4):
            self.rt.channels[chan] = FxoTrunk(chan, TPS)
        for chan in range(4, 8):
            self.rt.channels[chan] = FxsPhone(chan, TPS)
        for ch in self.rt.channels.values():
            ch.new_call_id = ids.next
        self.bus = EventBus()
        self.ctl = controller_for(cfg, self.rt, self.bus, segment, segments)
        super().__init__()
        self.tick = 0
        self.commands: list[media.MediaCommand] = []

    # -- the engine's side ---------------------------------------------------
    def feed(self, *events: Any) -> list[media.MediaCommand]:
        """One tick with these events; the commands the controller returned."""
        return self.take(self.ctl.handle(0, self.tick, list(events)))

    def take(self, out: list[media.MediaCommand]) -> list[media.MediaCommand]:
        """The engine's side of commands: timers kept, prompts playing noted."""
        for cmd in out:
            self.keep(cmd)
        self.commands += out
        return out

    def apply(self, answer: tuple[Any, list[media.MediaCommand]]) -> Any:
        """A command from outside a tick (row, media commands): the commands to the card, as the
        server's `_apply` sends them; the row."""
        row, commands = answer
        self.take(commands)
        return row

    def run(self, seconds: float) -> None:
        """Let time pass: the timers that come due are handed back as the engine would."""
        end = self.tick + int(seconds * TPS)
        while self.timers and self.timers[0][0] <= end:
            at, _, chan, token = heapq.heappop(self.timers)
            self.tick = max(self.tick, at)
            self.feed(Timer(chan, token))
        self.tick = end

    def board(self, kind: EventKind, chan: int) -> list[media.MediaCommand]:
        self.tick += 1
        return self.feed(Event(self.tick, kind, chan, 0, 0))

    def prompt_done(self, chan: int) -> None:
        self.tick += 1
        self.feed(PlayDone(chan, self.playing.pop(chan)))

    def key(self, chan: int, digit: str) -> None:
        self.tick += 1
        self.feed(DtmfEvent(chan, digit, self.tick * 160, None))
        self.tick += 5
        self.feed(DtmfEvent(chan, digit, self.tick * 160 - 800, self.tick * 160))

    def ring_in(self, chan: int) -> None:
        """Two rings: the trunk answers (answer_after_rings)."""
        for _ in range(2):
            self.board(EventKind.RING_START, chan)
            self.run(1.0)
            self.board(EventKind.RING_STOP, chan)
            self.run(4.0)

    # -- what it did -----------------------------------------------------------
    def kinds(self) -> list[str]:
        return [e.kind.value for e in self.bus.journal]

    def events(self, kind: ServerEventKind) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.bus.journal if e.kind is kind]

    def sent(self, cls: type, **match: Any) -> list[Any]:
        return [c for c in self.commands if isinstance(c, cls)
                and all(getattr(c, k) == v for k, v in match.items())]


def to_agent(card: Card) -> None:
    """A caller on line 0 presses 0 in the main menu; agent chen (phone 5) answers."""
    card.ring_in(0)
    assert media.BoardControl(0, "hook", (0, "offhook")) in card.commands
    card.prompt_done(0)                          # welcome
    card.key(0, "0")
    assert card.events(ServerEventKind.CALL_QUEUE)[0]["queue"] == "service"
    assert media.BoardControl(0, "ring", (4, True)) in card.commands      # wu first (top-down)
    card.run(7.0)                                # wu does not answer within ring_timeout 6 s
    assert media.BoardControl(0, "ring", (5, True)) in card.commands
    card.board(EventKind.HOOK_OFF, 5)
    assert media.Bridge(0, 0, 5) in card.commands
    assert card.rt.channels[5].state is State.CONNECTED


