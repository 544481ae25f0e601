"""Board test helpers (imported by the test modules): boards and a device thread."""
from __future__ import annotations

import threading
from collections.abc import Callable

from boarddrv import ChannelType
from boarddrv.simdev import ChanSpec, SimDevice, SpanSpec


def mixed_board(name: str, clock: str = "lockstep") -> SimDevice:
    """2 FXO + 2 FXS on an analog span, then an E1 CAS span of 30: 34 channels."""
    spans = [SpanSpec(kind="analog", nchan=4), SpanSpec(kind="e1", nchan=30, framing="cas")]
    chans = ([ChanSpec(ChannelType.FXO, 0)] * 2 + [ChanSpec(ChannelType.FXS, 0)] * 2
             + [ChanSpec(ChannelType.E1_CAS, 1)] * 30)
    return SimDevice.create(name, spans=spans, channels=chans, clock=clock)


FXO0, FXO1, FXS0, FXS1, CAS0 = 0, 1, 2, 3, 4


class DeviceThread:
    """Serve ticks on a thread: on_tick(dev, tick) between next_tick and publish.

    Exceptions in the thread are re-raised by stop(), so a failing device
    fails the test instead of silently stalling the host.
    """

    def __init__(self, dev: SimDevice, on_tick: Callable[[SimDevice, int], None] | None = None,
                 max_ticks: int | None = None) -> None:
        self.dev = dev
        self.on_tick = on_tick
        self.max_ticks = max_ticks
        self.ticks: list[int] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DeviceThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.max_ticks is not None and len(self.ticks) >= self.max_ticks:
                    return
                t = self.dev.next_tick(0.05)
                if t is None:
                    continue
                self.ticks.append(t)
                if self.on_tick:
                    self.on_tick(self.dev, t)
                if self.dev.removed:            # remove() published the final tick
                    return
                self.dev.publish()
        except BaseException as exc:  # re-raised in stop()
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "device thread did not stop"
        if self.error is not None:
            raise self.error
