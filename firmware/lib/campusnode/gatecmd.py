"""Gate commands: HMAC-SHA256 on ``hashlib.sha256`` (the ESP32 build has no ``hmac``), and the reader's checks.

Contract v1: ``sig`` is the hex HMAC-SHA256, under the gate's own key, of ``v1|site|gate|scan_id|action|expires``.
A reader acts only on a command for a scan it sent itself and is still waiting for (by its own tick clock), whose
signature checks out, and, once its clock is set, that has not expired. Each scan is acted on once.
"""

import hashlib
import json

from campusnode.clock import TicksDiff

ACTIONS = ("open", "deny")
_BLOCK = 64
#: How many finished scans are remembered, to tell a replay or a late answer from a command for an unknown scan.
REMEMBERED_SCANS = 16


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """RFC 2104 HMAC with SHA-256."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
    inner.update(message)
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))
    outer.update(inner.digest())
    return outer.digest()


def to_hex(data: bytes) -> str:
    return "".join("%02x" % byte for byte in data)


def from_hex(text: str) -> bytes:
    """Bytes from hex text; ValueError for anything else (odd length, non-hex characters)."""
    if len(text) % 2:
        raise ValueError("hex text of odd length")
    digits = "0123456789abcdef"
    out = bytearray()
    lower = text.lower()
    for index in range(0, len(lower), 2):
        high = digits.find(lower[index])
        low = digits.find(lower[index + 1])
        if high < 0 or low < 0:
            raise ValueError("not a hex digit at " + str(index))
        out.append(high * 16 + low)
    return bytes(out)


def equal(a: str, b: str) -> bool:
    """Compare two strings in time that depends only on their lengths, never on where they differ."""
    a_bytes = a.encode()
    b_bytes = b.encode()
    result = len(a_bytes) ^ len(b_bytes)
    other = b_bytes if len(a_bytes) == len(b_bytes) else a_bytes
    for index in range(len(a_bytes)):
        result |= a_bytes[index] ^ other[index]
    return result == 0


def command_message(site: str, gate: str, scan_id: str, action: str, expires: int) -> bytes:
    """The exact bytes that are signed."""
    if action not in ACTIONS:
        raise ValueError("gate action must be open or deny, got " + repr(action))
    return ("v1|" + site + "|" + gate + "|" + scan_id + "|" + action + "|" + str(int(expires))).encode()


def sign(key: bytes, site: str, gate: str, scan_id: str, action: str, expires: int) -> str:
    return to_hex(hmac_sha256(key, command_message(site, gate, scan_id, action, expires)))


def verify(key: bytes, site: str, gate: str, scan_id: str, action: str, expires: int, sig: str) -> bool:
    return equal(sign(key, site, gate, scan_id, action, expires), sig)


class Verdict:
    """What a reader does with a command: ``action`` is open or deny when it is accepted, else None and
    ``reason`` says why it was ignored."""

    def __init__(self, action: str | None, reason: str, scan_id: str | None = None) -> None:
        self.action = action
        self.reason = reason
        self.scan_id = scan_id

    @property
    def accepted(self) -> bool:
        return self.action is not None

    def __repr__(self) -> str:
        return "Verdict(" + repr(self.action) + ", " + repr(self.reason) + ")"


class GateGuard:
    """The reader's side of the exchange: the one scan it is waiting for, and the checks on every command."""

    def __init__(self, key: bytes, site: str, gate: str, wait_ms: int) -> None:
        if not key:
            raise ValueError("a gate key must not be empty")
        self._key = key
        self.site = site
        self.gate = gate
        self.wait_ms = wait_ms
        self.waiting: str | None = None
        self._since = 0
        self._done: list[tuple[str, str]] = []  # (scan_id, why a new command for it is refused)
        self.rejected = 0

    def expect(self, scan_id: str, now_ms: int) -> None:
        """A scan was sent: wait for its command (a newer scan replaces an older one)."""
        self.waiting = scan_id
        self._since = now_ms

    def timed_out(self, now_ms: int, diff: TicksDiff) -> bool:
        """True (once) when the scan waited for has waited ``wait_ms`` without a command."""
        if self.waiting is not None and diff.diff(now_ms, self._since) > self.wait_ms:
            self._consume(self.waiting, "too_late")
            return True
        return False

    def check(self, payload: bytes, now_ms: int, unix_now: int | None, diff: TicksDiff) -> Verdict:
        """Check a command payload; an accepted one ends the wait, so the same command is never acted on twice."""
        verdict = self._check(payload, now_ms, unix_now, diff)
        if verdict.accepted:
            self._consume(verdict.scan_id, "replay")
        else:
            self.rejected += 1
        return verdict

    def _check(self, payload: bytes, now_ms: int, unix_now: int | None, diff: TicksDiff) -> Verdict:
        try:
            document = json.loads(payload.decode("utf-8"))
        except ValueError:  # also UnicodeError, on both interpreters
            return Verdict(None, "malformed")
        if not isinstance(document, dict):
            return Verdict(None, "malformed")
        scan_id = document.get("scan_id")
        action = document.get("action")
        expires = document.get("expires")
        sig = document.get("sig")
        if (
            not isinstance(scan_id, str)
            or action not in ACTIONS
            or isinstance(expires, bool)
            or not isinstance(expires, int)
            or not isinstance(sig, str)
        ):
            return Verdict(None, "malformed")
        for done_id, refusal in self._done:
            if done_id == scan_id:
                return Verdict(None, refusal, scan_id)
        if self.waiting is None or scan_id != self.waiting:
            return Verdict(None, "not_waiting", scan_id)
        if diff.diff(now_ms, self._since) > self.wait_ms:
            return Verdict(None, "too_late", scan_id)
        if not verify(self._key, self.site, self.gate, scan_id, str(action), expires, sig):
            return Verdict(None, "bad_signature", scan_id)
        if unix_now is not None and unix_now > expires:
            return Verdict(None, "expired", scan_id)
        return Verdict(str(action), "ok", scan_id)

    def _consume(self, scan_id: str | None, refusal: str) -> None:
        if scan_id is None:
            return
        if self.waiting == scan_id:
            self.waiting = None
        self._done.append((scan_id, refusal))
        if len(self._done) > REMEMBERED_SCANS:
            self._done.pop(0)
