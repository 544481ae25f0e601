"""The interfaces between the server's parts (core.runtime): CallHost and RecordingHost."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from voiceserver.config.server import load_config
from voiceserver.core.runtime import CallHost, RecordingHost
from voiceserver.core.server import VoiceServer

DEMO = Path(__file__).resolve().parents[2] / "voiceserver" / "configs" / "demo.toml"


def protocol_members(proto: type) -> set[str]:
    names = set(getattr(proto, "__annotations__", {}))
    names |= {n for n in vars(proto) if not n.startswith("_")}
    return names


def test_the_controller_and_the_server_provide_every_member_of_their_interfaces(prompt_library):
    server = VoiceServer(load_config(DEMO, library=prompt_library), prompt_library, sync=False,
                         start_time=dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC))
    for host, proto, must in ((server.calls, CallHost, {"boards", "legs", "media", "settle", "connect"}),
                              (server, RecordingHost, {"boards", "legs", "tick", "loop", "time_at"})):
        members = protocol_members(proto)
        assert must <= members
        missing = sorted(m for m in members if not hasattr(host, m))
        assert not missing, f"{type(host).__name__} lacks {missing} of {proto.__name__}"
    assert isinstance(server.tick, int) and server.loop is None      # properties, before it runs
