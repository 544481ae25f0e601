"""Recording rules: windows, numbers, compact lists, sampling, decisions, keep, recheck, pausing."""
from __future__ import annotations

import datetime as dt
import textwrap
from zoneinfo import ZoneInfo

import pytest

from boarddrv.tomlconfig import ConfigError
from voiceserver.ivr.blacklist import NumberingPlan
from voiceserver.recording.rules import CallFacts, PauseChange, loads_rules, sample_point

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC


def rules(text: str = "", plan: NumberingPlan | None = None):
    return loads_rules(textwrap.dedent(text), "rules.toml", plan)


def at(y, mo, d, h, mi=0, tz=SH) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz)


def call(**kw) -> CallFacts:
    kw.setdefault("call_id", "c1")
    kw.setdefault("board", "hotline")
    kw.setdefault("chan", 0)
    return CallFacts(**kw)


MON = at(2026, 11, 23, 10)  # 2026-11-23 is a Monday


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        rules(text)
    return exc.value


# ------------------------------------------------------------------ windows
WINDOWS = """\
    holidays = ["2026-10-01..2026-10-07"]
    workdays = [2026-10-10]
    [[window]]
    name = "office"
    days = "mon-fri"
    from = "09:00"
    to = "18:00"
    [[window]]
    name = "late"
    days = "fri"
    from = "22:00"
    to = "02:00"
"""


def test_windows_are_half_open_and_say_which_window():
    r = rules(WINDOWS)
    assert not r.decide(call(), at(2026, 11, 23, 8, 59)).record
    d = r.decide(call(), at(2026, 11, 23, 9, 0))
    assert d.record and d.checks[[c.stage for c in d.checks].index("window")].rule.name == "office"
    assert not r.decide(call(), at(2026, 11, 23, 18, 0)).record
    out = r.decide(call(), at(2026, 11, 23, 18, 0))
    assert out.reason == "Mon 2026-11-23 18:00 Asia/Shanghai is outside every window"
    assert out.rule.key == "window" and out.rule.line == 3


def test_window_across_midnight_belongs_to_the_day_it_starts():
    r = rules(WINDOWS)
    # Friday 2026-11-27 22:00 .. Saturday 02:00
    assert r.decide(call(), at(2026, 11, 27, 23, 30)).record
    assert r.decide(call(), at(2026, 11, 28, 1, 59)).record
    assert not r.decide(call(), at(2026, 11, 28, 2, 0)).record
    # Thursday night is not in it
    assert not r.decide(call(), at(2026, 11, 27, 1, 0)).record


def test_holidays_close_windows_and_workdays_open_them():
    r = rules(WINDOWS)
    d = r.decide(call(), at(2026, 10, 1, 10))       # Thursday, National Day
    assert not d.record and d.rule.key == "holidays" and "is a holiday" in d.reason
    # Friday 2026-10-02 is a holiday: its late window does not open...
    assert not r.decide(call(), at(2026, 10, 2, 23)).record
    # ...but Thursday 2026-10-08 is not, and Saturday 2026-10-10 is a make-up workday (as Monday)
    assert r.decide(call(), at(2026, 10, 8, 10)).record
    assert r.decide(call(), at(2026, 10, 10, 10)).record
    assert not r.decide(call(), at(2026, 10, 11, 10)).record   # Sunday


def test_windows_use_the_rules_timezone_whatever_the_instant_says():
    shanghai = rules(WINDOWS)
    assert shanghai.timezone == "Asia/Shanghai"              # the default
    assert shanghai.decide(call(), at(2026, 11, 23, 1, 0, UTC)).record       # 09:00 in Shanghai
    assert not shanghai.decide(call(), at(2026, 11, 23, 0, 59, UTC)).record  # 08:59
    london = rules('timezone = "Europe/London"\n' + textwrap.dedent(WINDOWS))
    assert not london.decide(call(), at(2026, 11, 23, 10, 0, SH)).record    # 02:00 in London
    assert london.decide(call(), at(2026, 11, 23, 17, 30, SH)).record       # 09:30 in London
    d = london.decide(call(), at(2026, 11, 23, 9, 0, UTC))
    window = next(c for c in d.checks if c.stage == "window")
    assert window.reason == ("Mon 2026-11-23 09:00 Europe/London is in window 'office' "
                             "(mon,tue,wed,thu,fri 09:00-18:00)")
    with pytest.raises(ValueError, match="aware"):
        london.decide(call(), dt.datetime(2026, 11, 23, 10))


def test_no_windows_means_any_time_except_holidays():
    r = rules('holidays = [2026-01-01]')
    assert r.decide(call(), at(2026, 11, 23, 3)).record
    d = r.decide(call(), at(2026, 1, 1, 12))
    assert not d.record and "holiday" in d.reason


# ------------------------------------------------------------------ numbers
def test_numbers_compare_in_normal_form_on_either_side():
    r = rules('[exclude]\nnumbers = ["+86 10 6512 3456"]\n')
    for written in ("01065123456", "1065123456", "+861065123456", "00861065123456",
                    "+86 010 6512 3456"):
        assert not r.decide(call(caller=written), MON).record, written
        assert not r.decide(call(called=written, caller="95588"), MON).record, written
    assert r.decide(call(caller="01065123457"), MON).record
    # a local 8-digit caller ID is in Beijing only when the plan says so
    assert r.decide(call(caller="65123456"), MON).record
    beijing = rules('[exclude]\nnumbers = ["010 6512 3456"]\n', NumberingPlan(local_area="10"))
    assert not beijing.decide(call(caller="65123456"), MON).record


def test_prefix_and_wildcard_patterns():
    r = rules('[exclude]\nnumbers = ["400*", "1380013800?", "010 8888 *"]\n')
    assert not r.decide(call(caller="4008001234"), MON).record
    assert not r.decide(call(caller="13800138005"), MON).record
    assert r.decide(call(caller="138001380055"), MON).record        # ? is exactly one digit
    assert r.decide(call(caller="1380013800"), MON).record
    assert not r.decide(call(caller="+86 10 8888 1234"), MON).record
    assert r.decide(call(caller="8888123"), MON).record
    # prefix patterns are not taken for local numbers: "6*" is not "106*"
    p = rules('[exclude]\nnumbers = ["6*"]\n', NumberingPlan(local_area="10"))
    assert not p.decide(call(caller="6123"), MON).record


def test_caller_and_called_sides():
    r = rules('[exclude]\ncallers = ["95588"]\ncalled = ["12345"]\n')
    assert not r.decide(call(caller="95588"), MON).record
    assert r.decide(call(called="95588", caller="13812345678"), MON).record
    assert not r.decide(call(called="12345"), MON).record
    assert r.decide(call(caller="12345"), MON).record


def test_anonymous_and_garbled_caller_ids_match_no_pattern():
    r = rules('[never]\nnumbers = ["*"]\n')
    assert r.decide(call(caller=None), MON).record
    assert r.decide(call(caller="P"), MON).record    # "private": not a number
    assert not r.decide(call(caller="1"), MON).record


def test_bad_number_patterns_are_located():
    e = error('[exclude]\nnumbers = ["400*", "13x*"]\n')
    assert str(e).startswith("rules.toml:2: key 'exclude.numbers[1]': ")
    assert "not a phone number" in e.message


# --------------------------------------------------- compact ranges, negation
def test_agents_compact_ranges_with_negation():
    r = rules('[exclude]\nagents = "1001-1005,!1003,alice"\n')
    out = {a: r.decide(call(agent=a), MON).record for a in
           ("1000", "1001", "1002", "1003", "1005", "1006", "alice", "bob")}
    assert out == {"1000": True, "1001": False, "1002": False, "1003": True, "1005": False,
                   "1006": True, "alice": False, "bob": True}
    lst = rules('[exclude]\nagents = ["1001-1003", "2001-2002,!2002"]\n')
    assert [lst.decide(call(agent=a), MON).record for a in ("1002", "2001", "2002")] == \
        [False, False, True]


def test_channels_single_ranges_spans_boards_and_negation():
    r = rules('[exclude]\nchannels = ["hotline:0-3,!2", "e1site:span2", "pbx", "tiny:7"]\n')
    def rec(board, chan, span=None):
        return r.decide(call(board=board, chan=chan, span=span), MON).record
    assert [rec("hotline", n) for n in range(6)] == [False, False, True, False, True, True]
    assert not rec("e1site", 70, 2) and rec("e1site", 40, 1) and rec("e1site", 70, None)
    assert not rec("pbx", 0) and not rec("pbx", 99)
    assert not rec("tiny", 7) and rec("tiny", 6)
    d = r.decide(call(board="e1site", chan=70, span=2), MON)
    assert d.reason == "channel e1site:70 (span 2) is in exclude.channels (e1site:span2)"


@pytest.mark.parametrize("text,where,msg", [
    ('[exclude]\nagents = "1005-1001"\n', "exclude.agents", "runs backwards"),
    ('[exclude]\nagents = "1001,,1002"\n', "exclude.agents", "empty item"),
    ('[exclude]\nagents = "10 01"\n', "exclude.agents", "bad agent"),
    ('[exclude]\nagents = "1001-"\n', "exclude.agents", "bad agent '1001-'"),
    ('[exclude]\nagents = "01001-01005"\n', "exclude.agents", "no leading zero (write 1001"),
    ('[exclude]\nagents = ["a.b@site"]\n', "exclude.agents[0]", "bad agent 'a.b@site'"),
    ('[exclude]\nchannels = ["0-3"]\n', "exclude.channels[0]", "name the board"),
    ('[exclude]\nchannels = ["hotline:3-x"]\n', "exclude.channels[0]", "expected N or N-M"),
    ('[exclude]\nagent = "1001"\n', "exclude.agent", "did you mean 'agents'?"),
    ('[never]\nchannels = "hotline"\n', "never.channels", "unknown key"),
    ('formt = "wav-pcm16"\n', "formt", "did you mean 'format'?"),
    ('format = "mp3"\n', "format", "expected one of wav-pcm16, wav-alaw"),
    ('min_seconds = 10\nmax_seconds = 5\n', "min_seconds", "not below max_seconds"),
    ('timezone = "Mars/Base"\n', "timezone", "unknown timezone"),
    ('[[window]]\ndays = "mon-fry"\n', "window[0].days", "unknown day 'fry'"),
    ('[[window]]\nfrom = "9:00"\n', "window[0].from", "HH:MM"),
    ('[[window]]\nfrom = "09:00"\nto = "09:00"\n', "window[0].to", "empty window"),
    ('[sampling]\ninbound = 130\n', "sampling.inbound", "between 0 and 100"),
    ('[select]\ndirections = ["incoming"]\n', "select.directions[0]", "expected one of"),
    ('[[pause_dtmf]]\nstart = "*x"\n', "pause_dtmf[0].start", "DTMF keys"),
    ('holidays = ["2026-13-01"]\n', "holidays[0]", "2026-10-01"),
])
def test_errors_name_file_line_and_key(text, where, msg):
    e = error(text)
    assert e.file == "rules.toml" and e.key == where and msg in e.message, str(e)
    assert e.line is not None and str(e).startswith(f"rules.toml:{e.line}: key '{where}': ")


# ------------------------------------------------------------------ sampling
def test_sampling_is_deterministic_per_call_id_and_near_its_rate():
    r = rules("[sampling]\ninbound = 30\noutbound = 80\n")
    ids = [f"c{i:06d}" for i in range(10_000)]
    inb = [r.decide(call(call_id=i), MON).record for i in ids]
    assert inb == [r.decide(call(call_id=i), MON).record for i in ids]   # re-explainable
    # binomial(10000, 0.3): sd = 45.8; 5 sd = 229
    assert abs(sum(inb) - 3000) < 230
    out = [r.decide(call(call_id=i, direction="outbound"), MON).record for i in ids]
    assert abs(sum(out) - 8000) < 200            # sd = 40
    assert all(r.decide(call(call_id=i, direction="internal"), MON).record for i in ids[:200])
    # the same call id is in the sample at 30% if it is at 20% (one point per call)
    r20 = rules("[sampling]\ninbound = 20\n")
    assert all(a for a, b in zip(inb, [r20.decide(call(call_id=i), MON).record for i in ids], strict=True)
               if b)
    # another seed draws another sample
    other = rules('[sampling]\ninbound = 30\nseed = "2027"\n')
    assert inb != [other.decide(call(call_id=i), MON).record for i in ids]


def test_sampling_point_is_the_documented_hash():
    import hashlib
    h = hashlib.sha256(b"voiceboard:c000042").digest()
    assert sample_point("voiceboard", "c000042") == int.from_bytes(h[:8], "big") / 2 ** 64
    r = rules("[sampling]\ninbound = 50\n")
    d = r.decide(call(call_id="c000042"), MON)
    assert d.record == (sample_point("voiceboard", "c000042") < 0.5)
    assert d.checks[-2].stage == "sampling" and "50%" in d.checks[-2].reason


# ---------------------------------------------------------------- precedence
PREC = """\
[[window]]
days = "mon-fri"
from = "09:00"
to = "18:00"
[select]
directions = ["inbound"]
[never]
agents = "9001"
numbers = ["110"]
[force]
agents = "9001-9002"
callers = ["13800138000"]
[exclude]
agents = "9002,3001"
channels = "hotline:5"
"""


def test_precedence_never_force_exclude_window_selection():
    r = rules(PREC)
    night = at(2026, 11, 23, 23)
    d = r.decide(call(agent="9001"), MON)
    assert not d.record and d.rule.key == "never.agents" and d.rule.line == 8
    d = r.decide(call(agent="9002", direction="outbound"), night)
    assert d.record and d.rule.key == "force.agents" and "agent 9002 is in force.agents" in d.reason
    assert [c.verdict for c in d.checks if c.stage.startswith("exclude")] == ["not reached"] * 2
    d = r.decide(call(caller="13800138000", agent="9001"), MON)
    assert not d.record and d.rule.key == "never.agents"          # never beats force
    d = r.decide(call(caller="13800138000", chan=5), night)
    assert d.record and d.rule.key == "force.callers"
    d = r.decide(call(agent="3001"), MON)
    assert not d.record and d.rule.key == "exclude.agents"
    d = r.decide(call(chan=5), MON)
    assert not d.record and d.rule.key == "exclude.channels"
    d = r.decide(call(), night)
    assert not d.record and d.rule.key == "window"
    d = r.decide(call(direction="outbound"), MON)
    assert not d.record and d.rule.key == "select.directions"
    d = r.decide(call(called="110", caller="13800138000"), MON)
    assert not d.record and d.rule.key == "never.numbers"
    d = r.decide(call(), MON)
    assert d.record and d.rule.key == "default"
    assert [c.stage for c in d.checks] == [
        "never.agents", "never.numbers", "force.agents", "force.callers", "exclude.agents",
        "exclude.channels", "window", "direction", "queue", "ivr", "sampling", "default"]


def test_queue_and_ivr_branch_selection():
    r = rules("[select]\nqueues = { sales = false, vip = true }\nivr = { account = false }\n")
    assert not r.decide(call(queue="sales"), MON).record
    assert r.decide(call(queue="vip"), MON).record
    assert r.decide(call(queue="other"), MON).record
    d = r.decide(call(ivr_path=("main", "account", "balance")), MON)
    assert not d.record and d.rule.key == "select.ivr.account"
    only = rules("[select]\nqueues = { vip = true }\nother_queues = false\n"
                 "ivr = { complaints = true }\nother_ivr = false\n")
    assert not only.decide(call(queue="sales"), MON).record
    d = only.decide(call(), MON)
    assert d.record and {p.stage for p in d.pending} == {"queue", "ivr"}
    assert not only.keep(d, 60).keep
    d2 = only.recheck(d, call(queue="vip", ivr_path=("main", "complaints")), MON)
    k = only.keep(d2, 60)
    assert k.keep, k.reason
    d3 = only.recheck(d, call(queue="vip", ivr_path=("main",)), MON)
    k = only.keep(d3, 60)
    assert not k.keep and "never reached a recorded IVR branch (complaints)" in k.reason


# ---------------------------------------------------------- keep and limits
def test_keep_min_and_max_duration_and_format():
    r = rules('format = "wav-alaw"\nlayout = "mono"\nmin_seconds = 5\nmax_seconds = 600\n')
    d = r.decide(call(), MON)
    assert (d.format, d.layout, d.min_seconds, d.max_seconds) == ("wav-alaw", "mono", 5, 600)
    k = r.keep(d, 4.9)
    assert not k.keep and k.rule.key == "min_seconds" and k.rule.line == 3
    assert k.reason == "discarded: 4.9 s is shorter than min_seconds = 5"
    assert r.keep(d, 5).keep
    k = r.keep(d, 600)
    assert k.keep and "max_seconds = 600" in k.reason and k.rule.key == "max_seconds"
    no = rules("[select]\ndirections = []\n").decide(call(), MON)
    k = r.keep(no, 100)
    assert not k.keep and k.reason.startswith("nothing was recorded")


# ---------------------------------------------------------------- recheck
def test_transfer_to_an_excluded_agent_stops_and_keeps_the_part_before():
    r = rules('[exclude]\nagents = "3001"\n')
    d = r.decide(call(agent="1001"), MON)
    assert d.record
    d2 = r.recheck(d, call(agent="3001"), MON)
    assert not d2.record and d2.stopped and not d2.discard
    assert d2.rule.key == "exclude.agents" and d2.reason.startswith("stopped: agent 3001")
    k = r.keep(d2, 42)
    assert k.keep and "part before the stop" in k.reason
    # once stopped, a transfer back does not restart it
    assert r.recheck(d2, call(agent="1001"), MON) == d2


def test_reload_that_excludes_a_call_in_progress_stops_and_discards_it():
    old = rules("")
    d = old.decide(call(caller="13912345678"), MON)
    new = rules('[never]\nnumbers = ["139*"]\n')
    d2 = new.recheck(d, call(caller="13912345678"), MON)
    assert d2.stopped and d2.discard and d2.rule.key == "never.numbers"
    k = new.keep(d2, 120)
    assert not k.keep and k.reason.startswith("discarded: stopped: caller 13912345678")


def test_reload_keeps_decisions_on_windows_and_sampling():
    d = rules("").decide(call(), at(2026, 11, 23, 23))
    new = rules('[[window]]\ndays = "mon-fri"\nfrom = "09:00"\nto = "18:00"\n'
                '[sampling]\ninbound = 0\n')
    d2 = new.recheck(d, call(), at(2026, 11, 23, 23, 30))
    assert d2.record and not d2.stopped and d2.rule == d.rule
    # a call not recorded does not start because of a reload...
    n = new.decide(call(), MON)
    assert not n.record
    assert rules("").recheck(n, call(), MON) == n
    # ...unless it is forced
    forced = rules('[force]\nagents = "7"\n').recheck(n, call(agent="7"), MON)
    assert forced.record and forced.started_mid_call and forced.rule.key == "force.agents"


# ------------------------------------------------------------------ pausing
PAUSE = """\
pause_on_ivr = ["account"]
pause_while_collecting = ["card"]
[[pause_dtmf]]
name = "pin"
start = "*9"
stop = "#"
max_digits = 6
timeout_seconds = 10
"""


def test_pause_while_in_a_menu_and_while_collecting():
    pc = rules(PAUSE).pause_control()
    assert pc.menu("main", 0) == []
    ch = pc.menu("account", 100)
    assert len(ch) == 1 and ch[0].paused and ch[0].t == 100 and ch[0].rule.key == "pause_on_ivr"
    assert pc.paused
    assert pc.collecting("account", 150) == []          # already paused
    out = pc.menu("main", 900)
    assert [(c.paused, c.t) for c in out] == [(False, 900)]
    assert pc.menu("card", 1000) == []                   # greeting: not collecting yet
    assert [c.paused for c in pc.collecting("card", 1500)] == [True]
    assert [c.paused for c in pc.collecting(None, 4000)] == [False]


def test_pause_on_a_key_sequence_until_stop_key_count_or_timeout():
    pc = rules(PAUSE).pause_control()
    assert pc.digit("*", 0) == []
    ch = pc.digit("9", 100)
    assert ch == [PauseChange(True, 100, "keys '*9' (pause_dtmf pin)", ch[0].rule)]
    assert ch[0].rule.name == "pin" and ch[0].rule.line == 3
    assert pc.deadline == 10_100
    for i, d in enumerate("1234"):
        assert pc.digit(d, 200 + i) == []
    assert [c.paused for c in pc.digit("#", 300)] == [False]
    pc.digit("*", 400)
    pc.digit("9", 401)
    for i, d in enumerate("12345"):
        assert pc.digit(d, 500 + i) == []
    assert [c.paused for c in pc.digit("6", 600)] == [False]     # max_digits
    pc.digit("*", 700)
    pc.digit("9", 701)
    assert pc.tick(10_700) == []
    assert [(c.paused, c.t) for c in pc.tick(10_701)] == [(False, 10_701)]


def test_command_pause_cannot_lift_a_rule_pause():
    pc = rules(PAUSE).pause_control()
    assert [c.paused for c in pc.command(True, 0)] == [True]
    assert pc.menu("account", 10) == []
    assert pc.command(False, 20) == []            # the menu still holds the pause
    assert pc.paused
    assert [c.paused for c in pc.menu("main", 30)] == [False]
    off = rules("pause_by_command = false").pause_control()
    assert off.command(True, 0) == [] and not off.paused


def test_ivr_commands_drive_the_pause_control():
    from voiceserver.ivr.collect import CollectSpec
    from voiceserver.ivr.flows import Collect, Log, PathStep, Queue
    pc = rules(PAUSE).pause_control()
    assert pc.ivr_command(Log(PathStep(0, "menu", "card")), 0) == []
    assert [c.paused for c in pc.ivr_command(Collect("card", CollectSpec()), 10)] == [True]
    assert [c.paused for c in pc.ivr_command(Log(PathStep(20, "input", "x=1")), 20)] == [False]
    assert [c.paused for c in pc.ivr_command(Log(PathStep(30, "menu", "account")), 30)] == [True]
    assert [c.paused for c in pc.ivr_command(Queue("sales"), 40)] == [False]
