"""voiceboard scan / test / loopback against a simulated card served on a thread."""
from __future__ import annotations

import itertools
import json
import os
import pathlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from boarddrv import ChannelType, CommandKind, open_board
from boarddrv.simdev import ChanSpec, SimDevice, SpanSpec
from boarddrv.tools import loopback, scan, timing

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "boarddrv" / "examples"
_seq = itertools.count()


def unique() -> str:
    return f"tools{os.getpid()}_{next(_seq)}"


def hotline(name: str, clock: str = "lockstep", swap: bool = False) -> SimDevice:
    """8 analog ports (FXO 0-3, FXS 4-7, as hwsim's hotline) + one E1 CAS span of 30."""
    a, b = (ChannelType.FXS, ChannelType.FXO) if swap else (ChannelType.FXO, ChannelType.FXS)
    spans = [SpanSpec(kind="analog", nchan=8), SpanSpec(kind="e1", nchan=30, framing="cas")]
    chans = [ChanSpec(a, 0)] * 4 + [ChanSpec(b, 0)] * 4 + [ChanSpec(ChannelType.E1_CAS, 1)] * 30
    return SimDevice.create(name, spans=spans, channels=chans, clock=clock)


class Serve:
    """Tick the device on a thread until stopped; keep the host's commands."""

    def __init__(self, dev: SimDevice, on_tick: Callable[[SimDevice], None] | None = None) -> None:
        self.dev = dev
        self.on_tick = on_tick
        self.commands: list = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.dev.next_tick(0.05) is None:
                    continue
                self.commands += self.dev.commands()
                if self.on_tick:
                    self.on_tick(self.dev)
                self.dev.publish()
        except BaseException as exc:   # re-raised by __exit__
            self.error = exc

    def __enter__(self) -> Serve:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()
        if self.error is not None:
            raise self.error
        self.commands += self.dev.commands()     # sent after the last tick the thread served


@pytest.fixture
def board() -> Iterator[tuple[str, SimDevice]]:
    name = unique()
    dev = hotline(name)
    yield f"sim://{name}", dev
    dev.close()


def run(main: Callable[[list[str]], int], argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# -- scan -------------------------------------------------------------------------

def test_scan_json_shows_states_alarms_counters(board, capsys):
    uri, dev = board
    dev.post("HOOK_OFF", 5)                      # the phone on FXS port 6 is lifted
    dev.post("CAS", 8, 0b0011)                   # seize on timeslot 1 of the E1
    dev.set_alarms(1, {"LOS", "AIS"})
    dev.add_counter(1, "crc4", 7)
    rc, out, err = run(scan.main, [uri, "--json"], capsys)
    assert rc == 0 and err == ""
    (b,) = json.loads(out)["boards"]
    assert (b["uri"], b["nspans"], b["nchan"], b["clock"], b["law"]) == (uri, 2, 38, "lockstep", "alaw")
    s0, s1 = b["spans"]
    assert (s0["kind"], s0["framing"], s0["crc4"], s0["alarms"]) == ("analog", None, None, [])
    assert (s1["kind"], s1["framing"], s1["coding"], s1["first_chan"]) == ("e1", "cas", "hdb3", 8)
    assert s1["alarms"] == ["AIS", "LOS"] and s1["counters"]["crc4"] == 7
    ch = b["channels"]
    assert [c["type"] for c in ch[:9]] == ["FXO"] * 4 + ["FXS"] * 4 + ["E1_CAS"]
    assert ch[5]["hook"] is True and ch[4]["hook"] is False
    assert ch[8]["cas_rx"] == 0b0011 and ch[8]["timeslot"] == 1 and ch[8]["span"] == 1
    assert ch[8 + 15]["timeslot"] == 17                    # TS16 is not a channel
    assert set(b["stats"]) >= {"ticks", "late_ticks", "overruns", "underruns", "events_lost"}


def test_scan_table(board, capsys):
    uri, dev = board
    dev.post("HOOK_OFF", 5)
    dev.set_alarms(1, {"LOS"})
    rc, out, err = run(scan.main, [uri], capsys)
    assert rc == 0 and err == ""
    assert f"spans of {uri}" in out and f"channels of {uri}" in out and f"stats of {uri}" in out
    rows = {int(line.split("│")[1]): line for line in out.splitlines()
            if line.startswith("│") and line.split("│")[1].strip().isdigit()
            and len(line.split("│")) > 10}
    assert "offhook" in rows[5] and "FXS" in rows[5]
    assert "onhook" in rows[4]
    assert "E1_CAS" in rows[8] and "1011" in rows[8]
    span_line = next(line for line in out.splitlines() if "│ e1" in line)
    assert "LOS" in span_line and "cas" in span_line and "off" in span_line


def test_scan_shows_xconnect_and_loopback(board, capsys):
    uri, dev = board
    with Serve(dev), open_board(uri) as host:
        host.start()
        host.xconnect(0, 4)
        host.loopback(9, True)
        rc, out, err = run(scan.main, [uri, "--json"], capsys)
    assert rc == 0
    ch = json.loads(out)["boards"][0]["channels"]
    assert ch[0]["xconnect"] == 4 and ch[4]["xconnect"] == 0 and ch[1]["xconnect"] is None
    assert ch[9]["loopback"] is True and ch[10]["loopback"] is False


def test_scan_without_uri_lists_every_board(capsys):
    names = [unique(), unique()]
    devs = [hotline(n) for n in names]
    try:
        rc, out, err = run(scan.main, ["--json"], capsys)
    finally:
        for d in devs:
            d.close()
    assert rc == 0
    uris = [b["uri"] for b in json.loads(out)["boards"]]
    assert all(f"sim://{n}" in uris for n in names)


def test_scan_no_boards(monkeypatch, capsys):
    import boarddrv
    monkeypatch.setattr(boarddrv, "list_boards", lambda: [])
    rc, out, err = run(scan.main, [], capsys)
    assert rc == 1 and out == ""
    assert "voiceboard scan: no boards found" in err and "hwsim" in err


def test_scan_unknown_board(capsys):
    rc, out, err = run(scan.main, ["sim://no_such_board_here"], capsys)
    assert rc == 1 and out == ""
    assert "no such board 'sim://no_such_board_here'" in err


def test_scan_bad_scheme(capsys):
    rc, out, err = run(scan.main, ["tty://x"], capsys)
    assert rc == 1 and "tty" in err


# -- scan --config --------------------------------------------------------------------

def config_for(uri: str, tmp_path: pathlib.Path) -> pathlib.Path:
    """The hotline example, pointed at this test's board (same lines as the example)."""
    text = (EXAMPLES / "hotline.toml").read_text().replace('"sim://hotline"', f'"{uri}"')
    p = tmp_path / "hotline.toml"
    p.write_text(text)
    return p


def test_scan_config_fits(board, tmp_path, capsys):
    uri, _ = board
    rc, out, err = run(scan.main, [uri, "--config", str(config_for(uri, tmp_path))], capsys)
    assert rc == 0 and err == ""
    assert "configured" in out
    rows = [line for line in out.splitlines() if "fxo_ls" in line or "fxs_ks" in line]
    assert len(rows) == 8
    assert "(not configured)" in out            # the E1 span is not in the hotline config
    rc, out, _ = run(scan.main, [uri, "--config", str(config_for(uri, tmp_path)), "--json"], capsys)
    doc = json.loads(out)
    assert doc["config_problems"] == [] and doc["boards"][0]["config"]["channels"]["4"] == "fxs_ks"


def test_scan_config_mismatch_is_located(tmp_path, capsys):
    name = unique()
    dev = hotline(name, swap=True)             # FXS where the config expects FXO
    try:
        uri = f"sim://{name}"
        cfg = config_for(uri, tmp_path)
        rc, out, err = run(scan.main, [uri, "--config", str(cfg)], capsys)
    finally:
        dev.close()
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 8
    assert lines[0].startswith(f"voiceboard scan: {cfg}:19: key 'boards[0].channels[0].signalling': "
                               f"port 1 of span 0 (channel 0) is FXS on {uri}, fxo_ls needs FXO")


def test_scan_config_errors(board, tmp_path, capsys):
    uri, _ = board
    bad = tmp_path / "bad.toml"
    bad.write_text('[[boards]]\nuri = "sim://x"\nlaw = "alw"\n')
    rc, out, err = run(scan.main, [uri, "--config", str(bad)], capsys)
    assert rc == 1 and f"{bad}:3: key 'boards[0].law': expected one of alaw, ulaw, got 'alw'" in err
    other = config_for("sim://elsewhere", tmp_path)
    rc, out, err = run(scan.main, [uri, "--config", str(other)], capsys)
    assert rc == 1 and f"no [[boards]] entry with uri = '{uri}'" in err


# -- test (timing) -------------------------------------------------------------------

def test_timing_lockstep_reports_throughput(board, capsys):
    uri, dev = board
    with Serve(dev):
        rc, out, err = run(timing.main, [uri, "--seconds", "0.3", "--json"], capsys)
    assert rc == 0 and err == ""
    rep = json.loads(out)
    assert rep["clock"] == "lockstep" and rep["passes"] == [] and rep["cumulative"] is None
    assert rep["ticks"] > 10 and rep["ticks_per_s"] > 0 and rep["missed_ticks"] == 0
    assert rep["x_realtime"] == pytest.approx(rep["ticks_per_s"] * 0.02)
    assert rep["board_stats"]["ticks"] >= rep["ticks"]


def test_timing_lockstep_table(board, capsys):
    uri, dev = board
    with Serve(dev):
        rc, out, err = run(timing.main, [uri, "--seconds", "0.2"], capsys)
    assert rc == 0 and "runs a lockstep clock" in out and "x real time" in out


def test_timing_realtime_passes(capsys):
    name = unique()
    dev = hotline(name, clock="realtime")
    try:
        with Serve(dev):
            rc, out, err = run(timing.main, [f"sim://{name}", "--seconds", "2", "--block", "80"], capsys)
    finally:
        dev.close()
    assert rc == 0, err
    assert "Measuring tick accuracy" in out and "(80 samples = 10 ms per tick)" in out
    assert "--- Results after 2 passes ---" in out
    pass_line = out.splitlines()[1].split()
    assert len(pass_line) == 2 and all(p.endswith("%") and 0 < float(p[:-1]) <= 100 for p in pass_line)
    assert "Cumulative accuracy" in out and "worst jitter" in out


def test_timing_errors(board, capsys):
    uri, dev = board
    rc, _, err = run(timing.main, ["sim://no_such_board_here"], capsys)
    assert rc == 1 and "no such board" in err
    rc, _, err = run(timing.main, [uri, "--seconds", "0"], capsys)
    assert rc == 2 and "--seconds must be positive" in err
    with Serve(dev), open_board(uri) as host:
        host.start()                       # another host owns the board
        rc, out, err = run(timing.main, [uri, "--seconds", "0.1"], capsys)
    assert rc == 1 and out == "" and "voiceboard test:" in err


# -- loopback ------------------------------------------------------------------------

def test_loopback_measures_and_switches_off(board, capsys):
    uri, dev = board
    with Serve(dev) as served:
        rc, out, err = run(loopback.main, [uri, "9", "--freq", "1004", "--level", "-10", "--json"], capsys)
    assert rc == 0, err
    r = json.loads(out)
    assert r["ok"] and r["loopback_was_on"] and r["problem"] is None
    assert r["level_dbm0"] == pytest.approx(-10.0, abs=0.05)
    assert r["freq_hz"] == pytest.approx(1004.0, abs=0.05)
    assert r["delay_ticks"] == 1 and r["sinad_db"] > 60 and r["seconds"] == pytest.approx(1.0)
    loops = [(c.chan, c.value) for c in served.commands if c.kind == CommandKind.LOOPBACK]
    assert loops == [(9, 1), (9, 0)]
    with open_board(uri) as b:
        assert b.channel_status(9)["loopback"] is False


def test_loopback_table_other_tone(board, capsys):
    uri, dev = board
    with Serve(dev):
        rc, out, err = run(loopback.main, [uri, "2", "--freq", "450", "--level", "-20", "--seconds", "0.5"],
                           capsys)
    assert rc == 0, err
    assert "450 Hz at -20 dBm0" in out and "-20.00 dBm0" in out and "450.00 Hz" in out and "OK" in out


def test_loopback_other_traffic_does_not_leak_in(board, capsys):
    """Other channels carry loud audio from the line; only the looped one is measured."""
    uri, dev = board

    def noisy(d: SimDevice) -> None:
        d.rx[:] = 20000
    with Serve(dev, noisy):
        rc, out, err = run(loopback.main, [uri, "3", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["level_dbm0"] == pytest.approx(-10.0, abs=0.05)


def test_loopback_errors(board, capsys):
    uri, dev = board
    rc, _, err = run(loopback.main, [uri, "40"], capsys)
    assert rc == 1 and f"channel 40 out of range 0..37 on {uri}" in err
    rc, _, err = run(loopback.main, ["sim://no_such_board_here", "0"], capsys)
    assert rc == 1 and "no such board" in err
    rc, _, err = run(loopback.main, [uri, "0", "--freq", "5000"], capsys)
    assert rc == 2 and "outside the telephone band" in err
    rc, _, err = run(loopback.main, [uri, "0", "--level", "6"], capsys)
    assert rc == 2 and "clips" in err


def test_loopback_device_stops(board, capsys):
    """The card stops ticking mid-test: an error naming the board, loopback still switched off."""
    uri, dev = board
    rc, out, err = run(loopback.main, [uri, "1"], capsys)     # nobody serves ticks
    assert rc == 1 and out == "" and "voiceboard loopback:" in err
    with open_board(uri) as b:
        assert b.channel_status(1)["loopback"] is False


# -- scan: E1 line state in China No.1 -------------------------------------------------

@pytest.mark.parametrize("rx, tx, state, direction", [
    (0b1011, 0b1011, "idle", None),
    (0b1011, 0b0011, "seized", "out"),          # we seized, no acknowledgement yet
    (0b1111, 0b0011, "seized", "out"),          # acknowledged (or cleared back)
    (0b0111, 0b0011, "answered", "out"),
    (0b0011, 0b0011, "seized", "out"),          # glare
    (0b0011, 0b1011, "seized", "in"),
    (0b0011, 0b1111, "seized", "in"),
    (0b0011, 0b0111, "answered", "in"),
    (0b1111, 0b1011, "blocked", None),          # the far end blocks
    (0b1011, 0b1111, "blocked", None),          # this end blocks
    (0b0111, 0b1011, "cleared", "out"),         # we cleared forward, the far end still answered
    (0b1011, 0b0111, "cleared", "in"),          # the far end cleared forward, we still answered
])
def test_r2_line_state_china(rx, tx, state, direction):
    got = scan.r2_line_state(rx, tx)
    assert (got["state"], got["direction"]) == (state, direction) and got["meaning"]


def test_r2_line_state_alarm_and_missing_bits():
    assert scan.r2_line_state(0b1011, 0b1011, ["LOS"])["state"] == "alarm"
    assert "LOS" in scan.r2_line_state(0b1011, 0b1011, ["LOS"])["meaning"]
    assert scan.r2_line_state(None, 0b1011)["state"] == "unknown"


def test_scan_shows_e1_line_states(board, capsys):
    """Bits the far end sends (CAS events) and the host sends (set_cas) on a live board: scan's
    line column and JSON say what each pair means."""
    uri, dev = board
    first = 8                                    # the E1 span's channels are 8-37
    with Serve(dev), open_board(uri) as host:
        host.start()
        dev.post("CAS", first + 1, 0b0011)       # the far end seized ts 2 ...
        host.set_cas(first + 1, 0b0111)          # ... and this end answered
        host.set_cas(first + 2, 0b0011)          # this end seized ts 3, no acknowledgement
        dev.post("CAS", first + 3, 0b1111)       # the far end blocks ts 4
        dev.post("CAS", first + 4, 0b0011)       # the far end seized ts 5, acknowledged
        host.set_cas(first + 4, 0b1111)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:       # the host's commands reach the card at its next tick
            if host.channel_status(first + 4)["cas_tx"] == 0b1111:
                break
            time.sleep(0.01)
        rc, out, err = run(scan.main, [uri, "--json"], capsys)
        assert rc == 0 and err == ""
        ch = json.loads(out)["boards"][0]["channels"]
        line = {i: (ch[first + i]["line"]["state"], ch[first + i]["line"]["direction"]) for i in range(6)}
        assert line == {0: ("idle", None), 1: ("answered", "in"), 2: ("seized", "out"),
                        3: ("blocked", None), 4: ("seized", "in"), 5: ("idle", None)}
        assert "line" not in ch[0]                # analog ports have no line state
        rc, out, err = run(scan.main, [uri], capsys)
        assert rc == 0 and "line (China No.1)" in out
        rows = {int(r.split("│")[1]): r for r in out.splitlines()
                if r.startswith("│") and r.split("│")[1].strip().isdigit() and len(r.split("│")) > 10}
        assert "answered in" in rows[first + 1] and "0011" in rows[first + 1] and "0111" in rows[first + 1]
        assert "seized out" in rows[first + 2] and "blocked" in rows[first + 3] and "idle" in rows[first]
        dev.set_alarms(1, {"LOS"})
        rc, out, err = run(scan.main, [uri, "--json"], capsys)
        ch = json.loads(out)["boards"][0]["channels"]
        assert ch[first + 1]["line"]["state"] == "alarm"
