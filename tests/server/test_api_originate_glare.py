"""POST /v1/originate meeting glare (the far end seized the line as we did), at the event level:
the originate is dialled again on another line of its trunk group, as an IVR transfer is, up
to [queues] glare_retries times; only then does it fail with cause glare. On an analog group
(controllerkit's Card: a ring right after our seizure) and an E1 R2 group (r2farkit's
Harness: the far end answers our seizure with its own)."""
from __future__ import annotations

from typing import Any

from controllerkit import Card

from boarddrv import EventKind
from voiceserver.core.channels import State
from voiceserver.core.engine import DtmfSent
from voiceserver.core.events import ServerEventKind as K

BY = "network API (test)"


def originate_states(card: Any) -> list[tuple[str, str, str | None]]:
    return [(e["state"], e["line"], e.get("retry")) for e in card.events(K.CALL_ORIGINATE)]


def chan_of(line: str) -> int:
    return int(line.split(":")[1])


def glare(card: Card, chan: int) -> None:
    """The exchange rings in on the line we just seized, before its dial tone."""
    assert card.rt.channels[chan].state is State.OFFHOOK
    card.board(EventKind.RING_START, chan)


# ---------------------------------------------------------------- analog
def test_a_glared_originate_is_dialled_again_on_another_line_and_goes_on_there(card):
    row = card.apply(card.ctl.originate("pstn", "13900001111", {"ivr": "account"}, BY))
    first = chan_of(row["line"])
    glare(card, first)
    states = card.events(K.CALL_ORIGINATE)
    assert [e["state"] for e in states] == ["dialing", "retry", "dialing"]
    retry, again = states[1], states[2]
    assert retry["call_id"] == row["call_id"] and retry["line"] == row["line"]
    assert (retry["cause"], retry["retry"]) == ("glare", again["call_id"])
    assert retry["reason"].startswith("glare")
    second = chan_of(again["line"])
    assert second != first and again["call_id"] != row["call_id"]
    assert card.events(K.CALL_GLARE)[0]["outbound"] == row["call_id"]     # the line rang in: theirs now
    assert card.rt.channels[first].call.direction == "inbound"
    # the retry dials and is answered: the originate's `then` runs on it
    card.run(3.5)
    card.tick += 1
    card.feed(DtmfSent(second))
    card.board(EventKind.BATTERY_REVERSAL, second)
    assert [e["state"] for e in card.events(K.CALL_ORIGINATE)] == ["dialing", "retry", "dialing", "answered"]
    answered = card.events(K.CALL_ORIGINATE)[-1]
    assert answered["call_id"] == again["call_id"] and answered["line"] == again["line"]
    assert card.events(K.CALL_PLAY)[-1]["call_id"] == again["call_id"]       # in the menu
    glared = [r for r in card.ctl.records if r.call_id == row["call_id"]]
    assert glared and glared[0].reason.startswith("glare") and glared[0].answer is None


def test_an_originate_fails_with_cause_glare_once_its_retries_are_used_up(card):
    assert card.ctl.acd.acd.glare_retries == 2
    row = card.apply(card.ctl.originate("pstn", "13900001111", {}, BY))
    lines = [row["line"]]
    for _ in range(3):
        glare(card, chan_of(lines[-1]))
        lines.append(card.events(K.CALL_ORIGINATE)[-1]["line"])
    states = [s for s, _, _ in originate_states(card)]
    assert states == ["dialing", "retry", "dialing", "retry", "dialing", "failed"]
    assert len(set(lines[:3])) == 3                      # three lines tried, each once
    failed = card.events(K.CALL_ORIGINATE)[-1]
    assert (failed["cause"], failed["line"]) == ("glare", lines[2])
    assert failed["reason"].startswith("glare") and failed.get("retry") is None
    assert not card.ctl.originates


def test_no_glare_retries_fails_at_the_first_glare(card):
    card.ctl.acd.acd.glare_retries = 0
    row = card.apply(card.ctl.originate("pstn", "13900001111", {}, BY))
    glare(card, chan_of(row["line"]))
    assert [s for s, _, _ in originate_states(card)] == ["dialing", "failed"]
    assert card.events(K.CALL_ORIGINATE)[-1]["cause"] == "glare"


def test_a_glare_with_no_other_free_line_fails_at_once(card):
    for chan in (1, 2, 3):                               # the group's other lines are busy
        card.ring_in(chan)
    row = card.apply(card.ctl.originate("pstn", "13900001111", {}, BY))
    assert row["line"] == "hotline:0"
    glare(card, 0)
    assert [s for s, _, _ in originate_states(card)] == ["dialing", "failed"]
    assert card.events(K.CALL_ORIGINATE)[-1]["cause"] == "glare"


def test_other_failures_are_not_retried(card):
    from dsp.tones import ToneEvent
    row = card.apply(card.ctl.originate("pstn", "13900001111", {}, BY))
    chan = chan_of(row["line"])
    card.run(3.5)
    card.tick += 1
    card.feed(DtmfSent(chan))
    card.tick += 1
    card.feed(ToneEvent(chan, "busy", card.tick * 160, None))
    card.run(1.0)
    assert [s for s, _, _ in originate_states(card)] == ["dialing", "failed"]
    assert card.events(K.CALL_ORIGINATE)[-1]["cause"] == "busy"


# ---------------------------------------------------------------- E1 R2
def test_an_e1_originate_glared_on_its_first_line_is_answered_on_the_next(prompt_library):
    from r2farkit import FarGlare, FarIncoming, Harness, r2_accept_script
    h = Harness(prompt_library)
    dnis = "13800138000"
    h.far[1] = FarGlare(1)
    for chan in range(2, 5):
        h.far[chan] = FarIncoming(chan, r2_accept_script(dnis, "01062345678"), answer=True)
    row, commands = h.ctl.originate("ct", dnis, {"ivr": "ext"}, BY)
    h.apply(commands)
    assert row["line"] == "e1:1"
    h.run(10, until=lambda: "answered" in [e["state"] for e in h.events(K.CALL_ORIGINATE)])
    states = h.events(K.CALL_ORIGINATE)
    assert [e["state"] for e in states] == ["dialing", "retry", "dialing", "answered"]
    assert (states[1]["call_id"], states[1]["cause"], states[1]["retry"]) == (row["call_id"], "glare",
                                                                              states[2]["call_id"])
    assert states[2]["line"] != "e1:1" and states[3]["call_id"] == states[2]["call_id"]
    assert h.far[chan_of(states[2]["line"])].state == "answered"
    assert h.events(K.CALL_PLAY)[-1]["call_id"] == states[2]["call_id"]


def test_an_e1_originate_glared_on_every_line_it_may_try_fails_with_cause_glare(prompt_library):
    from r2farkit import FarGlare, Harness
    h = Harness(prompt_library)
    for chan in range(1, 5):
        h.far[chan] = FarGlare(chan)
    row, commands = h.ctl.originate("ct", "13800138000", {}, BY)
    h.apply(commands)
    h.run(10, until=lambda: "failed" in [e["state"] for e in h.events(K.CALL_ORIGINATE)])
    states = h.events(K.CALL_ORIGINATE)
    assert [e["state"] for e in states] == ["dialing", "retry", "dialing", "retry", "dialing", "failed"]
    assert len({e["line"] for e in states if e["state"] == "dialing"}) == 3     # 1 + glare_retries 2
    assert states[-1]["cause"] == "glare" and states[-1]["reason"].startswith("glare")
    h.run(2.0)
    assert not h.ctl.originates


# ---------------------------------------------------------------- AMI: the response follows the retry
def test_an_ami_originate_retried_after_glare_gets_its_response_for_the_new_call(tmp_path):
    """The AMI's OriginateResponse (with the Originate's ActionID) comes for the call that
    answered, the retry, not for the glared first call (amikit's feed, panoramisk)."""
    import asyncio

    from amikit import GUARD, Feed

    from apikit import TOKENS, until

    done: list[str] = []

    def originate(trunk: str, number: str, then: dict[str, str], by: str) -> dict[str, Any]:
        done.append(number)
        return {"call_id": "pbx1-1-000042", "trunk": trunk, "number": number, "line": "b:2", "then": then}

    async def main() -> list[Any]:
        async with Feed(tmp_path) as f:
            f.book.originate = originate
            m, _ = await f.login("acd", TOKENS["acd"])
            asked = asyncio.ensure_future(asyncio.wait_for(m.send_action(
                {"Action": "Originate", "Channel": "DAHDI/pstn/13900001111", "Async": "true"}, as_list=None),
                GUARD))
            await until(lambda: done, "the originate")
            common = {"trunk": "pstn", "number": "13900001111", "then": {}, "why": "AMI (acd)", "board": "b"}
            f.bus.publish(2, K.CALL_ORIGINATE, chan=2, call_id="pbx1-1-000042", state="retry", line="b:2",
                          cause="glare", reason="glare: the line rang in as we seized it",
                          retry="pbx1-1-000043", **common)
            f.bus.publish(3, K.CALL_ORIGINATE, chan=3, call_id="pbx1-1-000043", state="dialing", line="b:3",
                          **common)
            f.bus.publish(9, K.CALL_ORIGINATE, chan=3, call_id="pbx1-1-000043", state="answered", line="b:3",
                          **common)
            return list(await asked)
    queued, response = asyncio.run(main())
    assert queued["Message"] == "Originate successfully queued" and queued["Uniqueid"] == "pbx1-1-000042"
    assert (response["Event"], response["Response"], response["Uniqueid"]) == (
        "OriginateResponse", "Success", "pbx1-1-000043")
    assert response["ActionID"] == queued["ActionID"]
