"""The MQTT contract, version 1: topics, payloads and gate-command signatures.

This package is the one place where the wire format lives. The gateway, the simulators, the access service and
the firmware tests all use it, with the shared test vectors in ``vectors.json``.
"""

from gateway.contracts.gate import gate_command_message, sign_gate_command, verify_gate_command
from gateway.contracts.payloads import (
    MAX_PAYLOAD_BYTES,
    ContractError,
    Event,
    MetricValue,
    RejectReason,
    Status,
    Telemetry,
    encode_event,
    encode_status,
    encode_telemetry,
    parse_event,
    parse_status,
    parse_telemetry,
)
from gateway.contracts.topics import (
    DEVICE_ID_PATTERN,
    METRIC_NAME_PATTERN,
    RESERVED_IDS,
    TopicKind,
    TopicRef,
    device_topic,
    is_device_id,
    parse_topic,
    subscriptions,
)

__all__ = [
    "DEVICE_ID_PATTERN",
    "MAX_PAYLOAD_BYTES",
    "METRIC_NAME_PATTERN",
    "RESERVED_IDS",
    "ContractError",
    "Event",
    "MetricValue",
    "RejectReason",
    "Status",
    "Telemetry",
    "TopicKind",
    "TopicRef",
    "device_topic",
    "encode_event",
    "encode_status",
    "encode_telemetry",
    "gate_command_message",
    "is_device_id",
    "parse_event",
    "parse_status",
    "parse_telemetry",
    "parse_topic",
    "sign_gate_command",
    "subscriptions",
    "verify_gate_command",
]
