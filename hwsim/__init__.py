"""hwsim: the simulated card and the world behind it (lines, phones, E1 spans, callers, faults).

    from hwsim import Simulator, Scenario, Action
    with Simulator("hwsim/configs/hotline.toml", Scenario().caller(1.0, "hotline:0", "138...")) as sim:
        ...   # open_board("sim://hotline") and drive it

See docs/hwsim.md. The world is sans-I/O (hwsim.world.BoardWorld); the
Simulator wires it to boarddrv.simdev.SimDevice.
"""
from hwsim.calls import CallRecord
from hwsim.config import SimConfig, load_config
from hwsim.parties import Action
from hwsim.scenario import Scenario, load_scenario
from hwsim.simulator import Simulator

__all__ = ["Simulator", "Scenario", "Action", "CallRecord", "SimConfig", "load_config", "load_scenario"]
