"""[[api.user]] in the server config, the users' token files, and `python -m voiceserver.api.token new`.

A user is a name, a role, an agent id for an agent user (numeric ids stay
text: 1001 and "1001" are the same agent) and a token file the server
makes (mode 0600, as the admin's) or the SHA-256 of a token kept
elsewhere; a token written in the config is refused, as is every other
mistake, with the file, line and key.
"""
from __future__ import annotations

import os
import stat

import pytest

from boarddrv.tomlconfig import ConfigError
from voiceserver.api import token as token_mod
from voiceserver.api.roles import Role, find_user, token_digest
from voiceserver.api.token import TokenFileError, api_users
from voiceserver.config.server import load_api_settings

DIGEST = token_digest("a-token-kept-by-the-acd-host-" + "y" * 20)


def settings(tmp_path, text: str):
    cfg = tmp_path / "server.toml"
    cfg.write_text('[api]\nbind = "127.0.0.1:8750"\n' + text)
    return load_api_settings(cfg)


def error(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, text)
    return str(err.value)


def test_users_of_each_role_with_token_files_and_digests(tmp_path):
    s = settings(tmp_path, f"""
[[api.user]]
name = "acd"
role = "integration"
token_sha256 = "{DIGEST.upper()}"

[[api.user]]
name = "desk-1001"
role = "agent"
agent = 1001                     # a bare number: the agent id "1001"
token_file = "tokens/1001"

[[api.user]]
name = "alice"
role = "agent"
agent = "alice"
token_file = "tokens/alice"
""")
    acd, desk, alice = s.users
    assert (acd.name, acd.role, acd.agent, acd.token_file, acd.token_sha256) == (
        "acd", "integration", None, None, DIGEST)
    assert desk.agent == "1001" and desk.token_file == str(tmp_path / "tokens/1001")
    assert alice.agent == "alice"
    (tmp_path / "tokens").mkdir()
    users = api_users(s)
    assert [(u.name, u.role, u.agent) for u in users] == [
        ("admin", Role.ADMIN, None), ("acd", Role.INTEGRATION, None), ("desk-1001", Role.AGENT, "1001"),
        ("alice", Role.AGENT, "alice")]
    made = tmp_path / "tokens/1001"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert find_user(users, made.read_text().strip()).name == "desk-1001"
    assert find_user(users, (tmp_path / "admin-token").read_text().strip()).name == "admin"
    assert find_user(users, "a-token-kept-by-the-acd-host-" + "y" * 20).name == "acd"
    assert find_user(users, "nothing") is None
    # the same files at the next start: the same tokens
    assert api_users(s) == users


@pytest.mark.parametrize("text, message", [
    ('name = "x"\nrole = "agent"\nagent = "1001"\ntoken = "abc"\n', "a token is never written in the config"),
    ('name = "x"\nrole = "monitor"\n', "give one of token_file"),
    ('name = "x"\nrole = "monitor"\ntoken_file = "a"\ntoken_sha256 = "' + DIGEST + '"\n', "give one of token_file"),
    ('name = "x"\nrole = "boss"\ntoken_file = "a"\n', "expected one of admin, supervisor, agent, monitor, integration"),
    ('name = "x"\nrole = "agent"\ntoken_file = "a"\n', "an agent user is bound to one agent id"),
    ('name = "x"\nrole = "agent"\nagent = "01001"\ntoken_file = "a"\n', "no leading zero"),
    ('name = "x"\nrole = "monitor"\nagent = "1001"\ntoken_file = "a"\n', "only an agent user is bound to an agent"),
    ('name = "admin"\nrole = "monitor"\ntoken_file = "a"\n', "'admin' is the user of [api] token_file"),
    ('name = "a b"\nrole = "monitor"\ntoken_file = "a"\n', "letters, digits"),
    ('name = "x"\nrole = "monitor"\ntoken_sha256 = "abc"\n', "expected 64 hex digits"),
    ('name = "x"\nrole = "monitor"\ntoken_file = "admin-token"\n', "that is the admin's token file"),
    ('name = "x"\nrole = "monitor"\ntoken_file = "a"\ncolour = "red"\n', "unknown key"),
])
def test_a_bad_user_is_refused_with_its_line_and_key(tmp_path, text, message):
    err = error(tmp_path, "[[api.user]]\n" + text)
    assert message in err and "server.toml:" in err and "api.user" in err, err


def test_two_users_may_not_share_a_name_a_token_file_or_a_digest(tmp_path):
    user = '[[api.user]]\nname = "{}"\nrole = "monitor"\n{}\n'
    assert "name 'x' is also user 'x'" in error(
        tmp_path, user.format("x", 'token_file = "a"') + user.format("x", 'token_file = "b"'))
    assert "token_file" in error(
        tmp_path, user.format("x", 'token_file = "a"') + user.format("y", 'token_file = "a"'))
    assert "token_sha256" in error(tmp_path, user.format("x", f'token_sha256 = "{DIGEST}"')
                                   + user.format("y", f'token_sha256 = "{DIGEST}"'))


def test_tls_settings_go_in_pairs_and_make_the_url_https(tmp_path):
    s = settings(tmp_path, 'tls_cert = "api.crt"\ntls_key = "api.key"\n')
    assert (s.tls_cert, s.tls_key) == (str(tmp_path / "api.crt"), str(tmp_path / "api.key"))
    assert s.base_url == "https://127.0.0.1:8750"
    assert "tls_cert and tls_key go together" in error(tmp_path, 'tls_cert = "api.crt"\n')
    assert settings(tmp_path, "").base_url == "http://127.0.0.1:8750"


def test_a_user_token_file_others_may_read_is_refused_at_start(tmp_path):
    s = settings(tmp_path, '[[api.user]]\nname = "x"\nrole = "monitor"\ntoken_file = "x-token"\n')
    api_users(s)
    os.chmod(tmp_path / "x-token", 0o644)
    with pytest.raises(TokenFileError, match="group or others may read it"):
        api_users(s)


def test_token_new_prints_a_token_and_its_digest(capsys):
    assert token_mod.main(["new"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].split()[1]
    assert out[1] == f'token_sha256 = "{token_digest(token)}"' and len(token) >= 32
    assert token_mod.main([]) == 2
