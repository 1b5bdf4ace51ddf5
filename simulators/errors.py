"""Errors of the simulators package.

    SimulatorError
    ├── ScenarioError        a scenario file is missing or wrong (names the file and the key)
    └── BrokerUnavailable    the broker cannot be reached or refused the simulator's login

Malformed payloads are not errors here: ``garbage`` faults send them on purpose, and only the gateway rejects them.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error the simulators raise on purpose."""


class ScenarioError(SimulatorError):
    """A scenario problem; the message names the file and the key, e.g. ``demo.toml: [[groups]] #2 count: ...``."""


class BrokerUnavailable(SimulatorError):
    """The broker was not reachable in time, or it refused the login."""
