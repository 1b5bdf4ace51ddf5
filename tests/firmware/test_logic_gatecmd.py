"""Gate commands: HMAC-SHA256 written on hashlib (RFC 4231, Python's hmac, the gateway's signer byte for byte), hex
both ways, and the reader's guard, which acts only on a correctly signed, timely, unexpired command for the one scan
it is waiting for, once."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from campusnode import gatecmd
from campusnode.clock import TicksDiff
from campusnode.gatecmd import REMEMBERED_SCANS, GateGuard, from_hex, hmac_sha256, to_hex
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contracts import sign_gate_command, verify_gate_command
from gateway.contracts.gate import gate_command_message
from tests.firmware._logic_support import VECTORS

DIFF = TicksDiff()
KEY = bytes(range(32))
SITE = "test-school"
GATE = "gym-east"
NOW = 1767225600

# RFC 4231, section 4: (key, data, HMAC-SHA-256); test case 5 is truncated to 128 bits.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be"
        b" hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize("key,data,expected", RFC4231, ids=[f"case{n}" for n in range(1, 8)])
def test_rfc4231_vectors(key, data, expected):
    digest = to_hex(hmac_sha256(key, data))
    assert digest.startswith(expected)
    assert digest == hmac.new(key, data, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 200])
def test_hmac_at_block_size_edges(length):
    key = bytes((index * 7) & 0xFF for index in range(length))
    assert hmac_sha256(key, b"msg") == hmac.new(key, b"msg", hashlib.sha256).digest()


@settings(deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_matches_pythons_hmac(key, message):
    assert hmac_sha256(key, message) == hmac.new(key, message, hashlib.sha256).digest()


@pytest.mark.parametrize("case", VECTORS["gate_commands"], ids=lambda case: case["scan_id"])
def test_contract_vectors_signed_byte_for_byte(case):
    key = from_hex(case["key_hex"])
    assert key == bytes.fromhex(case["key_hex"])
    fields = (case["site"], case["gate"], case["scan_id"], case["action"], case["expires"])
    assert gatecmd.command_message(*fields) == case["message"].encode()
    assert gatecmd.sign(key, *fields) == case["sig"]
    assert gatecmd.verify(key, *fields, case["sig"])
    assert not gatecmd.verify(key, *fields[:-1], case["expires"] + 1, case["sig"])


ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)


@settings(deadline=None)
@given(
    st.binary(min_size=1, max_size=100),
    ids,
    ids,
    st.text(min_size=1, max_size=64),
    st.sampled_from(gatecmd.ACTIONS),
    st.integers(min_value=0, max_value=2**40),
)
def test_signature_matches_the_gateways_signer(key, site, gate, scan_id, action, expires):
    message = gatecmd.command_message(site, gate, scan_id, action, expires)
    assert message == gate_command_message(site, gate, scan_id, action, expires)
    sig = gatecmd.sign(key, site, gate, scan_id, action, expires)
    assert sig == sign_gate_command(key, site, gate, scan_id, action, expires)
    assert verify_gate_command(key, site, gate, scan_id, action, expires, sig)
    assert gatecmd.verify(key, site, gate, scan_id, action, expires, sig)
    other = "deny" if action == "open" else "open"
    assert not gatecmd.verify(key, site, gate, scan_id, other, expires, sig)


def test_command_message_refuses_unknown_actions():
    with pytest.raises(ValueError, match="open or deny"):
        gatecmd.command_message(SITE, GATE, "s", "unlock", 1)


# -- hex -------------------------------------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.binary(max_size=100))
def test_hex_round_trip(data):
    text = to_hex(data)
    assert text == data.hex()
    assert from_hex(text) == data
    assert from_hex(text.upper()) == data


@settings(deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEFgxz -", max_size=40))
def test_from_hex_agrees_with_bytes_fromhex(text):
    try:
        expected = None if " " in text else bytes.fromhex(text)  # fromhex skips spaces; the firmware does not
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            from_hex(text)
    else:
        assert from_hex(text) == expected


@settings(deadline=None)
@given(st.text(max_size=20))
def test_from_hex_only_ever_raises_value_error(text):
    try:
        from_hex(text)
    except ValueError:
        pass


@pytest.mark.parametrize("text", ["abc", "0g", "zz", "0x00", "-1"])
def test_from_hex_refuses(text):
    with pytest.raises(ValueError):
        from_hex(text)


def test_equal_compares_whole_strings():
    assert gatecmd.equal("abc", "abc")
    assert gatecmd.equal("", "")
    assert not gatecmd.equal("abc", "abd")
    assert not gatecmd.equal("abc", "ab")
    assert not gatecmd.equal("ab", "abc")
    assert not gatecmd.equal("", "a")


# -- the reader's guard ----------------------------------------------------------------------------------------------


def command(
    scan_id: str, action: str = "open", expires: int = NOW + 30, key: bytes = KEY, override: dict | None = None
) -> bytes:
    """A command as the access service signs it; ``override`` then replaces fields (tampering, malformed ones)."""
    document = {
        "scan_id": scan_id,
        "action": action,
        "reason": "ok",
        "expires": expires,
        "sig": sign_gate_command(key, SITE, GATE, scan_id, action, expires),
    }
    document.update(override or {})
    return json.dumps(document).encode()


@pytest.fixture
def guard() -> GateGuard:
    guard = GateGuard(KEY, SITE, GATE, wait_ms=5000)
    guard.expect("b1-1", 10_000)
    return guard


def test_accepts_the_awaited_scan_once(guard):
    verdict = guard.check(command("b1-1"), 11_000, NOW, DIFF)
    assert (verdict.accepted, verdict.action, verdict.reason, verdict.scan_id) == (True, "open", "ok", "b1-1")
    assert guard.waiting is None
    replay = guard.check(command("b1-1"), 11_100, NOW, DIFF)
    assert (replay.accepted, replay.reason) == (False, "replay")
    assert guard.rejected == 1
    assert "replay" in repr(replay)


def test_accepts_a_deny(guard):
    verdict = guard.check(command("b1-1", "deny"), 11_000, NOW, DIFF)
    assert (verdict.action, verdict.reason) == ("deny", "ok")


def test_acts_only_on_the_scan_it_waits_for(guard):
    assert guard.check(command("b1-2"), 11_000, NOW, DIFF).reason == "not_waiting"
    assert guard.waiting == "b1-1"  # still waiting for its own scan
    guard.expect("b1-2", 12_000)  # a newer scan replaces the older one
    assert guard.check(command("b1-1"), 12_100, NOW, DIFF).reason == "not_waiting"
    assert guard.check(command("b1-2"), 12_200, NOW, DIFF).accepted
    assert guard.rejected == 2


def test_nothing_is_accepted_when_no_scan_was_sent():
    guard = GateGuard(KEY, SITE, GATE, wait_ms=5000)
    assert guard.check(command("b1-1"), 0, NOW, DIFF).reason == "not_waiting"


@pytest.mark.parametrize(
    "payload",
    [
        command("b1-1", key=b"another gate's key"),
        command("b1-1", override={"sig": "0" * 64}),
        command("b1-1", override={"sig": ""}),
        command("b1-1", override={"action": "deny"}),
        command("b1-1", override={"expires": NOW + 3600}),
        command("b1-1", override={"sig": sign_gate_command(KEY, SITE, "gym-west", "b1-1", "open", NOW + 30)}),
        command("b1-1", override={"sig": sign_gate_command(KEY, "other-school", GATE, "b1-1", "open", NOW + 30)}),
        command("b1-1", override={"sig": sign_gate_command(KEY, SITE, GATE, "b1-1", "open", NOW + 30).upper()}),
    ],
    ids=["wrong_key", "zeros", "empty", "action_swapped", "expires_extended", "other_gate", "other_site", "upper"],
)
def test_bad_signatures_are_refused_and_the_wait_goes_on(guard, payload):
    verdict = guard.check(payload, 11_000, NOW, DIFF)
    assert (verdict.accepted, verdict.reason) == (False, "bad_signature")
    assert guard.waiting == "b1-1"
    assert guard.check(command("b1-1"), 11_100, NOW, DIFF).accepted  # the real answer still counts


def test_too_late_by_the_readers_own_ticks_even_without_a_clock(guard):
    assert guard.check(command("b1-1", expires=NOW + 10**6), 15_001, None, DIFF).reason == "too_late"
    assert guard.check(command("b1-1"), 15_000, None, DIFF).accepted  # exactly wait_ms is still in time


def test_expired_once_the_clock_is_set(guard):
    late = command("b1-1", expires=NOW - 1)
    assert guard.check(late, 11_000, NOW, DIFF).reason == "expired"
    assert guard.check(command("b1-1", expires=NOW), 11_000, NOW, DIFF).accepted  # expires is inclusive


def test_expiry_is_not_judged_without_a_clock(guard):
    assert guard.check(command("b1-1", expires=NOW - 3600), 11_000, None, DIFF).accepted


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"b1-1"',
        b"{}",
        command("b1-1", override={"scan_id": 7}),
        command("b1-1", override={"action": "unlock"}),
        command("b1-1", override={"expires": "1767225630"}),
        command("b1-1", override={"expires": 1767225630.5}),
        command("b1-1", override={"expires": True}),
        command("b1-1", override={"sig": None}),
        json.dumps({"scan_id": "b1-1", "action": "open", "expires": NOW}).encode(),
    ],
    ids=[
        "text",
        "invalid_utf8",
        "array",
        "string",
        "empty",
        "scan_id_int",
        "bad_action",
        "expires_str",
        "expires_float",
        "expires_bool",
        "sig_null",
        "no_sig",
    ],
)
def test_malformed_commands_are_refused(guard, payload):
    verdict = guard.check(payload, 11_000, NOW, DIFF)
    assert (verdict.accepted, verdict.reason) == (False, "malformed")
    assert guard.waiting == "b1-1"


def test_timed_out_once_then_a_late_answer_is_refused(guard):
    assert not guard.timed_out(15_000, DIFF)
    assert guard.timed_out(15_001, DIFF)
    assert not guard.timed_out(16_000, DIFF)  # only once
    assert guard.waiting is None
    late = guard.check(command("b1-1"), 16_000, NOW, DIFF)
    assert (late.accepted, late.reason) == (False, "too_late")


def test_remembered_scans_are_bounded():
    guard = GateGuard(KEY, SITE, GATE, wait_ms=5000)
    for number in range(REMEMBERED_SCANS + 5):
        guard.expect("s-" + str(number), number)
        assert guard.check(command("s-" + str(number)), number, NOW, DIFF).accepted
    assert guard.check(command("s-" + str(REMEMBERED_SCANS + 4)), 100, NOW, DIFF).reason == "replay"
    assert guard.check(command("s-0"), 100, NOW, DIFF).reason == "not_waiting"  # forgotten, yet still never acted on
    assert len(guard._done) == REMEMBERED_SCANS


def test_a_gate_key_must_not_be_empty():
    with pytest.raises(ValueError, match="must not be empty"):
        GateGuard(b"", SITE, GATE, 5000)


@settings(deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_random_bytes_never_open_the_gate(payload):
    guard = GateGuard(KEY, SITE, GATE, wait_ms=5000)
    guard.expect("b1-1", 0)
    assert not guard.check(payload, 10, NOW, DIFF).accepted
