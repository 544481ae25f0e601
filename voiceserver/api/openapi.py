"""The network API described as OpenAPI 3.1 (served at GET /v1/openapi.json).

Written by hand beside the routes of voiceserver.api.network, and kept
honest by tests: the document's paths and methods are exactly the routes
the application serves, and each operation's ``x-roles`` (who may use it,
voiceserver.api.roles) is the right the server checks.
"""
from __future__ import annotations

from typing import Any

from voiceserver.acd.queues import MAX_PENALTY, MAX_TIER
from voiceserver.api.roles import ADMIN, AGENTS, CALLS, ORIGINATE, READ, SUPERVISE, VIEW_ALL, Right, Role

ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
EVENT = {
    "type": "object",
    "description": "A server event (docs/events.md): the common fields, then the kind's own.",
    "properties": {
        "seq": {"type": ["integer", "null"],
                "description": "per server, strictly increasing; null for journal.gap and stream.overflow"},
        "time": {"type": "string", "description": "UTC, ISO 8601, milliseconds"},
        "server_id": {"type": ["string", "null"]},
        "tick": {"type": "integer"},
        "kind": {"type": "string"},
        "chan": {"type": ["integer", "null"]},
        "call_id": {"type": ["string", "null"]},
    },
    "required": ["seq", "kind"],
    "additionalProperties": True,
}
ERRORS = {400: "a malformed request (the error says what is wrong)", 401: "no token, or one of no user",
          403: "a foreign Host or Origin, or a role that may not (the error names the roles that may)",
          404: "no such call, agent or action", 405: "a wrong method", 409: "not possible now",
          426: "a plain GET where a WebSocket belongs", 429: "a reload too soon after the last"}
COMMAND_TEXT = {
    "hold": "put the caller on hold (music), as the agent's flash does; the agent's phone stays off-hook",
    "retrieve": "take the caller off hold: bridged with the agent's phone again",
    "record-pause": "pause the call's recording (silence in the file, as [[pause_dtmf]] does)",
    "record-resume": "resume the call's recording",
    "record-start": "start recording the call on demand (the decision's reason: api; the rules no longer "
                    "start or stop it); again after a stop: a new file",
    "record-stop": "stop the call's recording: the file and its row are finished (reason: api)",
    "unbridge": "separate the call from the call it was bridged with: each goes on in its own state",
    "answer": "answer a call ringing on a line of [channels] answer_api (it rings until the API answers it "
              "or answer_api_fallback passes): the line answers (an analog line goes off-hook, an E1 R2 line "
              "sends its held answer signal) and the call's IVR flow starts",
}
MUTE_TEXT = {
    "mute": "mute a party of an agent call in the media engine: party agent (the default), the caller does "
            "not hear the agent; party caller, the agent does not hear the caller",
    "unmute": "unmute that party: it is heard again",
}

SUPERVISE_TEXT = {
    "listen": "a supervisor listens to an agent call (silent monitor): its phone rings, then hears the caller "
              "and the agent; neither hears it",
    "whisper": "a supervisor coaches the agent: the agent hears the supervisor, the caller does not",
    "barge": "a supervisor barges in: the caller, the agent and the supervisor all hear each other",
    "intercept": "a supervisor takes the call: the caller is bridged with the supervisor's phone and the "
                 "agent's leg is dropped",
}


def roles_of(right: Right) -> list[str]:
    """`x-roles` of an operation: the roles that may use it; `agent:own` where an agent may on
    its own call or agent."""
    out = [r.value for r in Role if r in right.roles]
    if right.agent_own is not None:
        out.append("agent:own")
    return out


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": ERRORS[c],
                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for c in codes}


def _op(summary: str, right: Right, ok: str, *codes: int, **more: Any) -> dict[str, Any]:
    return {"summary": summary, "x-roles": roles_of(right),
            "responses": {"200": {"description": ok}, **_errors(401, 403, *codes)}, **more}


def _body(**props: Any) -> dict[str, Any]:
    return {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": props, "additionalProperties": False}}}}


def document(version: str = "1") -> dict[str, Any]:
    reason = {"type": "string", "minLength": 1, "maxLength": 200}
    call_id = {"name": "call_id", "in": "path", "required": True, "schema": {"type": "string"}}
    queue_member = [{"name": "agent", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "queue", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "the endpoints", "security": [],
                      "responses": {"200": {"description": "the endpoints and the clients connected"}}}},
        "/v1/openapi.json": {"get": _op("this document", READ, "OpenAPI 3.1")},
        "/v1/schemas/events.json": {"get": _op("a JSON Schema (2020-12) for every event kind, by kind", READ,
                                               "{kind: schema}")},
        "/v1/whoami": {"get": _op("the user the token is", READ, "{user, role, agent}")},
        "/v1/queues": {"get": _op("the queues (waiting, longest wait, statistics)", READ, "{queues: [...]}", 404)},
        "/v1/agents": {"get": _op("the agents and their states (an agent user: only itself)", READ,
                                  "{agents: [...]}", 404)},
        "/v1/channels": {"get": _op("every channel, its state and call", VIEW_ALL, "{channels: [...]}", 404)},
        "/v1/reload": {"post": _op("reload the server's config (as SIGHUP)", ADMIN,
                                   "{reloaded, file, error}", 404, 429)},
        "/v1/events": {"get": {
            "summary": "the event stream (WebSocket): resumable, in order, filtered; an agent user gets its "
                       "own events only",
            "x-roles": roles_of(READ),
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0},
                 "description": "the last seq seen: every event after it, then the live ones"},
                {"name": "kind", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
                 "style": "form", "explode": True,
                 "description": "only these kinds; a value ending in '.' takes a family"},
                {"name": "call", "in": "query", "schema": {"type": "string"}},
                {"name": "channel", "in": "query", "schema": {"type": "string", "pattern": "^([^:]+:)?[0-9]+$"}},
                {"name": "queue", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                 "description": "only this queue's events, and its callers' calls from joining it to their end"},
                {"name": "agent", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                 "description": "only this agent's events, and the calls offered to it from the offer to "
                                "their end (an agent user: its own only)"},
            ],
            "responses": {"101": {"description": "WebSocket: one text frame per event "
                                                 "(#/components/schemas/Event)"},
                          **_errors(400, 401, 403, 426)}}},
        "/v1/calls/{call_id}/hangup": {"post": _op(
            "end a call in progress (the reason is the call record's disposition)", CALLS, "{hung_up, reason}",
            400, 404, parameters=[call_id], requestBody=_body(reason=reason))},
        "/v1/calls/{call_id}/route": {"post": _op(
            "take a caller out of the IVR (or one waiting for a route decision, route.request) into a "
            "queue, as the IVR's queue action would, or ring one agent for it (a caller waiting in a queue "
            "too); with an agent, `queue` is where the caller waits if the agent does not answer", CALLS,
            "{call_id, queue} or {call_id, agent, queue}", 400, 404, 409, parameters=[call_id],
            requestBody={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"queue": {"type": "string", "minLength": 1},
                                                 "agent": {"type": ["string", "integer"]}},
                "anyOf": [{"required": ["queue"]}, {"required": ["agent"]}],
                "additionalProperties": False}}}})},
        "/v1/calls/{call_id}/transfer": {"post": _op(
            "transfer a caller in the IVR blind to a number over a trunk group, as the IVR's transfer "
            "action would", CALLS, "{call_id, number, trunk}", 400, 404, 409, parameters=[call_id],
            requestBody={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"number": {"type": "string", "pattern": "^[0-9*#]{1,32}$"},
                                                 "trunk": {"type": "string", "minLength": 1}},
                "required": ["number", "trunk"], "additionalProperties": False}}}})},
        "/v1/calls/{call_id}/ivr": {"post": _op(
            "send a caller in the IVR to one of its menus (its prompts, then digits collected as the menu "
            "says) or named actions (a play, a queue, a transfer...)", CALLS, "{call_id, menu, action}",
            400, 404, 409, parameters=[call_id],
            requestBody={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"menu": {"type": "string"}, "action": {"type": "string"}},
                "minProperties": 1, "maxProperties": 1, "additionalProperties": False}}}})},
        "/v1/agents/{agent}/{action}": {"post": _op(
            "an agent's state: log in or out, ready, not ready (with a reason code)", AGENTS, "the agent's row",
            400, 404, 409,
            parameters=[{"name": "agent", "in": "path", "required": True, "schema": {"type": "string"},
                         "description": "the agent id (numeric ids as text: 1001)"},
                        {"name": "action", "in": "path", "required": True,
                         "schema": {"enum": ["login", "logout", "ready", "not-ready"]}}],
            requestBody=_body(reason={**reason, "description": "not-ready only: the reason code"}))},
        "/v1/agents/{agent}/queues/{queue}/join": {"post": _op(
            "the agent joins the queue's members (AMI QueueAdd); penalty: offered calls only when no free member "
            "has a lower one; tier: once they waited (tier - 1) x tier_wait", AGENTS,
            "{agent, queue, member, changed, tier, penalty}", 400, 404, parameters=queue_member,
            requestBody=_body(penalty={"type": "integer", "minimum": 0, "maximum": MAX_PENALTY},
                              tier={"type": "integer", "minimum": 1, "maximum": MAX_TIER}))},
        "/v1/agents/{agent}/queues/{queue}/leave": {"post": _op(
            "the agent leaves the queue's members (AMI QueueRemove)", AGENTS, "{agent, queue, member, changed}",
            400, 404, parameters=queue_member)},
    }
    for command, text in COMMAND_TEXT.items():
        paths[f"/v1/calls/{{call_id}}/{command}"] = {"post": _op(
            text, CALLS, "{call_id, ...}: what changed", 400, 404, 409, parameters=[call_id])}
    for mode, text in SUPERVISE_TEXT.items():
        paths[f"/v1/calls/{{call_id}}/{mode}"] = {"post": _op(
            f"{text}; asked again on the same call with another mode, the mix changes at once", SUPERVISE,
            "{call_id, supervisor, phone, mode, joined}", 400, 404, 409, parameters=[call_id],
            requestBody={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"supervisor": {
                    "type": "string", "minLength": 1,
                    "description": "the supervisor's agent id (its phone) or BOARD:CHANNEL of an FXS phone"}},
                "required": ["supervisor"], "additionalProperties": False}}}})}
    paths["/v1/calls/{call_id}/conference"] = {"post": _op(
        "a conference: a party's phone rings and, once answered, the caller, the agent and every party "
        "joined hear each other (three or more, mixed in the media engine)", CALLS,
        "{call_id, supervisor, phone, mode, joined}", 400, 404, 409, parameters=[call_id],
        requestBody={"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"party": {
                "type": "string", "minLength": 1,
                "description": "the party's agent id (its phone) or BOARD:CHANNEL of an FXS phone"}},
            "required": ["party"], "additionalProperties": False}}}})}
    paths["/v1/calls/{call_id}/consult"] = {"post": _op(
        "a consultative transfer: the caller goes on hold (music) and the party's phone rings; answered, the "
        "agent and it talk; then consult-complete or consult-cancel", CALLS, "{call_id, party, phone, state}",
        400, 404, 409, parameters=[call_id],
        requestBody={"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"party": {
                "type": "string", "minLength": 1,
                "description": "the agent id (its phone) or BOARD:CHANNEL of an FXS phone to consult"}},
            "required": ["party"], "additionalProperties": False}}}})}
    paths["/v1/calls/{call_id}/consult-complete"] = {"post": _op(
        "complete the consultative transfer: the caller is bridged with the consulted phone, the agent's leg "
        "dropped", CALLS, "{call_id, party, phone, state}", 400, 404, 409, parameters=[call_id])}
    paths["/v1/calls/{call_id}/consult-cancel"] = {"post": _op(
        "cancel the consultation: the consulted phone is hung up, the caller is back with the agent", CALLS,
        "{call_id, party, phone, state}", 400, 404, 409, parameters=[call_id])}
    for command, text in MUTE_TEXT.items():
        paths[f"/v1/calls/{{call_id}}/{command}"] = {"post": _op(
            text, CALLS, "{call_id, party, muted, changed, muted_parties}", 400, 404, 409, parameters=[call_id],
            requestBody=_body(party={"enum": ["agent", "caller"], "default": "agent"}))}
    paths["/v1/calls/{call_id}/bridge"] = {"post": _op(
        "join this call's audio with another call's (a caller in the IVR and an outbound call, say): each "
        "hears the other, each keeps its own state; unbridge, or a hang-up, separates them", CALLS,
        "{call_id, other, state}", 400, 404, 409, parameters=[call_id],
        requestBody={"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"call": {"type": "string", "minLength": 1}},
            "required": ["call"], "additionalProperties": False}}}})}
    say = {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
           "properties": {k: {"type": ["string", "number"]} for k in ("number", "digits", "money", "amount")}}
    play_props: dict[str, Any] = {
        "prompts": {"type": "array", "items": {"type": "string"}, "maxItems": 64},
        "say": {"anyOf": [say, {"type": "array", "items": say}]},
        "lang": {"type": "string"}}
    paths["/v1/calls/{call_id}/play"] = {"post": _op(
        "play prompts and said numbers to an answered caller (in the IVR or under the API's control): the "
        "IVR flow is left, call.play then call.play_done (how) follow; a missing prompt is a 400 and "
        "nothing plays", CALLS, "{call_id, items, barge_in, lang}", 400, 404, 409, parameters=[call_id],
        requestBody=_body(**play_props, barge_in={"type": "boolean", "default": True}))}
    seconds = {"type": "number", "minimum": 0, "maximum": 600}
    collect = _op(
        "collect digits from an answered caller with the IVR's collector (prompts first, a key stops "
        "them); the result comes as an ivr.input event (menu api; reason terminator, max_digits, "
        "inter_timeout, first_timeout, total_timeout; replaced: the next command took the line, hangup: "
        "the call ended, each with the digits so far)", CALLS, "", 400, 404, 409, parameters=[call_id],
        requestBody=_body(**play_props, max_digits={"type": "integer", "minimum": 1, "maximum": 64},
                          min_digits={"type": "integer", "minimum": 0, "maximum": 64},
                          terminators={"type": "string", "pattern": "^[0-9*#A-D]{0,4}$"},
                          first_timeout=seconds, inter_timeout=seconds, total_timeout=seconds,
                          secret={"type": "boolean", "default": False}))
    collect["responses"].pop("200")
    collect["responses"]["202"] = {"description": "{call_id, collecting, max_digits, secret}: collecting"}
    paths["/v1/calls/{call_id}/collect"] = {"post": collect}
    target = {"type": "string", "minLength": 1}
    originate = _op(
        "a new outbound call: a free line of the trunk group (analog or E1 R2) is seized and the number "
        "dialled; once answered, `then` runs (the called party in an IVR menu, an agent's phone rung and "
        "bridged, bridged with a call in progress, prompts played then a hang-up, or in a queue); "
        "call.originate events follow it (a busy, no answer "
        "or the E1 B signal: failed, with its cause)", ORIGINATE, "", 400, 404, 409,
        requestBody={"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "trunk": {"type": "string", "minLength": 1},
                "number": {"type": "string", "pattern": "^[0-9*#]{1,32}$"},
                "then": {"type": "object", "maxProperties": 1, "additionalProperties": False,
                         "properties": {"ivr": target, "agent": target, "call": target, "queue": target,
                                        "play": {"type": "array", "minItems": 1, "items": target}}}},
            "required": ["trunk", "number"], "additionalProperties": False}}}})
    originate["responses"].pop("200")
    originate["responses"]["201"] = {"description": "{call_id, trunk, number, line, then}: dialling"}
    paths["/v1/originate"] = {"post": originate}
    return {
        "openapi": "3.1.0",
        "info": {"title": "voiceboard network API", "version": version,
                 "description": "The voice server's events and commands (docs/api.md)."},
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "a user's token: the admin's in [api] token_file, or a [[api.user]]'s"}},
            "schemas": {"Error": ERROR, "Event": EVENT},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
