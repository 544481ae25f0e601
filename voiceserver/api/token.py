"""The API's token files: made by the server at its first start, read by the CLIs.

The admin's token is ``[api] token_file``; each ``[[api.user]]`` with a
``token_file`` has one made the same way (``api_users``: the users and the
SHA-256 of their tokens, voiceserver.api.roles).

The token is what tells the operator's ``voiceboard reload`` / ``queues`` /
``agent`` from any other local user (or a web page a browser on this
machine opens): only the server's user can read the file. So the server
creates it with ``O_EXCL`` and mode 0600 whatever the umask is, and at
every later start refuses a file another user owns or that group/others
could read (someone else may know that token). Clients read it and send
``Authorization: Bearer TOKEN``.
"""
from __future__ import annotations

import os
import pwd
import re
import secrets
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voiceserver.api.roles import ApiUser
    from voiceserver.config.server import ApiSettings

__all__ = ["TokenFileError", "ensure_token", "read_token", "owner_name", "api_users"]

_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,256}")


class TokenFileError(Exception):
    """The token file cannot be made, trusted or read; the message names the file."""


def owner_name(uid: int) -> str:
    """'uid N (name)' for messages."""
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def ensure_token(path: str) -> str:
    """The server's token: read `path`, or create it (0600, O_EXCL) at the first start."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read_own(path)
    except OSError as exc:
        raise TokenFileError(f"cannot create the admin token file {path}: {exc.strerror} "
                             f"(set [api] token_file to a place the server may write)") from None
    token = secrets.token_urlsafe(32)
    try:
        os.fchmod(fd, 0o600)      # the mode open() gave went through the umask
        os.write(fd, (token + "\n").encode("ascii"))
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        os.unlink(path)
        raise TokenFileError(f"cannot write the admin token file {path}: {exc.strerror}") from None
    os.close(fd)
    return token


def _read_own(path: str) -> str:
    """An existing token file, if it is ours alone and holds a token."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TokenFileError(f"cannot open the admin token file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TokenFileError(f"admin token file {path} is not a regular file")
        if st.st_uid != os.geteuid():
            raise TokenFileError(
                f"admin token file {path} is owned by {owner_name(st.st_uid)}, not by this "
                f"server's {owner_name(os.geteuid())}: another user may know that token; "
                f"remove the file (the server makes a new one) or give it to the server's user")
        if st.st_mode & 0o077:
            raise TokenFileError(
                f"admin token file {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or "
                f"others may read it; `chmod 600 {path}` (and consider the token known: "
                f"remove the file so that the server makes a new one)")
        text = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if not _TOKEN.fullmatch(text):
        raise TokenFileError(f"admin token file {path} does not hold a token "
                             f"(remove it: the server makes a new one at start)")
    return text


def read_token(path: str) -> str:
    """A client's read of the token (``voiceboard reload`` etc.); errors name the file."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read(4096).strip()
    except FileNotFoundError:
        raise TokenFileError(f"no admin token file {path}: the server creates it when it "
                             f"starts (wrong --config, or has the server not started yet?)") from None
    except PermissionError:
        raise TokenFileError(f"cannot read the admin token file {path}: permission denied "
                             f"(only the server's user may use the admin API)") from None
    except OSError as exc:
        raise TokenFileError(f"cannot read the admin token file {path}: {exc.strerror}") from None
    if not _TOKEN.fullmatch(text):
        raise TokenFileError(f"admin token file {path} does not hold a token")
    return text


def api_users(settings: ApiSettings) -> tuple[ApiUser, ...]:
    """The network API's users at the server's start: the admin (``[api] token_file``) and each
    ``[[api.user]]``, whose token file is made now if it is missing (as the admin's). Only each
    token's SHA-256 is kept. TokenFileError names the file that cannot be made or trusted."""
    from voiceserver.api.roles import ADMIN_NAME, ApiUser, Role, token_digest
    users = [ApiUser(ADMIN_NAME, Role.ADMIN, token_digest(ensure_token(settings.token_file)))]
    for entry in settings.users:
        if entry.token_file is not None:
            digest = token_digest(ensure_token(entry.token_file))
        else:
            assert entry.token_sha256 is not None      # the config has one or the other
            digest = entry.token_sha256
        users.append(ApiUser(entry.name, Role(entry.role), digest, entry.agent))
    return tuple(users)


def main(argv: list[str] | None = None) -> int:
    """``python -m voiceserver.api.token new``: a new token and the SHA-256 for ``token_sha256``."""
    import sys
    args = sys.argv[1:] if argv is None else argv
    if args != ["new"]:
        print("usage: python -m voiceserver.api.token new   (prints a new token and its token_sha256 line)",
              file=sys.stderr)
        return 2
    from voiceserver.api.roles import token_digest
    token = secrets.token_urlsafe(32)
    print(f"token:        {token}")
    print(f'token_sha256 = "{token_digest(token)}"')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
