"""The dashboard in headless Chromium sized like a phone, against a running gateway and a real Mosquitto.

A device announces itself over MQTT, a person signs in through the form, sees it online, and, without touching the
page, sees it go offline when the device's retained status says so. Screenshots of each step land in ``tmp_path``
(run with ``--basetemp DIR`` to keep them).
"""

from __future__ import annotations

import base64
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from gateway.broker import SIMULATOR_USER
from gateway.contracts import device_topic, encode_status, encode_telemetry

if TYPE_CHECKING:
    from tests.conftest import Broker, RunningGateway

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE = (390, 844)

DEVICES = """
[[devices]]
id = "env-lab1"
type = "env_sensor"
name = "创客教室 环境监测"
room = "创客教室"
units = { temp = "°C", humidity = "%", co2 = "ppm" }

[[devices]]
id = "printer-01"
type = "printer_3d"
name = "3D 打印机 A"
room = "创新实验室"
units = { nozzle_temp = "°C", progress = "%" }
"""


def _require_browser() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not missing:
        return
    reason = f"headless Chromium is not installed ({', '.join(missing)} missing; apt install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(reason + " and CI is set, so browser tests must run")
    pytest.skip(reason)


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[WebDriver]:
    _require_browser()
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
                     f"--window-size={PHONE[0]},{PHONE[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        _emulate_phone(driver, PHONE[0])
        yield driver
    finally:
        driver.quit()


def _emulate_phone(driver: WebDriver, width: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # type: ignore[attr-defined]
                           {"width": width, "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True})


def _screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page, not only the part in the viewport."""
    size = driver.execute_script("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {  # type: ignore[attr-defined]
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size[0], "height": min(size[1], 6000), "scale": 1},
    })
    path.write_bytes(base64.b64decode(shot["data"]))


def _no_horizontal_scroll(driver: WebDriver) -> None:
    widths = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px viewport"


class Device:
    """Publishes as the ``simulator`` broker user, the way the simulators and real devices do."""

    def __init__(self, broker: Broker) -> None:
        self.site = broker.site
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dashboard-test-{os.getpid()}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(SIMULATOR_USER, broker.simulator_password)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, device: str, kind: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(device_topic(self.site, device, kind), payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def device(broker: Broker) -> Iterator[Device]:
    publisher = Device(broker)
    try:
        yield publisher
    finally:
        publisher.close()


def _card_state(driver: WebDriver, device: str) -> str | None:
    cards = driver.find_elements(By.CSS_SELECTOR, f'[data-device="{device}"]')
    return cards[0].get_attribute("data-state") if cards else None


def _device_json(gateway: RunningGateway, device: str) -> dict[str, Any]:
    body: dict[str, Any] = gateway.get(f"/api/devices/{device}")
    return body


def test_a_device_going_offline_shows_on_the_phone_without_a_reload(
    gateway_factory: Callable[..., RunningGateway], device: Device, phone: WebDriver, tmp_path: Path
) -> None:
    gateway = gateway_factory(extra=DEVICES)
    now = time.time()
    device.publish("env-lab1", "status", encode_status(True, boot="a1b2", fw="1.4.2", ip="10.0.0.21"), retain=True)
    device.publish("printer-01", "status", encode_status(True, boot="p1"), retain=True)
    for seq in range(40):  # the last 40 minutes, one reading a minute
        ts = now - (39 - seq) * 60
        device.publish("env-lab1", "telemetry", encode_telemetry(
            {"temp": round(21 + 2 * math.sin(seq / 6), 2), "humidity": 40 + seq % 5, "co2": 420 + 9 * seq},
            ts=ts, boot="a1b2", seq=seq))
    device.publish("printer-01", "telemetry", encode_telemetry(
        {"nozzle_temp": 210.5, "progress": 37, "job": "齿轮 <gear>.gcode"}, boot="p1", seq=0))
    gateway.wait_for(lambda: _device_json(gateway, "env-lab1")["online"] is True
                     and len(_device_json(gateway, "env-lab1")["latest"]) == 3
                     and "job" in _device_json(gateway, "printer-01")["latest"], what="devices stored")

    # Signing in: the overview sends us to the form, the form back to the overview.
    phone.get(gateway.url + "/?lang=zh-CN")
    WebDriverWait(phone, 10).until(lambda d: "/login" in d.current_url)
    assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    phone.find_element(By.NAME, "token").send_keys("not the token")
    phone.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    WebDriverWait(phone, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-error]"))
    _screenshot(phone, tmp_path / "1-login-error-zh.png")
    phone.find_element(By.NAME, "token").send_keys(gateway.token)
    phone.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    WebDriverWait(phone, 10).until(lambda d: _card_state(d, "env-lab1") is not None)
    assert phone.current_url == gateway.url + "/?lang=zh-CN"  # back where the sign-in started
    assert _card_state(phone, "env-lab1") == "online"
    card = phone.find_element(By.CSS_SELECTOR, '[data-device="env-lab1"]')
    assert "在线" in card.text and "°C" in card.text
    assert "<gear>" in phone.find_element(By.CSS_SELECTOR, '[data-device="printer-01"]').text
    _no_horizontal_scroll(phone)
    _screenshot(phone, tmp_path / "2-overview-online-zh.png")

    # The device's retained status says offline; the open page notices by itself.
    phone.execute_script("window.__notReloaded = true;")
    device.publish("env-lab1", "status", encode_status(False), retain=True)
    started = time.monotonic()
    WebDriverWait(phone, 20, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: _card_state(d, "env-lab1") == "offline")
    seen_after = time.monotonic() - started
    assert phone.execute_script("return window.__notReloaded === true"), "the page was reloaded"
    assert seen_after <= 12, f"offline showed after {seen_after:.1f} s"
    card = phone.find_element(By.CSS_SELECTOR, '[data-device="env-lab1"]')
    assert "离线" in card.text
    counts = phone.find_element(By.CSS_SELECTOR, '[data-count="offline"]').text
    assert counts.endswith("1")
    _screenshot(phone, tmp_path / "3-overview-offline-zh.png")

    # 360 px, the narrowest phone we care about: still no sideways scrolling.
    _emulate_phone(phone, 360)
    phone.get(gateway.url + "/devices/env-lab1")
    assert phone.find_element(By.CSS_SELECTOR, '[data-device="env-lab1"]').get_attribute("data-state") == "offline"
    assert len(phone.find_elements(By.CSS_SELECTOR, "figure.chart svg")) == 3
    assert phone.find_elements(By.CSS_SELECTOR, "figure.chart path.avg")
    _no_horizontal_scroll(phone)
    _screenshot(phone, tmp_path / "4-device-zh-360.png")

    _emulate_phone(phone, PHONE[0])
    phone.get(gateway.url + "/?lang=en")
    assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert "offline" in phone.find_element(By.CSS_SELECTOR, '[data-device="env-lab1"]').text
    _no_horizontal_scroll(phone)
    _screenshot(phone, tmp_path / "5-overview-en.png")
    phone.get(gateway.url + "/devices/env-lab1?hours=1")
    _screenshot(phone, tmp_path / "6-device-en-1h.png")
    problems = [entry["message"] for entry in phone.get_log("browser")  # type: ignore[attr-defined]
                if entry["level"] == "SEVERE" and not entry["message"].startswith(f"{gateway.url}/login")]
    assert not problems, problems  # no script errors, no Content-Security-Policy refusals (the 401 was ours)

    # The gateway goes away: the open overview says so instead of freezing on an error page.
    phone.get(gateway.url + "/")
    gateway.stop()
    WebDriverWait(phone, 15).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-stale]").is_displayed())
    assert _card_state(phone, "env-lab1") == "offline"  # the last good view stays
    _screenshot(phone, tmp_path / "7-overview-stale-en.png")
