"""Secret DTMF input: which keys are secret, and the masked form they leave the server in.

A key is secret when it is typed

- into an IVR menu whose input is marked ``secret = true`` in the server
  config, or a menu the recording rules pause in (``pause_while_collecting``,
  ``pause_on_ivr``): the IVR interpreter knows (``IvrCall.secret_input``);
- ahead of a collection (no collection running, so the IVR does not know
  yet which input it is for) on a call whose IVR has a secret menu;
- on either side of a call while a ``[[pause_dtmf]]`` key sequence of the
  recording rules is active, up to and including the key that ends it
  (``SecretKeys``, whether the call is recorded or not).

A secret key is published, logged, stored and shown as ``MASK``, one per
key: the count stays (support can see "typed 5 keys, 6 needed", and the
count is on the line anyway: each key is a separate event as it is
typed), the keys do not. ``MASK`` is not a DTMF key, so a masked key is
never mistaken for ``*``. The cleartext stays only where the flow needs it:
the IVR variable the input is stored in (for a lookup), until the call
leaves the IVR.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voiceserver.recording.rules import PauseControl, RecordingRules

__all__ = ["MASK", "masked", "pause_menus", "SecretKeys"]

MASK = "\u2022"   # "•": one per secret key


def masked(keys: str) -> str:
    """The form secret keys leave the server in: one MASK per key."""
    return MASK * len(keys)


def pause_menus(rules: RecordingRules | None) -> frozenset[str]:
    """Menus whose input the recording rules pause for: that input is secret too."""
    if rules is None:
        return frozenset()
    return frozenset(rules.pause_while_collecting) | frozenset(rules.pause_on_ivr)


class SecretKeys:
    """One call's ``[[pause_dtmf]]`` sequences, for masking (sans-I/O, fed every key of the call).

    A key is secret if a DTMF pause was active when it came (so the start
    keys, ``*9``, are not; the card number and the stop key are), or if the
    IVR says it is its secret input. Keys are not kept, except the last few
    non-secret ones a start sequence needs.
    """

    def __init__(self, rules: RecordingRules | None) -> None:
        self._pause: PauseControl | None = (
            rules.pause_control() if rules is not None and rules.pause_dtmf else None)

    def key(self, d: str, t: int, *, ivr_secret: bool = False) -> bool:
        """Key ``d`` at ``t`` ms: True if it must leave the server masked."""
        if self._pause is None:
            return ivr_secret
        self._pause.tick(t)              # a pause whose timeout has passed is over
        active = self._pause.paused
        self._pause.digit(d, t, secret=ivr_secret)
        return active or ivr_secret
