"""Call ids that never repeat: ``SERVER-RUN-SEQ`` (``pbx1-12-000345``).

Why not a counter from 1: a restart would hand out the ids of the calls
before it, and two servers writing one call database would hand out each
other's. Here SERVER is the server id ([storage] server_id, default the
host name), RUN the number of this start of that server, taken from the
call database (`CallDb.start_run`: one more than any start before, and more
than the run of any call stored under that id), and SEQ counts the run's
calls. So an id is unique for the life of the database and across the
servers that share it.

Without a call database the run is the start time (``t20261123093000``):
nothing is stored, the ids only have to tell calls apart in logs and events.

Two servers must not run under one server id on one database: the second
would take the first's calls in progress for crashed ones at its start.
`claim_server_id` holds a lock file next to the database for the life of the
process (released by the kernel, also on ``kill -9``); a second claim fails
with a message that says what to change.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import itertools
import os
import re
import socket
from typing import IO

SERVER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")


def check_server_id(value: str) -> str:
    """`value` if it can be a server id (letters, digits, _ . -; at most 32), else ValueError."""
    if not SERVER_ID.match(value):
        raise ValueError(f"server id {value!r}: 1 to 32 letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit")
    return value


def default_server_id() -> str:
    """The host name's first label, made a valid server id."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0]).strip("_-")[:32]
    return name or "voiceboard"


class CallIds:
    """Hands out the ids of one server run, in order."""

    def __init__(self, server_id: str, run: int | str) -> None:
        self.server_id = check_server_id(server_id)
        self.run = run
        self._seq = itertools.count(1)

    @classmethod
    def without_database(cls, server_id: str, start: dt.datetime) -> CallIds:
        """Ids for a server that stores nothing: the run is its start time."""
        return cls(server_id, start.astimezone(dt.UTC).strftime("t%Y%m%d%H%M%S"))

    def next(self) -> str:
        return f"{self.server_id}-{self.run}-{next(self._seq):06d}"


class ServerIdInUse(Exception):
    """Another running server has claimed this server id on this database."""


def lock_path(database: str, server_id: str) -> str:
    return f"{database}.{server_id}.lock"


def claim_server_id(database: str, server_id: str) -> IO[str]:
    """Lock `server_id` on `database` for this process; keep the returned file open to hold it."""
    path = lock_path(database, server_id)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise ServerIdInUse(
            f"{database}: server id {server_id!r} is in use by a running voice server ({holder}; "
            f"lock {path}); give each server writing this database its own [storage] server_id"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    return f


__all__ = ["CallIds", "check_server_id", "default_server_id", "claim_server_id", "ServerIdInUse",
           "lock_path", "SERVER_ID"]
