"""The HTTP API: authentication, devices and registry changes, readings with cursors, roll-ups, health."""

from __future__ import annotations

import time

from gateway.contracts import encode_telemetry
from tests.conftest import http_json


def test_everything_but_health_and_metrics_needs_the_token(gateway_factory):
    gw = gateway_factory()
    for path in (
        "/api/devices",
        "/api/devices/x",
        "/api/devices/x/readings",
        "/api/deadletters",
        "/api/devices/x/rollups",
        "/api/openapi.json",
    ):
        http_json(gw.url + path, expect=401)
        http_json(gw.url + path, token="wrong-token", expect=401)
    schema = http_json(gw.url + "/api/openapi.json", token=gw.token)
    assert "/api/devices/{device}/readings" in schema["paths"]
    http_json(gw.url + "/api/docs", token=gw.token, expect=404)  # no page that loads Swagger UI from a CDN
    http_json(gw.url + "/api/devices/x", token=gw.token, method="PATCH", body={"name": "n"}, expect=404)
    http_json(gw.url + "/api/devices/x", token="wrong", method="PATCH", body={"name": "n"}, expect=401)
    http_json(gw.url + "/api/devices/x/retire", method="POST", expect=401)
    http_json(gw.url + "/api/signin-codes", method="POST", expect=401)
    assert http_json(gw.url + "/healthz")["status"] == "ok"
    metrics = http_json(gw.url + "/metrics").decode()
    for name in (
        "campusgw_messages_ingested_total",
        "campusgw_messages_rejected_total",
        "campusgw_readings_stored_total",
        "campusgw_duplicates_total",
        "campusgw_write_batch_seconds",
        "campusgw_queue_depth",
        "campusgw_devices_online",
        "campusgw_db_bytes",
        "campusgw_disk_free_bytes",
    ):
        assert name in metrics, name


def test_token_file_is_private(gateway_factory):
    gw = gateway_factory()
    assert gw.settings.token_path.stat().st_mode & 0o777 == 0o600


def test_rename_move_and_retire(gateway_factory, publisher):
    gw = gateway_factory()
    publisher.device("printer-01", "telemetry", encode_telemetry({"bed_temp": 60}))
    gw.wait_for(lambda: gw.get("/api/devices")["devices"], what="device")
    url = gw.url + "/api/devices/printer-01"
    body = http_json(url, token=gw.token, method="PATCH", body={"name": "Prusa 1号", "room": "创客教室"})
    assert (body["name"], body["room"]) == ("Prusa 1号", "创客教室")
    http_json(url, token=gw.token, method="PATCH", body={"colour": "red"}, expect=422)
    http_json(url + "/retire", token=gw.token, method="POST")
    http_json(url + "/retire", token=gw.token, method="POST", expect=409)
    assert gw.get("/api/devices")["devices"] == []
    assert gw.get("/api/devices?include_retired=true")["devices"][0]["retired"] is True
    kinds = [e["kind"] for e in gw.get("/api/devices/printer-01")["events"]]
    assert {"renamed", "moved", "retired"} <= set(kinds)
    # a retired device's messages are dead letters, not readings
    publisher.device("printer-01", "telemetry", encode_telemetry({"bed_temp": 61}))
    gw.wait_for(lambda: gw.get("/api/deadletters")["counts"].get("device_retired") == 1, what="dead letter")
    assert len(gw.get("/api/devices/printer-01/readings")["readings"]) == 1


def test_readings_time_window_limit_and_cursor(gateway_factory, publisher):
    gw = gateway_factory()
    base = time.time() - 3000
    items = []
    for seq in range(120):
        payload = encode_telemetry({"temperature": float(seq), "humidity": 50}, ts=base + seq * 10, boot="b", seq=seq)
        items.append((f"campus/{publisher.site}/env-lab1/telemetry", payload))
    publisher.many(items)
    gw.wait_for(lambda: len(gw.get("/api/devices/env-lab1/readings?limit=10000")["readings"]) == 240, what="240")
    page = gw.get("/api/devices/env-lab1/readings?metric=temperature&limit=50")
    values = [r["value"] for r in page["readings"]]
    while page["next_cursor"]:
        page = gw.get(f"/api/devices/env-lab1/readings?metric=temperature&limit=50&cursor={page['next_cursor']}")
        values += [r["value"] for r in page["readings"]]
    assert values == [float(i) for i in range(120)]
    # both metrics, merged in time order, across pages
    rows = []
    page = gw.get("/api/devices/env-lab1/readings?limit=7")
    rows += page["readings"]
    while page["next_cursor"]:
        page = gw.get(f"/api/devices/env-lab1/readings?limit=7&cursor={page['next_cursor']}")
        rows += page["readings"]
    assert len(rows) == 240 and [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    # since inclusive, until exclusive; Unix seconds and ISO 8601 mean the same thing
    since, until = base + 100, base + 200
    unix = gw.get(f"/api/devices/env-lab1/readings?metric=temperature&since={since}&until={until}")["readings"]
    assert [r["value"] for r in unix] == [float(i) for i in range(10, 20)]
    iso_since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)) + f".{int(since % 1 * 1e6):06d}%2B00:00"
    iso = gw.get(f"/api/devices/env-lab1/readings?metric=temperature&since={iso_since}&until={until}")["readings"]
    assert iso == unix
    gw.get("/api/devices/env-lab1/readings?since=yesterday", expect=422)
    gw.get("/api/devices/env-lab1/readings?limit=10001", expect=422)
    gw.get("/api/devices/env-lab1/readings?limit=10000")
    gw.get("/api/devices/env-lab1/readings?cursor=!!!", expect=422)
    gw.get("/api/devices/nobody/readings", expect=404)


def test_rollups_take_late_readings(gateway_factory, publisher):
    gw = gateway_factory(environ={"CAMPUSGW__STORAGE__ROLLUP_INTERVAL_S": "0.1"})
    minute = (int(time.time()) // 60 - 10) * 60
    for seq, value in enumerate((10.0, 20.0, 30.0)):
        publisher.device(
            "env-lab1", "telemetry", encode_telemetry({"temperature": value}, ts=minute + seq, boot="r", seq=seq)
        )
    gw.wait_for(lambda: len(gw.get("/api/devices/env-lab1/readings")["readings"]) == 3, what="3 readings")
    # a late reading for the same minute, sent after newer ones
    publisher.device("env-lab1", "telemetry", encode_telemetry({"temperature": 0.0}, ts=minute + 30, boot="r", seq=3))
    publisher.device("env-lab1", "telemetry", encode_telemetry({"temperature": 5.0}, ts=minute + 600, boot="r", seq=4))
    gw.wait_for(lambda: len(gw.get("/api/devices/env-lab1/readings")["readings"]) == 5, what="5 readings")
    gw.wait_for(
        lambda: sum(r["count"] for r in gw.get("/api/devices/env-lab1/rollups?metric=temperature")["rollups"]) == 5,
        what="the roll-ups folded in",
    )
    rows = gw.get(f"/api/devices/env-lab1/rollups?metric=temperature&since={minute}")["rollups"]
    first = rows[0]
    assert (first["bucket"], first["min"], first["max"], first["avg"], first["count"]) == (minute, 0.0, 30.0, 15.0, 4)
    hour = gw.get("/api/devices/env-lab1/rollups?metric=temperature&period=hour")["rollups"]
    assert sum(r["count"] for r in hour) == 5


def test_healthz_is_503_with_the_reason_while_the_broker_is_down(broker, gateway_factory):
    gw = gateway_factory()
    assert http_json(gw.url + "/healthz")["status"] == "ok"
    broker.process.stop()
    gw.wait_for(lambda: http_json(gw.url + "/healthz", expect=503)["problems"], what="503")
    problems = http_json(gw.url + "/healthz", expect=503)["problems"]
    assert any("broker" in p and "not connected" in p for p in problems)
    broker.process.start()
    gw.wait_for(lambda: http_json(gw.url + "/healthz")["status"] == "ok", timeout=40, what="healthy again")


def test_disk_below_watermark_holds_acks_and_says_so(broker, gateway_factory, publisher):
    gw = gateway_factory(environ={"CAMPUSGW__STORAGE__DISK_WATERMARK_MB": str(10**9)})  # a petabyte: always below
    publisher.device("env-lab1", "telemetry", encode_telemetry({"temperature": 20.0}, boot="w", seq=0))
    gw.wait_for(lambda: http_json(gw.url + "/healthz", expect=503)["problems"], what="503")
    problems = http_json(gw.url + "/healthz", expect=503)["problems"]
    assert any("watermark" in p for p in problems)
    assert "campusgw_acks_paused 1.0" in http_json(gw.url + "/metrics").decode()
    assert gw.get("/api/devices")["devices"] == []  # nothing written


def test_devices_cli_talks_to_the_running_gateway(gateway_factory, publisher):
    from typer.testing import CliRunner

    from gateway.__main__ import app

    gw = gateway_factory()
    publisher.device("printer-01", "telemetry", encode_telemetry({"bed_temp": 60}))
    gw.wait_for(lambda: gw.get("/api/devices")["devices"], what="device")
    config = str(gw.settings.storage.path.parent / "gateway.toml")
    runner = CliRunner()
    assert runner.invoke(app, ["devices", "rename", "--config", config, "printer-01", "Prusa A"]).exit_code == 0
    assert runner.invoke(app, ["devices", "move", "--config", config, "printer-01", "maker-lab"]).exit_code == 0
    listing = runner.invoke(app, ["devices", "list", "--config", config])
    assert listing.exit_code == 0 and "Prusa A" in listing.output and "maker-lab" in listing.output
    moved = runner.invoke(app, ["devices", "move", "--config", config, "printer-01", "[lab 2]"])
    assert moved.exit_code == 0 and "[lab 2]" in moved.output, moved.output  # a room name, not terminal markup
    assert "[lab 2]" in runner.invoke(app, ["devices", "list", "--config", config]).output
    missing = runner.invoke(app, ["devices", "retire", "--config", config, "nobody"])
    assert missing.exit_code == 2 and "404" in missing.output
    assert runner.invoke(app, ["devices", "retire", "--config", config, "printer-01"]).exit_code == 0
    link = runner.invoke(app, ["signin-link", "--config", config])
    assert link.exit_code == 0 and "/login?code=" in link.output
