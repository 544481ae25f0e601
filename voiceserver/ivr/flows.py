"""IVR flows as data, and the per-call interpreter that runs them without I/O.

The model (frozen dataclasses, built by ``voiceserver.config.server`` from the
``[ivr]`` section) is a set of *menus* joined by *actions*:

- a ``Menu`` plays a greeting while collecting digits, retries with an
  invalid-input or no-input prompt, and after ``retries`` failed retries runs
  its ``fallback`` action. An options menu dispatches on the key pressed
  (``options``); an input menu stores what was typed in a call variable and
  runs ``input_then`` (account numbers, PINs).
- actions: ``submenu`` (go to a menu, optionally switching language),
  ``play`` (information: prompts and say-number items, then another action),
  ``lookup`` (a key variable in a data table -> row fields as variables),
  ``queue`` / ``voicemail`` / ``transfer`` (hand the call to the channel
  layer), ``hangup`` (optionally after a goodbye), ``repeat`` (the current
  menu again), ``ref`` (a named action from ``[ivr.actions]``).

``IvrCall`` is the interpreter for one call, a sans-I/O state machine in the
manner of websockets' ``protocol.py``: the channel layer feeds it events
(``call_started``, ``prompt_done``, ``digit``, ``tick``, ``hangup``), each
stamped with the simulated clock in ms, and performs the commands each call
returns (``Play``, ``StopPlay``, ``ClearDigits``, ``Collect``, ``Hangup``,
``Queue``, ``Voicemail``, ``Transfer``, ``Log``). It never sleeps, reads a
clock or touches a channel, so a whole call is a list of events and a list
of commands in a test.

Say items name the say function (``number``, ``digits``, ``amount``: the
``say_<kind>`` functions of ``voiceserver.ivr.saynumber``) and a value source: a
literal, or ``$name`` for a call variable (``$caller``, ``$called``, an input
menu's ``store``, or a field of a looked-up row). The interpreter resolves
the value; the media engine expands ``Say`` to prompt files with saynumber
in the call's language, so this module does not depend on the prompt set.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from voiceserver.core.masking import masked
from voiceserver.ivr.collect import CollectResult, CollectSpec, DigitCollector

__all__ = [
    "SAY_KINDS", "Prompt", "Say", "PlayItem",
    "SubmenuAction", "PlayAction", "LookupAction", "QueueAction", "VoicemailAction",
    "TransferAction", "HangupAction", "RepeatAction", "RefAction", "Action",
    "Menu", "Flow", "IvrConfig",
    "Play", "StopPlay", "ClearDigits", "Collect", "Hangup", "Queue", "Voicemail", "Transfer",
    "Log", "Input", "Command", "PathStep", "IvrCall", "IvrError",
]

SAY_KINDS = ("number", "digits", "amount")
MAX_CHAIN = 64  # actions run for one event before the interpreter declares a loop


class IvrError(Exception):
    """An inconsistency the config validator should have caught (a bug, not bad input)."""


# ---------------------------------------------------------------- play items
@dataclass(frozen=True)
class Prompt:
    """A recorded prompt by name; ``lang`` None means the call's language."""

    name: str
    lang: str | None = None


@dataclass(frozen=True)
class Say:
    """Speak a value with saynumber's ``say_<kind>``; ``value`` is literal or ``$var``.

    ``secret``: in a Play command, the value came from a secret input (it is
    spoken, but shown masked).
    """

    kind: str
    value: str
    lang: str | None = None
    secret: bool = False


PlayItem = Prompt | Say


# ------------------------------------------------------------------- actions
@dataclass(frozen=True)
class SubmenuAction:
    menu: str
    lang: str | None = None


@dataclass(frozen=True)
class PlayAction:
    """Play information, then run ``then`` (None: back to the menu that ran this)."""

    items: tuple[PlayItem, ...]
    then: Action | None = None
    barge_in: bool = True
    lang: str | None = None


@dataclass(frozen=True)
class LookupAction:
    """Look variable ``key`` up in ``table``; the row's fields become variables."""

    table: str
    key: str
    found: Action
    missing: Action
    lang: str | None = None


@dataclass(frozen=True)
class QueueAction:
    queue: str
    lang: str | None = None


@dataclass(frozen=True)
class VoicemailAction:
    mailbox: str
    lang: str | None = None


@dataclass(frozen=True)
class TransferAction:
    number: str
    trunk: str
    lang: str | None = None


@dataclass(frozen=True)
class HangupAction:
    items: tuple[PlayItem, ...] = ()
    lang: str | None = None


@dataclass(frozen=True)
class RepeatAction:
    lang: str | None = None


@dataclass(frozen=True)
class RefAction:
    """A named action from ``[ivr.actions]`` (resolved when run, so names may refer ahead)."""

    name: str
    lang: str | None = None


Action = (SubmenuAction | PlayAction | LookupAction | QueueAction | VoicemailAction | TransferAction
          | HangupAction | RepeatAction | RefAction)


# --------------------------------------------------------------------- menus
@dataclass(frozen=True)
class Menu:
    """One prompt-and-collect step; exactly one of ``options`` / ``input_store`` is set.

    ``secret``: what the caller types here is masked wherever it leaves the
    IVR (path, events); the cleartext is only in the ``input_store`` variable.
    """

    name: str
    greeting: tuple[PlayItem, ...]
    collect: CollectSpec
    invalid: tuple[PlayItem, ...] = ()
    timeout: tuple[PlayItem, ...] = ()
    retries: int = 2
    fallback: Action = HangupAction()
    options: Mapping[str, Action] | None = None
    input_store: str | None = None
    input_then: Action | None = None
    clear_digits: bool = False
    secret: bool = False

    def __hash__(self) -> int:  # options is a dict; menus are compared by name
        return hash(self.name)


@dataclass(frozen=True)
class Flow:
    """An entry point: the action a new call starts with, in a language."""

    name: str
    start: Action
    lang: str


@dataclass(frozen=True)
class IvrConfig:
    """All flows of a server. The config loader fills it with read-only mappings,
    so calls in progress can keep using it after a reload replaced it."""

    flows: Mapping[str, Flow]
    menus: Mapping[str, Menu]
    actions: Mapping[str, Action] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    default_lang: str = "zh"


# ------------------------------------------------------------------ commands
@dataclass(frozen=True)
class Play:
    """Play items in order on the call's channel; report ``prompt_done(id)`` when finished.

    Say items carry resolved values. ``barge_in``: a digit may stop this play.
    """

    id: int
    items: tuple[PlayItem, ...]
    barge_in: bool
    lang: str


@dataclass(frozen=True)
class StopPlay:
    """Stop play ``id`` now; no ``prompt_done`` is needed for it (a late one is ignored)."""

    id: int


@dataclass(frozen=True)
class ClearDigits:
    """Flush digits buffered below the interpreter (detector-side type-ahead)."""


@dataclass(frozen=True)
class Collect:
    """The call now waits for DTMF under ``spec`` (DTMF detection must be on).

    Informational: the interpreter runs the collector itself.
    """

    menu: str
    spec: CollectSpec


@dataclass(frozen=True)
class Hangup:
    reason: str


@dataclass(frozen=True)
class Queue:
    """Hand the call to queue ``name`` (allocation issue). The IVR is done with it."""

    name: str


@dataclass(frozen=True)
class Voicemail:
    mailbox: str


@dataclass(frozen=True)
class Transfer:
    """Transfer to ``number`` over an outbound FXO trunk of group ``trunk``."""

    number: str
    trunk: str


@dataclass(frozen=True)
class PathStep:
    """One step of the IVR path kept for the call record: ``what`` and its ``detail``."""

    t: int
    what: str
    detail: str = ""


@dataclass(frozen=True)
class Log:
    step: PathStep


@dataclass(frozen=True)
class Input:
    """An input menu stored what was typed: for the ``ivr.input`` event (its path step is the Log
    that comes with it). ``value`` is already masked (one MASK per key) when ``masked``;
    ``reason`` is how the collection ended (voiceserver.ivr.collect.Reason's value)."""

    menu: str
    store: str
    value: str
    masked: bool
    reason: str


Command = Play | StopPlay | ClearDigits | Collect | Hangup | Queue | Voicemail | Transfer | Log | Input


# --------------------------------------------------------------- interpreter
class IvrCall:
    """The IVR state machine of one call. Every input returns the commands to perform.

    Life: ``call_started`` once, then any of ``prompt_done`` / ``digit`` /
    ``tick`` until ``done``; ``hangup`` when the caller goes away. Inputs after
    ``done`` return no commands (the channel layer owns the call then).
    Times must not go backwards.

    ``start`` overrides the flow's start action (used to play a blacklist
    notice and hang up with the same machinery); ``flow`` is then only the
    label recorded in the path.

    Secret input (voiceserver.core.masking): keys typed in a menu with ``secret``,
    or named in ``secret_menus`` (the server adds the recording rules' pause
    menus before ``call_started``), are masked in the path and reported by
    ``secret_input``; the variable they are stored in is dropped when the
    call leaves the IVR.
    """

    def __init__(self, ivr: IvrConfig, flow: str | None = None, *,
                 start: Action | None = None, lang: str | None = None) -> None:
        if start is None:
            if flow is None or flow not in ivr.flows:
                raise IvrError(f"no such flow {flow!r} (flows: {', '.join(sorted(ivr.flows))})")
            start = ivr.flows[flow].start
            lang = lang or ivr.flows[flow].lang
        self.ivr = ivr
        self.flow = flow
        self.lang: str = lang or ivr.default_lang
        self.vars: dict[str, str] = {}
        self.path: list[PathStep] = []
        self.secret_menus: set[str] = set()
        self._secret_vars: set[str] = set()  # variables holding secret input
        self._any_secret = False             # some menu is secret (set at call_started)
        self.done = False
        self._start = start
        self._started = False
        self._now = 0
        self._out: list[Command] = []
        self._next_id = 1
        self._play: Play | None = None      # what is playing now
        self._after: Action | None = None   # what to run when an info play ends
        self._menu: Menu | None = None      # the menu collecting (or last collecting)
        self._tries = 0
        self._collector: DigitCollector | None = None
        self._buffer = ""                   # type-ahead: digits no collector took yet
        self._chain = 0

    # ------------------------------------------------------------ inputs
    def call_started(self, caller: str, called: str, t: int) -> list[Command]:
        """The call is answered and audio flows: start the flow."""
        if self._started:
            raise IvrError("call_started twice")
        self._started = True
        self._any_secret = any(self._secret(m) for m in self.ivr.menus.values())
        self._now = t
        self.vars.update(caller=caller or "", called=called or "")
        self._log(t, "flow", self.flow or "(direct)")
        self._run(self._start, t)
        return self._flush()

    def prompt_done(self, play_id: int, t: int) -> list[Command]:
        """Play ``play_id`` finished. Stale ids (stopped or superseded plays) are ignored."""
        self._advance(t)
        if self.done or self._play is None or self._play.id != play_id:
            return self._flush()
        self._play = None
        if self._collector is not None:
            res = self._collector.prompt_done(t)
            if res is not None:
                self._on_result(res, t)
        elif self._after is not None:
            after, self._after = self._after, None
            self._run(after, t)
        return self._flush()

    def digit(self, d: str, t: int) -> list[Command]:
        """A DTMF digit from the caller."""
        self._advance(t)
        if self.done:
            return self._flush()
        if self._collector is not None and self._collector.complete:
            self._buffer += d  # input held until the prompt ends: this digit is for what follows
        elif self._collector is not None:
            res = self._collector.feed(d, t)
            if self._collector.barged_in and self._play is not None:
                self._stop_play()
                self._collector.prompt_done(t)
            if res is not None:
                self._on_result(res, t)
        else:
            self._buffer += d
            if self._play is not None and self._play.barge_in and self._after is not None:
                # An information prompt the caller talks over: skip to what follows,
                # keeping the digit as type-ahead for it.
                self._stop_play()
                self._log(t, "barge_in", masked(d) if self._any_secret else d)
                after, self._after = self._after, None
                self._run(after, t)
        return self._flush()

    def tick(self, t: int) -> list[Command]:
        """The clock advanced (the engine may tick only at ``deadline``)."""
        self._advance(t)
        if not self.done and self._collector is not None:
            res = self._collector.tick(t)
            if res is not None:
                self._on_result(res, t)
        return self._flush()

    def hangup(self, t: int) -> list[Command]:
        """The caller hung up: the flow ends where it is."""
        self._advance(t)
        if not self.done:
            self._log(t, "caller_hangup", self._menu.name if self._menu else "")
            self._finish()
        return self._flush()

    def leave(self, t: int, why: str) -> list[Command]:
        """The call is taken out of the IVR from outside (the network API routes it to a queue
        or transfers it): the flow ends where it is and its prompt stops."""
        self._advance(t)
        if not self.done:
            if self._play is not None:
                self._stop_play()
            self._log(t, "routed", why)
            self._finish()
        return self._flush()

    def jump(self, action: Action, t: int, why: str) -> list[Command]:
        """Run `action` now from outside (the network API: a menu, a play, a named action),
        in place of whatever the caller is in: its prompt stops, its input so far is dropped."""
        self._advance(t)
        if self.done:
            raise IvrError("the call has left the IVR")
        if self._play is not None:
            self._stop_play()
        self._after = None
        self._buffer = ""
        self._log(t, "jump", why)
        self._run(action, t)
        return self._flush()

    # ----------------------------------------------------------- queries
    @property
    def deadline(self) -> int | None:
        """Earliest time a ``tick`` can change anything (None: only events can)."""
        if self.done or self._collector is None:
            return None
        return self._collector.deadline

    @property
    def typeahead(self) -> str:
        return self._buffer

    @property
    def secret_input(self) -> bool:
        """A key typed now is secret: a secret menu is collecting, or no collection is
        (type-ahead, whose menu is not known yet) and this IVR has a secret menu."""
        if self.done or not self._started:
            return False
        if self._collector is not None and not self._collector.complete:
            return self._secret(self._menu)
        return self._any_secret

    # --------------------------------------------------------- internals
    def _advance(self, t: int) -> None:
        if not self._started:
            raise IvrError("event before call_started")
        if t < self._now:
            raise ValueError(f"time went backwards: {t} < {self._now}")
        self._now = t

    def _flush(self) -> list[Command]:
        out, self._out = self._out, []
        self._chain = 0
        return out

    def _log(self, t: int, what: str, detail: str = "") -> None:
        step = PathStep(t, what, detail)
        self.path.append(step)
        self._out.append(Log(step))

    def _finish(self) -> None:
        """The call leaves the IVR: nothing typed into it is needed any more."""
        self.done = True
        self._collector = None
        self._play = None
        self._after = None
        self._buffer = ""
        for name in self._secret_vars:
            self.vars.pop(name, None)
        self._secret_vars.clear()

    def _secret(self, menu: Menu | None) -> bool:
        return menu is not None and (menu.secret or menu.name in self.secret_menus)

    def _stop_play(self) -> None:
        assert self._play is not None
        self._out.append(StopPlay(self._play.id))
        self._play = None

    def _start_play(self, items: tuple[PlayItem, ...], barge_in: bool) -> Play:
        resolved = tuple(r for r in (self._resolve(i) for i in items) if r is not None)
        play = Play(self._next_id, resolved, barge_in, self.lang)
        self._next_id += 1
        self._play = play
        self._out.append(play)
        return play

    def _resolve(self, item: PlayItem) -> PlayItem | None:
        """Fill a Say's $variable. A variable not set on this call's path (the
        validator only checks it is set somewhere) skips the item and logs an
        error step, rather than failing the call."""
        if isinstance(item, Say) and item.value.startswith("$"):
            name = item.value[1:]
            if name not in self.vars:
                self._log(self._now, "error", f"say_{item.kind}: ${name} not set")
                return None
            return replace(item, value=self.vars[name], secret=name in self._secret_vars)
        return item

    def _clear_digits(self) -> None:
        self._buffer = ""
        self._out.append(ClearDigits())

    def _run(self, action: Action, t: int) -> None:
        """Run one action (and whatever it chains to without waiting for an event)."""
        self._chain += 1
        if self._chain > MAX_CHAIN:
            self._log(t, "error", "action loop")
            self._out.append(Hangup("menu loop limit"))
            self._finish()
            return
        if action.lang is not None and action.lang != self.lang:
            self.lang = action.lang
            self._log(t, "lang", action.lang)
        self._collector = None
        if isinstance(action, SubmenuAction):
            menu = self.ivr.menus.get(action.menu)
            if menu is None:
                raise IvrError(f"no such menu {action.menu!r}")
            self._tries = 0
            self._enter(menu, t)
        elif isinstance(action, RepeatAction):
            if self._menu is None:
                # Only reachable through a named action used as a flow start.
                self._log(t, "error", "repeat outside a menu")
                self._out.append(Hangup("flow error"))
                self._finish()
                return
            self._enter(self._menu, t)
        elif isinstance(action, RefAction):
            target = self.ivr.actions.get(action.name)
            if target is None:
                raise IvrError(f"no such action {action.name!r}")
            self._run(target, t)
        elif isinstance(action, PlayAction):
            after = action.then if action.then is not None else (
                SubmenuAction(self._menu.name) if self._menu is not None else HangupAction())
            if self._buffer and action.barge_in:
                # The caller already typed ahead: do not make them hear this.
                self._log(t, "play_skipped", ",".join(_item_name(i) for i in action.items))
                self._run(after, t)
                return
            self._log(t, "play", ",".join(_item_name(i) for i in action.items))
            self._after = after
            self._start_play(action.items, action.barge_in)
        elif isinstance(action, LookupAction):
            key = self.vars.get(action.key, "")
            row = self.ivr.tables.get(action.table, {}).get(key)
            self._log(t, "lookup", f"{action.table}:{'found' if row is not None else 'missing'}")
            if row is not None:
                self.vars.update(row)
                self._run(action.found, t)
            else:
                self._run(action.missing, t)
        elif isinstance(action, QueueAction):
            self._log(t, "queue", action.queue)
            self._out.append(Queue(action.queue))
            self._finish()
        elif isinstance(action, VoicemailAction):
            self._log(t, "voicemail", action.mailbox)
            self._out.append(Voicemail(action.mailbox))
            self._finish()
        elif isinstance(action, TransferAction):
            self._log(t, "transfer", f"{action.number}@{action.trunk}")
            self._out.append(Transfer(action.number, action.trunk))
            self._finish()
        elif isinstance(action, HangupAction):
            if action.items:
                self._log(t, "goodbye", ",".join(_item_name(i) for i in action.items))
                self._after = HangupAction()
                self._start_play(action.items, barge_in=False)
            else:
                self._log(t, "hangup")
                self._out.append(Hangup("hangup action"))
                self._finish()
        else:  # pragma: no cover - the union is closed
            raise IvrError(f"unknown action {action!r}")

    def _enter(self, menu: Menu, t: int, prefix: tuple[PlayItem, ...] = ()) -> None:
        """Start (or restart, after a failed try) a menu's prompt-and-collect."""
        if self._play is not None:
            self._stop_play()
        self._after = None
        self._menu = menu
        if menu.clear_digits and not prefix:
            self._clear_digits()
        self._log(t, "menu", menu.name)
        col = DigitCollector(menu.collect, t, typeahead=self._buffer)
        self._buffer = col.leftover()
        self._collector = col
        self._out.append(Collect(menu.name, menu.collect))
        if col.done:
            assert col.result is not None
            self._on_result(col.result, t)
            return
        if col.barged_in or not (prefix or menu.greeting):
            # Type-ahead already started the input (or nothing to say): timers run now.
            col.prompt_done(t)
            return
        self._start_play(prefix + menu.greeting, menu.collect.barge_in)

    def _on_result(self, res: CollectResult, t: int) -> None:
        menu = self._menu
        assert menu is not None
        self._collector = None
        if self._play is not None:
            self._stop_play()
        secret = self._secret(menu)
        shown = masked(res.digits) if secret else res.digits
        if res.valid and menu.options is not None and res.digits in menu.options:
            self._log(t, "key", shown)
            self._run(menu.options[res.digits], t)
            return
        if res.valid and menu.input_store is not None:
            self._log(t, "input", f"{menu.input_store}={shown}")
            self._out.append(Input(menu.name, menu.input_store, shown, secret, res.reason.value))
            self.vars[menu.input_store] = res.digits
            if secret:
                self._secret_vars.add(menu.input_store)
            else:
                self._secret_vars.discard(menu.input_store)
            assert menu.input_then is not None
            self._run(menu.input_then, t)
            return
        kind = "timeout" if res.timed_out else "invalid"
        self._log(t, kind, shown)
        self._tries += 1
        if self._tries > menu.retries:
            self._log(t, "fallback", menu.name)
            self._run(menu.fallback, t)
            return
        self._clear_digits()
        self._enter(menu, t, prefix=menu.timeout if res.timed_out else menu.invalid)


def _item_name(item: PlayItem) -> str:
    return item.name if isinstance(item, Prompt) else f"say_{item.kind}({item.value})"
