"""The API's play and collect end to end: the real server on hwsim (a lockstep process), the
integration user over real HTTP. A caller waiting in an IVR menu hears the prompt the API plays
in place of the menu's greeting (found in what hwsim wrote of its far end), then types digits
that arrive as ivr.input; a missing prompt is a 400 and plays nothing."""
from __future__ import annotations

from apiscriptkit import SUPERVISED_ACD as ACD
from apiscriptkit import TICK, ApiScript, later, trunk_call

from acdkit import HEAD, HWSIM, caller, scenario, server_config

WAITING = HEAD.replace('start = "q"', 'start = "wait"') + """
[ivr.menus.wait]
greeting = ["main_menu", "press_1_balance", "press_2_hours", "press_3_message"]
retries = 0
first_timeout = 60000
fallback = { action = "hangup", prompts = ["goodbye"] }

[ivr.menus.wait.options]
"1" = { action = "queue", queue = "service" }
"""


def test_play_a_prompt_then_collect_digits_the_caller_types(e2e, tmp_path, prompt_library):
    script = ApiScript(
        (later("call.answer", 50, 1), [("acd", "POST", "/v1/calls/{call}/play", {"prompts": ["no_such_prompt"]}),
                                       ("acd", "POST", "/v1/calls/{call}/play", {"prompts": ["business_hours"]})]),
        (later("call.play_done", 10, 2), [("acd", "POST", "/v1/calls/{call}/collect",
                                           {"max_digits": 6, "terminators": "#", "first_timeout": 20})]),
        (later("ivr.input", 50, 1), [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    script.call_of = trunk_call
    sc = scenario(caller(1.0, 0, "13911110090", hangup_after=None,
                         script='[{ after = 12.0, digits = "4321#" }]'), duration=60.0)
    try:
        r = e2e.run(scenario=sc, server_config=server_config(tmp_path, ACD, head=WAITING), hwsim_config=HWSIM,
                    api_port=0, max_sim_seconds=50,
                    until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        script.stop()
    (missing, played), (collecting,), (hangup,) = script.answers
    assert missing[0] == 400 and "no_such_prompt" in missing[1]["error"], missing
    call_id = played[1]["call_id"]
    assert played == (200, {"call_id": call_id, "items": ["business_hours"], "barge_in": True, "lang": "zh"})
    assert collecting == (202, {"call_id": call_id, "collecting": True, "max_digits": 6, "secret": False})
    assert hangup[0] == 200
    plays = [e for e in r.events("call.play") if e.call_id == call_id]
    assert [p.data["items"] for p in plays] == [["main_menu", "press_1_balance", "press_2_hours", "press_3_message"],
                                                ["business_hours"]]         # the 400 played nothing
    dones = [(e.data["items"], e.data["how"]) for e in r.events("call.play_done") if e.call_id == call_id]
    assert dones[:2] == [(plays[0].data["items"], "stopped"), (["business_hours"], "finished")]
    got, = r.events("ivr.input")
    assert (got.call_id, got.data["menu"], got.data["value"], got.data["reason"], got.data["masked"]) == \
        (call_id, "api", "4321", "terminator", False)
    assert got.tick > plays[1].tick
    # what the caller's far end heard: business_hours from the API's play on, the greeting stopped
    call = r.calls_on(0, "in")[0]
    heard = r.heard_alaw(call)
    said, = e2e.find_prompt(heard, prompt_library.get("business_hours", "zh"))
    assert 0 <= said[0] - (plays[1].tick * TICK - call["answer"]) < 0.1
    assert not e2e.find_prompt(heard, prompt_library.get("press_3_message", "zh"))
    rec, = r.server.records
    assert "routed:network API (acd)" in rec.ivr_path
