"""The device families the simulators know, by the ``type`` name the gateway declares them with."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from simulators import (
    air_quality,
    classroom_display,
    env_sensor,
    fitness_equipment,
    laser_cutter,
    people_counter,
    printer_3d,
    smart_socket,
)
from simulators.model import Family

FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        family.name: family
        for family in (
            printer_3d.FAMILY,
            laser_cutter.FAMILY,
            env_sensor.FAMILY,
            smart_socket.FAMILY,
            classroom_display.FAMILY,
            people_counter.FAMILY,
            air_quality.FAMILY,
            fitness_equipment.FAMILY,
        )
    }
)
