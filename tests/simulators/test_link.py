"""The ledger of one MQTT link: what the broker did not confirm survives a dropped connection."""

from __future__ import annotations

import os
import signal

import pytest

from gateway.broker import SIMULATOR_USER
from gateway.contracts import TopicKind, encode_telemetry, parse_telemetry
from simulators.device import Outgoing
from simulators.errors import SimulatorError
from simulators.link import BrokerAddress, Link, LinkOptions
from tests.conftest import Broker
from tests.simulators.conftest import Observer

TOPIC = "campus/test-school/env-01/telemetry"


def _message(seq: int) -> Outgoing:
    payload = encode_telemetry({"co2": 400 + seq}, ts=1_800_000_000.0, boot="ledger", seq=seq)
    return Outgoing("env-01", TopicKind.TELEMETRY, TOPIC, payload, boot="ledger", seq=seq)


def test_broker_urls() -> None:
    assert BrokerAddress.parse("mqtt://127.0.0.1:1884") == BrokerAddress("127.0.0.1", 1884, False)
    assert BrokerAddress.parse("mqtts://broker.school.example") == BrokerAddress("broker.school.example", 8883, True)
    assert BrokerAddress.parse("mqtt://box/") == BrokerAddress("box", 1883, False)
    for bad in ("http://box:1883", "box:1883", "mqtt://box:99999", "mqtt://"):
        with pytest.raises(SimulatorError, match="broker URL"):
            BrokerAddress.parse(bad)


def test_a_dropped_connection_hands_what_was_not_confirmed_to_the_next(broker: Broker, observer: Observer) -> None:
    options = LinkOptions("sim-ledger-test", SIMULATOR_USER, broker.simulator_password,
                          will_topic="campus/test-school/env-01/status", reconnect_max_s=1)
    link = Link(BrokerAddress.parse(broker.url), options, lambda _: None)
    link.open()
    try:
        assert link.wait_connected(5)
        mosquitto = broker.process._process  # freeze the broker: it takes the messages but confirms nothing
        assert mosquitto is not None
        os.kill(mosquitto.pid, signal.SIGSTOP)
        try:
            assert all(link.publish(_message(seq)) for seq in range(20))
            assert not link.wait_confirmed(0.3)
            link.drop()  # the device loses its network with 20 messages unconfirmed
        finally:
            os.kill(mosquitto.pid, signal.SIGCONT)
        counters = link.counters()
        assert (counters.published, counters.confirmed, counters.pending) == (20, 0, 20)
        link.reopen()
        assert link.wait_confirmed(10), link.counters()
        counters = link.counters()
        assert (counters.published, counters.confirmed, counters.resent, counters.pending) == (20, 20, 20, 0)
    finally:
        link.disconnect()
        link.join()

    def received() -> set[int | None]:
        messages = observer.messages("env-01", TopicKind.TELEMETRY)
        return {parse_telemetry("env-01", m.payload, m.at).seq for m in messages}

    observer.wait_for(lambda: received() == set(range(20)), what="all 20 messages, same boot and seq")


def test_a_full_ledger_drops_and_counts(broker: Broker) -> None:
    options = LinkOptions("sim-ledger-full", SIMULATOR_USER, broker.simulator_password, max_pending=5)
    link = Link(BrokerAddress.parse("mqtt://127.0.0.1:9"), options, lambda _: None)  # never connects
    try:
        results = [link.publish(_message(seq)) for seq in range(8)]
        assert results == [True] * 5 + [False] * 3
        counters = link.counters()
        assert (counters.published, counters.dropped, counters.pending) == (5, 3, 5)
    finally:
        link.disconnect()
        link.join()
