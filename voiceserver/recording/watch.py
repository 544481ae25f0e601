"""Hot reload of recording rules, polled by the server, with an audit log.

The server calls ``await watcher.poll_async()`` every few seconds (the
file is read and validated in a worker thread, so a large file does not
hold up the server's loop) and ``watcher.reload(source="command")`` for an
operator's reload command (with the rules the config reload already loaded
off the loop).
A change is noticed by mtime + size, confirmed by the content hash (a
``touch`` is not a change), and the new file is loaded with the ``load``
function the server passes (``load_rules``, or its server-config loader).
A file that fails validation is rejected: the running rules stay, and
the error is returned for the log and the event bus. No inotify: polling
works the same on every filesystem and in tests.

Every reload attempt, applied or rejected, is one JSON line in the audit
log: when, which reload (sequence number and source), the file's hash
before and after, and what changed as a readable diff of the rule set
(``RecordingRules.describe()`` compared key by key).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from boarddrv.tomlconfig import ConfigError
from voiceserver.recording.rules import RecordingRules

__all__ = ["RulesWatcher", "ReloadEvent", "RuleChange", "diff_rules"]


@dataclass(frozen=True)
class RuleChange:
    """One difference between two rule sets: added, removed or changed ``key``."""

    change: str                   # "added" | "removed" | "changed"
    key: str
    before: str | None
    after: str | None

    def text(self) -> str:
        if self.change == "added":
            return f"added {self.key} = {self.after}"
        if self.change == "removed":
            return f"removed {self.key} (was {self.before})"
        return f"changed {self.key}: {self.before} -> {self.after}"

    def as_dict(self) -> dict[str, Any]:
        return {"change": self.change, "key": self.key, "before": self.before,
                "after": self.after, "text": self.text()}


def diff_rules(old: RecordingRules | None, new: RecordingRules) -> list[RuleChange]:
    """What changed from ``old`` to ``new``, rule by rule and setting by setting."""
    a = old.describe() if old is not None else {}
    b = new.describe()
    out: list[RuleChange] = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            out.append(RuleChange("added", key, None, b[key]))
        elif key not in b:
            out.append(RuleChange("removed", key, a[key], None))
        elif a[key] != b[key]:
            out.append(RuleChange("changed", key, a[key], b[key]))
    return out


@dataclass(frozen=True)
class ReloadEvent:
    """The outcome of one reload attempt (also the audit log line and the bus event)."""

    seq: int
    source: str                   # "file watch" | "command" | "start"
    file: str
    time: dt.datetime
    ok: bool
    hash_before: str
    hash_after: str
    changes: tuple[RuleChange, ...] = ()
    error: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "seq": self.seq, "source": self.source,
                "file": self.file, "result": "applied" if self.ok else "rejected",
                "hash_before": self.hash_before, "hash_after": self.hash_after,
                "changes": [c.as_dict() for c in self.changes], "error": self.error,
                "warnings": list(self.warnings)}

    def summary(self) -> str:
        if not self.ok:
            return f"recording rules reload #{self.seq} ({self.source}) rejected, " \
                   f"running rules kept: {self.error}"
        what = "; ".join(c.text() for c in self.changes) or "no rule changed"
        return f"recording rules reload #{self.seq} ({self.source}) applied: {what}"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RulesWatcher:
    """Polls one rules file; keeps the running rules when a new version does not load.

    ``load(path) -> RecordingRules`` raises ConfigError for a bad file.
    ``on_change(new, old, event)`` runs after a change is applied;
    ``on_error(error, event)`` after one is rejected. ``clock`` gives the
    audit timestamps (the server passes its simulated wall clock).
    """

    def __init__(self, path: str | os.PathLike[str],
                 load: Callable[[str], RecordingRules],
                 on_change: Callable[[RecordingRules, RecordingRules | None, ReloadEvent], None]
                 | None = None,
                 on_error: Callable[[ConfigError, ReloadEvent], None] | None = None, *,
                 audit_path: str | os.PathLike[str] | None = None,
                 clock: Callable[[], dt.datetime] = _utcnow,
                 current: RecordingRules | None = None) -> None:
        self.path = os.fspath(path)
        self._load = load
        self._on_change = on_change
        self._on_error = on_error
        self.audit_path = os.fspath(audit_path) if audit_path is not None else None
        self._clock = clock
        self.seq = 0
        self.current: RecordingRules | None = current
        self._stat: tuple[int, int] | None = None
        self._hash = ""           # hash of the file the running rules came from
        self._seen_hash = ""      # hash of the last version looked at (applied or rejected)
        self._looked = current is not None
        self._busy = asyncio.Lock()   # one poll_async at a time
        if current is not None:
            self._stat, raw = self._read()
            self._hash = self._seen_hash = hashlib.sha256(raw).hexdigest() if raw else ""

    def _read(self) -> tuple[tuple[int, int] | None, bytes | None]:
        try:
            st = os.stat(self.path)
            with open(self.path, "rb") as f:
                return (st.st_mtime_ns, st.st_size), f.read()
        except OSError:
            return None, None

    def poll(self) -> ReloadEvent | None:
        """Look at the file; reload if its content changed. None: nothing to do."""
        change = self._look()
        if change is None:
            return None
        return self._finish(*change, self._try_load())

    async def poll_async(self) -> ReloadEvent | None:
        """``poll`` for an event loop: reading, parsing and validating run in a worker thread.

        A large rules file takes a while to load; the loop (the server's
        control plane) keeps handling calls meanwhile. The result is applied
        (``on_change`` / ``on_error``, the audit line) back on the loop.
        """
        async with self._busy:
            change = await asyncio.to_thread(self._look)
            if change is None:
                return None
            result = await asyncio.to_thread(self._try_load)
            return self._finish(*change, result)

    def reload(self, source: str = "command",
               loaded: RecordingRules | ConfigError | None = None) -> ReloadEvent:
        """Reload now, even if the file looks unchanged (an operator's command).

        ``loaded``: the file's rules (or its error) already loaded by the
        caller (a config reload that read the rules file in a worker thread):
        used if they came from the file's present content, else it is loaded.
        """
        stat, raw = self._read()
        self._stat = stat
        digest = hashlib.sha256(raw).hexdigest() if raw is not None else ""
        if isinstance(loaded, RecordingRules) and loaded.source_hash != digest:
            loaded = None
        return self._finish(source, digest, loaded if loaded is not None else self._try_load())

    def _look(self) -> tuple[str, str] | None:
        """(source, digest) if the file changed since the last look; None if not."""
        try:
            st = os.stat(self.path)
            stat: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stat = None
        if stat == self._stat and self._looked:
            return None
        stat, raw = self._read()
        self._stat = stat
        digest = hashlib.sha256(raw).hexdigest() if raw is not None else ""
        if self._looked and digest == self._seen_hash:
            return None  # touched, or the same bad version as before
        self._seen_hash = digest
        self._looked = True
        return ("file watch" if self.current is not None else "start"), digest

    def _try_load(self) -> RecordingRules | ConfigError:
        try:
            return self._load(self.path)
        except ConfigError as exc:
            return exc

    def _finish(self, source: str, digest: str, result: RecordingRules | ConfigError
                ) -> ReloadEvent:
        """Apply a loaded version (or reject a bad one): the audit line and the callbacks."""
        self.seq += 1
        self._seen_hash = digest
        self._looked = True
        old = self.current
        if isinstance(result, ConfigError):
            ev = ReloadEvent(self.seq, source, self.path, self._clock(), False, self._hash,
                             digest, error=str(result))
            self._audit(ev)
            if self._on_error is not None:
                self._on_error(result, ev)
            return ev
        new = result
        ev = ReloadEvent(self.seq, source, self.path, self._clock(), True, self._hash, digest,
                         tuple(diff_rules(old, new)), warnings=tuple(str(w) for w in new.warnings))
        self.current = new
        self._hash = digest
        self._audit(ev)
        if self._on_change is not None:
            self._on_change(new, old, ev)
        return ev

    def removed(self, source: str, config_file: str) -> ReloadEvent:
        """The server config lost its [recording] section: nothing is recorded from now on.

        Audited like any reload, so the log shows when recording was switched off.
        """
        self.seq += 1
        ev = ReloadEvent(self.seq, source, config_file, self._clock(), True, self._hash, "",
                         (RuleChange("removed", "recording", f"the rules of {self.path}", None),))
        self.current = None
        self._hash = ""
        self._audit(ev)
        return ev

    def _audit(self, ev: ReloadEvent) -> None:
        if self.audit_path is None:
            return
        line = json.dumps(ev.as_dict(), ensure_ascii=False)
        with open(self.audit_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
