"""Topic names of MQTT contract v1: ``campus/{site}/{device}/{kind}``; ``gate``, ``venue``, ``reports`` are reserved."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

DEVICE_ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
METRIC_NAME_PATTERN = r"[a-z][a-z0-9_.]{0,63}"
RESERVED_IDS = frozenset({"gate", "venue", "reports"})

_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)


class TopicKind(enum.StrEnum):
    TELEMETRY = "telemetry"
    STATUS = "status"
    EVENT = "event"
    CMD = "cmd"


@dataclass(frozen=True, slots=True)
class TopicRef:
    """A device topic taken apart: which site, which device, which kind of message."""

    site: str
    device: str
    kind: TopicKind


def is_device_id(text: str) -> bool:
    """True for a valid site code or device id that is not one of the reserved words."""
    return _DEVICE_ID.fullmatch(text) is not None and text not in RESERVED_IDS


def device_topic(site: str, device: str, kind: TopicKind | str) -> str:
    return f"campus/{site}/{device}/{TopicKind(kind).value}"


def subscriptions(site: str) -> list[str]:
    """The topic filters the gateway subscribes to for one site."""
    return [device_topic(site, "+", kind) for kind in (TopicKind.TELEMETRY, TopicKind.STATUS, TopicKind.EVENT)]


_KINDS = {kind.value: kind for kind in TopicKind}


def parse_topic(topic: str) -> TopicRef | None:
    """Split a device topic; ``None`` when it is not a well-formed device topic of this contract.

    The device id is returned as given: checking it is the caller's business (it becomes a ``bad_device_id``
    dead letter, not a silent drop).
    """
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "campus":
        return None
    kind = _KINDS.get(parts[3])
    if kind is None or not parts[1]:
        return None
    return TopicRef(site=parts[1], device=parts[2], kind=kind)
