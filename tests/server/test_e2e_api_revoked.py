"""A reload of the real server (POST /v1/reload, hwsim in lockstep) that removes a user ends
that user's streams for good: the asyncio client (EventClient) stops with StreamRevoked, the
server's reason and its resume point, and `voiceboard events --follow --user` (a process)
prints the reason on stderr and exits 3, where both would otherwise retry for ever.
Waits are guards against a wedged process, not timing checks."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from voiceserver.api.client import EventClient, StreamRevoked

from acdkit import HEAD, HWSIM, scenario, server_config

USERS = """
[api]

[[api.user]]
name = "mon"
role = "monitor"
token_file = "mon-token"
"""
REASON = "user mon: removed or changed by a config reload"


class Revoker:
    """From a run's `until`: mon follows the stream twice (an EventClient, and `voiceboard
    events` as a process); the config loses mon; the admin's POST /v1/reload; then how each
    ended. Everything is kept in `out`."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.task: asyncio.Task | None = None
        self.out: dict[str, Any] = {}

    def __call__(self, server: Any) -> bool:
        if self.task is None and server.api_port:
            self.task = asyncio.get_running_loop().create_task(self._run(server))
        return self.task is not None and self.task.done()

    async def _run(self, server: Any) -> None:
        base = f"http://127.0.0.1:{server.api_port}"
        cfg = Path(server.cfg.file)
        mon = (cfg.parent / "mon-token").read_text().strip()
        admin = Path(server.cfg.api.token_file).read_text().strip()
        cli_cfg = cfg.parent / "cli.toml"          # the port the server took, mon's token file
        cli_cfg.write_text(f'[api]\nbind = "127.0.0.1:{server.api_port}"\n'
                           f'[[api.user]]\nname = "mon"\nrole = "monitor"\ntoken_file = "mon-token"\n')
        proc = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "events", "--config", str(cli_cfg),
                                 "--follow", "--user", "mon", "--json"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()}, text=True)
        got: list[dict[str, Any]] = []

        async def follow() -> BaseException | None:
            async with EventClient(base, mon, retry=0.05) as client:
                try:
                    async for ev in client:
                        got.append(ev)
                except StreamRevoked as exc:
                    return exc
            return None
        client = asyncio.get_running_loop().create_task(follow())
        try:
            deadline = time.monotonic() + 60
            while server.network.stream.clients < 2:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the streams never opened"
                await asyncio.sleep(0.02)
            cfg.write_text(cfg.read_text().replace(USERS, "\n[api]\n"))
            async with aiohttp.ClientSession() as s, \
                    s.post(f"{base}/v1/reload", headers={"Authorization": f"Bearer {admin}"}) as r:
                self.out["reload"] = (r.status, await r.json())
            self.out["client"] = await asyncio.wait_for(client, 30)
            self.out["got"] = got
            while proc.poll() is None and time.monotonic() < deadline + 30:
                await asyncio.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
            out, err = proc.communicate(timeout=10)
            self.out["cli"] = (proc.returncode, [json.loads(line) for line in out.splitlines()], err)


def test_a_reload_that_removes_the_user_stops_its_client_and_voiceboard_events(e2e, tmp_path):
    revoker = Revoker(tmp_path)
    e2e.run(scenario=scenario(duration=1000.0), server_config=server_config(tmp_path, USERS, head=HEAD),
            hwsim_config=HWSIM, api_port=0, max_sim_seconds=900, until=revoker)
    out = revoker.out
    assert out["reload"][0] == 200 and out["reload"][1]["api"]["users"]["streams_closed"] == ["mon", "mon"]
    exc = out["client"]
    assert isinstance(exc, StreamRevoked) and exc.reason == REASON
    assert exc.resume == (out["got"][-1]["seq"] if out["got"] else None)
    rc, printed, err = out["cli"]
    assert rc == 3, err
    assert REASON in err and "1008" in err
    if printed:                                  # where the next run resumes from
        assert f"--since {printed[-1]['seq']}" in err
