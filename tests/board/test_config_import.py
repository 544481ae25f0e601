"""`voiceboard config import`: DAHDI's system.conf (and chan_dahdi.conf) as the channel TOML."""
from __future__ import annotations

import subprocess
import sys

from boardkit import DeviceThread, mixed_board

CLI = [sys.executable, "-m", "boarddrv.cli", "config", "import"]

SYSTEM_CONF = """# two E1 and four analog ports
span=1,1,0,cas,hdb3,crc4
span=2,0,0,ccs,hdb3,yellow
cas=1-15,17-31:1101
bchan=32-46,48-62
dchan=47
fxsks=63-64
fxoks=65-66
fxsgs=67
alaw=1-66
loadzone=cn
defaultzone=cn
echocanceller=oslec,63-66
frobnicate=1
"""

CHAN_DAHDI = """[channels]
context=from-pstn
mfcr2_variant=cn
channel => 1-15,17-31
rxgain=-2.0
txgain=1.5
channel => 65-66
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=60)


def test_import_maps_spans_signalling_and_reports_the_rest_by_line(tmp_path):
    from boarddrv.config import load
    sysconf, chan = tmp_path / "system.conf", tmp_path / "chan_dahdi.conf"
    sysconf.write_text(SYSTEM_CONF)
    chan.write_text(CHAN_DAHDI)
    out = tmp_path / "boards.toml"
    r = run(str(sysconf), str(chan), "-o", str(out))
    assert r.returncode == 1                      # something was left out
    report = r.stderr.splitlines()
    assert (f"voiceboard config import: {sysconf}:3: "
            "span option 'yellow' (send yellow alarm) has no counterpart: ignored") in report
    assert any(f"{sysconf}:9: fxsgs=67: ground start is not supported" in x for x in report)
    assert any(f"{sysconf}:13: echocanceller" in x for x in report)
    assert any(f"{sysconf}:14: unknown keyword 'frobnicate'" in x for x in report)
    assert any(f"{chan}:2: context: a voice server setting" in x for x in report)
    cfg = load(str(out)).boards[0]
    assert cfg.uri == "dahdi://" and cfg.law == "alaw" and cfg.tone_zone == "cn"
    assert [(s.kind, s.framing, s.crc4, s.timing) for s in cfg.spans] == [
        ("e1", "cas", True, 1), ("e1", "ccs", False, 0), ("analog", None, None, 0)]
    sig = {(c.span, c.member): c for c in cfg.channels}
    assert sig[(0, 1)].signalling == "e1_cas" and sig[(0, 1)].cas_variant == "china"
    assert (0, 16) not in sig
    assert sig[(1, 16)].signalling == "dchan" and sig[(1, 17)].signalling == "bearer"
    # DAHDI's inverted words: fxsks is an FXO port, fxoks an FXS port
    assert sig[(2, 1)].signalling == "fxo_ks" and sig[(2, 3)].signalling == "fxs_ks"
    assert sig[(2, 3)].rx_gain == -2.0 and sig[(2, 3)].tx_gain == 1.5 and sig[(2, 1)].rx_gain == 0.0


def test_genconf_then_import_matches_the_board(tmp_path, name):
    """system.conf written for a board, imported with the board's layout, passes check_board."""
    from boarddrv import open_board
    from boarddrv.config import check_board, load
    from boarddrv.dahdiconf import system_conf
    dev = mixed_board(name)
    try:
        with DeviceThread(dev), open_board(f"sim://{name}") as board:
            path = tmp_path / "system.conf"
            path.write_text(system_conf([board]))
            out = tmp_path / "boards.toml"
            r = run(str(path), "--board", f"sim://{name}", "--uri", f"sim://{name}", "-o", str(out))
            assert r.returncode == 0, r.stderr
            cfg = load(str(out)).board(f"sim://{name}")
            assert check_board(cfg, board) == []
            assert len(cfg.channels) == board.info.nchan
    finally:
        dev.close()


def test_bad_input_is_a_clear_error(tmp_path):
    r = run(str(tmp_path / "missing.conf"))
    assert r.returncode == 2 and "missing.conf" in r.stderr
    bad = tmp_path / "t1.conf"
    bad.write_text("span=1,1,0,esf,b8zs\n")
    r = run(str(bad))
    assert r.returncode == 1 and f"{bad}:1: span=1,1,0,esf,b8zs: esf/b8zs is T1 framing" in r.stderr
    r = subprocess.run([sys.executable, "-m", "boarddrv.cli", "config"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr
