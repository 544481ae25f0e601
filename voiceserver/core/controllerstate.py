"""What the call controller's bases share of its state: declared once.

`CallController` (voiceserver.core.controller) holds the state; its bases
`ApiCommands` (apicommands.py) and `Supervising` (supervision.py) declare
what they use so mypy checks them against it. The parts both use are
declared here, each base adds its own. No code, no import of the controller.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voiceserver.core.events import EventBus
from voiceserver.core.media import MediaOutbox
from voiceserver.core.runtime import BoardRuntime, Key, Leg


class ControllerState:
    """The controller's state and helpers both of its bases use."""

    bus: EventBus
    boards: list[BoardRuntime]
    legs: dict[Key, Leg]
    media: MediaOutbox
    acd: Any
    recording: Any
    tick: int
    mutes: dict[str, set[str]]
    _mute_pairs: dict[str, tuple[Key, Key]]

    if TYPE_CHECKING:
        def settle(self, rt: BoardRuntime, tick: int, chans: set[int]) -> None: ...
