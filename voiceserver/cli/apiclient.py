"""The one client of the server's API that the CLI commands share.

`voiceboard queues`, `voiceboard agent`, `voiceboard reload` and `voiceboard
events --follow` find the server the same way and send a user's token the
same way (`ApiClient`), and report an unreachable server the same way
(`StatusUnreachable`, exit status 2 in each command):

- ``--config SERVER.toml``: a config with ``[api]`` names the network API
  (``bind``; https when it has ``tls_cert``, whose certificate the client
  then trusts); without ``[api]`` the server runs only the loopback
  status/admin API (the default port + 1), which the client then uses.
- The token: the admin's (``[api] token_file``), or with ``--user NAME``
  that ``[[api.user]]``'s token file; ``--token-file`` names one outright.
- ``--api``: ``http(s)://HOST:PORT`` (the network API) or ``HOST:PORT``
  (the status API) instead of the config's; ``--cafile``: the certificate
  (or CA) to trust for https.
"""
from __future__ import annotations

import argparse
import http.client
import json
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

__all__ = ["StatusUnreachable", "ApiClient", "add_api_options", "api_from_args", "client_from_config"]


class StatusUnreachable(Exception):
    """The server's API did not answer (no server, wrong port) or answered with an error."""


@dataclass
class ApiClient:
    """Where the server's API is and whose token to send.

    `network`: the network API (``/v1/...``, http or https); else the loopback
    status/admin API (``/queues``, ``/admin/...``)."""
    host: str
    port: int
    token: str
    network: bool = True
    tls: bool = False
    cafile: str | None = None       # https: the certificate (or CA) to trust; None: the system's

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def name(self) -> str:
        """For messages: 'the network API at URL' or 'the status API at HOST:PORT'."""
        if self.network:
            return f"the network API at {self.base_url}"
        return f"the status API at {self.base_url.removeprefix('http://')}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """For https: verify the server's certificate against `cafile` (or the system's CAs)."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.cafile)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                timeout: float = 10.0) -> tuple[int, Any]:
        """One request: (HTTP status, decoded JSON). StatusUnreachable when nobody answers."""
        ctx = self.ssl_context()
        conn: http.client.HTTPConnection = (http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                                                        context=ctx)
                                            if ctx is not None else
                                            http.client.HTTPConnection(self.host, self.port, timeout=timeout))
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif method == "POST":
            data = b""
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise StatusUnreachable(f"cannot reach {self.name} ({exc}); "
                                    f"is `voiceboard serve` running?") from None
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            raise StatusUnreachable(f"{self.name}{path}: not the server's API (the answer is not JSON)") from None

    def fetch(self, path: str) -> Any:
        """GET `path`; anything but 200 is StatusUnreachable."""
        status, doc = self.request("GET", path, timeout=3.0)
        if status != 200:
            raise StatusUnreachable(f"{self.base_url}{path}: HTTP {status}: {doc.get('error', doc)}")
        return doc

    # -- what the commands ask ------------------------------------------------
    def view(self, name: str) -> list[dict[str, Any]]:
        """`queues`, `agents` or `channels`."""
        return self.fetch(f"/v1/{name}" if self.network else f"/{name}")[name]

    def agent(self, action: str, agent: str, reason: str | None = None) -> tuple[int, dict[str, Any]]:
        """login, logout, ready, not-ready (`reason`: the network API's reason code)."""
        quoted = urllib.parse.quote(agent, safe="")
        if self.network:
            return self.request("POST", f"/v1/agents/{quoted}/{action}", {"reason": reason} if reason else None)
        if reason:
            raise ValueError("a reason code needs the network API (the config's [api])")
        return self.request("POST", f"/admin/agent-{action}/{quoted}")

    def reload(self) -> tuple[int, dict[str, Any]]:
        return self.request("POST", "/v1/reload" if self.network else "/admin/reload")


def add_api_options(ap: argparse.ArgumentParser, config: bool = True) -> None:
    """--config / --api / --user / --token-file / --cafile: where the server's API is, whose token."""
    if config:
        ap.add_argument("--config", metavar="SERVER.toml",
                        help="the server's config: its [api] gives the address and the token files")
    ap.add_argument("--api", metavar="URL|HOST:PORT",
                    help="http(s)://HOST:PORT: the network API; HOST:PORT: the loopback status API "
                         "(default: from --config)")
    ap.add_argument("--user", metavar="NAME",
                    help="act as this [[api.user]] of the config (its token_file); default: the admin")
    ap.add_argument("--token-file", metavar="FILE",
                    help="the token file (default: the admin's [api] token_file, or --user's)")
    ap.add_argument("--cafile", metavar="PEM",
                    help="https: the certificate or CA to trust (default: [api] tls_cert)")


def _token_file(settings: Any, user: str | None) -> str:
    if user is None or user == "admin":
        return settings.token_file
    entry = next((u for u in settings.users if u.name == user), None)
    if entry is None:
        known = ", ".join(["admin", *(u.name for u in settings.users)])
        raise ValueError(f"--user {user}: no such [[api.user]] in the config (known: {known})")
    if entry.token_file is None:
        raise ValueError(f"--user {user}: its token is not in a file the server made (token_sha256): "
                         f"give --token-file FILE")
    return entry.token_file


def api_from_args(args: argparse.Namespace) -> ApiClient:
    """The client the options name; ValueError (or TokenFileError, ConfigError) with a message
    naming what is missing or wrong."""
    from voiceserver.api.token import read_token
    config = getattr(args, "config", None)
    token_file, cafile = args.token_file, args.cafile
    client: ApiClient | None = None
    if config:
        from voiceserver.config.server import load_api_settings
        settings = load_api_settings(config)
        token_file = token_file or _token_file(settings, args.user)
        if settings.network:
            host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
            client = ApiClient(host, settings.port, "", network=True, tls=settings.tls_cert is not None,
                               cafile=cafile or settings.tls_cert)
        else:
            client = ApiClient(settings.host, settings.port + 1, "", network=False)
    elif args.user is not None and token_file is None:
        raise ValueError("--user needs --config SERVER.toml (its [[api.user]] names the token file)")
    if args.api:
        client = _parse_api(args.api, cafile)
    if client is None:
        raise ValueError("where is the server? give --config SERVER.toml (or --api URL)")
    if token_file is None:
        raise ValueError("the API needs a token: give --config SERVER.toml (its [api] token_file) "
                         "or --token-file FILE")
    client.token = read_token(token_file)
    return client


def client_from_config(config: str, user: str | None = None) -> ApiClient | None:
    """The network API of a config with [api] (the admin's token, or `user`'s), or None."""
    from voiceserver.config.server import load_api_settings
    settings = load_api_settings(config)
    if not settings.network:
        return None
    ns = argparse.Namespace(config=config, api=None, user=user, token_file=None, cafile=None)
    return api_from_args(ns)


def _parse_api(api: str, cafile: str | None) -> ApiClient:
    scheme, sep, rest = api.partition("://")
    if not sep:
        scheme, rest = "", api
    elif scheme not in ("http", "https"):
        raise ValueError(f"--api: expected HOST:PORT (the status API) or http(s)://HOST:PORT "
                         f"(the network API), got {api!r}")
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--api: expected HOST:PORT (the status API) or http(s)://HOST:PORT "
                         f"(the network API), got {api!r}")
    return ApiClient(host.strip("[]"), int(port), "", network=bool(scheme), tls=scheme == "https", cafile=cafile)
