"""hwsim: the simulated card and the world behind it (lines, phones, E1 spans, callers, faults).

    from hwsim import Simulator, Scenario, Action
    with Simulator("hwsim/configs/hotline.toml", Scenario().caller(1.0, "hotline:0", "138...")) as sim:
        ...   # open_board("sim://hotline") and drive it

See docs/hwsim.md. The world is sans-I/O (hwsim.world.BoardWorld); the
Simulator wires it to boarddrv.simdev.SimDevice.

The names below are imported on first use, so a launcher that only runs
hwsim as a process (hwsim.spawn: the demo, the benches) does not load the
simulator, numpy or dsp.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hwsim.calls import CallRecord
    from hwsim.config import SimConfig, load_config
    from hwsim.parties import Action
    from hwsim.scenario import Scenario, load_scenario
    from hwsim.simulator import Simulator

_HOMES = {"Simulator": "hwsim.simulator", "Scenario": "hwsim.scenario", "Action": "hwsim.parties",
          "CallRecord": "hwsim.calls", "SimConfig": "hwsim.config", "load_config": "hwsim.config",
          "load_scenario": "hwsim.scenario"}

__all__ = ["Simulator", "Scenario", "Action", "CallRecord", "SimConfig", "load_config", "load_scenario"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hwsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
