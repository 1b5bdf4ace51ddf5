"""The Mosquitto configuration the gateway needs, written for one site, and a runner for a broker of our own.

Mosquitto's defaults defeat at-least-once delivery (20 messages in flight, 1,000 queued per session, the rest
dropped without a word), so ``render_config`` raises the in-flight window and the per-session queue, turns on
persistence, forbids anonymous clients and grants each role only its own topics:

- ``campusgw``  the gateway: reads and writes everything under ``campus/{site}/``;
- ``simulator`` a fleet of simulated devices: publishes device telemetry, status and events, reads commands;
- one user per device, named by the device id: the ``pattern`` rules give it its own topics only.

Passwords are generated, hashed as Mosquitto's ``$7$`` (PBKDF2-SHA512) entries and kept in 0600 files.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.contracts import is_device_id
from gateway.errors import BrokerError

GATEWAY_USER = "campusgw"
SIMULATOR_USER = "simulator"
ROLE_USERS = (GATEWAY_USER, SIMULATOR_USER)

#: Unacknowledged QoS 1/2 messages in flight to one MQTT 3.1.1 client (MQTT 5 clients set their own receive maximum).
MAX_INFLIGHT = 1000
#: Messages held per persistent session beyond those in flight: at 300 devices sending every 10 s, over 9 hours.
MAX_QUEUED = 1_000_000
#: Largest MQTT packet accepted; payloads above the contract's 64 KiB still reach the gateway as dead letters.
MAX_PACKET_BYTES = 1024 * 1024

INSTALL_HINT = "Mosquitto is not installed: run 'sudo apt-get install mosquitto mosquitto-clients' and try again."


@dataclass(frozen=True)
class BrokerLayout:
    """Where the files of one site's broker configuration live."""

    directory: Path
    site: str
    port: int = 1883
    bind: str = "127.0.0.1"
    lan: str | None = None
    run_as: str | None = None
    devices: tuple[str, ...] = field(default=())
    #: ``(device, gate)``: a gate reader's device user may also scan, report passages and read commands of its gate.
    gate_readers: tuple[tuple[str, str], ...] = field(default=())

    @property
    def conf(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def passwd(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl(self) -> Path:
        return self.directory / "acl"

    @property
    def store(self) -> Path:
        return self.directory / "store"

    @property
    def credentials(self) -> Path:
        return self.directory / "credentials"

    def secret_file(self, user: str) -> Path:
        return self.credentials / f"{user}.secret"


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = 101) -> str:
    """A Mosquitto 2 password-file hash (``$7$``: PBKDF2-SHA512), as ``mosquitto_passwd`` writes it."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def write_secret(path: Path, value: str) -> None:
    """Write a secret into a file only its owner can read (0600), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)


def read_secret(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def render_config(layout: BrokerLayout) -> str:
    listeners = [f"listener {layout.port} {layout.bind}"]
    if layout.lan:
        host, _, port = layout.lan.rpartition(":")
        lan = f"# LAN listener for the school's devices; password and ACL apply here too\nlistener {port} {host}"
        # one socket per port: a LAN listener on the main port replaces the loopback one (it covers loopback too)
        listeners = [lan] if int(port) == layout.port else [*listeners, lan]
    user = f"user {layout.run_as}\n" if layout.run_as else ""
    return f"""# Mosquitto for campus site {layout.site!r}, written by 'campusgw broker config'.
# The gateway acknowledges a message only after it is on disk, so the broker must hold what is not yet
# acknowledged: a wide in-flight window, deep per-session queues and persistence across restarts.
{user}per_listener_settings false
allow_anonymous false
password_file {layout.passwd}
acl_file {layout.acl}

persistence true
persistence_location {layout.store}/
autosave_interval 30

# MQTT 3.1.1 clients get this window; MQTT 5 clients (the gateway) set their own receive maximum.
max_inflight_messages {MAX_INFLIGHT}
max_queued_messages {MAX_QUEUED}
max_queued_bytes 0
queue_qos0_messages false
max_packet_size {MAX_PACKET_BYTES}
# How long a persistent session outlives its client when the client asks for no expiry of its own.
persistent_client_expiration 14d
retain_available true
max_keepalive 600

log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true

{chr(10).join(listeners)}
"""


def _gate_reader_rules(layout: BrokerLayout) -> str:
    rules = []
    for device, gate in layout.gate_readers:
        prefix = f"campus/{layout.site}/gate/{gate}"
        rules.append(
            f"# gate reader {device} at gate {gate}\nuser {device}\n"
            f"topic write {prefix}/scan\ntopic write {prefix}/passage\ntopic read {prefix}/cmd\n\n"
        )
    return "".join(rules)


def render_acl(layout: BrokerLayout) -> str:
    site = layout.site
    return f"""# Topic rights for campus site {site!r}, written by 'campusgw broker config'.
user {GATEWAY_USER}
topic readwrite campus/{site}/#

user {SIMULATOR_USER}
topic write campus/{site}/+/telemetry
topic readwrite campus/{site}/+/status
topic write campus/{site}/+/event
topic read campus/{site}/+/cmd
topic write campus/{site}/gate/+/scan
topic write campus/{site}/gate/+/passage
topic read campus/{site}/gate/+/cmd

{_gate_reader_rules(layout)}# Every other user is one device, named by its device id, and may use only its own topics.
pattern write campus/{site}/%u/telemetry
pattern readwrite campus/{site}/%u/status
pattern write campus/{site}/%u/event
pattern read campus/{site}/%u/cmd
"""


def write_broker_config(layout: BrokerLayout) -> dict[str, Path]:
    """Write mosquitto.conf, acl, passwd and one 0600 secret per user; existing secrets are kept, never rotated.

    Returns the secret file of each user.
    """
    for device in layout.devices:
        if not is_device_id(device) or device in ROLE_USERS:
            raise BrokerError(f"cannot make a broker user for device id {device!r}")
    for device, gate in layout.gate_readers:
        if device not in layout.devices:
            raise BrokerError(f"gate reader {device!r} needs a device user: list it among the devices too")
        if not is_device_id(gate):
            raise BrokerError(f"gate id {gate!r} of reader {device!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
    layout.directory.mkdir(parents=True, exist_ok=True)
    layout.store.mkdir(parents=True, exist_ok=True)
    secrets_by_user: dict[str, Path] = {}
    lines = []
    for user in (*ROLE_USERS, *layout.devices):
        secret_path = layout.secret_file(user)
        if not secret_path.exists():
            write_secret(secret_path, secrets.token_urlsafe(24))
        secrets_by_user[user] = secret_path
        lines.append(f"{user}:{hash_password(read_secret(secret_path))}")
    write_secret(layout.passwd, "\n".join(lines))
    layout.acl.write_text(render_acl(layout), encoding="utf-8")
    layout.conf.write_text(render_config(layout), encoding="utf-8")
    return secrets_by_user


def find_mosquitto() -> str:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise BrokerError(INSTALL_HINT)
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class MosquittoProcess:
    """One Mosquitto started from a written configuration; ``start``/``stop`` may be repeated (same port)."""

    def __init__(self, layout: BrokerLayout, *, log_path: Path | None = None) -> None:
        self.layout = layout
        self.log_path = log_path or layout.directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.layout.bind}:{self.layout.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        binary = find_mosquitto()
        with self.log_path.open("ab") as log:
            # Its own session: a Ctrl-C in the terminal goes to whoever runs it (the demo), which stops the broker
            # last, after the devices and the gateway have said goodbye through it.
            self._process = subprocess.Popen(
                [binary, "-c", str(self.layout.conf)], stdout=log, stderr=log, start_new_session=True
            )
        if not wait_for_port(self.layout.bind, self.layout.port, timeout):
            code = self._process.poll()
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise BrokerError(f"Mosquitto did not start on port {self.layout.port} (exit {code}):\n{tail}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop the broker; SIGTERM lets it save its persistent store first."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> MosquittoProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def device_users(devices: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({device for device in devices if device not in ROLE_USERS}))
