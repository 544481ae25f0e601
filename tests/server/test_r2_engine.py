"""An E1 R2 call through the real server: engine thread, sim:// board, event loop, call database.

The test is the card: it serves a sim:// board with one E1 span itself
(boarddrv.simdev.SimDevice, lockstep) and plays the China No.1 far end of
test_r2_calls on channel 1: CAS bits as card events, forward MF signals as
numpy audio in rx, the server's backward signals heard in its tx.
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
from r2farkit import FarEnd, china_sequence

from boarddrv.simdev import SimDevice, SpanSpec
from voiceserver.core.events import ServerEventKind

CONFIGS = Path(__file__).parent / "configs"

START = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


class Card(threading.Thread):
    """The sim:// card with the far end on channel 1; an LOS alarm on span 0 when asked."""

    def __init__(self, name: str, far: FarEnd) -> None:
        super().__init__(name="r2-card", daemon=True)
        self.dev = SimDevice.create(name, [SpanSpec(kind="e1", nchan=30, framing="cas")], clock="lockstep")
        self.dev.set_clock(START)
        self.far = far
        self.stop = threading.Event()
        self.alarm_when = threading.Event()
        self.alarmed = False
        self.host_bits: list[int] = []
        self.seized = False

    def run(self) -> None:
        dev, far = self.dev, self.far
        while not self.stop.is_set() and not dev.wait_host(0.1):
            pass
        while not self.stop.is_set():
            if dev.next_tick(0.1) is None:
                continue
            for cmd in dev.commands():
                if cmd.kind.name == "CAS" and cmd.chan == far.chan:
                    self.host_bits.append(cmd.value)
                    far.host_cas(cmd.value)
            far.hear(np.array(dev.tx[far.chan]))
            if not self.seized:
                dev.post("CAS", far.chan, far.seize(), 0)
                self.seized = True
            if self.alarm_when.is_set() and not self.alarmed:
                dev.set_alarms(0, {"LOS"})
                self.alarmed = True
            rx = dev.rx
            rx[...] = 0
            rx[far.chan] = far.audio()
            dev.publish()

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.dev.close()


def test_an_e1_china_call_reaches_the_ivr_through_the_engine_and_ends_with_a_span_alarm(
        tmp_path, prompt_library, capsys):
    from lockstepkit import build_server, run_server
    name = f"r2eng{os.getpid()}"
    text = (CONFIGS / "server-r2.toml").read_text().replace("sim://r2_e1", f"sim://{name}")
    text += f'\n[storage]\ndatabase = "{tmp_path / "calls.db"}"\nrecordings = "{tmp_path / "rec"}"\n' \
            f'voicemail = "{tmp_path / "vm"}"\nevents = "{tmp_path / "events.db"}"\nserver_id = "r2test"\n'
    (tmp_path / "server.toml").write_text(text)
    far = FarEnd(1, china_sequence("95566", "01062345678"))
    card = Card(name, far)
    card.start()
    try:
        server = build_server(tmp_path / "server.toml", prompt_library, START)

        def kinds(kind: ServerEventKind) -> list:
            return [e for e in server.bus.journal if e.kind is kind]

        def played_then_alarm(s) -> bool:
            if kinds(ServerEventKind.CALL_PLAY):
                card.alarm_when.set()
            return bool(kinds(ServerEventKind.CALL_END))
        run_server(server, played_then_alarm, max_sim_seconds=30)
    finally:
        card.close()
    offer = kinds(ServerEventKind.CALL_OFFER)[0].data
    assert (offer["dnis"], offer["ani"], offer["category"]) == ("95566", "01062345678", "national_subscriber")
    assert far.b_signal == 1
    # seize acknowledge, answer; blocked (LOS); idle (the server's stop releases the line)
    assert card.host_bits == [0b1111, 0b0111, 0b1111, 0b1011]
    assert kinds(ServerEventKind.CALL_PLAY)[0].data["items"] == ["welcome"]
    end = kinds(ServerEventKind.CALL_END)[0]
    assert end.data["reason"] == "blocked: LOS" and end.data["answered"]
    rec = server.records[-1]
    assert (rec.reason, rec.dnis, rec.ani, rec.category) == (
        "blocked: LOS", "95566", "01062345678", "national_subscriber")
    assert rec.answer is not None and rec.end >= rec.answer
    row = sqlite3.connect(tmp_path / "calls.db").execute(
        "SELECT dnis, ani, category, disposition, caller, called FROM calls").fetchall()
    assert row == [("95566", "01062345678", "national_subscriber", "blocked: LOS", "01062345678", "95566")]
    assert kinds(ServerEventKind.CALL_DIGIT) == []         # no MF signal was taken for a DTMF digit
    signals = [e.data["signal"] for e in kinds(ServerEventKind.CALL_SIGNAL)]
    assert signals[:2] == ["0011", "1111"] and "MF 6" in signals
    # the server's journal, read back by voiceboard r2trace through the config's [storage]
    from voiceserver.cli import r2trace
    assert r2trace.main(["--config", str(tmp_path / "server.toml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"call {end.call_id} on e1:1"
    assert out[2].split()[1:] == ["<-", "0011", "seize"]
    assert any("[offered] dnis=95566 ani=01062345678" in line for line in out)
    assert "[ended] reason=blocked: LOS" in out[-1]
