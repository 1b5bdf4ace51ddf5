"""Gate commands under MicroPython: HMAC-SHA256 on hashlib.sha256 (RFC 4231, the contract's signature vectors)
and the reader's checks (its own scan, in time, signed, not expired, once)."""

import json

from _support import load_vectors, raises
from campusnode import gatecmd
from campusnode.clock import TicksDiff

VECTORS = load_vectors()["gate_commands"]
DIFF = TicksDiff()

# RFC 4231, HMAC-SHA-256: test cases 1, 2, 3 and 6 (a key longer than the block is hashed first).
RFC4231 = (
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
)


def _hmac_module_absent():
    try:
        __import__("hmac")
    except ImportError:
        return True
    return False


def test_no_hmac_module_here_either():
    # the ESP32 build has none; the harness keeps the pyscript build's frozen one off sys.path
    assert _hmac_module_absent()


def test_hmac_sha256_rfc4231():
    for key, data, expect in RFC4231:
        assert gatecmd.to_hex(gatecmd.hmac_sha256(key, data)) == expect, expect


def test_contract_signature_vectors():
    assert len(VECTORS) >= 2
    for vector in VECTORS:
        key = gatecmd.from_hex(vector["key_hex"])
        args = (vector["site"], vector["gate"], vector["scan_id"], vector["action"], vector["expires"])
        assert gatecmd.command_message(*args) == vector["message"].encode()
        assert gatecmd.sign(key, *args) == vector["sig"]
        assert gatecmd.verify(key, *args, vector["sig"])
        flipped = ("0" if vector["sig"][0] != "0" else "1") + vector["sig"][1:]
        assert not gatecmd.verify(key, *args, flipped)
        assert not gatecmd.verify(key, *args, vector["sig"][:-2])
        assert not gatecmd.verify(key + b"x", *args, vector["sig"])


def test_hex():
    assert gatecmd.to_hex(b"\x00\x0f\xa0\xff") == "000fa0ff"
    assert gatecmd.from_hex("000FA0ff") == b"\x00\x0f\xa0\xff"
    assert gatecmd.from_hex("") == b""
    raises(ValueError, gatecmd.from_hex, "abc")
    raises(ValueError, gatecmd.from_hex, "zz")
    raises(ValueError, gatecmd.command_message, "s", "g", "id", "close", 1)
    assert gatecmd.equal("abc", "abc") and not gatecmd.equal("abc", "abd") and not gatecmd.equal("abc", "ab")


def _guard(vector, wait_ms=5000):
    return gatecmd.GateGuard(gatecmd.from_hex(vector["key_hex"]), vector["site"], vector["gate"], wait_ms)


def _command(vector, **changes) -> bytes:
    document = {
        "scan_id": vector["scan_id"],
        "action": vector["action"],
        "expires": vector["expires"],
        "sig": vector["sig"],
        "reason": "ok",
    }
    document.update(changes)
    return json.dumps(document).encode()


def test_guard_accepts_its_own_signed_command_once():
    for vector in VECTORS:
        guard = _guard(vector)
        guard.expect(vector["scan_id"], 1000)
        verdict = guard.check(_command(vector), 1400, vector["expires"] - 5, DIFF)
        assert verdict.accepted and verdict.action == vector["action"], verdict
        assert verdict.scan_id == vector["scan_id"]
        assert guard.waiting is None
        again = guard.check(_command(vector), 1500, vector["expires"] - 5, DIFF)
        assert not again.accepted and again.reason == "replay", again
        assert guard.rejected == 1


def test_guard_rejections():
    vector = VECTORS[0]
    cases = (
        ("not_waiting", None, _command(vector), 1100, None),
        ("too_late", vector["scan_id"], _command(vector), 1000 + 5001, None),
        ("bad_signature", vector["scan_id"], _command(vector, sig="0" * 64), 1100, None),
        ("bad_signature", vector["scan_id"], _command(vector, action="deny"), 1100, None),
        ("bad_signature", vector["scan_id"], _command(vector, expires=vector["expires"] + 60), 1100, None),
        ("expired", vector["scan_id"], _command(vector), 1100, vector["expires"] + 1),
        ("malformed", vector["scan_id"], b"\xff\xfe{", 1100, None),
        ("malformed", vector["scan_id"], b"[1, 2]", 1100, None),
        ("malformed", vector["scan_id"], b'{"scan_id": "s"', 1100, None),
        ("malformed", vector["scan_id"], _command(vector, expires=True), 1100, None),
        ("malformed", vector["scan_id"], _command(vector, expires="1767225630"), 1100, None),
        ("malformed", vector["scan_id"], _command(vector, action="close"), 1100, None),
        ("malformed", vector["scan_id"], _command(vector, sig=None), 1100, None),
    )
    for reason, waiting, payload, now_ms, unix_now in cases:
        guard = _guard(vector)
        if waiting is not None:
            guard.expect(waiting, 1000)
        verdict = guard.check(payload, now_ms, unix_now, DIFF)
        assert not verdict.accepted, reason
        assert verdict.reason == reason, reason + " got " + repr(verdict)
        assert guard.rejected == 1


def test_guard_without_a_clock_checks_ticks_only():
    vector = VECTORS[0]
    guard = _guard(vector)
    guard.expect(vector["scan_id"], 1000)
    verdict = guard.check(_command(vector), 1100, None, DIFF)  # clock unset: expiry cannot be told
    assert verdict.accepted, verdict


def test_a_newer_scan_replaces_the_one_waited_for_and_timeouts_fire_once():
    vector = VECTORS[0]
    guard = _guard(vector, wait_ms=2000)
    guard.expect("older", 1000)
    guard.expect(vector["scan_id"], 1500)
    assert guard.check(_command(vector, scan_id="older"), 1600, None, DIFF).reason == "not_waiting"
    assert not guard.timed_out(3500, DIFF)
    assert guard.timed_out(3501, DIFF)
    assert not guard.timed_out(3600, DIFF)
    late = guard.check(_command(vector), 3600, None, DIFF)  # the answer came after the reader gave up
    assert not late.accepted and late.reason == "too_late", late


def test_remembered_scans_are_bounded():
    vector = VECTORS[0]
    guard = _guard(vector, wait_ms=1000)
    for index in range(gatecmd.REMEMBERED_SCANS + 5):
        guard.expect("s" + str(index), 0)
        assert guard.timed_out(1001, DIFF)
    assert len(guard._done) == gatecmd.REMEMBERED_SCANS
    raises(ValueError, gatecmd.GateGuard, b"", "s", "g", 1000)
