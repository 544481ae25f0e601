"""IvrCall traces: events in, commands out, on a simulated ms clock."""
from __future__ import annotations

import pytest

from voiceserver.ivr.collect import CollectSpec
from voiceserver.ivr.flows import (
    ClearDigits,
    Collect,
    Flow,
    Hangup,
    HangupAction,
    IvrCall,
    IvrConfig,
    IvrError,
    Log,
    LookupAction,
    Menu,
    Play,
    PlayAction,
    Prompt,
    Queue,
    QueueAction,
    RefAction,
    RepeatAction,
    Say,
    StopPlay,
    SubmenuAction,
    Transfer,
    TransferAction,
    Voicemail,
    VoicemailAction,
)


def P(*names):
    return tuple(Prompt(n) for n in names)


def menu_spec(*keys, barge_in=True):
    return CollectSpec(max_digits=max(len(k) for k in keys), choices=tuple(keys),
                       first_timeout=5000, inter_timeout=3000, barge_in=barge_in)


def make_ivr(main_barge_in=True) -> IvrConfig:
    main_opts = {
        "1": SubmenuAction("account"),
        "2": PlayAction(P("hours_info")),
        "3": QueueAction("service"),
        "4": VoicemailAction("100"),
        "0": TransferAction("95588", "pstn"),
        "9": SubmenuAction("main", lang="en"),
        "*": RepeatAction(),
        "#": HangupAction(P("goodbye")),
    }
    menus = {
        "main": Menu("main", P("welcome"), menu_spec(*main_opts, barge_in=main_barge_in),
                     invalid=P("invalid"), timeout=P("no_input"), retries=2,
                     fallback=QueueAction("operator"), options=main_opts),
        "account": Menu("account", P("enter_account"),
                        CollectSpec(max_digits=8, min_digits=6, terminators="#", valid=r"\d+",
                                    first_timeout=5000, inter_timeout=3000),
                        invalid=P("bad_account"), timeout=P("no_input"), retries=1,
                        fallback=SubmenuAction("main"), input_store="account",
                        input_then=RefAction("balance"), clear_digits=True),
    }
    actions = {
        "balance": LookupAction(
            "accounts", "account",
            found=PlayAction((Prompt("balance_is"), Say("amount", "$balance"), Prompt("yuan")),
                             then=SubmenuAction("main")),
            missing=PlayAction(P("no_such_account"), then=SubmenuAction("account"))),
    }
    tables = {"accounts": {"12345678": {"balance": "1234.50"}}}
    return IvrConfig(flows={"day": Flow("day", SubmenuAction("main"), "zh")}, menus=menus,
                     actions=actions, tables=tables, default_lang="zh")


def cmds(out, *kinds):
    """The commands of the given types (Log excluded unless asked)."""
    kinds = kinds or (Play, StopPlay, ClearDigits, Collect, Hangup, Queue, Voicemail, Transfer)
    return [c for c in out if isinstance(c, kinds)]


def play_of(out) -> Play:
    plays = cmds(out, Play)
    assert len(plays) == 1, out
    return plays[0]


def path(call):
    return [(s.what, s.detail) for s in call.path]


def started(ivr=None, t=0):
    call = IvrCall(ivr or make_ivr(), "day")
    out = call.call_started("01012345678", "4008001234", t)
    return call, out


def test_greeting_then_key_goes_to_submenu():
    call, out = started()
    p = play_of(out)
    assert p.items == P("welcome") and p.barge_in and p.lang == "zh"
    assert cmds(out, Collect)[0].menu == "main"
    out = call.prompt_done(p.id, 4000)
    assert cmds(out) == []
    out = call.digit("1", 4500)
    assert isinstance(cmds(out)[0], ClearDigits)        # account menu clears type-ahead
    assert play_of(out).items == P("enter_account")
    assert ("key", "1") in path(call) and path(call)[-1] == ("menu", "account")


def test_invalid_input_retries_then_fallback():
    call, out = started()
    call.prompt_done(play_of(out).id, 1000)
    t = 1500
    for _attempt in range(2):
        out = call.digit("7", t)                     # not an option: one-key menu ends at once
        p = play_of(out)
        assert p.items == P("invalid", "welcome")
        assert any(isinstance(c, ClearDigits) for c in out)
        call.prompt_done(p.id, t + 2000)
        t += 3000
    out = call.digit("5", t)                         # third failure > retries=2
    assert cmds(out, Queue) == [Queue("operator")]
    assert call.done
    kinds = [w for w, _ in path(call)]
    assert kinds.count("invalid") == 3 and kinds[-2:] == ["fallback", "queue"]


def test_multi_key_menu_waits_inter_digit_then_invalid():
    ivr = make_ivr()
    opts = {"1": QueueAction("a"), "12": QueueAction("b")}
    m = Menu("m", P("m"), menu_spec(*opts), invalid=P("invalid"), options=opts)
    ivr = IvrConfig(flows={"f": Flow("f", SubmenuAction("m"), "zh")}, menus={"m": m})
    call = IvrCall(ivr, "f")
    call.prompt_done(play_of(call.call_started("", "", 0)).id, 100)
    assert cmds(call.digit("1", 200)) == []          # "12" still possible
    assert cmds(call.tick(3199)) == []
    assert cmds(call.tick(3200), Queue) == [Queue("a")]
    call = IvrCall(ivr, "f")
    call.call_started("", "", 0)
    call.digit("1", 200)
    assert cmds(call.digit("2", 300), Queue) == [Queue("b")]


def test_no_input_retries_with_timeout_prompt():
    call, out = started()
    t = 0
    for attempt in range(3):
        p = play_of(out)
        assert p.items == (P("welcome") if attempt == 0 else P("no_input", "welcome"))
        t += 2000
        call.prompt_done(p.id, t)
        assert call.deadline == t + 5000
        assert cmds(call.tick(t + 4999)) == []
        t += 5000
        out = call.tick(t)
    assert cmds(out, Queue) == [Queue("operator")]
    assert [w for w, _ in path(call)].count("timeout") == 3


def test_type_ahead_during_greeting_reaches_submenu():
    """Caller knows the menu: presses 1 then the account number during the greeting."""
    ivr = make_ivr(main_barge_in=False)             # main greeting cannot be interrupted
    call, out = started(ivr)
    greet = play_of(out)
    for i, d in enumerate("1"):
        assert cmds(call.digit(d, 100 + i)) == []   # held: the greeting keeps playing
    out = call.prompt_done(greet.id, 3000)
    # account menu clears the buffer on entry, so its greeting plays
    assert play_of(out).items == P("enter_account")


def test_digits_after_held_input_are_type_ahead():
    ivr = make_ivr(main_barge_in=False)
    call, out = started(ivr)
    greet = play_of(out)
    call.digit("2", 100)                             # complete, held until the greeting ends
    call.digit("3", 200)                             # kept for what follows
    assert call.typeahead == "3"
    out = call.prompt_done(greet.id, 3000)
    # "2" plays hours info; "3" is already waiting, so the info is skipped; back in main
    # the "3" is taken, but main's greeting may not be interrupted: it plays to the end
    again = play_of(out)
    assert again.items == P("welcome") and StopPlay(again.id) not in out
    assert cmds(call.prompt_done(again.id, 6000), Queue) == [Queue("service")]


def test_type_ahead_kept_across_menus_without_clear():
    call, out = started()
    p = play_of(out)
    out = call.digit("2", 100)                       # barge in: hours info
    assert StopPlay(p.id) in out
    info = play_of(out)
    assert info.items == P("hours_info")
    out = call.digit("3", 200)                       # skip the info, straight into menu w/ "3"
    assert StopPlay(info.id) in out
    assert cmds(out, Queue) == [Queue("service")]
    assert ("barge_in", "3") in path(call)


def test_barge_in_stops_prompt_and_dispatches():
    call, out = started()
    p = play_of(out)
    out = call.digit("3", 1200)
    assert out.index(StopPlay(p.id)) < out.index(Queue("service"))
    assert call.done
    assert call.prompt_done(p.id, 1300) == []        # the stale prompt_done is ignored


def test_account_lookup_reads_back_balance_and_missing_account():
    call, out = started()
    call.digit("1", 100)
    for i, d in enumerate("12345678"):
        out = call.digit(d, 200 + i)
    p = play_of(out)
    assert p.items == (Prompt("balance_is"), Say("amount", "1234.50"), Prompt("yuan"))
    assert call.vars["account"] == "12345678"
    out = call.prompt_done(p.id, 9000)
    assert play_of(out).items == P("welcome")        # back to main
    # a missing account: 6 digits and '#'
    call.digit("1", 9100)
    for d in "111111#":
        out = call.digit(d, 9200)
    p = play_of(out)
    assert p.items == P("no_such_account")
    out = call.prompt_done(p.id, 9900)
    assert play_of(out).items == P("enter_account")
    assert ("lookup", "accounts:missing") in path(call)


def test_input_too_short_is_invalid():
    call, out = started()
    call.digit("1", 100)
    for d in "123#":
        out = call.digit(d, 200)
    assert play_of(out).items == P("bad_account", "enter_account")


def test_language_switch_by_menu_choice():
    call, out = started()
    out = call.digit("9", 100)
    p = play_of(out)
    assert p.lang == "en" and p.items == P("welcome")
    assert call.lang == "en" and ("lang", "en") in path(call)


def test_transfer_voicemail_and_goodbye():
    call, _ = started()
    assert cmds(call.digit("0", 100)) [-1] == Transfer("95588", "pstn")
    call, _ = started()
    assert cmds(call.digit("4", 100))[-1] == Voicemail("100")
    call, _ = started()
    out = call.digit("#", 100)
    bye = play_of(out)
    assert bye.items == P("goodbye") and not bye.barge_in
    assert cmds(call.digit("1", 200)) == []          # goodbye is not interruptible
    assert cmds(call.prompt_done(bye.id, 2000)) == [Hangup("hangup action")]
    assert call.done


def test_hangup_mid_flow_ends_quietly():
    call, out = started()
    call.digit("1", 100)
    call.digit("1", 150)
    out = call.hangup(300)
    assert cmds(out) == [] and call.done
    assert path(call)[-1] == ("caller_hangup", "account")
    assert call.deadline is None
    assert call.digit("5", 400) == [] and call.tick(100_000) == []


def test_repeat_key_replays_menu():
    call, out = started()
    out = call.digit("*", 100)
    assert play_of(out).items == P("welcome")


def test_path_log_commands_mirror_path():
    call, out = started()
    out += call.digit("3", 100)
    assert [c.step for c in out if isinstance(c, Log)] == call.path


def test_blacklist_style_direct_start():
    call = IvrCall(make_ivr(), start=HangupAction(P("blocked")), lang="en")
    out = call.call_started("075512345678", "4008001234", 0)
    p = play_of(out)
    assert p.items == P("blocked") and p.lang == "en"
    assert cmds(call.prompt_done(p.id, 3000)) == [Hangup("hangup action")]


def test_action_loop_is_cut():
    ivr = make_ivr()
    loop = IvrConfig(flows={"x": Flow("x", RefAction("a"), "zh")}, menus=ivr.menus,
                     actions={"a": RefAction("b"), "b": RefAction("a")})
    call = IvrCall(loop, "x")
    out = call.call_started("1", "2", 0)
    assert Hangup("menu loop limit") in out and call.done


def test_repeat_without_menu_hangs_up_not_crashes():
    ivr = make_ivr()
    odd = IvrConfig(flows={"x": Flow("x", RefAction("r"), "zh")}, menus=ivr.menus,
                    actions={"r": RepeatAction()})
    call = IvrCall(odd, "x")
    assert Hangup("flow error") in call.call_started("1", "2", 0) and call.done


def test_errors():
    with pytest.raises(IvrError, match="no such flow 'nite'"):
        IvrCall(make_ivr(), "nite")
    call = IvrCall(make_ivr(), "day")
    with pytest.raises(IvrError, match="before call_started"):
        call.digit("1", 0)
    call.call_started("1", "2", 100)
    with pytest.raises(ValueError, match="backwards"):
        call.tick(50)
