"""Errors of the gateway package.

    GatewayError
    ├── ConfigError          the TOML file or an environment override is wrong (names the section and key)
    ├── StoreError           the SQLite database cannot be opened, migrated or written
    ├── BrokerError          the MQTT broker refused us or cannot be reached at start-up
    └── DeviceError          an operation names a device that does not exist or is retired

Field input that breaks the MQTT contract is not an exception here: it is a
:class:`gateway.contracts.ContractError`, stored as a dead letter and counted.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A configuration problem; the message names the file, section and key."""


class StoreError(GatewayError):
    """The database could not be opened, migrated or written."""


class BrokerError(GatewayError):
    """The broker could not be reached or refused the connection."""


class DeviceError(GatewayError):
    """An operation on a device that does not exist, or whose state forbids it."""
