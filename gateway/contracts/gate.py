"""Gate commands of contract v1: ``sig`` is hex HMAC-SHA256 under the gate's key of
``v1|site|gate|scan_id|action|expires``. Commands are never retained and carry an expiry."""

from __future__ import annotations

import hashlib
import hmac

GATE_ACTIONS = ("open", "deny")


def gate_command_message(site: str, gate: str, scan_id: str, action: str, expires: int) -> bytes:
    """The exact bytes that are signed."""
    if action not in GATE_ACTIONS:
        raise ValueError(f"gate action must be one of {GATE_ACTIONS}, got {action!r}")
    return f"v1|{site}|{gate}|{scan_id}|{action}|{int(expires)}".encode()


def sign_gate_command(key: bytes, site: str, gate: str, scan_id: str, action: str, expires: int) -> str:
    return hmac.new(key, gate_command_message(site, gate, scan_id, action, expires), hashlib.sha256).hexdigest()


def verify_gate_command(key: bytes, site: str, gate: str, scan_id: str, action: str, expires: int, sig: str) -> bool:
    expected = sign_gate_command(key, site, gate, scan_id, action, expires)
    return hmac.compare_digest(expected, sig)
