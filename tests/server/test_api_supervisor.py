"""The supervisor commands of the network API on a real loopback socket (apikit.LiveApi): who
may use them, their bodies, the audit lines, the OpenAPI document; and the engine's rows that
mix a conference. What each party hears on a real server: test_api_supervisor_e2e.py."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dsp.mix import add_rows
from voiceserver.api.openapi import document
from voiceserver.api.status import Conflict
from voiceserver.core.engine import _Bridges

from apikit import LiveApi

MODES = ("listen", "whisper", "barge", "intercept")


@pytest.fixture
def live(tmp_path):
    with LiveApi(tmp_path) as api:
        asked: list[tuple[str, ...]] = []

        def supervise(call_id: str, mode: str, supervisor: str, by: str) -> dict[str, Any]:
            if call_id not in api.book.calls:
                raise LookupError(f"no call {call_id!r} in progress")
            if supervisor == "busy":
                raise Conflict(f"supervisor {supervisor}'s phone is busy (connected)")
            asked.append((call_id, mode, supervisor, by))
            return {"call_id": call_id, "supervisor": supervisor, "phone": 6, "mode": mode, "joined": False}
        api.book.supervise = supervise          # the backend the routes find (VoiceServer.supervise)

        def consult(call_id: str, action: str, party: str | None, by: str) -> dict[str, Any]:
            if call_id not in api.book.calls:
                raise LookupError(f"no call {call_id!r} in progress")
            asked.append((call_id, action, party or "", by))
            return {"call_id": call_id, "party": party, "phone": 6, "state": action}
        api.book.consult = consult
        api.asked = asked
        api.on_loop(api.book.offer, "c-1001", "1001")
        yield api


@pytest.mark.parametrize("mode", MODES)
def test_only_the_admin_and_supervisors_may_supervise_even_an_agents_own_call(live, mode):
    path = f"/v1/calls/c-1001/{mode}"
    for user in ("acd", "a1001", "mon"):            # a1001: the call is its own, still not
        status, body = live.request("POST", path, user=user, body={"supervisor": "1002"})
        assert status == 403 and "needs admin or supervisor" in body["error"], (user, body)
    for user in ("admin", "sup"):
        status, body = live.request("POST", path, user=user, body={"supervisor": "1002"})
        assert status == 200 and body["mode"] == mode, (user, body)
    assert live.asked == [("c-1001", mode, "1002", "network API (admin)"),
                          ("c-1001", mode, "1002", "network API (sup)")]
    audit = live.audit_lines()
    assert [(a["api_user"], a["status"]) for a in audit] == [
        ("acd", 403), ("a1001", 403), ("mon", 403), ("admin", 200), ("sup", 200)]
    assert audit[-1]["detail"] == {"supervisor": "1002"}


@pytest.mark.parametrize("raw, why", [
    (b"", "supervisor: the agent id or BOARD:CHANNEL"),
    (b"{}", "supervisor: the agent id or BOARD:CHANNEL"),
    (b'{"supervisor": ""}', "supervisor: the agent id or BOARD:CHANNEL"),
    (b'{"supervisor": true}', "supervisor: the agent id or BOARD:CHANNEL"),
    (b'{"supervisor": ["1002"]}', "supervisor: the agent id or BOARD:CHANNEL"),
    (b'{"supervisor": "a\\nb"}', "supervisor: the agent id or BOARD:CHANNEL"),
    (b'{"supervisor": "1002", "mode": "x"}', "unknown field 'mode'"),
    (b"not json", "the body is not JSON"),
    (b"[1]", "the body is JSON list"),
])
def test_a_malformed_supervisor_body_is_a_400_saying_what_is_wrong(live, raw, why):
    status, body = live.request("POST", "/v1/calls/c-1001/listen", user="sup", raw=raw)
    assert status == 400 and why in body["error"], body
    assert live.audit_lines()[-1]["status"] == 400 and not live.asked


def test_a_numeric_agent_id_is_text_no_call_is_404_a_busy_phone_409(live):
    assert live.request("POST", "/v1/calls/c-1001/barge", user="sup", body={"supervisor": 1002})[1]["supervisor"] \
        == "1002"
    status, body = live.request("POST", "/v1/calls/nope/barge", user="sup", body={"supervisor": "1002"})
    assert status == 404 and body["error"] == "no call 'nope' in progress"
    status, body = live.request("POST", "/v1/calls/c-1001/barge", user="sup", body={"supervisor": "busy"})
    assert status == 409 and "busy" in body["error"]


def test_the_openapi_document_states_the_supervisor_routes_and_their_roles():
    paths = document()["paths"]
    for mode in MODES:
        op = paths[f"/v1/calls/{{call_id}}/{mode}"]["post"]
        assert op["x-roles"] == ["admin", "supervisor"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema["required"] == ["supervisor"] and schema["additionalProperties"] is False


def test_engine_rows_mix_a_conference_in_one_call_and_nobody_hears_itself():
    """Barge in: caller 0, agent 1, supervisor 2; each hears the sum of the other two."""
    rows = _Bridges()
    rows.set(0, 1)
    rows.set(1, 0)
    for chan, srcs in {0: (1, 2), 1: (0, 2), 2: (0, 1)}.items():
        rows.hear(chan, srcs)
    pairs = sorted(zip(rows.dst.tolist(), rows.src.tolist(), strict=True))
    assert pairs == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    rx = np.array([[100] * 4, [20] * 4, [3] * 4, [7000] * 4], np.int16)
    tx = np.zeros_like(rx)
    add_rows(tx, rx, rows.dst, rows.src)
    assert tx[:, 0].tolist() == [23, 103, 120, 0]
    rows.hear(2, ())                        # the supervisor leaves: its rows go, the others stay
    rows.hear(0, (1,))
    rows.hear(1, (0,))
    assert sorted(zip(rows.dst.tolist(), rows.src.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_a_conference_party_may_be_added_by_whoever_controls_the_call(live):
    """The calls' right: an agent user on its own call too, not on another's; not a monitor."""
    live.on_loop(live.book.offer, "c-1002", "1002")
    body = {"party": "hotline:5"}
    for user, call, want in (("a1001", "c-1001", 200), ("a1001", "c-1002", 403), ("mon", "c-1001", 403),
                             ("acd", "c-1002", 200), ("sup", "c-1001", 200)):
        status, answer = live.request("POST", f"/v1/calls/{call}/conference", user=user, body=body)
        assert status == want, (user, call, answer)
    assert [a[1:3] for a in live.asked] == [("conference", "hotline:5")] * 3
    status, answer = live.request("POST", "/v1/calls/c-1001/conference", user="sup", body={"supervisor": "x"})
    assert status == 400 and "unknown field 'supervisor'" in answer["error"]
    assert document()["paths"]["/v1/calls/{call_id}/conference"]["post"]["x-roles"] == [
        "admin", "supervisor", "integration", "agent:own"]


def test_consult_complete_and_cancel_for_whoever_controls_the_call(live):
    live.on_loop(live.book.offer, "c-1002", "1002")
    asks = [("a1001", "c-1001/consult", {"party": 1003}, 200), ("a1001", "c-1002/consult", {"party": "x"}, 403),
            ("mon", "c-1001/consult-cancel", None, 403), ("a1001", "c-1001/consult-complete", None, 200),
            ("acd", "c-1002/consult-cancel", None, 200), ("sup", "c-1001/consult", None, 400),
            ("sup", "c-1001/consult", {"party": "1003", "x": 1}, 400),
            ("sup", "c-1001/consult-cancel", {"party": "1003"}, 400), ("sup", "nope/consult-cancel", None, 404)]
    for user, path, body, want in asks:
        status, answer = live.request("POST", f"/v1/calls/{path}", user=user, body=body)
        assert status == want, (user, path, answer)
    assert [a[:3] for a in live.asked] == [("c-1001", "start", "1003"), ("c-1001", "complete", ""),
                                           ("c-1002", "cancel", "")]
    assert live.audit_lines()[0]["detail"] == {"party": "1003"}
    paths = document()["paths"]
    for path in ("consult", "consult-complete", "consult-cancel"):
        assert paths[f"/v1/calls/{{call_id}}/{path}"]["post"]["x-roles"] == [
            "admin", "supervisor", "integration", "agent:own"]
