"""Who may do what on the network API: the users, their roles and the one table of rights.

A user is a name, a role and a token. The admin is the one the server has
always had (the token in ``[api] token_file``); the others are
``[[api.user]]`` entries of the server config, each with its own token: a
token file the server makes at its first start (mode 0600, as the admin's)
or the SHA-256 of a token kept elsewhere (``token_sha256``), never the
token itself. The server keeps only each token's SHA-256 and compares
digests in constant time.

Roles (docs/api.md has the table):

- ``admin``: everything, the server's own reload included;
- ``supervisor``: every call and every agent (force not-ready, force log-out), and with the
  admin alone the supervisor functions (listen, whisper, barge in, intercept);
- ``integration``: an ACD program: every call and every agent;
- ``agent``: bound to one agent id; its own agent state, the calls offered
  or connected to it, and only its own events on the stream;
- ``monitor``: read-only: the stream, the views, no command.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Role", "ApiUser", "Right", "READ", "VIEW_ALL", "CALLS", "AGENTS", "ADMIN", "SUPERVISE", "ORIGINATE",
           "token_digest",
           "find_user", "may", "ADMIN_NAME"]

ADMIN_NAME = "admin"     # the user of [api] token_file


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    MONITOR = "monitor"
    INTEGRATION = "integration"


@dataclass(frozen=True)
class ApiUser:
    """A user of the network API: its token is known here only by its SHA-256 (hex)."""
    name: str
    role: Role
    token_sha256: str
    agent: str | None = None     # the agent id an `agent` user is bound to (numeric ids stay text: "1001")


@dataclass(frozen=True)
class Right:
    """What a route needs: the roles that may use it, and whether an agent user may use it on
    its own target (its agent id, or a call of its own)."""
    what: str                          # for the 403: "control calls", "change agent states"
    roles: frozenset[Role]
    agent_own: str | None = None       # None: agents may not; "agent" or "call": on their own one

    def needs(self) -> str:
        """The roles that may, for a 403: 'admin, supervisor or integration'."""
        names = [r.value for r in Role if r in self.roles]
        if self.agent_own is not None:
            names.append(f"agent (its own {self.agent_own}s)")
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


_ALL = frozenset(Role)
_CONTROL = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.INTEGRATION})

READ = Right("read", _ALL)                                 # the stream (agents: their own events), queues
VIEW_ALL = Right("see every channel and call", _ALL - {Role.AGENT})
CALLS = Right("control calls", _CONTROL, agent_own="call")
AGENTS = Right("change agent states", _CONTROL, agent_own="agent")
ADMIN = Right("run the server's admin commands", frozenset({Role.ADMIN}))
SUPERVISE = Right("listen to, whisper on, barge into or intercept agent calls",
                  frozenset({Role.ADMIN, Role.SUPERVISOR}))
ORIGINATE = Right("originate calls", _CONTROL)               # new outbound calls: no agent's own one


def may(user: ApiUser, right: Right) -> bool:
    """Whether `user`'s role has `right` at all (an agent's own-target check comes after)."""
    return user.role in right.roles or (user.role is Role.AGENT and right.agent_own is not None)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) the server keeps of a token (and `token_sha256` in the config gives)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def find_user(users: tuple[ApiUser, ...], token: str) -> ApiUser | None:
    """The user whose token this is, or None; every digest is compared, in constant time."""
    digest = token_digest(token).encode("ascii")
    found = None
    for user in users:
        if hmac.compare_digest(digest, user.token_sha256.encode("ascii")):
            found = user
    return found
