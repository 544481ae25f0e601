"""The AMI feed on a loopback port for tests, with panoramisk (from PyPI) as the client.

The users are the network API's, one of each role (apikit.USERS); the backend is
apikit's CallBook (a book of calls and agents that refuses what the server refuses).
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from panoramisk import Manager

from voiceserver.api.ami import AmiFeed
from voiceserver.core.events import EventBus

from apikit import USERS, CallBook, until

GUARD = 30.0      # seconds: a guard against a wedged socket, never a timing check


class Feed:
    """The feed on a free loopback port, with the book behind it and an audit log."""

    def __init__(self, tmp: Path) -> None:
        self.bus = EventBus(server_id="pbx1")
        self.book = CallBook(self.bus)
        self.audit = tmp / "audit.jsonl"
        self.feed = AmiFeed(self.bus, host="127.0.0.1", port=0, users=USERS, backend=self.book,
                            audit_log=str(self.audit))
        self.managers: list[Manager] = []

    async def __aenter__(self) -> Feed:
        await self.feed.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for m in self.managers:
            m.close()
        await self.feed.close()

    async def login(self, username: str, token: str) -> tuple[Manager, list[Any]]:
        got: list[Any] = []
        m = Manager(host="127.0.0.1", port=self.feed.port, username=username, secret=token,
                    ping_delay=3600, reconnect_timeout=3600)
        m.register_event("*", lambda _m, ev: got.append(dict(ev)))
        self.managers.append(m)
        await asyncio.wait_for(m.connect(), GUARD)
        await until(lambda: m.authenticated_future is None or m.authenticated_future.done(), "the login's answer")
        return m, got

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()] if self.audit.exists() else []


async def act(m: Manager, action: dict[str, str]) -> Any:
    return await asyncio.wait_for(m.send_action(action), GUARD)
