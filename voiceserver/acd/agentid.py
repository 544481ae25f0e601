"""What an agent id is: the one definition the server config, the ACD and the recording rules share.

Call centres number their agents (``1001``, ``2001``); some name them
(``alice``). Both are agent ids:

- a numeric id: decimal digits without a leading zero (``1001``), so that
  the rules' ranges (``"1001-1005,!1003"``, compared as numbers) and the
  config's ids (compared as text) can never disagree on which agent is
  meant: ``01001`` would be the same number as ``1001`` but another text;
- a name: a letter, then letters, digits, ``_`` and ``-`` (``alice``,
  ``night-desk``).

In TOML a numeric id is a bare key: ``[agents.1001]``; a list of queue
members may give it as a string or an integer (``["1001", 1002]``).
"""
from __future__ import annotations

import re

__all__ = ["AGENT_ID_HELP", "agent_id_problem", "is_numeric_id", "agent_id_text"]

_NUMERIC = re.compile(r"[1-9][0-9]{0,17}\Z")
_NAMED = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
AGENT_ID_HELP = ("an agent id is a number without a leading zero (1001) or a name starting "
                 "with a letter (alice; letters, digits, _ and -)")


def is_numeric_id(agent: str) -> bool:
    """True for a numeric agent id such as ``1001``."""
    return bool(_NUMERIC.match(agent))


def agent_id_problem(agent: str) -> str | None:
    """Why ``agent`` is not an agent id, or None if it is one."""
    if _NUMERIC.match(agent) or _NAMED.match(agent):
        return None
    if agent.isdigit():
        if agent.lstrip("0") == "":
            return f"agent id {agent!r}: a numeric id starts at 1 ({AGENT_ID_HELP})"
        if agent.startswith("0"):
            return (f"agent id {agent!r}: a numeric id has no leading zero (write "
                    f"{agent.lstrip('0')}; {AGENT_ID_HELP})")
        return f"agent id {agent!r}: too long (at most 18 digits)"
    return f"agent id {agent!r}: {AGENT_ID_HELP}"


def agent_id_text(value: object) -> str | None:
    """An id as written in TOML (a string, or an integer for a numeric id) as text; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None
