"""End to end through a real broker: publish, store, read back over the API."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from gateway.contracts import encode_telemetry
from tests.conftest import SITE


def test_published_readings_reach_the_api(broker, gateway_factory):
    gw = gateway_factory()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-smoke", protocol=mqtt.MQTTv5)
    pub.username_pw_set("simulator", broker.simulator_password)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        infos = [
            pub.publish(
                f"campus/{SITE}/env-lab1/telemetry",
                encode_telemetry({"temperature": 20 + i, "humidity": 40}, boot="b1", seq=i),
                qos=1,
            )
            for i in range(50)
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()

    def stored() -> bool:
        body = (
            gw.get("/api/devices/env-lab1/readings?metric=temperature&limit=100", expect=200)
            if gw.get("/api/devices", expect=200)["devices"]
            else {"readings": []}
        )
        return len(body["readings"]) == 50

    gw.wait_for(stored, what="50 readings")
    device = gw.get("/api/devices/env-lab1")
    assert device["online"] is True
    assert device["latest"]["temperature"]["value"] == 69
