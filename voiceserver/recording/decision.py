"""What a recording decision is: the facts of a call, the checks made, the rule that decided.

These are the values `voiceserver.recording.rules` returns and `voiceboard
rules explain` prints; each carries the rule that made it (`RuleRef`: file,
line, key, name), so a decision can be explained long after it was made.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RuleRef:
    """Where a rule is written: ``rules.toml:12 exclude.agents`` (and its name, if it has one)."""

    file: str
    line: int | None
    key: str
    name: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        named = f" ({self.name})" if self.name and self.name != self.key else ""
        return f"{where} {self.key}{named}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "key": self.key, "name": self.name}


@dataclass(frozen=True)
class CallFacts:
    """What the server knows of a call. Channel = ``board:chan`` (span: the E1 span, if any)."""

    call_id: str
    direction: str = "inbound"
    board: str | None = None
    chan: int | None = None
    span: int | None = None
    caller: str | None = None
    called: str | None = None
    agent: str | None = None
    queue: str | None = None
    ivr_path: tuple[str, ...] = ()

    def channel_text(self) -> str:
        if self.board is None:
            return "(unknown)"
        return f"{self.board}:{self.chan}" + (f" (span {self.span})" if self.span is not None else "")

    def as_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "direction": self.direction, "board": self.board,
                "chan": self.chan, "span": self.span, "caller": self.caller,
                "called": self.called, "agent": self.agent, "queue": self.queue,
                "ivr_path": list(self.ivr_path)}


@dataclass(frozen=True)
class Check:
    """One step of the chain. verdict: record | no-record | pass | pending | skip | not reached."""

    stage: str
    verdict: str
    reason: str
    rule: RuleRef | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "verdict": self.verdict, "reason": self.reason,
                "rule": self.rule.as_dict() if self.rule else None}


@dataclass(frozen=True)
class Pending:
    """A selection that needs a fact not known at answer (queue, IVR branch); settled at keep."""

    stage: str                  # "queue" | "ivr"
    wanted: frozenset[str]
    rule: RuleRef


@dataclass(frozen=True)
class Decision:
    """Record this call or not, and how. ``rule``/``reason`` say which rule decided and why.

    ``stopped``: a recording stopped during the call (reload or changed
    fact excluded it); ``discard``: with ``stopped``, what was recorded
    before is discarded too (the rules now in force exclude it as well).
    """

    record: bool
    rule: RuleRef
    reason: str
    format: str = "wav-pcm16"
    layout: str = "stereo"
    max_seconds: float | None = None
    min_seconds: float = 0.0
    checks: tuple[Check, ...] = ()
    facts: CallFacts | None = None
    at: dt.datetime | None = None
    pending: tuple[Pending, ...] = ()
    stopped: bool = False
    discard: bool = False
    started_mid_call: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"record": self.record, "rule": self.rule.as_dict(), "reason": self.reason,
                "format": self.format, "layout": self.layout, "max_seconds": self.max_seconds,
                "min_seconds": self.min_seconds, "stopped": self.stopped, "discard": self.discard,
                "started_mid_call": self.started_mid_call,
                "pending": [{"stage": p.stage, "wanted": sorted(p.wanted), "rule": p.rule.as_dict()}
                            for p in self.pending],
                "checks": [c.as_dict() for c in self.checks],
                "facts": self.facts.as_dict() if self.facts else None,
                "at": self.at.isoformat() if self.at else None}


@dataclass(frozen=True)
class Keep:
    """Keep the recording at the end of the call or discard it, and why."""

    keep: bool
    rule: RuleRef
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"keep": self.keep, "rule": self.rule.as_dict(), "reason": self.reason}


@dataclass(frozen=True)
class RuleWarning:
    """A ``rules check`` warning: the rules load, but something in them looks wrong."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: key '{self.key}': {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "key": self.key, "message": self.message}
