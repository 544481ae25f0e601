"""The admin door of the loopback status API: token, Host/Origin, audit, limits.

Unit tests of the token file and the door (a fake clock for the rate limits),
then the real `voiceboard serve` process (against a real-time hwsim, with
recording) attacked the way the issue describes: another local user
(`nobody`), a browser page (foreign Host and Origin), a flood of idle
connections, a reload storm, a huge numeric id.
"""
from __future__ import annotations

import asyncio
import errno
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hwsim.spawn import spawn_hwsim, stop_process
from voiceserver.api.door import AdminDoor, Request
from voiceserver.api.status import EVICT_AFTER, HttpError, StatusApi, parse_headers
from voiceserver.api.token import TokenFileError, ensure_token, read_token
from voiceserver.config.server import ConfigError, load_config

from acdkit import StatusProbe, agents, run, scenario
from servekit import wait_for

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "tests/server/configs"
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")


# ---------------------------------------------------------------- the token file
def test_the_token_file_is_made_0600_once_and_kept(tmp_path):
    path = str(tmp_path / "admin-token")
    old = os.umask(0)
    try:
        token = ensure_token(path)
    finally:
        os.umask(old)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert len(token) >= 40 and ensure_token(path) == token == read_token(path)


def test_a_token_file_others_can_read_or_not_ours_is_refused(tmp_path):
    path = tmp_path / "admin-token"
    ensure_token(str(path))
    path.chmod(0o644)
    with pytest.raises(TokenFileError, match=f"{path} has mode 0644: group or others may read it"):
        ensure_token(str(path))
    path.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
        with pytest.raises(TokenFileError, match=f"{path} is owned by uid 65534 \\(nobody\\), "
                                                 f"not by this server's uid 0 \\(root\\)"):
            ensure_token(str(path))
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(TokenFileError, match=f"cannot open the admin token file {link}"):
        ensure_token(str(link))
    junk = tmp_path / "junk"
    junk.write_text("hello")
    junk.chmod(0o600)
    with pytest.raises(TokenFileError, match="does not hold a token"):
        ensure_token(str(junk))
    with pytest.raises(TokenFileError, match=f"no admin token file {tmp_path / 'none'}"):
        read_token(str(tmp_path / "none"))


# ---------------------------------------------------------------- the door, no I/O
class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def req(method: str, path: str, token: str | None = "T" * 43, host: str = "127.0.0.1:8751",
        **headers: str) -> Request:
    h = {"host": host, **headers}
    if token:
        h["authorization"] = f"Bearer {token}"
    return Request(method, path, h, peer=("127.0.0.1", 40000), local=("127.0.0.1", 8751))


def audit(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_reloads_are_rate_limited_and_refusals_do_not_flood_the_audit_log(tmp_path):
    clock = Clock()
    log = tmp_path / "audit.jsonl"
    door = AdminDoor("T" * 43, 8751, str(log), reload_interval=1.0, clock=clock)
    assert door.refuse(req("POST", "/admin/reload")) is None
    door.done(req("POST", "/admin/reload"), 200, {"reloaded": True})
    statuses = [door.refuse(req("POST", "/admin/reload")) for _ in range(300)]
    assert {s[0] for s in statuses} == {429} and statuses[0][2] == {"Retry-After": "1"}
    clock.t += 1.0
    assert door.refuse(req("POST", "/admin/reload")) is None       # a second later: allowed
    assert door.refuse(req("POST", "/admin/reload", token="x" * 43))[0] == 401
    door.close()
    lines = audit(log)
    assert [(x.get("status"), x["result"]) for x in lines] == [
        (200, "done"), (429, "refused"), (401, "refused")]
    # 300 refused in one second: one line; the rest counted, nothing lost
    assert lines[1]["token"] == "ok" and "at most one every 1 s" in lines[1]["why"]
    assert lines[2]["token"] == "wrong" and lines[2]["not_logged"] == 299
    assert "not_logged" not in lines[0] and lines[0]["peer"] == "127.0.0.1:40000"


def test_host_origin_and_token_checks() -> None:
    door = AdminDoor("T" * 43, 8751)
    assert door.refuse(req("GET", "/channels")) is None
    assert door.refuse(req("GET", "/channels", host="localhost:8751")) is None
    assert door.refuse(req("GET", "/channels", host="[::1]:8751", origin="http://[::1]:8751")) is None
    assert door.refuse(req("GET", "/channels", token=None))[0] == 401
    assert door.refuse(req("GET", "/channels", token=None))[2] == {"WWW-Authenticate": "Bearer"}
    assert door.refuse(req("GET", "/", token=None)) is None           # the index only
    assert door.refuse(req("GET", "/", host="evil.example"))[0] == 403
    assert door.refuse(req("GET", "/", host="127.0.0.1"))[0] == 403  # DNS names, ports: exact
    assert door.refuse(req("GET", "/", host="127.0.0.1:8752"))[0] == 403
    assert door.refuse(req("POST", "/admin/reload", origin="http://evil.example"))[0] == 403
    assert door.refuse(req("POST", "/admin/reload", origin="null"))[0] == 403
    nohost = Request("GET", "/", {}, None, None)
    assert door.refuse(nohost)[0] == 400
    assert AdminDoor(None, 8751).refuse(req("GET", "/queues"))[0] == 401   # no token: no access


def test_headers_are_parsed_strictly() -> None:
    assert parse_headers(b"GET / HTTP/1.1\r\nHost: a:1\r\nX-Y:  z \r\n\r\n") == {"host": "a:1", "x-y": "z"}
    for head, status in ((b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
                         (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
                         (b"POST /admin/reload HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 413),
                         (b"POST /admin/reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413)):
        with pytest.raises(HttpError) as exc:
            parse_headers(head)
        assert exc.value.status == status


def test_a_huge_target_is_not_found_not_an_internal_error() -> None:
    def pause(target: str) -> dict:
        board, _, chan = target.rpartition(":")
        return {"chan": int(chan)}     # int() of 5000 digits, or of "x1": a ValueError
    api = StatusApi(queues=list, agents=list, channels=list, admin_arg={"record-pause": pause})
    assert api.handle("POST", "/admin/record-pause/hotline:" + "9" * 5000)[0] == 404
    status, body = api.handle("POST", "/admin/record-pause/hotline:x1")
    assert status == 400 and body["error"].startswith("bad target")
    assert api.handle("POST", "/admin/record-pause/hotline:12") == (200, {"chan": 12})


def test_api_port_leaves_room_for_the_status_port(tmp_path):
    text = (CONFIGS / "server-hotline.toml").read_text()
    cfg = tmp_path / "server.toml"
    cfg.write_text(text + '\n[api]\nbind = "127.0.0.1:65535"\n')
    line = len(cfg.read_text().splitlines())
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert str(exc.value).startswith(f"{cfg}:{line}: key 'api.bind': port 65535 out of range: "
                                     f"at most 65534")
    cfg.write_text(text + '\n[api]\nbind = "127.0.0.1:65534"\ntoken_file = "secret/tok"\n')
    api = load_config(cfg).api
    assert api.port == 65534 and api.token_file == str(tmp_path / "secret/tok")
    assert api.audit_log == str(tmp_path / "admin-audit.jsonl")


def test_an_audit_log_others_could_write_is_refused_at_start(tmp_path):
    log = tmp_path / "audit.jsonl"
    log.write_text("")
    log.chmod(0o666)

    async def start() -> None:
        async with StatusApi(queues=list, agents=list, channels=list, token="T" * 43,
                             audit_log=str(log)):
            pass
    with pytest.raises(OSError, match=f"cannot open the admin audit log {log}: owned by uid "
                                      f"{os.geteuid()} with mode 0666"):
        asyncio.run(start())


@pytest.mark.parametrize("limits, raised", [((64, 64), False), ((64, 4096), True)])
def test_the_connection_cap_leaves_descriptors_for_the_media_path(limits, raised):
    """Under a low descriptor limit the cap shrinks to a quarter of what is free,
    unless the soft limit can be raised (towards the hard one) to fit it."""
    code = ("import os, resource; from voiceserver.api.status import connection_cap;"
            "used = len(os.listdir('/proc/self/fd')); cap = connection_cap(64);"
            "print(used, cap, resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limits),
                         cwd=REPO, timeout=60).stdout.split()
    used, cap, soft = map(int, out)
    if raised:
        assert cap == 64 and soft == used + 4 * 64
    else:
        assert cap == (64 - used) // 4 < 64 and soft == 64


# ---------------------------------------------------------------- connection limits, in process
def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _get(port: int, path: str, token: str | None, source: str = "127.0.0.1") -> tuple[int, bytes]:
    s = _connect(port, source)
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    s.sendall((head + "\r\n").encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return int(data.split(b" ", 2)[1]), data.split(b"\r\n\r\n", 1)[1]


def test_idle_connections_are_capped_per_client_and_in_total_and_the_operator_gets_in() -> None:
    token = "T" * 43

    async def scenario_() -> None:
        api = StatusApi(queues=list, agents=list, channels=lambda: [{"chan": 0}], token=token,
                        max_connections=8, max_per_client=4)
        async with api:
            held = []
            for _ in range(12):              # from 127.0.0.1: 4 kept, the rest refused
                held.append(await asyncio.to_thread(_connect, api.port))
            for i in range(12):              # from 127.0.0.2 and .3: 4 more, then the total cap
                held.append(await asyncio.to_thread(_connect, api.port, f"127.0.0.{2 + i % 2}"))
            # each one over a cap was refused at once (or, on a slow machine, took
            # the place of one silent for EVICT_AFTER s): 8 held, never more
            while api.refused_connections + api.evicted_connections < 24 - 8:
                await asyncio.sleep(0.05)
            assert len(api._conns) == 8
            assert sum(1 for c in api._conns.values() if c.peer == "127.0.0.1") == 4
            # the operator, once the idle ones have been silent EVICT_AFTER s
            evicted = api.evicted_connections
            await asyncio.sleep(EVICT_AFTER)
            status, body = await asyncio.to_thread(_get, api.port, "/channels", token)
            assert (status, json.loads(body)) == (200, {"channels": [{"chan": 0}]})
            assert api.evicted_connections == evicted + 1 and len(api._conns) <= 8
            for s in held:
                s.close()
    asyncio.run(scenario_())


# ---------------------------------------------------------------- status views on the live clock
def test_time_in_state_advances_without_line_events(e2e, tmp_path):
    """No call, no line event: the agents' "for" column must still move on."""
    first = StatusProbe(lambda s: s.boards[0].engine.tick >= 50, "/agents")
    second = StatusProbe(lambda s: first(s) and s.boards[0].engine.tick >= first.at_tick + 500,
                         "/agents")
    acd = agents("zhang") + '\n[queues.service]\nmembers = ["zhang"]\n'
    r = run(e2e, tmp_path, acd, scenario(duration=60.0), status_port=0,
            max_sim_seconds=40, until=lambda s: first(s) and second(s))
    assert not r.events("channel.state")
    a1, = first.result["/agents"]["agents"]
    a2, = second.result["/agents"]["agents"]
    assert a1["since_ms"] >= first.at_tick * 20 - 20
    # each answer is at least at the tick its probe fired on (the lockstep run goes on
    # while a request is served, so an answer may come some ticks after it)
    assert a2["since_ms"] >= second.at_tick * 20 - 20 >= first.at_tick * 20 + 500 * 20 - 20


# ---------------------------------------------------------------- the real server, attacked
SCENARIO = """
[scenario]
duration = 120.0
seed = 5

[[caller]]
at = 4.0
line = "hotline_e2e:0"
number = "13911110001"
hangup_after = 8.0
"""


class Served:
    """hwsim (real time) + `voiceboard serve` with [recording], in a directory `nobody` may enter."""

    def __init__(self, work: Path) -> None:
        self.work = work
        name = f"door{os.getpid()}"
        hw = (CONFIGS / "hwsim-hotline.toml").read_text().replace("hotline_e2e", name)
        sv = (CONFIGS / "server-recording.toml").read_text().replace("hotline_e2e", name)
        (work / "hwsim.toml").write_text(hw)
        (work / "scenario.toml").write_text(SCENARIO.replace("hotline_e2e", name))
        self.cfg = work / "server.toml"
        self.cfg.write_text(sv + '\n[recording]\nlayout = "mono"\n')
        self.server: subprocess.Popen | None = None
        self.hwsim = spawn_hwsim(work / "hwsim.toml", scenario=work / "scenario.toml", clock="realtime",
                                 ready=work / "ready.json", log=os.devnull, cwd=REPO, timeout=60.0)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = work / "serve.log"

        def low_limit() -> None:      # the usual default: 1,100 idle connections exhausted it
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        self.server = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config",
                                        str(self.cfg), "--status-port", str(self.port)],
                                       stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
                                       preexec_fn=low_limit, cwd=REPO)
        self.wait(lambda: "board.start" in self.log.read_text(), "board.start", self.server)
        self.token = read_token(str(self.work / "admin-token"))

    @staticmethod
    def wait(pred: Callable[[], object], what: str, proc: subprocess.Popen) -> None:
        wait_for(pred, what, [proc], limit=60.0)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.server.pid}/fd"))

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                token: bool = True) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Authorization": f"Bearer {self.token}"} if token else {}
        conn.request(method, path, body=b"" if method == "POST" else None, headers={**h, **(headers or {})})
        resp = conn.getresponse()
        out = resp.status, json.loads(resp.read())
        conn.close()
        return out

    def stop(self) -> int | None:
        rc = None
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            rc = self.server.wait(30)
        if self.server is not None:
            stop_process(self.server, timeout=10.0, kill_timeout=10.0)
        self.hwsim.stop(timeout=10.0, kill_timeout=10.0)      # hwsim unlinks its board on SIGTERM
        return rc


@pytest.fixture
def world_readable_dir():
    """A work directory `nobody` may enter (pytest's tmp_path is under a 0700 directory)."""
    d = Path(tempfile.mkdtemp(prefix="vb-door-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@as_root
def test_the_served_api_refuses_other_users_browsers_floods_and_storms(world_readable_dir):
    work = world_readable_dir
    served = Served(work)
    held: list[socket.socket] = []
    try:
        tok = work / "admin-token"
        assert stat.S_IMODE(tok.stat().st_mode) == 0o600
        # another local user: cannot read the token; the CLI says which file; a POST without it: 401
        cli = subprocess.run([*AS_NOBODY, sys.executable, "-m", "boarddrv.cli", "reload",
                              "--config", str(served.cfg)], capture_output=True, text=True,
                             timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert cli.returncode == 1
        assert f"cannot read the admin token file {tok}: permission denied" in cli.stderr
        code = ("import http.client, sys; c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]));"
                "c.request('POST', '/admin/record-pause/hotline:0', body=b'');"
                "print(c.getresponse().status)")
        nobody = subprocess.run([*AS_NOBODY, sys.executable, "-c", code, str(served.port)],
                                capture_output=True, text=True, timeout=60)
        assert nobody.stdout.strip() == "401", nobody
        # a browser page: a foreign Host (DNS rebinding) or Origin, token or not: 403
        assert served.request("POST", "/admin/reload", {"Host": "evil.example",
                                                        "Origin": "http://evil.example"}, token=False)[0] == 403
        assert served.request("POST", "/admin/reload", {"Origin": "http://evil.example"})[0] == 403
        assert served.request("GET", "/channels", token=False)[0] == 401
        # a huge numeric id: not found, not a 500
        assert served.request("POST", "/admin/record-pause/hotline:" + "9" * 5000)[0] == 404
        assert served.request("POST", "/admin/record-pause/hotline:99999999999999999999")[0] == 404
        # a storm of reloads with the token: one a second gets through
        storm = [served.request("POST", "/admin/reload")[0] for _ in range(15)]
        assert set(storm) <= {200, 429} and storm[0] == 200 and storm.count(429) >= 1
        # 1,100 idle connections from this user: refused beyond the cap, descriptors kept
        before = served.fds()
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(4096, resource.getrlimit(
            resource.RLIMIT_NOFILE)[0]), resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        for _ in range(1100):
            s = socket.socket()
            s.setblocking(False)
            assert s.connect_ex(("127.0.0.1", served.port)) in (0, errno.EINPROGRESS)
            held.append(s)
        peak = 0
        for _ in range(40):          # while the server works through them (accept backlog 100)
            peak = max(peak, served.fds())
            time.sleep(0.05)
        print("fds before", before, "peak", peak)
        assert peak <= before + 64 + 16, (before, peak)          # the cap, and a few in passing
        status = None
        for _ in range(20):          # the idle ones make room once EVICT_AFTER old
            time.sleep(EVICT_AFTER)
            status, body = served.request("GET", "/channels")
            if status == 200:
                break
        assert status == 200 and body["channels"]
        # the call during the flood is recorded
        served.wait(lambda: "call.end" in served.log.read_text(), "the call's end", served.server)
        assert served.request("POST", "/admin/record-pause/hotline:1")[0] == 404   # no call there
        assert "Too many open files" not in served.log.read_text()
    finally:
        for s in held:
            s.close()
        rc = served.stop()
    assert rc == 0, served.log.read_text()[-3000:]
    with sqlite3.connect(work / "calls.db") as db:
        recs = db.execute("SELECT status FROM recordings").fetchall()
    assert recs and all(r[0] in ("kept", "discarded") for r in recs), recs
    lines = audit(work / "admin-audit.jsonl")
    by_nobody = [x for x in lines if x.get("uid") == 65534]
    assert by_nobody and by_nobody[0]["user"] == "nobody" and by_nobody[0]["status"] == 401
    assert by_nobody[0]["token"] == "missing"
    assert sum(1 for x in lines if x.get("result") == "done" and x["path"] == "/admin/reload") \
        == storm.count(200)
    # every refusal the door made is a line or counted in one (at most one line a second)
    refusals = 1 + 2 + 1 + storm.count(429)      # nobody's POST, the browser's two, the GET
    assert sum(1 for x in lines if x["result"] == "refused" and "status" in x) + sum(
        x.get("not_logged", 0) for x in lines) == refusals
