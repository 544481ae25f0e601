"""Opening boards: URIs, errors that say what and where, layout, busy and stale boards."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from boarddrv import (
    BadChannel,
    BoardBusy,
    BoardError,
    ChannelType,
    InvalidArgument,
    NoSuchBoard,
    UnknownScheme,
    list_boards,
    open_board,
)
from boarddrv.simdev import ChanSpec, SimDevice, SpanSpec

from boardkit import mixed_board


def test_import_needs_no_board_and_no_native_code():
    code = ("import sys, boarddrv; "
            "assert 'boarddrv._vbcore' not in sys.modules, 'native code loaded at import'; "
            "print(boarddrv.EventKind.CAS.name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "CAS"


def test_missing_board_names_the_file_and_hints_at_hwsim(name):
    with pytest.raises(NoSuchBoard) as ei:
        open_board(f"sim://{name}")
    msg = str(ei.value)
    assert f"sim://{name}" in msg and f"/dev/shm/voiceboard.{name}" in msg and "hwsim" in msg


@pytest.mark.parametrize("uri, exc, words", [
    ("hotline", UnknownScheme, ["no scheme", "hotline"]),
    ("foo://x", UnknownScheme, ["'foo'", "foo://x"]),
    ("dahdi:///dev/dahdi", NoSuchBoard, ["/dev/dahdi/ctl", "modules are not loaded", "docs/boards.md"]),
    ("dahdi://", NoSuchBoard, ["/dev/dahdi/ctl", "modules are not loaded"]),
    ("dahdi://elsewhere", InvalidArgument, ["dahdi://elsewhere", "expected dahdi://"]),
    ("sim://", InvalidArgument, ["bad board name", "sim://"]),
    ("sim://a/b", InvalidArgument, ["bad board name", "sim://a/b"]),
    ("sim://" + "x" * 60, InvalidArgument, ["bad board name"]),
])
def test_bad_uris_get_typed_errors(uri, exc, words):
    with pytest.raises(exc) as ei:
        open_board(uri)
    assert isinstance(ei.value, BoardError)
    for w in words:
        assert w in str(ei.value)


def test_uri_must_be_a_string():
    with pytest.raises(InvalidArgument, match="string"):
        open_board(b"sim://x")  # type: ignore[arg-type]


def test_info_spans_channels_describe_the_card(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        info = board.info
        assert (info.name, info.uri, info.driver, info.law, info.nspans, info.nchan, info.clock) == \
            (name, f"sim://{name}", "sim", "alaw", 2, 34, "lockstep")
        a, e = board.spans
        assert (a.kind, a.nchan, a.first_chan, a.framing, a.coding, a.crc4) == ("analog", 4, 0, "none", "none", False)
        assert (e.kind, e.nchan, e.first_chan, e.framing, e.coding) == ("e1", 30, 4, "cas", "hdb3")
        types = [c.type for c in board.channels]
        assert types[:4] == [ChannelType.FXO, ChannelType.FXO, ChannelType.FXS, ChannelType.FXS]
        assert set(types[4:]) == {ChannelType.E1_CAS}
        assert [c.timeslot for c in board.channels[:4]] == [1, 2, 3, 4]
        # E1 CAS: 30 channels on TS1-15 and TS17-31, TS16 carries the signalling.
        assert [c.timeslot for c in board.channels[4:]] == list(range(1, 16)) + list(range(17, 32))
        assert all(c.span == 1 for c in board.channels[4:])
        assert board.block == 0


def test_ccs_span_puts_the_d_channel_on_ts16(name):
    chans = [ChanSpec(ChannelType.E1_BEARER, 0)] * 15 + [ChanSpec(ChannelType.E1_DCHAN, 0)] \
        + [ChanSpec(ChannelType.E1_BEARER, 0)] * 15
    with SimDevice.create(name, spans=[SpanSpec(kind="e1", nchan=31, framing="ccs", crc4=True, timing=1)],
                          channels=chans) as dev, open_board(dev.uri) as board:
        assert board.spans[0].crc4 is True and board.spans[0].timing == 1
        assert board.channels[15].type == ChannelType.E1_DCHAN and board.channels[15].timeslot == 16
        assert sorted(c.timeslot for c in board.channels) == list(range(1, 32))


def test_default_channels_follow_the_span_kind(name):
    with SimDevice.create(name, spans=[SpanSpec(kind="analog", nchan=3)], law="ulaw") as dev, \
            open_board(dev.uri) as board:
        assert [c.type for c in board.channels] == [ChannelType.FXO] * 3
        assert board.info.law == "ulaw"


@pytest.mark.parametrize("spans, chans, words", [
    ([SpanSpec(kind="analog", nchan=2)], [ChanSpec(ChannelType.FXO, 0)], ["spans declare 2 channels but 1 are given"]),
    ([SpanSpec(kind="analog", nchan=1)], [ChanSpec(ChannelType.E1_CAS, 0)], ["channel 0", "analog span"]),
    ([SpanSpec(kind="e1", nchan=2)], [ChanSpec(ChannelType.E1_CAS, 0, 16)] * 2, ["TS16"]),
    ([SpanSpec(kind="e1", nchan=2)], [ChanSpec(ChannelType.E1_CAS, 0, 5)] * 2, ["timeslot 5 used twice"]),
    ([SpanSpec(kind="e1", nchan=32)], None, ["span 0", "32 channels", "1..31"]),
    ([SpanSpec(kind="e1", nchan=1, framing="ccs")], [ChanSpec(ChannelType.E1_CAS, 0)], ["CCS"]),
    ([SpanSpec(kind="isdn", nchan=1)], None, ["kind 'isdn'"]),
    ([SpanSpec(kind="analog", nchan=1, framing="cas")], None, ["analog spans have no framing"]),
    ([SpanSpec(kind="analog", nchan=1), SpanSpec(kind="analog", nchan=1)],
     [ChanSpec(ChannelType.FXO, 1), ChanSpec(ChannelType.FXO, 0)], ["channel 0", "span by span"]),
])
def test_bad_device_specs_say_which_entry(name, spans, chans, words):
    with pytest.raises(InvalidArgument) as ei:
        SimDevice.create(name, spans=spans, channels=chans)
    for w in words:
        assert w in str(ei.value)
    assert not os.path.exists(f"/dev/shm/voiceboard.{name}")


def test_bad_law_and_clock(name):
    with pytest.raises(InvalidArgument, match="law 'mulaw'"):
        SimDevice.create(name, spans=[SpanSpec()], law="mulaw")
    with pytest.raises(InvalidArgument, match="clock 'fast'"):
        SimDevice.create(name, spans=[SpanSpec()], clock="fast")


def test_a_name_served_by_a_live_device_is_busy(name):
    with mixed_board(name):
        with pytest.raises(BoardBusy, match=f"'{name}' is already served by pid {os.getpid()}"):
            mixed_board(name)


def test_one_host_at_a_time(name):
    with mixed_board(name) as dev, open_board(dev.uri) as a, open_board(dev.uri) as b:
        a.start()
        with pytest.raises(BoardBusy, match=f"{dev.uri} already has a host"):
            b.start()
        # Opening without start() (what scan does) is fine while a host runs.
        assert b.channel_status(0)["hook"] is False
        a.close()
        b.start(block=80)
        assert b.block == 80


def test_start_checks_the_block(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        with pytest.raises(InvalidArgument, match="block 100 .*80, 160 or 320"):
            board.start(block=100)
        board.start(block=320)
        with pytest.raises(InvalidArgument, match="already started"):
            board.start()


def test_list_boards_finds_live_boards_only(name):
    assert f"sim://{name}" not in list_boards()
    with mixed_board(name) as dev:
        assert dev.uri in list_boards()
    assert f"sim://{name}" not in list_boards()


def test_span_and_channel_numbers_are_checked(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        with pytest.raises(BadChannel, match=f"channel 40 out of range 0..33 on sim://{name}"):
            board.channel_status(40)
        with pytest.raises(BadChannel, match=f"channel -1 out of range 0..33 on sim://{name}"):
            board.channel_status(-1)
        with pytest.raises(BadChannel, match=f"span 2 out of range 0..1 on sim://{name}"):
            board.span_status(2)
        with pytest.raises(BadChannel, match="channel 99999999999 out of range|channel 2147483647 out of range"):
            board.channel_status(99999999999)
        with pytest.raises(InvalidArgument, match="channel must be an integer"):
            board.channel_status("3")  # type: ignore[arg-type]


def test_closed_board_says_so(name):
    with mixed_board(name) as dev:
        board = open_board(dev.uri)
        board.close()
        board.close()   # twice is fine
        with pytest.raises(BoardError, match="closed"):
            board.stats()


def test_unclosed_board_warns(name):
    import gc
    with mixed_board(name) as dev:
        board = open_board(dev.uri)
        with pytest.warns(ResourceWarning, match="was not closed"):
            del board
            gc.collect()


def test_junk_in_the_way_is_reported_then_replaced(name):
    path = f"/dev/shm/voiceboard.{name}"
    with open(path, "wb") as f:
        f.write(b"not a board" * 1000)
    try:
        with pytest.raises(BoardError, match=f"sim://{name}.*is not a voiceboard v\\d+ board"):
            open_board(f"sim://{name}")
        with mixed_board(name) as dev, open_board(dev.uri) as board:
            assert board.info.nchan == 34
        assert not os.path.exists(path)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def test_half_made_boards_of_dead_creators_are_swept(name):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    tmp = f"/dev/shm/voiceboard-tmp.{name}.{int(dead.stdout)}.1"
    open(tmp, "wb").close()
    try:
        with mixed_board(name):
            assert not os.path.exists(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def test_rx_after_close_is_an_error_not_a_crash(name):
    with mixed_board(name) as dev:
        board = open_board(dev.uri)
        board.start()
        dev.next_tick(5)
        dev.publish()
        board.wait_tick(timeout=5)
        board.close()
        with pytest.raises(BoardError, match="closed"):
            _ = board.rx


def test_a_corrupt_board_file_is_refused(name):
    import mmap
    import struct
    with mixed_board(name) as dev:
        path = f"/dev/shm/voiceboard.{name}"
        with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
            # header: magic u64, version u32, header_size u32, total u64, name[64], law, clock, nspans, nchan
            off = 8 + 4 + 4 + 8 + 64 + 4 + 4 + 4
            good = m[off:off + 4]
            m[off:off + 4] = struct.pack("<i", 5000)
            try:
                with pytest.raises(BoardError, match="is corrupt: span or channel count out of range"):
                    open_board(dev.uri)
            finally:
                m[off:off + 4] = good
        with open_board(dev.uri) as board:
            assert board.info.nchan == 34
