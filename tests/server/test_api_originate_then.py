"""POST /v1/originate's `then` on a real socket: {"play": [PROMPT, ...]} and {"queue": QUEUE}
reach the server as the originate's then (the prompts '&'-joined, as AMI's Playback Data gives
them; what they do once answered: test_originate_apps.py); bad forms are 400s naming them.
And the example ACD program refused by the server: it says why and stops."""
from __future__ import annotations

from typing import Any

from apikit import LiveApi


def test_then_play_and_queue_reach_the_originate_and_bad_forms_are_refused(tmp_path):
    asked: list[tuple[str, str, dict[str, str]]] = []
    with LiveApi(tmp_path) as api:
        def originate(trunk: str, number: str, then: dict[str, str], by: str) -> dict[str, Any]:
            asked.append((trunk, number, then))
            return {"call_id": f"o{len(asked)}", "trunk": trunk, "number": number, "line": "b:1", "then": then}
        api.book.originate = originate
        play = api.request("POST", "/v1/originate", user="acd",
                           body={"trunk": "pstn", "number": "13900001111", "then": {"play": ["notice", "goodbye"]}})
        queue = api.request("POST", "/v1/originate", user="acd",
                            body={"trunk": "pstn", "number": "13900001111", "then": {"queue": "service"}})
        bad = {what: api.request("POST", "/v1/originate", user="acd",
                                 body={"trunk": "pstn", "number": "139", "then": then})
               for what, then in {"empty list": {"play": []}, "not a name": {"play": ["a", 5]},
                                  "an ampersand": {"play": ["a&b"]}, "two": {"play": ["a"], "queue": "q"},
                                  "unknown": {"dance": "x"}}.items()}
    assert play[0] == 201 and play[1]["then"] == {"play": "notice&goodbye"}
    assert queue[0] == 201 and queue[1]["then"] == {"queue": "service"}
    assert asked == [("pstn", "13900001111", {"play": "notice&goodbye"}),
                     ("pstn", "13900001111", {"queue": "service"})]
    for what, (status, body) in bad.items():
        assert status == 400, what
        assert "then:" in body["error"], (what, body)


def test_the_example_acd_says_why_the_server_refused_its_token_and_stops(tmp_path, capsys):
    """The example ACD program (voiceserver/examples/acd.py) with a token the server does not
    take: the refusal on stderr and exit status 2, not a traceback."""
    from voiceserver.examples import acd
    token = tmp_path / "token"
    token.write_text("not-a-token\n")
    with LiveApi(tmp_path) as api:
        rc = acd.main(["--url", f"http://127.0.0.1:{api.port}", "--token-file", str(token), "--queue", "service"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("acd: HTTP 401"), err
