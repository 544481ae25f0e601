"""The interface the ACD link and the recording service use of the server (core.runtime.CallHost)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from voiceserver.config.server import load_config
from voiceserver.core.runtime import CallHost
from voiceserver.core.server import VoiceServer

DEMO = Path(__file__).resolve().parents[2] / "voiceserver" / "configs" / "demo.toml"


def protocol_members(proto: type) -> set[str]:
    names = set(getattr(proto, "__annotations__", {}))
    names |= {n for n in vars(proto) if not n.startswith("_")}
    return names


def test_the_server_provides_every_member_of_the_host_interface(prompt_library):
    server = VoiceServer(load_config(DEMO, library=prompt_library), prompt_library, sync=False,
                         start_time=dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.timezone.utc))
    members = protocol_members(CallHost)
    assert {"boards", "bus", "legs", "tick", "loop", "settle", "connect"} <= members
    missing = sorted(m for m in members if not hasattr(server, m))
    assert not missing, f"VoiceServer lacks {missing} of CallHost"
    assert isinstance(server.tick, int) and server.loop is None      # properties, before it runs
