"""answer = "api" on E1 R2 lines ([channels] answer_api naming channels of an [r2] trunk group),
at the event level: hwsim-free, the far end r2farkit's China No.1 exchange (written apart from
voiceserver.r2), the card and the engine's R2 media part r2farkit's Harness.

The register signalling runs as on any line up to the B signal (B-1: the subscriber is free);
then the server holds the answer signal back (the caller hears our ringback) until the API
answers the call, or the IVR does `answer_api_fallback` seconds later. A caller who clears
forward meanwhile ends the call as an unanswered one; the API's late answer is refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from r2farkit import ANSWER, CONFIGS, IDLE, SEIZE_ACK, TPS, Harness

from voiceserver.config.server import ConfigError, load_config
from voiceserver.core import media
from voiceserver.core.channels import State
from voiceserver.core.events import ServerEventKind as K
from voiceserver.core.runtime import Conflict

BY = "network API (acd)"
DNIS, ANI = "95566", "01062345678"


class Recording(Harness):
    """The Harness, keeping every media command the controller sent (the tones among them)."""

    def __init__(self, library: Any, config: Path) -> None:
        super().__init__(library, config)
        self.commands: list[media.MediaCommand] = []

    def apply(self, out: list[media.MediaCommand]) -> None:
        self.commands += out
        super().apply(out)

    def tones(self, chan: int) -> list[str | None]:
        return [c.name for c in self.commands if isinstance(c, media.SetTone) and c.chan == chan]


def config(tmp_path: Path, channels: str, *, extra: str = "", base: str = "server-r2.toml") -> Path:
    """server-r2.toml (trunk group ct on e1:1-4) with a [channels] table of `channels`."""
    path = tmp_path / "server.toml"
    path.write_text((CONFIGS / base).read_text().replace("[prompts]", f"[channels]\n{channels}\n\n[prompts]")
                    + extra)
    return path


@pytest.fixture
def h(prompt_library, tmp_path):
    return Recording(prompt_library, config(tmp_path, 'answer_api = "e1:1"\nanswer_api_fallback = 30'))


def accepted(h: Recording, chan: int) -> Any:
    """A China No.1 call on `chan` through its register signalling, up to the B signal's end."""
    far = h.seize(chan, DNIS, ANI)
    h.run(8, until=lambda: far.state == "accepted" and h.events(K.CALL_OFFER) != [])
    assert far.state == "accepted" and far.b_signal == 1, (far.state, far.step, far.heard)
    return far


def test_the_answer_signal_goes_out_only_when_the_api_answers(h):
    far = accepted(h, 1)
    h.run(5)                                            # 5 s of waiting: no answer signal
    waiting, = h.events(K.CALL_API_ANSWER)
    cid = waiting["call_id"]
    assert waiting["state"] == "waiting" and waiting["fallback_ms"] == 30_000 and waiting["caller"] == ANI
    assert far.state == "accepted" and h.cas_out[1] == [SEIZE_ACK]
    assert h.rt.channels[1].state is State.RINGING
    assert h.events(K.CALL_ANSWER) == [] and h.events(K.CALL_PLAY) == []
    assert h.tones(1) == ["ringback"]                   # the caller hears our ringback meanwhile
    h.apply(h.ctl.answer_call(cid, BY)[1])
    assert far.state == "answered" and h.cas_out[1] == [SEIZE_ACK, ANSWER]
    assert h.tones(1) == ["ringback", None]             # ringback stops with the answer
    answer, = h.events(K.CALL_ANSWER)
    assert answer["call_id"] == cid and answer["tick"] - waiting["tick"] >= 4 * TPS
    assert h.events(K.CALL_PLAY)[0]["items"] == ["welcome"]      # DNIS 95566's flow starts then
    assert [(e["state"], e.get("why")) for e in h.events(K.CALL_API_ANSWER)] == [
        ("waiting", None), ("answered", BY)]
    trace = [(e["dir"], e["signal"]) for e in h.events(K.CALL_SIGNAL) if e["call_id"] == cid]
    assert trace.count(("tx", "0111")) == 1
    with pytest.raises(Conflict, match="not waiting for an answer"):   # a second answer: 409
        h.ctl.answer_call(cid, BY)
    h.run(40)                                           # past the fallback: its timer is stale
    assert len(h.events(K.CALL_API_ANSWER)) == 2 and len(h.events(K.CALL_ANSWER)) == 1
    h.prompt_done(1)                                    # welcome; the flow hangs up after goodbye
    h.prompt_done(1)
    h.run(0.5)
    assert h.cas_out[1][-1] == 0b1111                   # clear-back
    h.cas(1, far.clear_forward())
    h.run(1)
    rec, = h.ctl.records
    assert rec.call_id == cid and rec.answer is not None and (rec.answer - rec.start).total_seconds() >= 9


def test_other_channels_of_the_group_answer_at_once(h):
    far = h.seize(2, DNIS, ANI)
    h.run(8, until=lambda: far.state == "answered")
    assert far.state == "answered" and h.cas_out[2] == [SEIZE_ACK, ANSWER]
    assert h.events(K.CALL_API_ANSWER) == [] and h.tones(2) == []


def test_not_answered_by_the_api_in_time_the_ivr_answers(prompt_library, tmp_path):
    h = Recording(prompt_library, config(tmp_path, 'answer_api = "e1:1"\nanswer_api_fallback = 8'))
    far = accepted(h, 1)
    h.run(7.5)
    assert far.state == "accepted" and h.cas_out[1] == [SEIZE_ACK]
    h.run(1)
    assert far.state == "answered" and h.cas_out[1] == [SEIZE_ACK, ANSWER]
    waiting, fallback = h.events(K.CALL_API_ANSWER)
    assert (fallback["state"], fallback["why"]) == ("fallback", "not answered by the API in time")
    answer, = h.events(K.CALL_ANSWER)
    assert answer["tick"] == fallback["tick"] == waiting["tick"] + 8 * TPS
    assert h.tones(1) == ["ringback", None] and h.events(K.CALL_PLAY)[0]["items"] == ["welcome"]
    with pytest.raises(Conflict, match="not waiting for an answer"):   # too late: 409
        h.ctl.answer_call(answer["call_id"], BY)


def test_a_caller_who_clears_forward_while_waiting_ends_an_unanswered_call(h):
    far = accepted(h, 1)
    h.run(3)
    cid = h.events(K.CALL_API_ANSWER)[0]["call_id"]
    h.cas(1, far.clear_forward())
    h.run(1)
    end, = h.events(K.CALL_END)
    assert (end["reason"], end["side"], end["answered"]) == ("caller cleared forward", "caller", False)
    assert h.tones(1) == ["ringback", None]             # the ringback stops with the call
    assert not h.ctl.awaiting and h.cas_out[1] == [SEIZE_ACK, IDLE]     # never answered; released
    assert h.rt.channels[1].state is State.IDLE
    rec = h.ctl.records[-1]
    assert rec.call_id == cid and rec.answer is None and (rec.dnis, rec.ani) == (DNIS, ANI)
    with pytest.raises(LookupError, match="no call"):   # the API's late answer: 404
        h.ctl.answer_call(cid, BY)
    h.run(30)                                           # the fallback's time: nothing more
    assert len(h.events(K.CALL_API_ANSWER)) == 1 and h.events(K.CALL_ANSWER) == []
    assert h.cas_out[1] == [SEIZE_ACK, IDLE]


def test_answer_api_takes_e1_channels_of_an_inbound_trunk_group_only(prompt_library, tmp_path):
    cfg = load_config(config(tmp_path, 'answer_api = "e1:1-2"'), library=prompt_library)
    assert [ref.chan for ref in cfg.channels.answer_api] == [1, 2]
    assert not [w for w in cfg.warnings if "answer timer" in w]
    out_only = config(tmp_path, 'answer_api = "e1:3"').read_text().replace(
        'direction = "both"', 'direction = "out"')
    (tmp_path / "out.toml").write_text(out_only)
    with pytest.raises(ConfigError, match=r"channels\.answer_api.*e1:3 is not an inbound line"):
        load_config(tmp_path / "out.toml", library=prompt_library)


@pytest.mark.parametrize("fallback, override, warned", [
    (20, "", False), (59.9, "", True), (59.8, "", False), (90, "", True),
    (20, "\n[r2.groups.ct.override.timers]\nanswer = 15000\n", True)])
def test_a_fallback_past_the_far_exchanges_answer_timer_is_warned_of(prompt_library, tmp_path, fallback,
                                                                     override, warned):
    path = config(tmp_path, f'answer_api = "e1:1"\nanswer_api_fallback = {fallback}', extra=override)
    cfg = load_config(path, library=prompt_library)
    found = [w for w in cfg.warnings if "answer timer" in w]
    assert bool(found) is warned, cfg.warnings
    if warned:
        assert "trunk group 'ct'" in found[0] and "clears forward before the fallback" in found[0]


def test_the_api_hanging_up_a_waiting_call_clears_back_and_the_caller_hears_busy(h):
    """China No.1's clear-back bits are its seize-acknowledge bits (1111): nothing changes on
    the line, so the caller hears busy in place of the ringback until its exchange clears
    forward; then the tone stops and the line is free."""
    far = accepted(h, 1)
    h.run(2)
    cid = h.events(K.CALL_API_ANSWER)[0]["call_id"]
    h.apply(h.ctl.hang_up(cid, "hung up by the API"))
    h.run(5)
    assert h.tones(1) == ["ringback", None, "busy"] and h.cas_out[1] == [SEIZE_ACK]
    assert h.rt.channels[1].r2.state.value == "clear-back"
    end, = h.events(K.CALL_END)
    assert (end["reason"], end["answered"]) == ("hung up by the API", False) and not h.ctl.awaiting
    h.cas(1, far.clear_forward())                       # the exchange clears forward: the line is free
    h.run(1)
    assert h.cas_out[1][-1] == IDLE and h.rt.channels[1].state is State.IDLE
    assert h.tones(1)[-1] is None                       # and the busy tone stopped
    h.run(30)
    assert len(h.events(K.CALL_API_ANSWER)) == 1 and h.events(K.CALL_ANSWER) == []
