"""`voiceboard scan [URI]`: what boards are there, and what state is every span and channel in.

The integrator's first command after fitting a card (dahdi_scan plus
dahdi_tool's status in one): boards, spans (kind, framing, coding, CRC-4,
alarms, line counters), channels (span, timeslot, type, hook, ringing, CAS
bits, cross-connect, loopback) and the board's tick statistics.

It only attaches to a board, never starts it, so it can run while the
voice server owns the board. With ``--config FILE`` it also checks the
channel configuration against the hardware (boarddrv.config.check_board)
and shows each channel's configured signalling; any mismatch is listed
with its file, line and key and makes the exit status 1.
"""
from __future__ import annotations

import argparse
from typing import Any

from ._output import fail, print_json, print_kv, print_table

PROG = "voiceboard scan"


def _name(x: Any) -> str:
    return str(getattr(x, "name", x))


def _opt(v: Any) -> str | None:
    """'none' (an analog span's framing) and empty values are shown as absent."""
    s = _name(v) if v is not None else ""
    return None if s in ("", "none", "NONE") else s


def _abcd(v: Any) -> str:
    return "-" if v is None or int(v) < 0 else format(int(v) & 15, "04b")


# China No.1 line signalling (digital, Q.421 style): the A and B bits each end sends; C and D are
# fixed at 11. Forward = the end that seized, backward = the other end.
CN_IDLE, CN_SEIZE, CN_ACK, CN_ANSWER = 0b10, 0b00, 0b11, 0b01   # AB; clear-back and blocked = 11 as ack


def r2_line_state(rx: int | None, tx: int | None, alarms: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """What an E1 channel's ABCD bits (received from the far end, sent by this end) mean in China No.1.

    `state`: idle | seized | answered | cleared | blocked | alarm | unknown; `direction`: "in" (the far
    end seized), "out" (this end seized) or None; `meaning`: the words for it. The bits alone cannot
    tell a seize acknowledgement from a clear-back (both 11 backward), nor a blocking from the moment
    a clear-forward waits for the other end's idle: the labels say both where that is so.
    """
    if alarms:
        return {"state": "alarm", "direction": None,
                "meaning": f"span alarm {','.join(alarms)}: the received bits mean nothing"}
    if rx is None or tx is None or rx < 0 or tx < 0:
        return {"state": "unknown", "direction": None, "meaning": "no bits"}
    rab, tab = (int(rx) >> 2) & 3, (int(tx) >> 2) & 3
    if rab == CN_IDLE and tab == CN_IDLE:
        return {"state": "idle", "direction": None, "meaning": "idle both ways"}
    if tab == CN_SEIZE:                          # this end seized: we are the forward end
        meaning = {CN_IDLE: ("seized", "seized by this end, waiting for the seize acknowledgement"),
                   CN_ACK: ("seized", "seized by this end, acknowledged (register signalling) or cleared back"),
                   CN_ANSWER: ("answered", "outgoing call answered"),
                   CN_SEIZE: ("seized", "both ends seized (glare)")}[rab]
        return {"state": meaning[0], "direction": "out", "meaning": meaning[1]}
    if rab == CN_SEIZE:                          # the far end seized: we are the backward end
        meaning = {CN_IDLE: ("seized", "seized by the far end, not acknowledged yet"),
                   CN_ACK: ("seized", "seized by the far end, acknowledged (register signalling) or cleared back"),
                   CN_ANSWER: ("answered", "incoming call answered")}[tab]
        return {"state": meaning[0], "direction": "in", "meaning": meaning[1]}
    if tab == CN_IDLE:                           # we send forward idle, the far end backward 11 or 01
        if rab == CN_ACK:
            return {"state": "blocked", "direction": None,
                    "meaning": "blocked by the far end (or this end's clear-forward waiting for idle)"}
        return {"state": "cleared", "direction": "out",
                "meaning": "cleared forward by this end, the far end still answered"}
    if rab == CN_IDLE:                           # the far end sends idle, we backward 11 or 01
        if tab == CN_ACK:
            return {"state": "blocked", "direction": None,
                    "meaning": "blocked by this end (or the far end's clear-forward waiting for idle)"}
        return {"state": "cleared", "direction": "in",
                "meaning": "cleared forward by the far end, this end still answered"}
    return {"state": "unknown", "direction": None, "meaning": "no China No.1 meaning"}


def describe(board: Any) -> dict[str, Any]:
    """Everything scan shows about one open board, as plain JSON-able data."""
    info = board.info
    spans = []
    for s in board.spans:
        st = board.span_status(s.index)
        spans.append({
            "index": s.index, "kind": _name(s.kind), "nchan": s.nchan, "first_chan": s.first_chan,
            "framing": _opt(s.framing),
            "coding": _opt(s.coding),
            "crc4": bool(s.crc4) if _name(s.kind) == "e1" else None,
            "timing": s.timing,
            "alarms": sorted(st.get("alarms", ())),
            "counters": {k: int(v) for k, v in st.get("counters", {}).items()},
        })
    channels = []
    for c in board.channels:
        st = board.channel_status(c.index)
        row = {"index": c.index, "span": c.span, "timeslot": c.timeslot, "type": _name(c.type)}
        for k, v in st.items():
            if k == "counters":
                row["counters"] = {ck: int(cv) for ck, cv in v.items()}
            else:
                row[k] = v if isinstance(v, (bool, str)) or v is None else int(v)
        if row["type"] == "E1_CAS":
            alarms: list[str] = next((s["alarms"] for s in spans if s["index"] == c.span), [])
            row["line"] = r2_line_state(row.get("cas_rx"), row.get("cas_tx"), alarms)
        channels.append(row)
    return {
        "uri": info.uri, "name": info.name, "driver": info.driver, "law": _name(info.law),
        "clock": _name(getattr(info, "clock", "")) or None,
        "nspans": info.nspans, "nchan": info.nchan,
        "spans": spans, "channels": channels,
        "stats": {k: int(v) for k, v in board.stats().items()},
    }


def _hook(ch: dict[str, Any]) -> str:
    if ch["type"] not in ("FXO", "FXS"):
        return "-"
    return "offhook" if ch.get("hook") else "onhook"


def _line(ch: dict[str, Any]) -> str:
    """The table's line column: state, direction, e.g. "answered in"."""
    line = ch.get("line")
    if line is None:
        return "-"
    return str(line["state"]) + (f" {line['direction']}" if line["direction"] else "")


def show(desc: dict[str, Any], configured: dict[int, str] | None = None) -> None:
    print_kv(f"board {desc['uri']}", [
        ("name", desc["name"]), ("driver", desc["driver"]), ("law", desc["law"]),
        ("clock", desc["clock"]), ("spans", desc["nspans"]), ("channels", desc["nchan"]),
    ])
    counter_names = sorted({k for s in desc["spans"] for k in s["counters"]})
    print_table(f"spans of {desc['uri']}",
                ["span", "kind", "channels", "framing", "coding", "crc4", "timing", "alarms",
                 *counter_names],
                [(s["index"], s["kind"], f"{s['first_chan']}-{s['first_chan'] + s['nchan'] - 1}",
                  s["framing"] or "-", s["coding"] or "-",
                  "-" if s["crc4"] is None else ("on" if s["crc4"] else "off"),
                  s["timing"], ",".join(s["alarms"]) or "OK",
                  *(s["counters"].get(k, 0) for k in counter_names))
                 for s in desc["spans"]],
                justify_right=["span", "timing", *counter_names])
    e1 = any(c["type"] == "E1_CAS" for c in desc["channels"])
    cols = ["chan", "span", "ts", "type", "hook", "ring", "cas rx", "cas tx",
            *(["line (China No.1)"] if e1 else []), "xconnect", "loopback"]
    if configured is not None:
        cols.append("configured")
    rows = []
    for c in desc["channels"]:
        xc = c.get("xconnect", -1)
        row = [c["index"], c["span"], c["timeslot"], c["type"], _hook(c),
               "yes" if c.get("ringing") else "-",
               _abcd(c.get("cas_rx")) if c["type"] == "E1_CAS" else "-",
               _abcd(c.get("cas_tx")) if c["type"] == "E1_CAS" else "-",
               *([_line(c)] if e1 else []),
               "-" if xc is None or xc < 0 else xc, "ON" if c.get("loopback") else "-"]
        if configured is not None:
            row.append(configured.get(c["index"], "(not configured)"))
        rows.append(row)
    print_table(f"channels of {desc['uri']}", cols, rows, justify_right=["chan", "span", "ts"])
    print_kv(f"stats of {desc['uri']}", list(desc["stats"].items()))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("uri", metavar="URI", nargs="?",
                    help="board to show (default: every board boarddrv.list_boards() finds)")
    ap.add_argument("--config", metavar="FILE", help="check this channel config (TOML) against the boards")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)

    from boarddrv import BoardError, BoardLost, NoSuchBoard, list_boards, open_board
    from boarddrv.config import channel_map, check_board
    from boarddrv.config import load as load_config
    from boarddrv.tomlconfig import ConfigError

    system = None
    if args.config:
        try:
            system = load_config(args.config)
        except ConfigError as exc:
            return fail(PROG, str(exc))

    if args.uri:
        uris = [args.uri]
    else:
        uris = list(list_boards())
        if not uris:
            return fail(PROG, "no boards found (simulated boards appear in /dev/shm/voiceboard.*: "
                              "is hwsim running?)")

    boards: list[dict[str, Any]] = []
    problems: list[str] = []
    for uri in uris:
        try:
            with open_board(uri) as board:
                desc = describe(board)
                if system is not None:
                    desc["config"] = _check(system, uri, board, check_board, channel_map, problems)
        except BoardError as exc:
            if not args.uri and isinstance(exc, (NoSuchBoard, BoardLost)):
                continue        # listed a moment ago, gone now (its simulator stopped)
            return fail(PROG, str(exc))
        boards.append(desc)
    if not boards:
        return fail(PROG, "no boards found (the boards listed vanished while scanning)")

    if args.json:
        out: dict[str, Any] = {"boards": boards}
        if system is not None:
            out["config_problems"] = problems
        print_json(out)
    else:
        for desc in boards:
            configured = None
            if "config" in desc and desc["config"] is not None:
                configured = {int(k): v for k, v in desc["config"]["channels"].items()}
            show(desc, configured)
    if problems:
        for p in problems:
            fail(PROG, p)
        return 1
    return 0


def _check(system: Any, uri: str, board: Any, check_board: Any, channel_map: Any,
           problems: list[str]) -> dict[str, Any] | None:
    """Config check of one board; appends located messages to `problems`."""
    try:
        bcfg = system.board(uri)
    except KeyError as exc:
        problems.append(str(exc.args[0]))
        return None
    errs = check_board(bcfg, board)
    problems.extend(str(e) for e in errs)
    return {"file": bcfg.file, "problems": [str(e) for e in errs],
            "channels": {str(k): v.signalling for k, v in sorted(channel_map(bcfg, board).items())}}
