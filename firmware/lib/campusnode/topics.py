"""Topic names of MQTT contract v1, as a device builds them (mirrors ``gateway/contracts/topics.py``)."""

RESERVED_IDS = ("gate", "venue", "reports")
DEVICE_KINDS = ("telemetry", "status", "event", "cmd")
GATE_KINDS = ("scan", "cmd", "passage")

_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789"
_REST = _FIRST + "_-"


def is_device_id(text: str) -> bool:
    """True for ``[a-z0-9][a-z0-9_-]{0,63}`` that is not a reserved word (site codes, device and gate ids)."""
    if not isinstance(text, str) or not 0 < len(text) <= 64 or text in RESERVED_IDS:
        return False
    if text[0] not in _FIRST:
        return False
    for char in text[1:]:
        if char not in _REST:
            return False
    return True


def device_topic(site: str, device: str, kind: str) -> str:
    """``campus/{site}/{device}/{kind}`` for telemetry, status, event and cmd."""
    if kind not in DEVICE_KINDS:
        raise ValueError("unknown device topic kind " + repr(kind))
    return "campus/" + site + "/" + device + "/" + kind


def gate_topic(site: str, gate: str, kind: str) -> str:
    """``campus/{site}/gate/{gate}/{kind}`` for scan, cmd and passage."""
    if kind not in GATE_KINDS:
        raise ValueError("unknown gate topic kind " + repr(kind))
    return "campus/" + site + "/gate/" + gate + "/" + kind
