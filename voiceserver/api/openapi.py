"""The network API described as OpenAPI 3.1 (served at GET /v1/openapi.json).

Written by hand beside the routes of voiceserver.api.network, and kept
honest by a test: the document's paths and methods are exactly the routes
the application serves.
"""
from __future__ import annotations

from typing import Any

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


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "a bad request (what was wrong)", 401: "no token, or a wrong one",
            403: "a foreign Host or Origin", 404: "no such call, agent or action",
            409: "not possible now", 426: "a plain GET where a WebSocket belongs"}
    return {str(c): {"description": text[c],
                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for c in codes}


def document(version: str = "1") -> dict[str, Any]:
    reason_body = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 200}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "voiceboard network API", "version": version,
                 "description": "The voice server's events and commands (docs/api.md)."},
        "components": {
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer",
                                          "description": "the token in the server's [api] token_file"}},
            "schemas": {"Error": ERROR, "Event": EVENT},
        },
        "security": [{"admin": []}],
        "paths": {
            "/": {"get": {"summary": "the endpoints", "security": [],
                          "responses": {"200": {"description": "the endpoints and the clients connected"}}}},
            "/v1/openapi.json": {"get": {"summary": "this document",
                                         "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors(401, 403)}}},
            "/v1/schemas/events.json": {"get": {
                "summary": "a JSON Schema (2020-12) for every event kind, by kind",
                "responses": {"200": {"description": "{kind: schema}"}, **_errors(401, 403)}}},
            "/v1/events": {"get": {
                "summary": "the event stream (WebSocket): resumable, in order, filtered",
                "parameters": [
                    {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0},
                     "description": "the last seq seen: every event after it, then the live ones"},
                    {"name": "kind", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
                     "style": "form", "explode": True,
                     "description": "only these kinds; a value ending in '.' takes a family"},
                    {"name": "call", "in": "query", "schema": {"type": "string"}},
                    {"name": "channel", "in": "query", "schema": {"type": "string", "pattern": "^([^:]+:)?[0-9]+$"}},
                ],
                "responses": {"101": {"description": "WebSocket: one text frame per event "
                                                     "(#/components/schemas/Event)"},
                              **_errors(400, 401, 403, 426)}}},
            "/v1/calls/{call_id}/hangup": {"post": {
                "summary": "end a call in progress",
                "parameters": [{"name": "call_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": reason_body,
                "responses": {"200": {"description": "hung up"}, **_errors(400, 401, 403, 404)}}},
            "/v1/agents/{agent}/{action}": {"post": {
                "summary": "an agent's state",
                "parameters": [{"name": "agent", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "action", "in": "path", "required": True,
                                "schema": {"enum": ["login", "logout", "ready", "not-ready"]}}],
                "responses": {"200": {"description": "the agent's row"}, **_errors(401, 403, 404, 409)}}},
        },
    }
