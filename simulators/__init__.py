"""Simulated campus devices speaking MQTT contract v1, with scheduled fault injection.

One module per device family (``printer_3d``, ``laser_cutter``, ``env_sensor``, ``smart_socket``,
``classroom_display``, ``people_counter``, ``air_quality``, ``fitness_equipment``); scenarios in TOML
(``scenarios/``) say which devices a school has and which faults happen when; :class:`Simulation` runs one against
a broker in threads (paho loop threads and one scheduler). Only :mod:`gateway.contracts` is shared with the gateway.

    scenario.py   TOML -> frozen Scenario; scenario_devices() for the gateway's [[devices]]
    device.py     one device's boot, seq, model and active faults -> contract messages (pure)
    link.py       one MQTT connection with a ledger of unconfirmed messages
    runner.py     Simulation: links, scheduler thread, faults on time, counters
    cli.py        run_simulation_cli(), the body of ``campusgw simulate``
"""

from simulators.errors import BrokerUnavailable, ScenarioError, SimulatorError
from simulators.families import FAMILIES
from simulators.faults import FaultKind, Garbage
from simulators.model import Family
from simulators.runner import Simulation, SimulationStats
from simulators.scenario import (
    Scenario,
    ScenarioDevice,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
    scenario_devices,
)

__all__ = [
    "FAMILIES",
    "BrokerUnavailable",
    "Family",
    "FaultKind",
    "Garbage",
    "Scenario",
    "ScenarioDevice",
    "ScenarioError",
    "Simulation",
    "SimulationStats",
    "SimulatorError",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
    "scenario_devices",
]
