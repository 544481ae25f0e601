"""Agent control and hold without hardware: the phone state machine (hold
recall, feature codes), the [queues] feature_codes setting, the status API's
409, and the ACD reacting to agent state changes. End to end:
test_e2e_agent_control.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from boarddrv.tomlconfig import ConfigError
from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import FEATURE_CODES, Acd, Ring
from voiceserver.acd.queues import Member, QueueSpec
from voiceserver.api.status import Conflict, StatusApi
from voiceserver.config.server import load_config
from voiceserver.core.channels import Call, Emit, FxsPhone, State, Timer, Tone

# The server config the ACD settings are added to (shared with test_acd_config.py).
BASE = (Path(__file__).resolve().parent / "configs" / "server-acd-base.toml").read_text(encoding="utf-8")


def events(ch: FxsPhone) -> list[tuple[str, dict]]:
    return [(a.kind, a.data) for a in ch.take() if isinstance(a, Emit)]


def connected_phone() -> tuple[FxsPhone, Call]:
    ch = FxsPhone(4, 50.0)
    call = Call("c1", 0, "inbound", answer_tick=100)
    ch.ring(200, call)
    ch.hook_off(250)
    ch.take()
    return ch, call


def test_the_agent_answering_keeps_the_lines_answer_time() -> None:
    ch, call = connected_phone()
    assert call.answer_tick == 100 and call.data["agent_answer_tick"] == 250


def test_hanging_up_on_hold_rings_back_and_answering_is_a_recall() -> None:
    ch, call = connected_phone()
    ch.hold(True)
    ch.hook_on(300)
    ev = events(ch)
    assert ch.state is State.RINGING and ch.recalling and ch.call is call
    assert ("call.recall", {"call_id": "c1"}) in ev
    assert not any(k == "call.end" for k, _ in ev)            # the call goes on
    ch.hook_off(400)
    (kind, data), = [e for e in events(ch) if e[0] == "call.answer"]
    assert data["recall"] is True and call.answer_tick == 100
    assert call.data["agent_answer_tick"] == 250              # the first answer stays


def test_an_unanswered_recall_reports_its_timeout() -> None:
    ch, _ = connected_phone()
    ch.hold(True)
    ch.hook_on(300)
    timers = [(a.tick, a.token) for a in ch.take() if isinstance(a, Timer)]
    (at, token), = [t for t in timers if t[1][1] == "recall_over"]
    assert at == 300 + 30 * 50
    ch.timer(at, token)
    assert [k for k, _ in events(ch)] == ["call.recall_timeout"]


def test_hanging_up_off_hold_ends_the_call() -> None:
    ch, call = connected_phone()
    ch.hold(True)
    ch.hold(False)
    ch.hook_on(300)
    assert ch.state is State.IDLE and call.end_tick == 300


@pytest.mark.parametrize("ok, tone", [(True, "stutter_dial"), (False, "congestion")])
def test_a_feature_code_gives_a_tone_until_the_phone_is_hung_up(ok: bool, tone: str) -> None:
    ch = FxsPhone(4, 50.0)
    ch.hook_off(10)
    for i, d in enumerate("*21"):
        ch.digit(20 + i, d)
    ch.take()
    ch.feature(30, "*21", ok)
    acts = ch.take()
    assert Tone(tone) in acts
    assert ch.state is State.HANGUP and ch.call is None
    ch.hook_on(80)
    assert ch.state is State.IDLE


def test_feature_codes_default_and_configured(write_config) -> None:
    agents = ('\n[agents.zhang]\nphone = "hotline:4"\n\n[queues.service]\nmembers = ["zhang"]\n'
              '\n[queues.service_vip]\ninto = "service"\n')
    assert dict(load_config(write_config(BASE + agents)).acd.feature_codes) == FEATURE_CODES
    text = BASE + '\n[queues]\nfeature_codes = { login = "#61", not_ready = "#64" }\n' + agents
    codes = dict(load_config(write_config(text)).acd.feature_codes)
    assert codes == {"login": "#61", "logout": "*22", "ready": "*23", "not_ready": "#64"}
    for bad, what in (('{ log_in = "*31" }', "unknown feature 'log_in'"),
                      ('{ login = "21" }', "* or # then digits"),
                      ('{ login = "*22" }', "two features share a code")):
        text = BASE + f'\n[queues]\nfeature_codes = {bad}\n' + agents
        with pytest.raises(ConfigError, match=re.escape(what)):
            load_config(write_config(text))


def test_status_api_conflict_is_409_unknown_target_404() -> None:
    def act(target: str) -> dict:
        if target == "nobody":
            raise LookupError("no agent 'nobody'")
        raise Conflict(f"agent {target} is logged out: log in first")
    api = StatusApi(queues=list, agents=list, channels=list, admin_arg={"agent-ready": act})
    assert api.handle("POST", "/admin/agent-ready/li") == (
        409, {"error": "agent li is logged out: log in first"})
    assert api.handle("POST", "/admin/agent-ready/nobody")[0] == 404


def test_ready_rings_a_waiting_caller_at_once_and_a_pending_logout_empties_the_queue() -> None:
    acd = Acd([AgentSpec("a", phone=("hb", 4), start="not_ready")],
              [QueueSpec("q", (Member("a"),), leave_when_empty=True)])
    acd.call_arrived("c1", "q", t=0)
    assert "c1" in acd.calls
    out = acd.ready("a", 1000)
    assert [c for c in out if isinstance(c, Ring)] == [Ring("a", "c1", ("hb", 4))]
    acd.ring_answered("a", "c1", 2000)
    acd.call_arrived("c2", "q", t=2500)
    acd.logout("a", 3000)
    assert acd.agents["a"].pending == "logout" and "c2" in acd.calls
    out = acd.call_ended("a", "c1", 4000)
    assert acd.agents["a"].state.value == "logged_out"
    assert acd.outcomes["c2"] == "rejected"                 # empty = hangup (the default)
    assert any(getattr(c, "kind", "") == "acd.outcome" for c in out)
