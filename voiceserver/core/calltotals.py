"""Running totals over a server's finished calls: what a summary needs, in constant memory.

Why not a list of every CallRecord: a server runs for months; the records
are in the call database (with [storage]), and in memory the server keeps
only the most recent ones (`VoiceServer.records`, bounded) and these sums.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_REASONS = 200                 # distinct end reasons counted by name; the rest together
OTHER_REASONS = "(other end reasons)"


@dataclass
class CallTotals:
    calls: int = 0
    answered: int = 0
    rejected: int = 0             # blacklisted: not answered
    to_agent: int = 0
    digits: int = 0
    prompts_played: int = 0
    talk_seconds: float = 0.0     # answer to end, summed over answered calls
    talk_seconds_max: float = 0.0
    end_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, rec: Any) -> None:
        """Count one finished call (a voiceserver.core.server.CallRecord)."""
        self.calls += 1
        if rec.answer is not None:
            self.answered += 1
            talk = (rec.end - rec.answer).total_seconds()
            self.talk_seconds += talk
            self.talk_seconds_max = max(self.talk_seconds_max, talk)
        self.rejected += "rejected" in rec.ivr_path
        self.to_agent += bool(rec.agent)
        self.digits += len(rec.digits)
        self.prompts_played += rec.prompts_played
        reason = rec.reason
        if reason not in self.end_reasons and len(self.end_reasons) >= MAX_REASONS:
            reason = OTHER_REASONS
        self.end_reasons[reason] = self.end_reasons.get(reason, 0) + 1

    @property
    def talk_seconds_avg(self) -> float:
        return self.talk_seconds / self.answered if self.answered else 0.0


__all__ = ["CallTotals", "MAX_REASONS", "OTHER_REASONS"]
