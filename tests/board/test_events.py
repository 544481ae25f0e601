"""Events card -> host: every kind, its tick, status registers, alarms, counters, overflow."""
from __future__ import annotations

import pytest

from boarddrv import BadChannel, Event, EventKind, InvalidArgument, open_board

from boardkit import CAS0, FXO0, FXS0, mixed_board

K = EventKind


@pytest.fixture
def rig(name):
    """(board, dev): a started host and its device, driven tick by tick in this thread."""
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        board.start()
        yield board, dev


def _step(board, dev, fn=None):
    """One lockstep tick in which the device runs fn(dev); returns (tick, host's events)."""
    t = dev.next_tick(5)
    if fn is not None:
        fn(dev)
    dev.publish()
    assert board.wait_tick(timeout=5) == t
    evs = board.events()
    board.commit()
    return t, evs


@pytest.mark.parametrize("kind, chan, value, field, expect", [
    (K.HOOK_OFF, FXS0, 0, "hook", True),
    (K.FLASH, FXS0, 0, None, None),
    (K.RING_START, FXO0, 0, "ringing", True),
    (K.LOOP_DROP, FXO0, 0, "battery", False),
    (K.BATTERY_REVERSAL, FXO0, 0, "reversed", True),
    (K.CAS, CAS0, 0b0011, "cas_rx", 0b0011),
])
def test_each_channel_event_arrives_with_its_tick_and_updates_status(rig, kind, chan, value, field, expect):
    board, dev = rig
    t, evs = _step(board, dev, lambda d: d.post(kind, chan, value))
    assert evs == [Event(t, kind, chan, 0 if chan < 4 else 1, value)]
    st = board.channel_status(chan)
    if field:
        assert st[field] == expect
    assert st["counters"]["events"] == 1


def test_the_undo_events_restore_status(rig):
    board, dev = rig
    _step(board, dev, lambda d: (d.post(K.HOOK_OFF, FXS0), d.post(K.RING_START, FXO0),
                                  d.post(K.LOOP_DROP, FXO0), d.post(K.BATTERY_REVERSAL, FXO0)))
    t, evs = _step(board, dev, lambda d: (d.post(K.HOOK_ON, FXS0), d.post(K.RING_STOP, FXO0),
                                           d.post(K.LOOP_RESTORE, FXO0), d.post(K.BATTERY_REVERSAL, FXO0)))
    assert [e.kind for e in evs] == [K.HOOK_ON, K.RING_STOP, K.LOOP_RESTORE, K.BATTERY_REVERSAL]
    assert all(e.tick == t for e in evs)
    fxs, fxo = board.channel_status(FXS0), board.channel_status(FXO0)
    assert fxs["hook"] is False and fxs["counters"]["hook_changes"] == 2
    assert (fxo["ringing"], fxo["battery"], fxo["reversed"]) == (False, True, False)
    assert fxo["counters"]["rings"] == 1


def test_e1_cas_channels_start_idle_china_1011(rig):
    board, _ = rig
    st = board.channel_status(CAS0)
    assert st["cas_rx"] == 0b1011 and st["cas_tx"] == 0b1011
    assert board.channel_status(FXO0)["cas_rx"] is None


def test_events_posted_between_ticks_arrive_with_the_next_tick(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        board.start()
        dev.post(K.HOOK_OFF, FXS0)              # before any tick: stamped tick 0
        assert board.events() == []             # the host has not reached tick 0
        assert dev.next_tick(5) == 0
        dev.publish()
        assert board.wait_tick(timeout=5) == 0
        board.commit()
        assert dev.next_tick(5) == 1
        dev.post(K.HOOK_ON, FXS0)               # belongs to tick 1
        dev.publish()
        assert board.events() == [Event(0, K.HOOK_OFF, FXS0, 0, 0)]   # tick 1 not reached yet
        assert board.wait_tick(timeout=5) == 1
        assert board.events() == [Event(1, K.HOOK_ON, FXS0, 0, 0)]
        board.commit()


def test_alarms_post_one_event_per_changed_bit_and_show_in_span_status(rig):
    board, dev = rig
    t, evs = _step(board, dev, lambda d: d.set_alarms(1, {"LOS", "AIS"}))
    assert evs == [Event(t, K.ALARM_SET, -1, 1, 1), Event(t, K.ALARM_SET, -1, 1, 4)]
    assert board.span_status(1)["alarms"] == {"LOS", "AIS"}
    t, evs = _step(board, dev, lambda d: d.set_alarms(1, 0b1100))   # LOS clears, RAI sets, AIS stays
    assert evs == [Event(t, K.ALARM_CLEAR, -1, 1, 1), Event(t, K.ALARM_SET, -1, 1, 8)]
    assert board.span_status(1)["alarms"] == {"AIS", "RAI"}
    t, evs = _step(board, dev, lambda d: d.post(K.ALARM_CLEAR, -1, 8, span=1))
    assert evs == [Event(t, K.ALARM_CLEAR, -1, 1, 8)]
    assert board.span_status(1)["alarms"] == {"AIS"}
    assert board.span_status(0)["alarms"] == set()


def test_span_counters(rig):
    board, dev = rig
    _step(board, dev, lambda d: (d.add_counter(1, "crc4", 3), d.add_counter(1, "slips"),
                                  d.add_counter(1, "bipolar_violations", 2), d.add_counter(1, "crc4", 1)))
    assert board.span_status(1)["counters"] == {"crc4": 4, "ebit": 0, "fas": 0, "bpv": 2, "slips": 1}


def test_bad_posts_say_what_is_wrong(name):
    with mixed_board(name) as dev:
        with pytest.raises(InvalidArgument, match="for FXS channels; channel 0 is FXO"):
            dev.post(K.HOOK_OFF, FXO0)
        with pytest.raises(InvalidArgument, match="for FXO channels; channel 2 is FXS"):
            dev.post(K.RING_START, FXS0)
        with pytest.raises(InvalidArgument, match="CAS bits 16"):
            dev.post(K.CAS, CAS0, 16)
        with pytest.raises(BadChannel, match="channel 34 out of range 0..33"):
            dev.post(K.CAS, 34, 1)
        with pytest.raises(InvalidArgument, match="remove"):
            dev.post(K.BOARD_LOST, -1)
        with pytest.raises(InvalidArgument, match="reported by the library"):
            dev.post(K.EVENTS_LOST, -1)
        with pytest.raises(InvalidArgument, match="one bit"):
            dev.post(K.ALARM_SET, -1, 3, span=1)
        with pytest.raises(InvalidArgument, match="span events"):
            dev.post(K.ALARM_SET, 4, 1)
        with pytest.raises(BadChannel, match="span 5 out of range 0..1"):
            dev.set_alarms(5, 1)
        with pytest.raises(InvalidArgument, match="unknown alarm 'RED'"):
            dev.set_alarms(1, {"RED"})
        with pytest.raises(InvalidArgument, match="unknown counter 'crc'"):
            dev.add_counter(1, "crc")
        with pytest.raises(InvalidArgument, match="unknown event kind 'RINGING'"):
            dev.post("RINGING", FXO0)
        with pytest.raises(InvalidArgument, match="on span 1, not 0"):
            dev.post(K.CAS, CAS0, 1, span=0)


def test_a_full_event_queue_reports_how_many_were_lost(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        board.start()
        assert dev.next_tick(5) == 0
        for i in range(5000):
            dev.post(K.CAS, CAS0, i % 16)
        dev.publish()
        board.wait_tick(timeout=5)
        evs = board.events()
        board.commit()
        assert evs[0].kind == K.EVENTS_LOST and evs[0].value == 5000 - 4096
        assert len(evs) == 1 + 4096
        assert [e.value for e in evs[1:6]] == [0, 1, 2, 3, 4]
        assert board.stats()["events_lost"] == 904
        # Status registers stay right even for the events that were dropped.
        assert board.channel_status(CAS0)["cas_rx"] == 4999 % 16
