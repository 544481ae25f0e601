"""The event journal (voiceserver.core.journal) on a real SQLite file: resume, restarts, kills, gaps."""
from __future__ import annotations

import sqlite3

import pytest

from voiceserver.core import journal as journal_mod
from voiceserver.core.events import EventBus, ServerEventKind
from voiceserver.core.journal import EventJournal, JournalError, read_since

pytestmark = pytest.mark.unit

K = ServerEventKind


def start(path, server="pbx1", **kw) -> tuple[EventBus, EventJournal]:
    bus = EventBus()
    j = EventJournal(str(path), server, **kw)
    bus.start_at(j.open())
    bus.subscribe(j, first=True)
    return bus, j


def publish(bus: EventBus, n: int, call: str = "c1") -> list[int]:
    return [bus.publish(i, K.CALL_DIGIT, chan=1, call_id=call, digit=str(i % 10), masked=False).seq
            for i in range(n)]


def settle(j: EventJournal) -> None:
    assert j.drain(), "the journal's writer did not commit in 10 s"


def publish_then_killed(bus: EventBus, j: EventJournal, n: int) -> list[int]:
    """Publish `n` events in a loop turn that never ends: the process dies first."""
    import asyncio
    seqs: list[int] = []

    async def turn() -> None:
        seqs.extend(publish(bus, n))
        asyncio.get_running_loop().stop()          # the kill: the turn's end never comes
    loop = asyncio.new_event_loop()
    loop.create_task(turn())
    loop.run_forever()
    loop.close()
    j._queue.put(None)                             # the writer thread ends with the process
    return seqs


def test_every_event_comes_back_in_order_with_its_time_and_fields(tmp_path):
    bus, j = start(tmp_path / "events.db")
    seqs = publish(bus, 5) + [bus.publish(9, K.CALL_END, chan=1, call_id="c1", reason="caller hung up").seq]
    j.close()
    got = read_since(str(tmp_path / "events.db"), "pbx1", 0)
    assert [e["seq"] for e in got] == seqs == [1, 2, 3, 4, 5, 6]
    assert got[-1]["kind"] == "call.end" and got[-1]["reason"] == "caller hung up" and got[-1]["chan"] == 1
    assert all(e["time"].endswith("Z") and e["call_id"] == "c1" for e in got)
    assert [e["seq"] for e in read_since(str(tmp_path / "events.db"), "pbx1", 4)] == [5, 6]
    assert read_since(str(tmp_path / "events.db"), "pbx1", 6) == []


def test_a_restart_continues_after_every_number_handed_out_and_a_clean_stop_leaves_no_gap(tmp_path):
    db = tmp_path / "events.db"
    bus, j = start(db)
    first = publish(bus, 3)
    j.close()
    bus, j = start(db)
    second = publish(bus, 2)
    j.close()
    assert second[0] == journal_mod.RESERVE + 1 and second[0] > first[-1]
    got = read_since(str(db), "pbx1", first[-1])
    assert [e["seq"] for e in got] == second          # the skipped numbers were never used: no gap


def test_a_killed_run_leaves_one_gap_for_what_it_did_not_store(tmp_path):
    db = tmp_path / "events.db"
    bus, j = start(db)
    stored = publish(bus, 5)
    settle(j)
    lost = publish_then_killed(bus, j, 3)              # buffered, never written
    bus, j2 = start(db)
    after = publish(bus, 2)
    j2.close()
    got = read_since(str(db), "pbx1", 0)
    assert [e["seq"] for e in got if e["seq"] is not None] == stored + after
    gaps = [e for e in got if e["kind"] == "journal.gap"]
    assert len(gaps) == 1 and (gaps[0]["from"], gaps[0]["to"]) == (lost[0], after[0] - 1)
    assert "killed" in gaps[0]["reason"]
    assert [e["kind"] for e in got].index("journal.gap") == len(stored)      # in its place
    # a reader that had seen one of the lost events (it was published) gets the rest of the gap
    got = read_since(str(db), "pbx1", lost[1])
    assert (got[0]["kind"], got[0]["from"]) == ("journal.gap", lost[1] + 1) and got[1]["seq"] == after[0]


def test_numbers_are_reserved_before_the_bus_passes_them(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "RESERVE", 4)
    db = tmp_path / "events.db"
    bus, j = start(db)
    seqs = publish_then_killed(bus, j, 11)              # crosses two reservations, stores nothing
    reserved = sqlite3.connect(db).execute("SELECT reserved FROM journal_servers").fetchone()[0]
    assert reserved >= seqs[-1]
    _, j2 = start(db)
    assert j2.first_seq > seqs[-1]
    j2.close()


def test_what_is_older_than_the_journal_keeps_is_one_gap(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "PRUNE_EVERY", 1)
    db = tmp_path / "events.db"
    bus, j = start(db, keep=10)
    for _ in range(30):
        publish(bus, 1)
        settle(j)
    j.close()
    got = read_since(str(db), "pbx1", 3)
    assert got[0]["kind"] == "journal.gap" and (got[0]["from"], got[0]["to"]) == (4, 20)
    assert "older" in got[0]["reason"]
    assert [e["seq"] for e in got[1:]] == list(range(21, 31))
    assert [e["seq"] for e in read_since(str(db), "pbx1", 25)] == [26, 27, 28, 29, 30]


def test_a_limit_bounds_one_read(tmp_path):
    bus, j = start(tmp_path / "events.db")
    publish(bus, 50)
    j.close()
    got = read_since(str(tmp_path / "events.db"), "pbx1", 10, limit=7)
    assert [e["seq"] for e in got] == list(range(11, 18))


def test_two_servers_share_a_file_and_keep_their_own_numbers(tmp_path):
    db = tmp_path / "events.db"
    east, je = start(db, "east")
    west, jw = start(db, "west")
    a = publish(east, 3, "e1")
    b = publish(west, 4, "w1")
    je.close()
    jw.close()
    assert a == [1, 2, 3] and b == [1, 2, 3, 4]
    assert {e["call_id"] for e in read_since(str(db), "east", 0)} == {"e1"}
    assert [e["seq"] for e in read_since(str(db), "west", 2)] == [3, 4]


def test_a_journal_that_cannot_be_opened_says_which_file(tmp_path):
    (tmp_path / "events.db").mkdir()
    with pytest.raises(JournalError, match="events.db"):
        EventJournal(str(tmp_path / "events.db"), "pbx1").open()
    with pytest.raises(JournalError, match="missing.db"):
        read_since(str(tmp_path / "missing.db"), "pbx1", 0)


def test_the_bus_never_numbers_backwards():
    bus = EventBus()
    bus.publish(1, K.CALL_END, chan=0)
    with pytest.raises(ValueError, match="only go up"):
        bus.start_at(1)
