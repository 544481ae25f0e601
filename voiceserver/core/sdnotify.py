"""systemd's service notifications (sd_notify), without libsystemd.

Why: under the shipped unit (docs/systemd/voiceboard.service, Type=notify)
systemd starts the next unit only once the boards tick (READY=1), and
restarts a server whose ticks stopped: the server pings WATCHDOG=1 only
while every board's engine advances. The protocol is one datagram of
"KEY=VALUE" lines to the unix socket named by $NOTIFY_SOCKET (a leading
'@' is the abstract namespace). Without $NOTIFY_SOCKET (not under
systemd) every call does nothing.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("voiceserver.core.sdnotify")


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1"); True if it was sent."""
    addr = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    elif not addr.startswith("/"):
        log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract socket: not notifying", addr)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", addr.replace("\0", "@"), exc)
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC, as sd_watchdog_enabled
    advises), or None when systemd watches no watchdog for this process."""
    env = os.environ if env is None else env
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    try:
        if not usec or int(usec) <= 0 or (pid and int(pid) != os.getpid()):
            return None
        return int(usec) / 2e6
    except ValueError:
        log.warning("WATCHDOG_USEC=%r / WATCHDOG_PID=%r are not numbers: no watchdog pings", usec, pid)
        return None
