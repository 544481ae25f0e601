"""The voice server's config file: load, validate everything, or refuse.

One TOML file describes a server (see docs/ivr.md for the format and the
demo in voiceserver/configs/demo.toml)::

    [[boards]]   uri, name, config (boarddrv channel config file)
    [channels]   which board channels are inbound trunks, agent phones,
                 outbound trunk groups
    [numbering]  the national numbering plan (caller ID normalisation)
    [prompts]    prompt directory, default language, languages
    [ivr]        flows, menus, named actions, data tables
    [schedule]   business hours, holidays, day / night flow
    [blacklist]  blocked callers
    [api]        network API bind address
    [recording]  recording rules: ``rules = "FILE"`` (relative to this file)
                 or the rules inline (docs/recording-rules.md)
    [storage]    where recordings, voicemail, call records (SQLite) and the
                 rules audit log go (docs/recording.md)
    [agents]     agents: FXS phones or external numbers, skills, wrap-up
    [queues]     queues, strategies, overflow, announcements (docs/queues.md)
    [voicemail]  voicemail prompts, limits and mailboxes
    [r2]         E1 trunk groups with R2 signalling (China No.1): variant, release
                 control, numbers (one- and two-stage dialling); docs/r2.md

Unknown sections are *rejected*, not silently accepted: a config that
looks like it does something it does not is worse than an error.

Reload contract (the server's SIGHUP handler relies on it):

- ``load_config(path)`` is pure: it reads the file (and the channel config
  files it names), touches no global state and returns a new, immutable
  ``ServerConfig`` or raises ``ConfigError`` (``FILE:LINE: key 'a.b': ...``);
  it goes on after an error, so every problem of the file is raised at
  once (``ConfigErrors``, a ConfigError listing them, up to a limit).
- ``reload_config(path, current, library=..., open_boards=...)`` returns
  ``(new, None)`` or, when the new file is bad, ``(current, error)``: the
  running config is never half replaced. Calls in progress keep the
  ``IvrConfig`` they started with (every part is frozen), new calls get
  the new one. It runs start's checks: prompts against the library, and
  the channels against the boards the server has open (``OpenBoard``).
- Warnings (unreachable menus, rules for agents the config lacks) do not
  fail a load; they are in ``ServerConfig.warnings`` for the server to log.

Prompt names are checked against the prompt audio when ``library`` is
given: each missing one is an error at the key that names it, with the
prompt it probably meant.
"""
from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol

from boarddrv.chanref import ChannelRef, ChannelRefError, parse_channel_ref, split_board
from boarddrv.tomlconfig import (
    ConfigError,
    ConfigErrors,
    ErrorCollector,
    Node,
    format_key,
)
from boarddrv.tomlconfig import load as load_toml
from voiceserver.acd.agentid import agent_id_problem, agent_id_text
from voiceserver.config.sections import parse_dates, parse_numbering
from voiceserver.ivr.blacklist import (
    Blacklist,
    BlacklistEntry,
    BlockAction,
    Match,
    NumberingPlan,
    normalize_number,
)
from voiceserver.ivr.collect import DTMF_DIGITS, CollectSpec
from voiceserver.ivr.flows import (
    SAY_KINDS,
    Action,
    Flow,
    HangupAction,
    IvrCall,
    IvrConfig,
    LookupAction,
    Menu,
    PlayAction,
    PlayItem,
    Prompt,
    QueueAction,
    RefAction,
    RepeatAction,
    Say,
    SubmenuAction,
    TransferAction,
    VoicemailAction,
)
from voiceserver.ivr.numberindex import PatternIndex
from voiceserver.ivr.schedule import (
    DAY_NAMES,
    Schedule,
    TimeRange,
    parse_days,
    parse_hhmm,
)
from voiceserver.recording.rules import RecordingRules, agent_warnings, load_rules

__all__ = ["ServerConfig", "BoardEntry", "ChannelRoles", "PromptSettings", "ApiSettings", "ApiUserEntry",
           "StorageSettings", "OpenBoard", "agent_ids", "load_config", "reload_config", "load_api_settings",
           "ConfigError", "ConfigErrors", "SECTIONS"]

SECTIONS = ("board", "boards", "channels", "numbering", "prompts", "ivr", "schedule",
            "blacklist", "api", "recording", "storage", "agents", "queues", "voicemail", "r2")
ACTIONS = ("submenu", "play", "lookup", "queue", "voicemail", "transfer", "hangup", "repeat")
BUILTIN_VARS = ("caller", "called")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


# ---------------------------------------------------------------- the model
@dataclass(frozen=True)
class BoardEntry:
    """A board the server opens. ``channel_config``: a boarddrv channel config file (absolute)."""

    name: str
    uri: str
    channel_config: str | None = None




@dataclass(frozen=True)
class ChannelRoles:
    inbound: tuple[ChannelRef, ...] = ()
    agents: tuple[ChannelRef, ...] = ()
    outbound: Mapping[str, tuple[ChannelRef, ...]] = field(default_factory=dict)
    # answer = "api" on these inbound lines: a call rings until the network API answers it,
    # the IVR answers it after `api_answer_fallback_ms` (voiceserver.core.controller)
    answer_api: tuple[ChannelRef, ...] = ()
    api_answer_fallback_ms: int = 20_000


@dataclass(frozen=True)
class PromptSettings:
    directory: str | None = None   # None: the packaged default set
    default_lang: str = "zh"
    languages: tuple[str, ...] = ("zh", "en")


@dataclass(frozen=True)
class ApiSettings:
    """[api]: the network API's address; the loopback status/admin API is on port + 1.

    ``token_file``: the admin token (made at the server's first start, mode
    0600); ``audit_log``: one JSON line per admin action. Absolute paths;
    the file gives them relative to itself (default: next to it)."""
    host: str = "127.0.0.1"
    port: int = 8750
    token_file: str = "admin-token"
    audit_log: str = "admin-audit.jsonl"
    network: bool = False           # the config has [api]: `voiceboard serve` runs the network API on `bind`
    ami_host: str = "127.0.0.1"     # [api] ami_bind: the AMI-compatible feed (voiceserver.api.ami)
    ami_port: int | None = None     # None: no AMI feed
    users: tuple[ApiUserEntry, ...] = ()   # [[api.user]]: the network API's users besides the admin
    tls_cert: str | None = None     # [api] tls_cert / tls_key: the network API speaks HTTPS / WSS
    tls_key: str | None = None

    @property
    def base_url(self) -> str:
        """The network API's URL (http or https) as a client on this machine reaches it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.port}"


@dataclass(frozen=True)
class ApiUserEntry:
    """[[api.user]]: a user of the network API (voiceserver.api.roles). Its token is a file
    the server makes at its first start (0600, as the admin's) or the SHA-256 of a token kept
    elsewhere; never the token itself."""
    name: str
    role: str                       # voiceserver.api.roles.Role
    agent: str | None = None        # the agent id of an `agent` user ("1001")
    token_file: str | None = None
    token_sha256: str | None = None


@dataclass(frozen=True)
class StorageSettings:
    """[storage]: absolute paths (the file gives them relative to itself), docs/recording.md.

    ``explicit``: False when the paths are the defaults a [recording] section
    without [storage] gets (next to the config file).
    """

    recordings: str                 # recordings root: YYYY/MM/DD/<template>.wav under it
    database: str                   # SQLite call records (voiceserver.recording.calldb)
    voicemail: str                  # voicemail root: MAILBOX/YYYY/MM/DD/<template>.wav under it
    template: str                   # file name template (voiceserver.recording.recorder.PLACEHOLDERS)
    rules_audit: str                # JSON lines: every recording-rules reload (rules_watch)
    explicit: bool = True
    server_id: str | None = None    # this server in the call database; None: the host name
    events: str = ""                # SQLite event journal (voiceserver.core.journal); "": none
    events_keep: int = 1_000_000    # events kept per server in the journal


STORAGE_DEFAULTS = {"recordings": "recordings", "database": "calls.db", "voicemail": "voicemail",
                    "rules_audit": "rules-audit.jsonl", "events": "events.db"}


@dataclass(frozen=True)
class ServerConfig:
    file: str
    boards: tuple[BoardEntry, ...]
    channels: ChannelRoles
    numbering: NumberingPlan
    prompts: PromptSettings
    ivr: IvrConfig
    schedule: Schedule | None
    blacklist: Blacklist
    api: ApiSettings
    default_flow: str | None
    prompt_uses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    recording: RecordingRules | None = None   # None: no [recording] section, nothing recorded
    acd: Any = None      # voiceserver.acd.distributor.AcdSettings; None: no [agents]/[queues]/[voicemail]
    storage: StorageSettings | None = None   # None: no [storage] and no [recording]: nothing stored
    r2: tuple[Any, ...] = ()   # voiceserver.config.r2.R2Group: E1 R2 trunk groups ([r2])

    def flow_at(self, when: dt.datetime) -> str:
        """The flow for a call arriving at `when` (aware datetime)."""
        if self.schedule is not None:
            return self.schedule.flow_at(when)
        assert self.default_flow is not None
        return self.default_flow

    def new_call(self, caller: str | None, called: str, when: dt.datetime,
                 flow: str | None = None) -> IvrCall | None:
        """The IVR for a new inbound call, or None: do not answer (blacklisted, reject).

        The channel layer answers only if this returns an IvrCall, then feeds
        it ``call_started`` and the events that follow. `flow`: the flow its
        number chose (E1 R2 one- and two-stage numbers); else the schedule's.
        """
        entry = self.blacklist.match(caller)
        if entry is not None:
            if entry.action is BlockAction.REJECT:
                return None
            return IvrCall(self.ivr, f"blacklist:{entry.number}",
                           start=HangupAction(tuple(Prompt(p) for p in entry.prompts)),
                           lang=self.prompts.default_lang)
        return IvrCall(self.ivr, flow if flow is not None else self.flow_at(when))

    def caller_allowed(self, caller: str | None) -> bool:
        """False when the blacklist rejects this caller outright (an E1 call is refused busy)."""
        entry = self.blacklist.match(caller)
        return entry is None or entry.action is not BlockAction.REJECT


def agent_ids(acd: Any) -> frozenset[str]:
    """The agent ids of a config's [agents] (``ServerConfig.acd``; None: no agents)."""
    return frozenset(a.name for a in acd.agents) if acd is not None else frozenset()


class _PromptChecker(Protocol):
    """What the loader needs of a prompt library (voiceserver.ivr.prompts.PromptLibrary)."""

    def find(self, name: str, lang: str) -> Any: ...

    def names(self, lang: str) -> list[str]: ...

    def expected_path(self, name: str, lang: str) -> Any: ...


@dataclass(frozen=True)
class OpenBoard:
    """A board the running server has open: its URI and channel types by index ("FXS", "FXO", ...)."""

    uri: str
    channels: Mapping[int, str]


# --------------------------------------------------------------- entry points
def load_config(path: str | os.PathLike[str], *, library: _PromptChecker | None = None,
                open_boards: Mapping[str, OpenBoard] | None = None) -> ServerConfig:
    """Load and fully validate a server config; see the module docstring for the contract.

    ``library``: check every prompt name against it. ``open_boards``: a
    reload's check of the channels against the boards the server has open.
    All errors found are raised together (``ConfigErrors``, a ConfigError).
    """
    return _Loader(load_toml(path)).load(library, open_boards)


def reload_config(path: str | os.PathLike[str], current: ServerConfig, *,
                  library: _PromptChecker | None = None,
                  open_boards: Mapping[str, OpenBoard] | None = None
                  ) -> tuple[ServerConfig, ConfigError | None]:
    """Load `path` to replace `current`; on any error keep `current` and return the error(s)."""
    try:
        return load_config(path, library=library, open_boards=open_boards), None
    except ConfigError as exc:
        return current, exc


def parse_api(a: Node, base_dir: str) -> ApiSettings:
    """[api]: ``bind = "HOST:PORT"`` (the status/admin API listens on PORT + 1),
    ``token_file``, ``audit_log`` (relative to the config file's directory), ``ami_bind``,
    ``tls_cert`` and ``tls_key``, and the users (``[[api.user]]``, docs/api.md)."""
    a.check_keys({"bind", "token_file", "audit_log", "ami_bind", "tls_cert", "tls_key", "user"})
    bind = a.get_str("bind", "127.0.0.1:8750")
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or len(port) > 5:
        raise a.error("bind", f"expected HOST:PORT, got {bind!r}")
    if not 0 <= int(port) <= 65534:
        raise a.error("bind", f"port {port} out of range: at most 65534 (the status/admin "
                              f"API listens on the next port, PORT + 1)")
    paths = {key: os.path.join(base_dir, a.get_str(key, default))
             for key, default in (("token_file", ApiSettings.token_file),
                                   ("audit_log", ApiSettings.audit_log))}
    ami_host, ami_port = "127.0.0.1", None
    if "ami_bind" in a:
        ami = a.get_str("ami_bind")
        h, sep, p = ami.rpartition(":")
        if not sep or not h or not p.isascii() or not p.isdigit() or not 0 < int(p) <= 65535:
            raise a.error("ami_bind", f"expected HOST:PORT (Asterisk's AMI uses 5038), got {ami!r}")
        ami_host, ami_port = h.strip("[]"), int(p)
    if ("tls_cert" in a) != ("tls_key" in a):
        raise a.error("tls_cert" if "tls_cert" in a else "tls_key",
                      "tls_cert and tls_key go together: the certificate (PEM) and its private key")
    tls_cert, tls_key = (os.path.join(base_dir, a.get_str(key)) if key in a else None
                         for key in ("tls_cert", "tls_key"))
    users = tuple(_api_user(u, base_dir) for u in a.tables("user"))
    seen: dict[tuple[str, str], str] = {}
    for i, u in enumerate(users):
        for kind, value in (("name", u.name), ("token_file", u.token_file), ("token_sha256", u.token_sha256)):
            if value is None:
                continue
            if (kind, value) in seen:
                raise a.error(("user", i, kind), f"{kind} {value!r} is also user {seen[(kind, value)]!r}'s: "
                                                 f"each user has its own")
            seen[(kind, value)] = u.name
        if u.token_file == paths["token_file"]:
            raise a.error(("user", i, "token_file"), "that is the admin's token file ([api] token_file)")
    return ApiSettings(host.strip("[]"), int(port), network=a.line is not None, ami_host=ami_host,
                       ami_port=ami_port, users=users, tls_cert=tls_cert, tls_key=tls_key, **paths)


_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


def _api_user(u: Node, base_dir: str) -> ApiUserEntry:
    """One [[api.user]]: name, role, agent (an agent user's agent id), token_file or token_sha256."""
    from voiceserver.api.roles import ADMIN_NAME, Role
    u.check_keys({"name", "role", "agent", "token_file", "token_sha256", "token"})
    if "token" in u:
        raise u.error("token", "a token is never written in the config (others may read it): give "
                               "token_file (the server makes it, mode 0600) or token_sha256 (its SHA-256)")
    name = u.get_str("name")
    if not _USER_NAME.match(name):
        raise u.error("name", f"{name!r}: letters, digits, _ . @ - (at most 64), starting with a letter or digit")
    if name == ADMIN_NAME:
        raise u.error("name", f"{ADMIN_NAME!r} is the user of [api] token_file: choose another name")
    role = u.get_str("role", choices=[r.value for r in Role])
    agent = None
    if role == Role.AGENT:
        if "agent" not in u:
            raise u.error("agent", "missing: an agent user is bound to one agent id (agent = \"1001\")")
        agent = agent_id_text(u.get("agent"))
        problem = agent_id_problem(agent) if agent is not None else "expected a string or an integer"
        if problem:
            raise u.error("agent", problem)
    elif "agent" in u:
        raise u.error("agent", f"only an agent user is bound to an agent (this one is {role})")
    if ("token_file" in u) == ("token_sha256" in u):
        raise u.error(None, "give one of token_file (made by the server at its first start, mode 0600) "
                            "and token_sha256 (the SHA-256 in hex of a token kept elsewhere)")
    token_file = os.path.join(base_dir, u.get_str("token_file")) if "token_file" in u else None
    digest = u.get_str("token_sha256").lower() if "token_sha256" in u else None
    if digest is not None and not _SHA256.match(digest):
        raise u.error("token_sha256", "expected 64 hex digits (`python -m voiceserver.api.token new` "
                                      "prints a token and its SHA-256)")
    return ApiUserEntry(name, role, agent, token_file, digest)


def load_api_settings(path: str | os.PathLike[str]) -> ApiSettings:
    """Only the [api] section of a server config: where a CLI finds the API and its token."""
    root = load_toml(path)
    return parse_api(root.table("api"), os.path.dirname(os.path.abspath(root.file)))


def load_storage_settings(path: str | os.PathLike[str]) -> StorageSettings | None:
    """Only [storage] of a server config (what [recording] alone implies): where a CLI finds
    the call database and the event journal. None: the server stores nothing."""
    root = load_toml(path)
    if "storage" not in root and "recording" not in root:
        return None
    return _Loader(root).storage(root.table("storage"), explicit="storage" in root)


# ---------------------------------------------------------------- the loader
def _suggest(word: str, options: list[str] | tuple[str, ...] | set[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known: {', '.join(sorted(options))})" if options else " (none defined)"


def _say_function_exists(kind: str) -> bool:
    """True if voiceserver.ivr.saynumber has ``say_<kind>`` (when that module is installed)."""
    try:
        mod = importlib.import_module("voiceserver.ivr.saynumber")
    except ImportError:
        return kind in SAY_KINDS
    return callable(getattr(mod, f"say_{kind}", None))


class _Loader:
    """One load of one file: parsing, cross-references, reachability."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.file = root.config.file
        self.dir = os.path.dirname(os.path.abspath(self.file))
        self.prompt_uses: dict[str, list[str]] = {}
        self.var_uses: list[tuple[Node, Any, str]] = []
        self.warnings: list[str] = []
        self.languages: tuple[str, ...] = ("zh", "en")
        self.errs = ErrorCollector()

    # -- top level -------------------------------------------------------
    def load(self, library: _PromptChecker | None = None,
             open_boards: Mapping[str, OpenBoard] | None = None) -> ServerConfig:
        """Every section, going on after an error; ConfigErrors lists them all (up to a limit).

        A section whose groundwork failed (channels without boards, the
        schedule without the IVR) is not checked: its errors would be echoes.
        """
        r, errs = self.root, self.errs
        for key in r.keys():
            if key not in SECTIONS:
                errs.add(r.error(key, f"unknown section [{key}]{_suggest(key, SECTIONS)}"))
        prompts = errs.attempt(lambda: self.prompts(r.table("prompts")), default=PromptSettings())
        self.languages = prompts.languages
        boards = errs.attempt(self.boards)
        channels = None
        if boards is not None:
            channels = errs.attempt(lambda: self.channels(r.table("channels"), boards))
            if channels is not None and open_boards is not None:
                errs.attempt(self.running_boards, boards, channels, open_boards)
        numbering = errs.attempt(lambda: parse_numbering(r.table("numbering")),
                                 default=NumberingPlan())
        r2: tuple[Any, ...] = ()
        if "r2" in r and channels is not None and boards is not None:
            r2 = errs.attempt(self.r2, r.table("r2"), boards, default=())
            channels = self.r2_roles(r, channels, r2)
        if channels is not None:
            errs.attempt(self.answer_api_lines, r.table("channels"), channels, r2)
        ivr_node = errs.attempt(r.table, "ivr", required=True)
        ivr = errs.attempt(self.ivr, ivr_node, prompts, channels) if ivr_node is not None else None
        if r2 and ivr is not None:
            errs.attempt(self.r2_flows, r.table("r2"), r2, ivr)
        schedule = None
        if "schedule" in r and ivr is not None:
            schedule = errs.attempt(lambda: self.schedule(r.table("schedule"), ivr))
        default_flow: str | None = None
        if ivr is not None and ivr_node is not None:
            default_flow = errs.attempt(self.default_flow, ivr_node, ivr, schedule,
                                        "schedule" in r)
        blacklist = errs.attempt(lambda: self.blacklist(r.table("blacklist"), numbering))
        api = errs.attempt(lambda: self.api(r.table("api")))
        recording = errs.attempt(lambda: self.recording(r.table("recording"), numbering)) \
            if "recording" in r else None
        storage = errs.attempt(lambda: self.storage(r.table("storage"), explicit="storage" in r)) \
            if "storage" in r or recording is not None else None
        if recording is not None and storage is not None and not storage.explicit:
            self.warn(r, "recording", f"[recording] without [storage]: recordings go to "
                                      f"{storage.recordings}, call records to {storage.database}")
        self.board_names = [b.name for b in boards or ()]
        acd = None
        if any(k in r for k in ("agents", "queues", "voicemail")) and channels is not None:
            acd = errs.attempt(_acd_sections, self, r, channels, numbering, ivr)
        if library is not None:
            errs.attempt(self.check_prompts, library, prompts)
        errs.check()
        # what errs.attempt returned is there: errs.check() raised otherwise
        assert channels is not None and ivr is not None
        self.reachability(ivr, schedule, default_flow, ivr_node)
        if recording is not None:   # a rule for an agent the server lacks never applies
            found = agent_warnings(recording, agent_ids(acd), self.file)
            self.warnings += [str(w) for w in found]
            recording = replace(recording, warnings=recording.warnings + tuple(found))
        return ServerConfig(
            file=self.file, boards=boards, channels=channels, numbering=numbering,
            prompts=prompts, ivr=ivr, schedule=schedule, blacklist=blacklist, api=api,
            default_flow=default_flow,
            prompt_uses=MappingProxyType({n: tuple(w) for n, w in self.prompt_uses.items()}),
            warnings=tuple(self.warnings), recording=recording, acd=acd, storage=storage, r2=r2)

    def default_flow(self, ivr_node: Node, ivr: IvrConfig, schedule: Schedule | None,
                     has_schedule: bool) -> str | None:
        if "default_flow" in ivr_node:
            default_flow = ivr_node.get_str("default_flow")
            if default_flow not in ivr.flows:
                raise ivr_node.error("default_flow", f"no such flow '{default_flow}'"
                                     f"{_suggest(default_flow, set(ivr.flows))}")
            return default_flow
        if not has_schedule:
            raise ivr_node.error(None, "no [schedule] and no ivr.default_flow: "
                                       "which flow answers calls?")
        return None

    # -- prompts the config names: audio in every language ---------------------
    def check_prompts(self, library: _PromptChecker, settings: PromptSettings) -> None:
        """Every prompt name must have audio in every language; an error at each key that names one.

        The message says where the audio was expected and, from the names the
        library has, which prompt was probably meant.
        """
        problems: list[ConfigError] = []
        for lang in settings.languages:
            have = library.names(lang)
            if not have:
                problems.append(self.root.table("prompts").error(
                    "languages", f"no prompts for language '{lang}'"))
                continue
            for name, uses in self.prompt_uses.items():
                if library.find(name, lang) is not None:
                    continue
                for where in uses:
                    problems.append(ConfigError(
                        self.file, self.root.line_of(where), where,
                        f"prompt '{name}' has no audio for '{lang}' (expected "
                        f"{library.expected_path(name, lang)}){_suggest(name, have)}"))
        if problems:
            raise ConfigErrors(problems)

    def running_boards(self, boards: tuple[BoardEntry, ...], channels: ChannelRoles,
                       open_boards: Mapping[str, OpenBoard]) -> None:
        """A reload's check of the boards the server has open: the same checks as at start.

        Boards are opened at start, so a reload cannot add or move one; every
        channel a role names must exist on its board, an agent phone must be
        an FXS port.
        """
        c = self.root.table("channels")
        errs = ErrorCollector()
        for i, b in enumerate(boards):
            running = open_boards.get(b.name)
            if running is None or running.uri != b.uri:
                at = self.root.tables("boards")[i] if "boards" in self.root else \
                    self.root.table("board")
                have = ", ".join(f"{n} ({o.uri})" for n, o in open_boards.items())
                errs.add(at.error("uri", f"board {b.name} ({b.uri}) is not open in the running "
                                         f"server (open: {have}); boards change at restart"))
        roles = [("inbound", c, "inbound", channels.inbound), ("agents", c, "agents", channels.agents)]
        roles += [(f"outbound.{g}", c.table("outbound"), g, refs)
                  for g, refs in channels.outbound.items()]
        for role, node, key, refs in roles:
            for board, chan in refs:
                running = open_boards.get(board)
                if running is None:
                    continue
                kind = running.channels.get(chan)
                if kind is None:
                    errs.add(node.error(key, f"board {board} ({running.uri}) has no channel "
                                             f"{chan} (it has {len(running.channels)}: 0-"
                                             f"{max(running.channels, default=-1)})"))
                elif role == "agents" and kind != "FXS":
                    errs.add(node.error(key, f"{board}:{chan} is an agent phone but the board "
                                             f"says it is {kind}"))
        errs.check()

    # -- [recording] -------------------------------------------------------
    def recording(self, node: Node, plan: NumberingPlan) -> RecordingRules:
        """``rules = "FILE"`` (relative to this file) or the rules inline; [numbering] applies."""
        if "rules" in node:
            if len(node.keys()) > 1:
                raise node.error("rules", "use either rules = \"FILE\" or the rules inline "
                                          "in [recording], not both")
            path = os.path.join(self.dir, node.get_str("rules"))
            if not os.path.exists(path):
                raise node.error("rules", f"recording rules file {path} does not exist")
            rules = load_rules(path, plan)
        else:   # the hash of the file they are in: a reload's watcher knows them as loaded
            rules = replace(RecordingRules.from_node(node, plan),
                            source_hash=hashlib.sha256(self.root.config.text.encode()).hexdigest())
        self.warnings += [str(w) for w in rules.warnings]
        return rules

    # -- [storage] ---------------------------------------------------------
    def storage(self, node: Node, explicit: bool) -> StorageSettings:
        """Paths relative to this file; nothing is created here (the server does at start)."""
        node.check_keys(set(STORAGE_DEFAULTS) | {"template", "server_id", "events_keep"})
        paths: dict[str, str] = {}
        for key, default in STORAGE_DEFAULTS.items():
            value = node.get_str(key, default).strip()
            if not value:
                raise node.error(key, "expected a path, got an empty string")
            path = os.path.normpath(os.path.join(self.dir, os.path.expanduser(value)))
            want_dir = key in ("recordings", "voicemail")
            if want_dir and os.path.exists(path) and not os.path.isdir(path):
                raise node.error(key, f"{path} exists and is not a directory")
            if not want_dir and os.path.isdir(path):
                raise node.error(key, f"{path} is a directory; give a file name")
            paths[key] = path
        if paths["recordings"] == paths["voicemail"]:
            raise node.error("voicemail", "voicemail needs a directory of its own, not the "
                                          "recordings directory")
        from voiceserver.recording.recorder import DEFAULT_TEMPLATE, check_template
        template = node.get_str("template", DEFAULT_TEMPLATE)
        try:
            check_template(template)
        except ValueError as exc:
            raise node.error("template", str(exc)) from None
        server_id = None
        if "server_id" in node:
            from voiceserver.core.callids import check_server_id
            try:
                server_id = check_server_id(node.get_str("server_id"))
            except ValueError as exc:
                raise node.error("server_id", str(exc)) from None
        keep = node.get_int("events_keep", 1_000_000, min=1000)
        return StorageSettings(template=template, explicit=explicit, server_id=server_id,
                               events_keep=keep, **paths)

    # -- [[boards]] --------------------------------------------------------
    def boards(self) -> tuple[BoardEntry, ...]:
        r = self.root
        if "board" in r and "boards" in r:
            raise r.error("board", "use either [board] (one board) or [[boards]], not both")
        nodes = [r.table("board")] if "board" in r else r.tables("boards")
        out: list[BoardEntry] = []
        names: set[str] = set()
        for b in nodes:
            b.check_keys({"uri", "name", "config"})
            uri = b.get_str("uri")
            if "://" not in uri:
                raise b.error("uri", f"expected a board URI like 'sim://hotline', got {uri!r}")
            default_name = uri.split("://", 1)[1].strip("/").replace("/", "_") or uri
            name = b.get_str("name", default_name)
            if not _NAME.match(name):
                raise b.error("name", f"board name {name!r}: use letters, digits, _ and -")
            if name in names:
                raise b.error("name" if "name" in b else "uri", f"two boards named '{name}'")
            names.add(name)
            chan_cfg = None
            if "config" in b:
                chan_cfg = os.path.join(self.dir, b.get_str("config"))
                self.check_channel_config(b, chan_cfg, uri)
            out.append(BoardEntry(name, uri, chan_cfg))
        return tuple(out)

    def check_channel_config(self, b: Node, path: str, uri: str) -> None:
        if not os.path.exists(path):
            raise b.error("config", f"channel config file {path} does not exist")
        from boarddrv.config import (
            load as load_channels,  # its own errors name its own file
        )
        system = load_channels(path)
        if not any(x.uri == uri for x in system.boards):
            known = ", ".join(x.uri for x in system.boards) or "none"
            raise b.error("config", f"{path} has no [[boards]] entry for {uri} (it has: {known})")

    # -- [channels] --------------------------------------------------------
    def channel_refs(self, node: Node, key: str, boards: tuple[BoardEntry, ...]) -> tuple[ChannelRef, ...]:
        """``"BOARD:RANGE"`` or a list of them at `key` (the board may be left out when there is one)."""
        names = [b.name for b in boards]
        value = node.get(key)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise node.error(key, "expected \"BOARD:RANGE\" or a list of them, "
                                  "e.g. \"hotline:0-3\"")
        out: list[ChannelRef] = []
        from boarddrv.config import parse_ranges
        for i, item in enumerate(items):
            where = key if isinstance(value, str) else (key, i)
            try:
                board, rng = split_board(item, names[0] if len(names) == 1 else None, "RANGE")
            except ChannelRefError as exc:
                raise node.error(where, f"{exc}; boards: {', '.join(names) or 'none'}") from None
            if board not in names:
                raise node.error(where, f"no board named '{board}'{_suggest(board, set(names))}")
            try:
                out += [ChannelRef(board, n) for n in parse_ranges(rng, 0, 1023)]
            except ValueError as exc:
                raise node.error(where, str(exc)) from None
        return tuple(out)

    def channels(self, c: Node, boards: tuple[BoardEntry, ...]) -> ChannelRoles:
        c.check_keys({"inbound", "agents", "outbound", "answer_api", "answer_api_fallback"})

        def refs(node: Node, key: str) -> tuple[ChannelRef, ...]:
            return self.channel_refs(node, key, boards)

        inbound = refs(c, "inbound") if "inbound" in c else ()
        agents = refs(c, "agents") if "agents" in c else ()
        out_node = c.table("outbound")
        outbound = MappingProxyType({name: refs(out_node, name) for name in out_node.keys()})
        trunks = set(inbound).union(*[set(v) for v in outbound.values()])
        for ref in agents:
            if ref in trunks:
                raise c.error("agents", f"channel {ref[0]}:{ref[1]} is both an agent phone "
                                        f"and a trunk")
        answer_api = refs(c, "answer_api") if "answer_api" in c else ()   # inbound: `answer_api_lines`
        fallback = c.get_float("answer_api_fallback", 20.0, min=1.0, max=3600.0)
        return ChannelRoles(inbound, agents, outbound, answer_api, int(fallback * 1000))

    def answer_api_lines(self, c: Node, roles: ChannelRoles, groups: tuple[Any, ...]) -> None:
        """[channels] answer_api names inbound lines: analog ones of [channels] inbound, or E1
        channels of an [r2] trunk group that takes calls in. On E1 the far exchange waits for
        the answer signal only so long (the variant's `answer` timer, from its B signal): a
        fallback that comes later is warned of (the caller would be gone before it)."""
        from voiceserver.config.r2 import group_of
        warned: set[str] = set()
        for ref in roles.answer_api:
            if ref not in roles.inbound:
                raise c.error("answer_api", f"channel {ref[0]}:{ref[1]} is not an inbound line ([channels] "
                                            f"inbound, or an [r2] trunk group that takes calls in): only an "
                                            f"inbound call waits for the API's answer")
            g = group_of(groups, ref)
            if g is None or g.name in warned:
                continue
            t = g.variant.timers
            if roles.api_answer_fallback_ms + t.answer_delay >= t.answer:
                warned.add(g.name)
                self.warn(c, "answer_api_fallback",
                          f"answer_api_fallback {roles.api_answer_fallback_ms / 1000:g} s is not below the answer "
                          f"timer of trunk group '{g.name}' ({t.answer / 1000:g} s from the B signal, variant "
                          f"{g.variant.name}): the far exchange clears forward before the fallback answers; "
                          f"set answer_api_fallback below it")

    # -- [r2] ----------------------------------------------------------------
    def r2(self, node: Node, boards: tuple[BoardEntry, ...]) -> tuple[Any, ...]:
        from voiceserver.config.r2 import parse_r2
        return parse_r2(node, lambda n, k: self.channel_refs(n, k, boards))

    def r2_flows(self, node: Node, groups: tuple[Any, ...], ivr: IvrConfig) -> None:
        """The flows the trunk groups' numbers name exist; a two-stage number's collects digits."""
        from voiceserver.config.r2 import check_flows

        def collects(flow: str) -> bool:
            start = ivr.flows[flow].start
            menu = ivr.menus.get(start.menu) if isinstance(start, SubmenuAction) else None
            return menu is not None and menu.input_store is not None
        check_flows(node, groups, set(ivr.flows), collects)

    def r2_roles(self, r: Node, roles: ChannelRoles, groups: tuple[Any, ...]) -> ChannelRoles:
        """E1 R2 trunk groups are trunks: inbound (unless direction = "out") and an outbound
        hunt group of the group's name (unless direction = "in"), as if [channels] said so."""
        inbound = list(roles.inbound)
        outbound = dict(roles.outbound)
        agents = set(roles.agents)
        node = r.table("r2").table("groups")
        for g in groups:
            for ref in g.channels:
                if ref in agents:
                    self.errs.add(node.table(g.name).error(
                        "channels", f"channel {ref[0]}:{ref[1]} is both an agent phone and an E1 trunk"))
            if g.direction != "out":
                inbound += [ref for ref in g.channels if ref not in inbound]
            if g.direction != "in":
                if g.name in outbound:
                    self.errs.add(node.error(g.name, f"'{g.name}' is also a group in [channels.outbound]"))
                outbound[g.name] = g.channels
        return replace(roles, inbound=tuple(inbound), outbound=MappingProxyType(outbound))

    # -- [prompts] / [api] ---------------------------------------------------
    def prompts(self, p: Node) -> PromptSettings:
        p.check_keys({"directory", "default_lang", "languages"})
        directory = None
        if "directory" in p:
            directory = os.path.join(self.dir, p.get_str("directory"))
            if not os.path.isdir(directory):
                raise p.error("directory", f"prompt directory {directory} does not exist")
        languages = tuple(p.get_list("languages", ["zh", "en"], item=str))
        if not languages:
            raise p.error("languages", "at least one language is needed")
        default = p.get_str("default_lang", languages[0])
        if default not in languages:
            raise p.error("default_lang", f"'{default}' is not one of languages "
                                          f"({', '.join(languages)})")
        return PromptSettings(directory, default, languages)

    def api(self, a: Node) -> ApiSettings:
        return parse_api(a, self.dir)

    # -- [ivr] -------------------------------------------------------------
    def ivr(self, node: Node, prompts: PromptSettings, channels: ChannelRoles | None) -> IvrConfig:
        node.check_keys({"default_flow", "flows", "menus", "actions", "tables"})
        self.channels_roles = channels
        menus_node, actions_node = node.table("menus"), node.table("actions")
        flows_node = node.table("flows", required=True)
        self.menu_names = set(menus_node.keys())
        self.action_names = set(actions_node.keys())
        for name in self.menu_names & self.action_names:
            raise actions_node.error(name, f"'{name}' is both a menu and an action: "
                                           f"names must be unique")
        for table in (menus_node, actions_node, flows_node):
            for name in table.keys():
                if not _NAME.match(name):
                    raise table.error(name, f"name {name!r}: use letters, digits, _ and - "
                                            f"(starting with a letter)")
        self.tables_node = node.table("tables")
        tables = self.tables(self.tables_node)
        self.table_fields = {f for rows in tables.values() for row in rows.values() for f in row}
        self.stores: set[str] = set()
        for name in menus_node.keys():
            inp = menus_node.table(name).get("input")
            if isinstance(inp, dict) and isinstance(inp.get("store"), str):
                self.stores.add(inp["store"])

        errs = ErrorCollector()    # each menu, action and flow on its own: all errors at once
        menus = {name: m for name in menus_node.keys()
                 if (m := errs.attempt(self._menu_named, menus_node, name)) is not None}
        actions = {name: a for name in actions_node.keys()
                   if (a := errs.attempt(self.action, actions_node, name, in_menu=True)) is not None}
        flows: dict[str, Flow] = {}

        def flow(name: str) -> Flow:
            f = flows_node.table(name)
            f.check_keys({"start", "lang"})
            start = self.action(f, "start", in_menu=False)
            lang = self.lang(f, "lang") or prompts.default_lang
            return Flow(name, start, lang)

        for name in flows_node.keys():
            if (fl := errs.attempt(flow, name)) is not None:
                flows[name] = fl
        if not flows_node.keys():
            errs.add(flows_node.error(None, "no flows defined"))
        for n, key, var in self.var_uses:
            if var not in BUILTIN_VARS and var not in self.stores and var not in self.table_fields:
                known = set(BUILTIN_VARS) | self.stores | self.table_fields
                errs.add(n.error(key, f"variable ${var} is never set{_suggest(var, known)}"))
        errs.check()
        ro = MappingProxyType
        return IvrConfig(flows=ro(flows), menus=ro(menus), actions=ro(actions),
                         tables=ro({t: ro({k: ro(row) for k, row in rows.items()})
                                    for t, rows in tables.items()}),
                         default_lang=prompts.default_lang)

    def tables(self, node: Node) -> dict[str, dict[str, dict[str, str]]]:
        out: dict[str, dict[str, dict[str, str]]] = {}
        for tname in node.keys():
            t = node.table(tname)
            rows: dict[str, dict[str, str]] = {}
            for key in t.keys():
                row = t.table(key)
                fields: dict[str, str] = {}
                for f in row.keys():
                    v = row.get(f)
                    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                        raise row.error(f, "table fields are strings or numbers")
                    fields[f] = str(v)
                rows[key] = fields
            out[tname] = rows
        return out

    def lang(self, node: Node, key: str) -> str | None:
        if key not in node:
            return None
        lang = node.get_str(key)
        if lang not in self.languages:
            raise node.error(key, f"language '{lang}' is not in prompts.languages "
                                  f"({', '.join(self.languages)}){_suggest(lang, self.languages)}")
        return lang

    def _menu_named(self, menus: Node, name: str) -> Menu:
        return self.menu(menus.table(name))

    def menu(self, m: Node) -> Menu:
        m.check_keys({"greeting", "invalid", "timeout", "retries", "fallback", "options", "input",
                      "barge_in", "clear_digits", "max_digits", "min_digits", "terminators",
                      "first_timeout", "inter_timeout", "total_timeout", "valid"})
        name = m.keypath[-1]
        assert isinstance(name, str)
        if ("options" in m) == ("input" in m):
            raise m.error(None, "a menu needs either 'options' (choose by key) or 'input' "
                                "(type a number), not " + ("both" if "options" in m else "neither"))
        greeting = self.items(m, "greeting", required=True)
        options: Mapping[str, Action] | None = None
        store = then = None
        secret = False
        if "options" in m:
            o = m.table("options")
            if not o.keys():
                raise m.error("options", "no options")
            options = {}
            for key in o.keys():
                if not key or any(c not in DTMF_DIGITS for c in key):
                    raise o.error(key, f"option key {key!r} is not DTMF keys ({DTMF_DIGITS})")
                options[key] = self.action(o, key, in_menu=True)
            options = MappingProxyType(options)
        else:
            i = m.table("input")
            i.check_keys({"store", "then", "secret"})
            store = i.get_str("store")
            secret = i.get_bool("secret", False)   # masked wherever it leaves the IVR
            if not _NAME.match(store) or store in BUILTIN_VARS:
                raise i.error("store", f"variable name {store!r}: use letters, digits, _ "
                                       f"(and not {' or '.join(BUILTIN_VARS)})")
            then = self.action(i, "then", in_menu=True)
        collect = self.collect_spec(m, options)
        fallback = self.action(m, "fallback", in_menu=True) if "fallback" in m else HangupAction()
        return Menu(name, greeting, collect,
                    invalid=self.items(m, "invalid"), timeout=self.items(m, "timeout"),
                    retries=m.get_int("retries", 2, min=0, max=20), fallback=fallback,
                    options=options, input_store=store, input_then=then,
                    clear_digits=m.get_bool("clear_digits", False), secret=secret)

    def collect_spec(self, m: Node, options: Mapping[str, Action] | None) -> CollectSpec:
        longest = max((len(k) for k in options), default=1) if options else 1
        max_digits = m.get_int("max_digits", longest if options else 20, min=1, max=64)
        if options and max_digits < longest:
            raise m.error("max_digits", f"{max_digits} is shorter than option "
                                        f"'{max(options, key=len)}'")
        min_digits = m.get_int("min_digits", 1, min=0, max=max_digits)
        terminators = m.get_str("terminators", "" if options else "#")
        for c in terminators:
            if c not in DTMF_DIGITS:
                raise m.error("terminators", f"{c!r} is not a DTMF key ({DTMF_DIGITS})")
        if options:
            clash = [k for k in options if any(c in terminators for c in k)]
            if clash:
                raise m.error("terminators", f"option '{clash[0]}' uses a terminator key")
        valid = m.get_str("valid", None)
        if valid is not None:
            try:
                re.compile(valid)
            except re.error as exc:
                raise m.error("valid", f"bad regular expression: {exc}") from None
        return CollectSpec(
            max_digits=max_digits, min_digits=min_digits, terminators=terminators,
            first_timeout=m.get_int("first_timeout", 5000, min=0),
            inter_timeout=m.get_int("inter_timeout", 3000, min=0),
            total_timeout=m.get_int("total_timeout", 0, min=0),
            valid=valid, choices=tuple(options) if options else (),
            barge_in=m.get_bool("barge_in", True))

    # -- play items ------------------------------------------------------
    def items(self, node: Node, key: str, required: bool = False) -> tuple[PlayItem, ...]:
        if key not in node:
            if required:
                raise node.error(key, "missing (a list of prompts, may be empty: [])")
            return ()
        value = node.get(key)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise node.error(key, "expected a list of prompt names and say items")
        out: list[PlayItem] = []
        for i, v in enumerate(value):
            where = (key, i)
            if isinstance(v, str):
                out.append(Prompt(v))
                self.use_prompt(v, node, where)
            elif isinstance(v, dict):
                item = Node(node.config, node.keypath + where, v)
                if "say" in item:
                    item.check_keys({"say", "value", "lang"})
                    kind = item.get_str("say")
                    if kind not in SAY_KINDS or not _say_function_exists(kind):
                        raise item.error("say", f"unknown say function '{kind}'"
                                                f"{_suggest(kind, SAY_KINDS)}")
                    val = item.get("value")
                    if isinstance(val, (int, float)) and not isinstance(val, bool):
                        val = str(val)
                    if not isinstance(val, str):
                        raise item.error("value", "expected a literal or $variable")
                    if val.startswith("$"):
                        self.var_uses.append((item, "value", val[1:]))
                    else:
                        self.check_say_literal(item, kind, val)
                    out.append(Say(kind, val, self.lang(item, "lang")))
                else:
                    item.check_keys({"prompt", "lang"})
                    name = item.get_str("prompt")
                    self.use_prompt(name, item, "prompt")
                    out.append(Prompt(name, self.lang(item, "lang")))
            else:
                raise node.error(where, "expected a prompt name, {prompt=..., lang=...} "
                                        "or {say=..., value=...}")
        return tuple(out)

    def check_say_literal(self, item: Node, kind: str, value: str) -> None:
        """A literal value must be sayable in every language (saynumber's own check)."""
        try:
            mod = importlib.import_module("voiceserver.ivr.saynumber")
        except ImportError:
            return
        for lang in self.languages:
            if lang not in getattr(mod, "LANGUAGES", (lang,)):
                continue
            try:
                getattr(mod, f"say_{kind}")(value, lang)
            except (ValueError, TypeError) as exc:
                raise item.error("value", f"say_{kind} cannot say {value!r}: {exc}") from None

    def use_prompt(self, name: str, node: Node, key: Any) -> None:
        if not name or "/" in name or name.startswith("."):
            raise node.error(key, f"bad prompt name {name!r}")
        sub = key if isinstance(key, tuple) else (key,)
        self.prompt_uses.setdefault(name, []).append(format_key(node.keypath + sub))

    # -- actions ---------------------------------------------------------
    def action(self, node: Node, key: str, *, in_menu: bool) -> Action:
        """Parse the action at node[key]: a menu/action name, or a table with 'action'."""
        value = node.get(key)
        if isinstance(value, str):
            return self.reference(node, key, value)
        if not isinstance(value, dict):
            raise node.error(key, "expected an action: a menu name or "
                                  "{ action = \"...\", ... }")
        a = Node(node.config, node.keypath + (key,), value)
        kind = a.get_str("action")
        if kind not in ACTIONS:
            raise node.error(key, f"unknown action '{kind}'{_suggest(kind, ACTIONS)}")
        lang = self.lang(a, "lang")
        if kind == "submenu":
            a.check_keys({"action", "menu", "lang"})
            target = a.get_str("menu")
            if target not in self.menu_names:
                raise a.error("menu", f"no such menu '{target}'{_suggest(target, self.menu_names)}")
            return SubmenuAction(target, lang)
        if kind == "play":
            a.check_keys({"action", "prompts", "then", "barge_in", "lang"})
            items = self.items(a, "prompts", required=True)
            if not items:
                raise a.error("prompts", "nothing to play")
            if not in_menu and "then" not in a:
                raise a.error(None, "a play outside a menu needs 'then' (there is no menu to "
                                    "return to)")
            then = self.action(a, "then", in_menu=in_menu) if "then" in a else None
            return PlayAction(items, then, a.get_bool("barge_in", True), lang)
        if kind == "lookup":
            a.check_keys({"action", "table", "key", "found", "missing", "lang"})
            table = a.get_str("table")
            tables = set(self.tables_node.keys())
            if table not in tables:
                raise a.error("table", f"no such table '{table}'{_suggest(table, tables)}")
            var = a.get_str("key")
            self.var_uses.append((a, "key", var))
            return LookupAction(table, var, self.action(a, "found", in_menu=in_menu),
                                self.action(a, "missing", in_menu=in_menu), lang)
        if kind == "queue":
            a.check_keys({"action", "queue", "lang"})
            return QueueAction(self.name(a, "queue"), lang)
        if kind == "voicemail":
            a.check_keys({"action", "mailbox", "lang"})
            return VoicemailAction(self.name(a, "mailbox", digits_ok=True), lang)
        if kind == "transfer":
            a.check_keys({"action", "number", "trunk", "lang"})
            number = a.get_str("number")
            if not re.fullmatch(r"[0-9*#]+", number):
                raise a.error("number", f"expected DTMF digits to dial, got {number!r}")
            trunk = a.get_str("trunk")
            groups = set(self.channels_roles.outbound) if self.channels_roles else {trunk}
            if trunk not in groups:   # (no [channels] to check against: that error is reported)
                raise a.error("trunk", f"no outbound trunk group '{trunk}' in "
                                       f"[channels.outbound]{_suggest(trunk, groups)}")
            return TransferAction(number, trunk, lang)
        if kind == "hangup":
            a.check_keys({"action", "prompts", "lang"})
            return HangupAction(self.items(a, "prompts"), lang)
        # repeat
        a.check_keys({"action", "lang"})
        if not in_menu:
            raise node.error(key, "'repeat' needs a menu to repeat; a flow starts outside one")
        return RepeatAction(lang)

    def reference(self, node: Node, key: str, name: str) -> Action:
        if name in self.menu_names:
            return SubmenuAction(name)
        if name in self.action_names:
            return RefAction(name)
        raise node.error(key, f"no menu or action named '{name}'"
                              f"{_suggest(name, self.menu_names | self.action_names)}")

    def name(self, node: Node, key: str, digits_ok: bool = False) -> str:
        value = node.get(key)
        if digits_ok and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise node.error(key, f"expected a name (letters, digits, _ -), got {value!r}")
        return value

    # -- reachability ----------------------------------------------------
    def reachability(self, ivr: IvrConfig, schedule: Schedule | None, default_flow: str | None,
                     ivr_node: Node) -> None:
        used_flows = {default_flow} if default_flow else set()
        if schedule is not None:
            used_flows |= {schedule.day_flow, schedule.night_flow}
        flows_node = ivr_node.table("flows")
        for name in ivr.flows:
            if name not in used_flows:
                self.warn(flows_node, name, f"flow '{name}' is never used (not the default "
                                            f"flow nor a schedule flow)")
        seen_menus: set[str] = set()
        seen_actions: set[str] = set()
        stack: list[Action] = [ivr.flows[f].start for f in used_flows if f in ivr.flows]
        while stack:
            a = stack.pop()
            if isinstance(a, SubmenuAction):
                if a.menu not in seen_menus:
                    seen_menus.add(a.menu)
                    m = ivr.menus[a.menu]
                    stack += list((m.options or {}).values()) + [m.fallback]
                    if m.input_then is not None:
                        stack.append(m.input_then)
            elif isinstance(a, RefAction):
                if a.name not in seen_actions:
                    seen_actions.add(a.name)
                    stack.append(ivr.actions[a.name])
            elif isinstance(a, PlayAction) and a.then is not None:
                stack.append(a.then)
            elif isinstance(a, LookupAction):
                stack += [a.found, a.missing]
        menus_node, actions_node = ivr_node.table("menus"), ivr_node.table("actions")
        for name in ivr.menus:
            if name not in seen_menus:
                self.warn(menus_node, name, f"menu '{name}' is unreachable from any used flow")
        for name in ivr.actions:
            if name not in seen_actions:
                self.warn(actions_node, name, f"action '{name}' is never used")

    def warn(self, node: Node, key: str, message: str) -> None:
        self.warnings.append(str(node.error(key, message)))

    # -- [schedule] --------------------------------------------------------
    def schedule(self, s: Node, ivr: IvrConfig) -> Schedule:
        s.check_keys({"timezone", "day_flow", "night_flow", "hours", "holidays", "workdays",
                      "workday_as"})
        flows = {}
        for key in ("day_flow", "night_flow"):
            name = s.get_str(key)
            if name not in ivr.flows:
                raise s.error(key, f"no such flow '{name}'{_suggest(name, set(ivr.flows))}")
            flows[key] = name
        tz = s.get_str("timezone", "Asia/Shanghai")
        try:
            from zoneinfo import ZoneInfo
            ZoneInfo(tz)
        except (KeyError, ValueError):
            raise s.error("timezone", f"unknown timezone {tz!r} (an IANA name such as "
                                      f"'Asia/Shanghai')") from None
        hours: list[TimeRange] = []
        for h in s.tables("hours", required=True):
            h.check_keys({"days", "from", "to"})
            days_v = h.get("days")
            if not isinstance(days_v, (str, list)):
                raise h.error("days", "expected days like \"mon-fri\" or [\"sat\", \"sun\"]")
            try:
                days = parse_days(days_v)
            except ValueError as exc:
                raise h.error("days", str(exc)) from None
            try:
                start = parse_hhmm(h.get_str("from"))
            except ValueError as exc:
                raise h.error("from", str(exc)) from None
            try:
                end = parse_hhmm(h.get_str("to"), allow_24=True)
            except ValueError as exc:
                raise h.error("to", str(exc)) from None
            if start == end:
                raise h.error("to", "an empty range (from == to)")
            hours.append(TimeRange(days, start, end))
        workday_as = s.get_str("workday_as", "mon", choices=DAY_NAMES)
        return Schedule(tuple(hours), flows["day_flow"], flows["night_flow"], tz,
                        parse_dates(s, "holidays"), parse_dates(s, "workdays"),
                        DAY_NAMES.index(workday_as))

    # -- [blacklist] -------------------------------------------------------
    def blacklist(self, b: Node, plan: NumberingPlan) -> Blacklist:
        b.check_keys({"entries", "numbers"})
        entries: list[BlacklistEntry] = []
        errs = ErrorCollector()
        for e in b.tables("entries"):
            entry = errs.attempt(self.blacklist_entry, e, plan)
            if entry is not None:
                entries.append(entry)
        listed: list[str] = []
        written: dict[str, str] = {}
        for i, number in enumerate(b.get_list("numbers", [], item=str)):
            pattern = errs.attempt(self.blacklist_number, b, i, number, plan)
            if pattern is not None:
                listed.append(pattern)
                if pattern != number:
                    written.setdefault(pattern, number)
        errs.check()
        return Blacklist(tuple(entries), plan, PatternIndex.of(listed), written)

    def blacklist_number(self, b: Node, i: int, number: str, plan: NumberingPlan) -> str:
        """One of [blacklist] numbers, normalised: a number, or a prefix ending in ``*``."""
        head = number.strip()
        is_prefix = head.endswith("*")
        head = head[:-1] if is_prefix else head
        try:
            norm = normalize_number(head, plan, prefix=is_prefix)
        except ValueError as exc:
            raise b.error(("numbers", i), f"{exc} (a number, or a prefix such as \"400*\")") \
                from None
        if not norm:
            raise b.error(("numbers", i), "empty number")
        return norm + "*" if is_prefix else norm

    def blacklist_entry(self, e: Node, plan: NumberingPlan) -> BlacklistEntry:
        e.check_keys({"number", "match", "action", "prompts", "note"})
        number = e.get_str("number")
        match = Match(e.get_str("match", "exact", choices=[m.value for m in Match]))
        try:
            norm = normalize_number(number, plan, prefix=match is Match.PREFIX)
        except ValueError as exc:
            raise e.error("number", str(exc)) from None
        if not norm:
            raise e.error("number", "empty number")
        action = BlockAction(e.get_str("action", "reject",
                                       choices=[a.value for a in BlockAction]))
        prompts = tuple(e.get_list("prompts", [], item=str))
        for i, p in enumerate(prompts):
            self.use_prompt(p, e, ("prompts", i))
        if action is BlockAction.PLAY and not prompts:
            raise e.error("prompts", "action 'play' needs prompts to play")
        if action is BlockAction.REJECT and prompts:
            raise e.error("prompts", "a rejected call is not answered: nothing is played "
                                     "(use action = \"play\")")
        return BlacklistEntry(number, norm, match, action, prompts, e.get_str("note", ""),
                              f"{self.file}:{e.line_of('number')}")



# ------------------------------------------------- [agents] [queues] [voicemail]
_SECONDS = ("wrapup",)
_QUEUE_KEYS = {"strategy", "tiebreak", "members", "skill", "min_skill", "tier_wait",
               "ring_timeout", "retry", "progressive", "max_wait", "timeout", "empty",
               "exit_key", "exit", "join_empty", "leave_when_empty", "moh", "announce_first",
               "announce_every", "announce_position", "announce_wait", "priority", "vip",
               "vip_priority", "weight", "mailbox", "seed"}
# keys of [queues] that are not queues
_QUEUE_SETTINGS = ("trunk_hunt", "glare_retries", "feature_codes", "hold_recall", "external_routing",
                   "routing_deadline")
_ANNOUNCE_PROMPTS = ("you_are_caller_number", "in_the_queue", "expected_wait",
                     "less_than_a_minute", "minute", "minutes", "hour", "hours")


def _ms(node: Node, key: str, default: float, *, min: float = 0, max: float | None = None) -> int:
    """A time in seconds in the file (int or float), in ms for the ACD."""
    return int(round(node.get_float(key, default, min=min, max=max) * 1000))


def _acd_sections(ld: _Loader, root: Node, channels: ChannelRoles, plan: NumberingPlan,
                  ivr: IvrConfig | None) -> Any:
    """[agents], [queues] and [voicemail] -> voiceserver.acd.distributor.AcdSettings (or ConfigError)."""
    from voiceserver.acd.agents import AgentSpec
    from voiceserver.acd.distributor import AcdSettings, Mailbox, VoicemailSpec
    from voiceserver.acd.hunt import canonical_method
    from voiceserver.acd.queues import MAX_PENALTY, MAX_TIER, Member, QueueSpec, Target
    from voiceserver.acd.strategies import STRATEGIES, canonical

    groups = set(channels.outbound)
    agent_phones = set(channels.agents)

    # -- [voicemail] ------------------------------------------------------
    vm = root.table("voicemail")
    vm.check_keys({"greeting", "saved", "max_length", "silence", "terminators", "mailboxes"})
    greeting = tuple(vm.get_list("greeting", ["leave_message"], item=str))
    saved = tuple(vm.get_list("saved", ["message_saved", "goodbye"], item=str))
    for key, names in (("greeting", greeting), ("saved", saved)):
        for i, p in enumerate(names):
            ld.use_prompt(p, vm, (key, i))
    terminators = vm.get_str("terminators", "#")
    if any(c not in DTMF_DIGITS for c in terminators):
        raise vm.error("terminators", f"expected DTMF keys, got {terminators!r}")
    boxes_node = vm.table("mailboxes")
    boxes: dict[str, Mailbox] = {}
    for name in boxes_node.keys():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise boxes_node.error(name, f"mailbox name {name!r}: letters, digits, _ and -")
        b = boxes_node.table(name)
        b.check_keys({"greeting", "owner"})
        g = tuple(b.get_list("greeting", [], item=str))
        for i, p in enumerate(g):
            ld.use_prompt(p, b, ("greeting", i))
        boxes[name] = Mailbox(name, g, b.get_str("owner", "") or None)
    strict = bool(boxes)
    max_len = _ms(vm, "max_length", 120)
    if max_len <= 0:
        raise vm.error("max_length", "a message needs a positive max_length (seconds)")
    vmspec = VoicemailSpec(greeting, saved, max_len, _ms(vm, "silence", 5), terminators,
                           MappingProxyType(boxes), strict)

    def mailbox(node: Node, key: str) -> str | None:
        if key not in node:
            return None
        name = ld.name(node, key, digits_ok=True)
        if strict and name not in boxes:
            raise node.error(key, f"no mailbox '{name}' in [voicemail.mailboxes]"
                                  f"{_suggest(name, set(boxes))}")
        return name

    # -- [agents] ---------------------------------------------------------
    agents_node = root.table("agents")
    agents: list[AgentSpec] = []
    phones: dict[tuple[str, int], str] = {}
    errs = ErrorCollector()   # each agent, queue and target on its own: all errors at once

    def one_agent(name: str) -> None:
        a = agents_node.table(name)
        problem = agent_id_problem(name)
        if problem is not None:
            raise agents_node.error(name, problem)
        a.check_keys({"phone", "number", "trunk", "skills", "wrapup", "max_misses", "weight",
                      "mailbox", "start"})
        phone = None
        if "phone" in a:
            if "number" in a:
                raise a.error("number", "an agent has a phone on the card or an external "
                                        "number, not both")
            ref = a.get_str("phone")
            try:
                phone = parse_channel_ref(ref, ld.board_names[0] if len(ld.board_names) == 1 else None)
            except ChannelRefError as exc:
                raise a.error("phone", str(exc)) from None
            board, chan = phone
            if phone not in agent_phones:
                raise a.error("phone", f"{board}:{chan} is not an agent phone "
                                       f"(not in [channels] agents)")
            if phone in phones:
                raise a.error("phone", f"{board}:{chan} is already agent {phones[phone]}'s phone")
            phones[phone] = name
        elif "number" in a:
            number = a.get_str("number")
            if not re.fullmatch(r"[0-9*#]+", number):
                raise a.error("number", f"expected DTMF digits to dial, got {number!r}")
            trunk = a.get_str("trunk")
            if trunk not in groups:
                raise a.error("trunk", f"no outbound trunk group '{trunk}' in "
                                       f"[channels.outbound]{_suggest(trunk, groups)}")
        else:
            raise a.error(None, "how is this agent reached? give phone = \"BOARD:CHANNEL\" "
                                "or number = \"...\" with trunk = \"GROUP\"")
        skills_node = a.table("skills")
        skills = {s: skills_node.get_int(s, min=0, max=100) for s in skills_node.keys()}
        agents.append(AgentSpec(
            name, phone=phone, number=a.get_str("number") if "number" in a else None,
            trunk=a.get_str("trunk") if "number" in a else None,
            skills=MappingProxyType(skills), wrapup_ms=_ms(a, "wrapup", 0),
            max_misses=a.get_int("max_misses", 3, min=0), weight=a.get_int("weight", 1, min=1),
            mailbox=mailbox(a, "mailbox"),
            start=a.get_str("start", "ready", choices=("ready", "not_ready", "logged_out"))))

    for name in agents_node.keys():
        errs.attempt(one_agent, name)
    agent_names = set(agents_node.keys())   # a bad agent's errors are its own, not its queues'

    # -- [queues] ---------------------------------------------------------
    qnode = root.table("queues")
    hunt: dict[str, str] = {}
    th = qnode.table("trunk_hunt")
    for group in th.keys():
        if group not in groups:
            raise th.error(group, f"no outbound trunk group '{group}' in [channels.outbound]"
                                  f"{_suggest(group, groups)}")
        try:
            hunt[group] = canonical_method(th.get_str(group))
        except ValueError as exc:
            raise th.error(group, str(exc)) from None
    glare = qnode.get_int("glare_retries", 2, min=0, max=30)
    recall_ms = _ms(qnode, "hold_recall", 30, min=1, max=600)
    external_routing = qnode.get_bool("external_routing", False)
    routing_deadline_ms = _ms(qnode, "routing_deadline", 2, min=0.1, max=60)
    from voiceserver.acd.distributor import FEATURE_ACTIONS, FEATURE_CODES
    codes = dict(FEATURE_CODES)
    fc = qnode.table("feature_codes")
    for action in fc.keys():
        if action not in FEATURE_ACTIONS:
            raise fc.error(action, f"unknown feature {action!r} (known: {', '.join(FEATURE_ACTIONS)})")
        code = fc.get_str(action)
        if not re.fullmatch(r"[*#0-9]{2,8}", code) or code[0] not in "*#":
            raise fc.error(action, f"feature code {code!r}: * or # then digits, 2 to 8 keys")
        codes[action] = code
    for x in codes.values():   # acted on at the last key: no code may begin another
        if any(y != x and y.startswith(x) for y in codes.values()) or \
                list(codes.values()).count(x) > 1:
            raise qnode.error("feature_codes", f"two features share a code, or one code "
                                               f"begins another: {codes}")
    queue_keys = [k for k in qnode.keys() if k not in _QUEUE_SETTINGS]
    for n in queue_keys:
        if not isinstance(qnode.get(n), dict):
            raise qnode.error(n, f"expected a queue table [queues.{n}] (settings of [queues] "
                                 f"are {', '.join(_QUEUE_SETTINGS)})")
        if not _NAME.match(n):
            raise qnode.error(n, f"queue name {n!r}: use letters, digits, _ and - "
                                 f"(starting with a letter)")
    entry_names = {n for n in queue_keys if "into" in qnode.table(n)}
    queue_names = set(queue_keys) - entry_names

    def target(node: Node, key: str, default: Target) -> Target:
        if key not in node:
            return default
        v = node.get(key)
        if v == "hangup":
            return Target("hangup")
        if not isinstance(v, dict) or len(v) not in (1, 2):
            raise node.error(key, "expected \"hangup\", { queue = \"NAME\" }, "
                                  "{ voicemail = \"BOX\" | \"queue\" } or "
                                  "{ number = \"DIGITS\", trunk = \"GROUP\" }")
        t = Node(node.config, node.keypath + (key,), v)
        if "queue" in t:
            t.check_keys({"queue"})
            q = t.get_str("queue")
            if q not in queue_names:
                raise t.error("queue", f"no queue '{q}'{_suggest(q, queue_names)}")
            return Target("queue", q)
        if "voicemail" in t:
            t.check_keys({"voicemail"})
            box = t.get_str("voicemail")
            if box != "queue" and strict and box not in boxes:
                raise t.error("voicemail", f"no mailbox '{box}' in [voicemail.mailboxes]"
                                           f"{_suggest(box, set(boxes))}")
            if box == "queue" and "mailbox" not in node:
                raise t.error("voicemail", "voicemail = \"queue\" needs the queue's mailbox")
            return Target("voicemail", box)
        if "number" in t:
            t.check_keys({"number", "trunk"})
            number = t.get_str("number")
            if not re.fullmatch(r"[0-9*#]+", number):
                raise t.error("number", f"expected DTMF digits to dial, got {number!r}")
            trunk = t.get_str("trunk")
            if trunk not in groups:
                raise t.error("trunk", f"no outbound trunk group '{trunk}' in "
                                       f"[channels.outbound]{_suggest(trunk, groups)}")
            return Target("number", number=number, trunk=trunk)
        raise node.error(key, f"unknown overflow target {v!r}: queue, voicemail, number "
                              f"or \"hangup\"")

    queues: list[QueueSpec] = []
    entries: dict[str, tuple[str, int | None]] = {}

    def one_queue(n: str) -> None:
        q = qnode.table(n)
        if n in entry_names:
            q.check_keys({"into", "priority"})
            into = q.get_str("into")
            if into not in queue_names:
                raise q.error("into", f"no queue '{into}'{_suggest(into, queue_names)}")
            entries[n] = (into, q.get_int("priority") if "priority" in q else None)
            return
        q.check_keys(_QUEUE_KEYS)
        strategies = set(STRATEGIES)
        try:
            strategy = canonical(q.get_str("strategy", "longest-idle"))
        except ValueError:
            s = q.get_str("strategy")
            raise q.error("strategy", f"unknown strategy '{s}'{_suggest(s, strategies)}") from None
        try:
            tiebreak = canonical(q.get_str("tiebreak", "longest-idle"))
        except ValueError as exc:
            raise q.error("tiebreak", str(exc)) from None
        if tiebreak in ("ring-all", "ring-progressively", "skill-based"):
            raise q.error("tiebreak", f"'{tiebreak}' cannot break ties; use a one-at-a-time "
                                      f"strategy such as longest-idle")
        members: list[Member] = []
        for i, m in enumerate(q.get_list("members")):
            plain = agent_id_text(m)
            if plain is not None:
                agent, tier, penalty = plain, 1, 0
            elif isinstance(m, dict):
                mn = Node(q.config, q.keypath + ("members", i), m)
                mn.check_keys({"agent", "tier", "penalty"})
                named = agent_id_text(mn.get("agent"))
                if named is None:
                    raise mn.error("agent", "expected an agent id: \"1001\", 1001 or \"alice\"")
                agent = named
                tier = mn.get_int("tier", 1, min=1, max=MAX_TIER)
                penalty = mn.get_int("penalty", 0, min=0, max=MAX_PENALTY)
            else:
                raise q.error(("members", i), "expected an agent id or "
                                              "{ agent = \"ID\", tier = N, penalty = N }")
            if agent not in agent_names:
                raise q.error(("members", i), f"no agent '{agent}' in [agents]"
                                              f"{_suggest(agent, agent_names)}")
            if any(x.agent == agent for x in members):
                raise q.error(("members", i), f"agent '{agent}' is listed twice")
            members.append(Member(agent, tier, penalty))
        if not members:
            raise q.error("members", "a queue needs at least one member")
        skill = q.get_str("skill") if "skill" in q else None
        if strategy == "skill-based" and skill is None:
            raise q.error("strategy", "skill-based needs skill = \"NAME\"")
        exit_key = q.get_str("exit_key") if "exit_key" in q else None
        if exit_key is not None and (len(exit_key) != 1 or exit_key not in DTMF_DIGITS):
            raise q.error("exit_key", f"expected one DTMF key, got {exit_key!r}")
        if "exit" in q and exit_key is None:
            raise q.error("exit", "an exit target needs exit_key")
        vip: set[str] = set()
        for i, number in enumerate(q.get_list("vip", [], item=str)):
            try:
                vip.add(normalize_number(number, plan))
            except ValueError as exc:
                raise q.error(("vip", i), str(exc)) from None
        ring_timeout = _ms(q, "ring_timeout", 15)
        if ring_timeout <= 0:
            raise q.error("ring_timeout", "must be more than 0 seconds")
        announce = (q.get_float("announce_first", 0, min=0) > 0)
        if announce:
            for p in _ANNOUNCE_PROMPTS:
                ld.use_prompt(p, q, "announce_first")
        queues.append(QueueSpec(
            n, tuple(members), strategy=strategy, tiebreak=tiebreak, skill=skill,
            min_skill=q.get_int("min_skill", 0, min=0, max=100),
            tier_wait_ms=_ms(q, "tier_wait", 30), ring_timeout_ms=ring_timeout,
            retry_ms=_ms(q, "retry", 0), progressive_ms=_ms(q, "progressive", 5),
            max_wait_ms=_ms(q, "max_wait", 0), timeout_target=target(q, "timeout", Target("hangup")),
            empty_target=target(q, "empty", Target("hangup")), exit_key=exit_key,
            exit_target=target(q, "exit", Target("hangup")),
            join_empty=q.get_bool("join_empty", True),
            leave_when_empty=q.get_bool("leave_when_empty", False),
            moh=q.get_str("moh", "default"),
            announce_first_ms=_ms(q, "announce_first", 0),
            announce_every_ms=_ms(q, "announce_every", 0),
            announce_position=q.get_bool("announce_position", True),
            announce_wait=q.get_bool("announce_wait", True),
            priority=q.get_int("priority", 0), vip=frozenset(vip),
            vip_priority=q.get_int("vip_priority", 10), weight=q.get_int("weight", 0),
            mailbox=mailbox(q, "mailbox"), seed=q.get_int("seed", 0)))

    for n in queue_keys:
        errs.attempt(one_queue, n)
    errs.check()
    if agents_node.keys() and not queues:
        ld.warn(root, "agents", "agents are defined but no queue uses them")
    # Every queue the IVR sends calls to must exist (when the IVR itself loaded).
    ivr_node = root.table("ivr")
    known = queue_names | set(entries)
    for where, ivr_action in _ivr_actions(ivr) if ivr is not None else ():
        if isinstance(ivr_action, QueueAction) and ivr_action.queue not in known:
            raise ivr_node.error(where, f"the IVR queues calls to '{ivr_action.queue}', which is "
                                        f"not in [queues]{_suggest(ivr_action.queue, known)}")
        if isinstance(ivr_action, VoicemailAction) and strict and ivr_action.mailbox not in boxes:
            raise ivr_node.error(where, f"the IVR sends calls to mailbox '{ivr_action.mailbox}', "
                                        f"which is not in [voicemail.mailboxes]"
                                        f"{_suggest(ivr_action.mailbox, set(boxes))}")
    return AcdSettings(tuple(agents), tuple(queues), MappingProxyType(entries),
                       MappingProxyType(hunt), glare, vmspec, MappingProxyType(codes), recall_ms,
                       external_routing, routing_deadline_ms)


def _ivr_actions(ivr: IvrConfig) -> list[tuple[tuple[str, ...], Action]]:
    """Every action of the IVR with the key path (under [ivr]) it was written at."""
    out: list[tuple[tuple[str, ...], Action]] = []

    def walk(where: tuple[str, ...], a: Action | None) -> None:
        if a is None:
            return
        out.append((where, a))
        if isinstance(a, PlayAction):
            walk(where, a.then)
        elif isinstance(a, LookupAction):
            walk(where, a.found)
            walk(where, a.missing)

    for name, flow in ivr.flows.items():
        walk(("flows", name, "start"), flow.start)
    for name, menu in ivr.menus.items():
        for key, a in (menu.options or {}).items():
            walk(("menus", name, "options", key), a)
        walk(("menus", name, "fallback"), menu.fallback)
        walk(("menus", name, "input"), menu.input_then)
    for name, a in ivr.actions.items():
        walk(("actions", name), a)
    return out
