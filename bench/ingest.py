"""Ingest benchmark: the gateway against a bare paho-mqtt + SQLite subscriber, same broker, same run, same machine.

Run ``python bench/ingest.py [--messages N] [--publishers P] [--rounds R] [--quick]``. It prints a table and, as
its last line, one JSON object with every figure (bench/README.md quotes it). Exit status 1 means the gateway lost
or duplicated data; ``--py-spy DIR`` also records where each subscriber spends its time.

Method
------
One fresh Mosquitto is started in a temporary folder with the configuration ``deploy/`` ships
(:func:`gateway.broker.write_broker_config` + :class:`gateway.broker.MosquittoProcess`, on a free loopback port).
Two subscribers are measured one after the other against it, each through the same scenario:

``gateway``   ``python -m gateway run --config FILE`` with the default ``[ingest]`` settings: a persistent MQTT 5
              session (client id ``campusgw-bench``, clean start off, receive maximum = ``queue_size``), contract
              parsing, the single writer thread, SQLite WAL + ``synchronous = FULL``, PUBACK after the commit.
``baseline``  this file run with ``--role baseline``: paho-mqtt 2.x, MQTT 5, its own persistent session (clean start
              off, the same receive maximum, ``manual_ack=True``), ``json.loads`` of each payload, its 3 readings
              inserted into one SQLite table (WAL, ``synchronous = FULL``) by a writer thread in batches of the
              gateway's default batch size (closed at that size or 200 ms after their first message, like the
              gateway's), commit, then ``ack`` of each message in order. No parsing rules, no indexes, no
              de-duplication: the least work that still gives the same delivery guarantee.

Scenario, per subscriber (only its own session exists on the broker while it is measured):

1. prime: start it, publish one probe message and wait until it is committed (so the persistent session and its
   subscriptions exist), stop it with SIGTERM;
2. drain: P publisher processes publish N telemetry messages (QoS 1, each confirmed by the broker's PUBACK) while
   it is stopped, so the broker queues them in its session; then start it and time from process start until all N
   are committed. Rate = N / that time (process start-up included: that is what a restart costs);
3. live: with it running, P publisher processes publish another N messages at full speed. Rate = N / (time from
   the start signal to the publishers until all N are committed);
4. stop it with SIGTERM, compare what is in its database with what the broker confirmed, clear its session.

Each subscriber starts from an empty database in every round. The run has 3 rounds by default (1 with
``--quick``), alternating which subscriber goes first; the table shows the median of each rate and cost, the sum
of the losses and duplicates and the largest peak RSS.

Messages follow MQTT contract v1 (:func:`gateway.contracts.encode_telemetry`): 3 metrics, ``ts``, ``boot`` (one
per phase) and ``seq``, spread over 300 device ids; publisher ``k`` owns the devices ``d % P == k``, so each
device's ``seq`` arrives in order. Publishers are ``multiprocessing`` (spawn) processes running paho-mqtt with an
in-flight window of 1,000; the payloads are encoded before the start signal.

"Committed" is read from the subscriber's database with a read-only connection every 50 ms (the baseline:
``SELECT max(rowid) FROM readings``; the gateway: the id sequence of ``readings_pending``, where its batches go
before they settle into ``readings``; readings are never deleted during a run, so either equals the number of
readings committed). Afterwards the set of ``(device, boot, seq)`` the publishers had confirmed is compared with
the set in the database: *lost* = confirmed but not stored, *duplicated* = readings stored beyond 3 per stored
message identity. Peak RSS is the kernel's high-water mark (``VmHWM``) of the subscriber process (no children),
cross-checked by psutil sampling every 50 ms; bytes written per reading is the process's ``write_bytes`` delta
(``/proc/PID/io``: pages it dirtied, WAL and checkpoints) over the readings of that phase.

CPU per 1,000 messages is the subscriber process's user + system time over the phase (the drain phase includes
its start-up). The gateway's own ``campusgw_write_batch_*`` histograms (``/metrics``) give its batches per phase.

The machine the gateway targets has 2 cores, so publishers, broker and subscriber compete for CPU: the baseline
runs under exactly the same conditions, and the ratio gateway/baseline is the figure to read. CPU used meanwhile
by processes outside the benchmark is measured too; above 5 % of the machine the table says the figures are skewed.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import multiprocessing
import os
import platform
import queue
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

SITE = "bench"
DEVICES = 300
PROBE_DEVICE = "probe"
METRICS = ("temperature", "humidity", "co2")
#: Fallbacks for the baseline's options; the orchestrator passes the gateway's own ``[ingest]`` defaults.
RECEIVE_MAXIMUM = 4000
BATCH_SIZE = 1000
BATCH_INTERVAL_S = 0.2
SESSION_EXPIRY_S = 7 * 24 * 3600
PUBLISHER_INFLIGHT = 1000
POLL_S = 0.05
#: Give up on a phase when the committed count has not moved for this long.
STALL_S = 20.0
GATEWAY_CLIENT_ID = f"campusgw-{SITE}"
BASELINE_CLIENT_ID = "bench-baseline"
MB = 1024 * 1024


# -- the baseline subscriber (``--role baseline``, its own process) ----------------------------------------------


def baseline_main(args: argparse.Namespace) -> int:
    """Bare paho + sqlite3 subscriber with the gateway's delivery guarantee: ack only after the batch commit."""
    conn = sqlite3.connect(args.db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS readings "
        "(device TEXT NOT NULL, boot TEXT, seq INTEGER, metric TEXT NOT NULL, value)"
    )
    inbox: queue.Queue[tuple[int, int, list[tuple[Any, ...]]] | None] = queue.Queue()
    stop = threading.Event()
    paused = False
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5,
                         manual_ack=True)
    client.username_pw_set(args.user, Path(args.password_file).read_text(encoding="utf-8").strip())
    filters = [(f"campus/{args.site}/+/{kind}", SubscribeOptions(qos=1)) for kind in ("telemetry", "status", "event")]

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, reason: mqtt.ReasonCode, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(filters)

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if paused:
            return  # not acknowledged: the broker keeps it for the next session
        document = json.loads(message.payload)
        device = message.topic.split("/")[2]
        boot, seq = document.get("boot"), document.get("seq")
        rows = [(device, boot, seq, metric, value) for metric, value in document["metrics"].items()]
        inbox.put((message.mid, message.qos, rows))

    def writer() -> None:
        get = inbox.get
        insert = "INSERT INTO readings (device, boot, seq, metric, value) VALUES (?, ?, ?, ?, ?)"
        while True:
            first = get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + args.batch_interval
            done = False
            while len(batch) < args.batch_size:
                remaining = deadline - time.monotonic()
                try:
                    item = get(timeout=remaining) if remaining > 0 else inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                batch.append(item)
            conn.execute("BEGIN")
            conn.executemany(insert, [row for _mid, _qos, rows in batch for row in rows])
            conn.execute("COMMIT")
            for mid, qos, _rows in batch:
                if qos:
                    client.ack(mid, qos)
            if done:
                return

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    client.on_connect = on_connect
    client.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    properties.ReceiveMaximum = args.receive_maximum
    thread = threading.Thread(target=writer, name="baseline-writer")
    thread.start()
    client.connect(args.host, args.port, keepalive=30, clean_start=False, properties=properties)
    client.loop_start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        paused = True
        inbox.put(None)
        thread.join(30)
        client.disconnect()
        client.loop_stop()
        conn.close()
    return 0


# -- publishers (multiprocessing, spawn) --------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishJob:
    host: str
    port: int
    user: str
    password: str
    client_id: str
    site: str
    boot: str
    indices: tuple[int, ...]
    ts0: float


@dataclass
class PublishResult:
    client_id: str
    confirmed: list[int]
    failed: int
    error: str | None = None


def message_for(site: str, boot: str, index: int, ts0: float) -> tuple[str, bytes]:
    """Topic and contract payload of message ``index`` of one phase: device ``index % 300``, seq ``index // 300``."""
    from gateway.contracts import encode_telemetry

    device, seq = divmod_device(index)
    metrics = {"temperature": 20 + (index % 50) / 10, "humidity": 40 + index % 20, "co2": 400 + index % 300}
    payload = encode_telemetry(metrics, ts=round(ts0 + seq * 0.001, 3), boot=boot, seq=seq)
    return f"campus/{site}/{device}/telemetry", payload


def divmod_device(index: int) -> tuple[str, int]:
    return f"d{index % DEVICES:03d}", index // DEVICES


def identity(index: int, boot: str) -> tuple[str, str, int]:
    device, seq = divmod_device(index)
    return device, boot, seq


def publisher_main(job: PublishJob, ready: Any, go: Any, results: Any) -> None:
    """One publisher process: connect, say ready, wait for ``go``, publish at QoS 1, wait for every PUBACK."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator ends us
    try:
        messages = [message_for(job.site, job.boot, index, job.ts0) for index in job.indices]
        failed_mids: list[int] = []
        acked = 0
        lock = threading.Lock()
        connected = threading.Event()

        def on_publish(_c: mqtt.Client, _u: Any, mid: int, reason: mqtt.ReasonCode, _p: Any) -> None:
            nonlocal acked
            with lock:
                acked += 1
                if reason.is_failure:
                    failed_mids.append(mid)

        def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: mqtt.ReasonCode, _p: Any) -> None:
            if not reason.is_failure:
                connected.set()

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=job.client_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(job.user, job.password)
        client.max_inflight_messages_set(PUBLISHER_INFLIGHT)
        client.max_queued_messages_set(0)
        client.on_publish = on_publish
        client.on_connect = on_connect
        client.connect(job.host, job.port, keepalive=60)
        client.loop_start()
        if not connected.wait(30):
            raise RuntimeError("publisher could not connect")
        ready.put(job.client_id)
        go.wait()
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        deadline = time.monotonic() + 120
        while acked < len(infos) and time.monotonic() < deadline:
            time.sleep(0.01)
        by_mid = {info.mid: number for number, info in enumerate(infos)}
        failed = {by_mid[mid] for mid in failed_mids if mid in by_mid}
        confirmed = [job.indices[n] for n, info in enumerate(infos) if info.is_published() and n not in failed]
        client.disconnect()
        client.loop_stop()
        results.put(PublishResult(job.client_id, confirmed, len(infos) - len(confirmed)))
    except Exception as exc:  # reported by the orchestrator
        results.put(PublishResult(job.client_id, [], len(job.indices), f"{type(exc).__name__}: {exc}"))


# -- the orchestrator ---------------------------------------------------------------------------------------------


@dataclass
class Env:
    root: Path
    host: str
    port: int
    passwords: dict[str, str]
    mosquitto_version: str = ""


@dataclass
class Phase:
    seconds: float = 0.0
    rate: float = 0.0
    first_commit_s: float | None = None
    committed: int = 0
    confirmed: int = 0
    publish_s: float = 0.0
    write_bytes: int = 0
    bytes_per_reading: float | None = None
    #: CPU seconds (user + system) the subscriber process used during the phase, and per 1,000 messages.
    cpu_s: float = 0.0
    cpu_ms_per_1000: float | None = None
    #: CPU seconds used meanwhile by processes that are not part of this benchmark (other work on the machine).
    foreign_cpu_s: float = 0.0
    complete: bool = False
    #: From the gateway's /metrics (deltas over the phase): committed batches, mean messages and seconds per batch.
    batches: int | None = None
    batch_messages: float | None = None
    batch_seconds: float | None = None


@dataclass
class SubscriberResult:
    name: str
    drain: Phase = field(default_factory=Phase)
    live: Phase = field(default_factory=Phase)
    lost: int = 0
    duplicated: int = 0
    unconfirmed_stored: int = 0
    readings: int = 0
    readings_expected: int = 0
    peak_rss_mb: float = 0.0
    sampled_peak_rss_mb: float = 0.0


class Monitor:
    """Samples RSS of one process every 50 ms in a thread; the kernel's VmHWM is read at the end as well."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self.hwm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(POLL_S)

    def sample(self) -> None:
        with contextlib.suppress(Exception):
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.hwm = max(self.hwm, int(line.split()[1]) * 1024)

    def cpu(self) -> float:
        try:
            times = self.process.cpu_times()
        except Exception:
            return 0.0
        return float(times.user + times.system)

    def write_bytes(self) -> int:
        try:
            return int(self.process.io_counters().write_bytes)
        except Exception:
            return 0

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(2)


class ForeignCpu:
    """CPU time used by processes outside this benchmark's process tree between ``start()`` and ``stop()``."""

    def __init__(self) -> None:
        self._before: dict[int, float] = {}

    @staticmethod
    def _sample() -> dict[int, float]:
        import psutil

        me = psutil.Process()
        ours = {me.pid} | {child.pid for child in me.children(recursive=True)}
        times: dict[int, float] = {}
        for process in psutil.process_iter(["cpu_times"]):
            cpu = process.info["cpu_times"]
            if process.pid not in ours and cpu is not None:
                times[process.pid] = cpu.user + cpu.system
        return times

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> float:
        after = self._sample()
        return sum(max(0.0, t - self._before[pid]) for pid, t in after.items() if pid in self._before)


class Subscriber:
    """One system under test: how to start it, stop it, and read what it committed."""

    def __init__(self, name: str, env: Env, directory: Path) -> None:
        self.name = name
        self.env = env
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        if name == "gateway":
            self.client_id = GATEWAY_CLIENT_ID
            self.db = directory / "campus.db"
            self.config = self._write_gateway_config()
        else:
            self.client_id = BASELINE_CLIENT_ID
            self.db = directory / "baseline.db"

    def _write_gateway_config(self) -> Path:
        from gateway.broker import GATEWAY_USER, free_port

        path = self.directory / "gateway.toml"
        path.write_text(
            f'site = "{SITE}"\n'
            "[broker]\n"
            f'url = "mqtt://{self.env.host}:{self.env.port}"\n'
            f'username = "{GATEWAY_USER}"\n'
            f'password_file = "{self.env.root / "broker" / "credentials" / f"{GATEWAY_USER}.secret"}"\n'
            "[storage]\n"
            'path = "campus.db"\n'
            "[api]\n"
            f'listen = "127.0.0.1:{free_port()}"\n',
            encoding="utf-8",
        )
        return path

    def command(self) -> list[str]:
        if self.name == "gateway":
            return [sys.executable, "-m", "gateway", "run", "--config", str(self.config)]
        from gateway.broker import GATEWAY_USER
        from gateway.settings import IngestSettings

        ingest = IngestSettings()  # the gateway's defaults: same receive maximum, batch size and batch interval
        return [
            sys.executable, str(Path(__file__).resolve()), "--role", "baseline",
            "--host", self.env.host, "--port", str(self.env.port), "--user", GATEWAY_USER,
            "--password-file", str(self.env.root / "broker" / "credentials" / f"{GATEWAY_USER}.secret"),
            "--client-id", self.client_id, "--db", str(self.db), "--site", SITE,
            "--batch-size", str(ingest.batch_size), "--batch-interval", str(ingest.batch_interval_ms / 1000),
            "--receive-maximum", str(ingest.queue_size),
        ]

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            # cwd: the temporary folder, so ``-m gateway`` is the installed package, whatever folder we run from.
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=log, cwd=self.directory,
                                            start_new_session=True)
        return self.process

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def count(self) -> int:
        """Readings committed so far (read-only connection, one lookup). The gateway commits its batches to
        ``readings_pending`` and moves them into ``readings`` every few seconds, keeping each one's id as its rowid:
        the id sequence of ``readings_pending`` counts them all."""
        if not self.db.exists():
            return 0
        if self.name == "gateway":
            sql = "SELECT seq FROM sqlite_sequence WHERE name = 'readings_pending'"
        else:
            sql = "SELECT max(rowid) FROM readings"
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1)
            try:
                row = conn.execute(sql).fetchone()
            finally:
                conn.close()
        except sqlite3.OperationalError:  # not created yet
            return 0
        return int(row[0] or 0) if row is not None else 0

    def stored(self, boots: Sequence[str]) -> tuple[set[tuple[str, str, int]], int, int]:
        """(device, boot, seq) stored for the bench's devices, their readings, readings beyond 3 per identity."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        marks = ",".join("?" * len(boots))
        try:
            if self.name == "gateway":
                from gateway.store.identities import stored_seqs

                identities = [
                    (device, boot, seq)
                    for device, boot, runs in conn.execute(
                        f"SELECT d.device, m.boot, m.runs FROM message_runs m JOIN devices d ON d.id = m.device_id "
                        f"WHERE m.boot IN ({marks})", tuple(boots)
                    )
                    for seq in stored_seqs(runs)
                ]
                readings = sum(
                    conn.execute(
                        f"SELECT count(*) FROM {table} r JOIN series s ON s.id = r.series_id "
                        "JOIN devices d ON d.id = s.device_id WHERE d.device != ?", (PROBE_DEVICE,)
                    ).fetchone()[0]
                    for table in ("readings", "readings_pending")
                )
                stored = {(d, b, s) for d, b, s in identities}
                extra = readings - 3 * len(stored)
            else:
                groups = conn.execute(
                    f"SELECT device, boot, seq, count(*) FROM readings WHERE boot IN ({marks}) "
                    "GROUP BY device, boot, seq", tuple(boots)
                ).fetchall()
                readings = sum(g[3] for g in groups)
                stored = {(d, b, s) for d, b, s, _n in groups}
                extra = readings - 3 * len(stored)
        finally:
            conn.close()
        return stored, int(readings), int(extra)


def mqtt_client(env: Env, client_id: str, user: str, *, clean_start: bool = True) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, env.passwords[user])
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect(env.host, env.port, keepalive=30, clean_start=clean_start)
    client.loop_start()
    if not connected.wait(10):
        client.loop_stop()
        raise RuntimeError(f"{client_id} could not connect to the broker")
    return client


def clear_session(env: Env, client_id: str) -> None:
    """Connect with clean start and no session expiry: the broker drops the session and its subscriptions."""
    from gateway.broker import GATEWAY_USER

    client = mqtt_client(env, client_id, GATEWAY_USER, clean_start=True)
    client.disconnect()
    client.loop_stop()


def wait_count(
    sub: Subscriber, target: int, started: float, deadline_s: float
) -> tuple[float | None, float | None, int]:
    """Poll until ``target`` readings are committed: (seconds until then, seconds until the first commit, count)."""
    first_commit: float | None = None
    base = sub.count()
    last, last_change = base, time.monotonic()
    while True:
        now = time.monotonic()
        count = sub.count()
        if count > base and first_commit is None:
            first_commit = now - started
        if count >= target:
            return now - started, first_commit, count
        if count != last:
            last, last_change = count, now
        if now - last_change > STALL_S or now - started > deadline_s:
            return None, first_commit, count
        if sub.process is not None and sub.process.poll() is not None:
            raise RuntimeError(f"{sub.name} exited with {sub.process.returncode}:\n{sub.log_tail()}")
        time.sleep(POLL_S)


class Publishers:
    """P publisher processes for one phase, connected and waiting for ``go()``."""

    def __init__(self, env: Env, *, tag: str, boot: str, count: int, publishers: int) -> None:
        from gateway.broker import SIMULATOR_USER

        ctx = multiprocessing.get_context("spawn")
        self.ready: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.go_event = ctx.Event()
        self.count = count
        self.boot = boot
        ts0 = time.time()
        per: list[list[int]] = [[] for _ in range(publishers)]
        for index in range(count):
            per[(index % DEVICES) % publishers].append(index)
        if max(len(p) for p in per) >= 65_000:
            raise SystemExit("too many messages per publisher (MQTT packet ids wrap at 65,535): add --publishers")
        self.processes = []
        for k, indices in enumerate(per):
            if not indices:
                continue
            job = PublishJob(env.host, env.port, SIMULATOR_USER, env.passwords[SIMULATOR_USER],
                             f"bench-pub-{tag}-{k}", SITE, boot, tuple(indices), ts0)
            process = ctx.Process(target=publisher_main, args=(job, self.ready, self.go_event, self.results),
                                  name=f"bench-pub-{k}", daemon=True)
            process.start()
            self.processes.append(process)
        for _ in self.processes:
            try:
                self.ready.get(timeout=60)
            except queue.Empty:
                raise RuntimeError("publishers did not connect within 60 s") from None
        self.started = 0.0

    def go(self) -> float:
        self.started = time.monotonic()
        self.go_event.set()
        return self.started

    def collect(self, timeout: float = 180.0) -> tuple[set[int], float]:
        """Indices the broker confirmed, and seconds from go until the last publisher reported."""
        confirmed: set[int] = set()
        errors = []
        for _ in self.processes:
            result: PublishResult = self.results.get(timeout=timeout)
            confirmed.update(result.confirmed)
            if result.error:
                errors.append(f"{result.client_id}: {result.error}")
        elapsed = time.monotonic() - self.started
        for process in self.processes:
            process.join(10)
        if errors:
            raise RuntimeError("publisher failed: " + "; ".join(errors))
        return confirmed, elapsed

    def terminate(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(5)


class Probe:
    """Publishes one message from the probe device and waits until a subscriber has committed it."""

    def __init__(self, env: Env) -> None:
        from gateway.broker import SIMULATOR_USER

        self.client = mqtt_client(env, "bench-probe", SIMULATOR_USER)
        self.seq = 0

    def through(self, sub: Subscriber, timeout: float = 60.0) -> None:
        """Until one probe is committed, publish one a second (those sent before the subscription exists are not
        routed to it); then wait until the count has been still for a second, so no probe is left in flight."""
        from gateway.contracts import encode_telemetry

        before = sub.count()
        deadline = time.monotonic() + timeout
        next_publish = 0.0
        while sub.count() < before + len(METRICS):
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(f"{sub.name} did not store the probe within {timeout:.0f} s:\n{sub.log_tail()}")
            if not sub.alive():
                raise RuntimeError(f"{sub.name} exited:\n{sub.log_tail()}")
            if now >= next_publish:
                payload = encode_telemetry(dict.fromkeys(METRICS, 1), ts=time.time(), boot="probe", seq=self.seq)
                self.seq += 1
                self.client.publish(f"campus/{SITE}/{PROBE_DEVICE}/telemetry", payload, qos=1).wait_for_publish(10)
                next_publish = now + 1.0
            time.sleep(POLL_S)
        last, still_since = sub.count(), time.monotonic()
        while time.monotonic() - still_since < 1.0:
            time.sleep(POLL_S)
            if (count := sub.count()) != last:
                last, still_since = count, time.monotonic()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Profiler:
    """``py-spy record`` attached to one process for one phase (``--py-spy DIR``); its sampling costs some CPU."""

    def __init__(self, directory: Path | None, pid: int, name: str) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy")
        if spy is None:
            raise SystemExit("--py-spy needs py-spy: pip install py-spy")
        command = [spy, "record", "--pid", str(pid), "--rate", "200", "--threads", "--format", "raw",
                   *os.environ.get("BENCH_PY_SPY_ARGS", "").split(),  # e.g. "--gil": only what holds the GIL
                   "--output", str(directory / f"{name}.txt")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        time.sleep(0.3)  # let it attach

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def gateway_batches(sub: Subscriber) -> tuple[float, float, float] | None:
    """(batches, messages, seconds) so far, from the gateway's ``campusgw_write_batch_*`` histograms."""
    if sub.name != "gateway":
        return None
    import urllib.request

    listen = sub.config.read_text(encoding="utf-8").split('listen = "', 1)[1].split('"', 1)[0]
    try:
        with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("campusgw_write_batch_messages_count", "campusgw_write_batch_messages_sum",
                    "campusgw_write_batch_seconds_sum"):
            values[name] = float(value)
    if len(values) != 3:
        return None
    return (values["campusgw_write_batch_messages_count"], values["campusgw_write_batch_messages_sum"],
            values["campusgw_write_batch_seconds_sum"])


def note_batches(phase: Phase, before: tuple[float, float, float] | None,
                 after: tuple[float, float, float] | None) -> None:
    if before is None or after is None or after[0] <= before[0]:
        return
    batches = after[0] - before[0]
    phase.batches = int(batches)
    phase.batch_messages = (after[1] - before[1]) / batches
    phase.batch_seconds = (after[2] - before[2]) / batches


def finish_phase(phase: Phase, readings: int, first: float | None, seconds: float | None, started: float) -> None:
    """Rates and costs of a phase from the readings it committed, its ``write_bytes`` and ``cpu_s``; a phase cut
    off by the deadline (``seconds`` None) counts what it committed until now."""
    phase.committed = readings // 3
    phase.first_commit_s = first
    phase.complete = seconds is not None
    phase.seconds = seconds if seconds is not None else time.monotonic() - started
    phase.rate = phase.committed / phase.seconds
    if phase.committed:
        phase.bytes_per_reading = phase.write_bytes / (3 * phase.committed)
        phase.cpu_ms_per_1000 = phase.cpu_s / phase.committed * 1e6


def measure(sub: Subscriber, env: Env, probe: Probe, args: argparse.Namespace, run_id: str,
            cleanup: list[Publishers]) -> SubscriberResult:
    n, p = args.messages, args.publishers
    result = SubscriberResult(sub.name)
    deadline = max(120.0, n / 500)
    # 1. prime: the persistent session and its subscriptions exist.
    sub.start()
    probe.through(sub)
    sub.stop()

    # 2. drain: N queued in the session while the subscriber is down, then time from its start to all committed.
    boot_a, boot_b = f"a{run_id}", f"b{run_id}"
    pubs = Publishers(env, tag=f"{sub.name}-a", boot=boot_a, count=n, publishers=p)
    cleanup.append(pubs)
    pubs.go()
    confirmed_a, result.drain.publish_s = pubs.collect()
    result.drain.confirmed = len(confirmed_a)
    base = sub.count()
    foreign = ForeignCpu()
    foreign.start()
    started = time.monotonic()
    process = sub.start()
    monitor = Monitor(process.pid)
    profiler = Profiler(args.py_spy, process.pid, f"{sub.name}-drain")
    try:
        seconds, first, count = wait_count(sub, base + 3 * n, started, deadline)
        result.drain.write_bytes = monitor.write_bytes()
        result.drain.cpu_s = monitor.cpu()
        result.drain.foreign_cpu_s = foreign.stop()
        profiler.stop()
        note_batches(result.drain, (0.0, 0.0, 0.0), batches := gateway_batches(sub))
        finish_phase(result.drain, count - base, first, seconds, started)

        # 3. live: P publishers at full speed while it runs.
        pubs = Publishers(env, tag=f"{sub.name}-b", boot=boot_b, count=n, publishers=p)
        cleanup.append(pubs)
        profiler = Profiler(args.py_spy, process.pid, f"{sub.name}-live")
        base = sub.count()
        written, cpu = monitor.write_bytes(), monitor.cpu()
        foreign.start()
        started = pubs.go()
        seconds, first, count = wait_count(sub, base + 3 * n, started, deadline)
        result.live.write_bytes = monitor.write_bytes() - written
        result.live.cpu_s = monitor.cpu() - cpu
        result.live.foreign_cpu_s = foreign.stop()
        profiler.stop()
        note_batches(result.live, batches, gateway_batches(sub))
        finish_phase(result.live, count - base, first, seconds, started)
        confirmed_b, result.live.publish_s = pubs.collect()
        result.live.confirmed = len(confirmed_b)
        monitor.sample()
    finally:
        profiler.stop()
        monitor.stop()
        sub.stop()
    result.peak_rss_mb = max(monitor.hwm, monitor.peak_rss) / MB
    result.sampled_peak_rss_mb = monitor.peak_rss / MB

    # 4. compare with what the broker confirmed, then drop the session so the next subscriber is alone.
    expected_ids = {identity(i, boot_a) for i in confirmed_a} | {identity(i, boot_b) for i in confirmed_b}
    stored, readings, extra = sub.stored((boot_a, boot_b))
    result.lost = len(expected_ids - stored)
    result.unconfirmed_stored = len(stored - expected_ids)
    result.duplicated = extra
    result.readings = readings
    result.readings_expected = 3 * len(expected_ids)
    clear_session(env, sub.client_id)
    return result


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def round_figures(r: SubscriberResult) -> dict[str, Any]:
    def phase(ph: Phase) -> dict[str, Any]:
        out = asdict(ph)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 0 if key == "rate" else 3)
        return out

    return {
        "drain_msg_s": round(r.drain.rate), "live_msg_s": round(r.live.rate), "lost": r.lost,
        "duplicated": r.duplicated, "unconfirmed_stored": r.unconfirmed_stored, "readings": r.readings,
        "readings_expected": r.readings_expected, "peak_rss_mb": round(r.peak_rss_mb, 1),
        "sampled_peak_rss_mb": round(r.sampled_peak_rss_mb, 1), "drain": phase(r.drain), "live": phase(r.live),
    }


def aggregate(rounds: list[SubscriberResult]) -> dict[str, Any]:
    """Medians of the rates and costs over the rounds; sums of the losses; the largest peak RSS."""

    def med(phase: str, key: str, digits: int) -> float | None:
        return _round(_median([getattr(getattr(r, phase), key) for r in rounds]), digits)

    drain_rate, live_rate = med("drain", "rate", 0), med("live", "rate", 0)
    return {
        "drain_msg_s": None if drain_rate is None else int(drain_rate),
        "live_msg_s": None if live_rate is None else int(live_rate),
        "lost": sum(r.lost for r in rounds),
        "duplicated": sum(r.duplicated for r in rounds),
        "unconfirmed_stored": sum(r.unconfirmed_stored for r in rounds),
        "readings": sum(r.readings for r in rounds),
        "readings_expected": sum(r.readings_expected for r in rounds),
        "peak_rss_mb": round(max(r.peak_rss_mb for r in rounds), 1),
        "drain_first_commit_s": med("drain", "first_commit_s", 3),
        "drain_cpu_ms_per_1000": med("drain", "cpu_ms_per_1000", 1),
        "live_cpu_ms_per_1000": med("live", "cpu_ms_per_1000", 1),
        "drain_bytes_per_reading": med("drain", "bytes_per_reading", 1),
        "live_bytes_per_reading": med("live", "bytes_per_reading", 1),
        "drain_batch_seconds": med("drain", "batch_seconds", 4),
        "live_batch_seconds": med("live", "batch_seconds", 4),
        "live_batch_messages": med("live", "batch_messages", 0),
        "foreign_cpu_share": _round(
            sum(r.drain.foreign_cpu_s + r.live.foreign_cpu_s for r in rounds)
            / max(1e-9, sum(r.drain.seconds + r.live.seconds for r in rounds) * (os.cpu_count() or 1)), 3),
        "complete": all(r.drain.complete and r.live.complete for r in rounds),
        "rounds": [round_figures(r) for r in rounds],
    }


def summarise(args: argparse.Namespace, env: Env, results: dict[str, list[SubscriberResult]],
              load: tuple[float, float]) -> dict[str, Any]:
    gw, base = aggregate(results["gateway"]), aggregate(results["baseline"])
    drain_ratio = _ratio(gw["drain_msg_s"], base["drain_msg_s"])
    live_ratio = _ratio(gw["live_msg_s"], base["live_msg_s"])
    goals = {
        "drain_ratio_ge_0.8": drain_ratio is not None and drain_ratio >= 0.8,
        "live_ratio_ge_0.8": live_ratio is not None and live_ratio >= 0.8,
        "drain_ge_8000": (gw["drain_msg_s"] or 0) >= 8000,
        "lost_0": gw["lost"] == 0,
        "duplicated_0": gw["duplicated"] == 0,
        "peak_rss_le_150mb": gw["peak_rss_mb"] <= 150,
    }
    return {
        "bench": "ingest", "messages": args.messages, "publishers": args.publishers, "devices": DEVICES,
        "rounds": args.rounds, "cpus": os.cpu_count(), "load_before": round(load[0], 2),
        "load_after": round(load[1], 2),
        "python": platform.python_version(), "mosquitto": env.mosquitto_version, "paho": _paho_version(),
        "drain_ratio": drain_ratio, "live_ratio": live_ratio, "lost": gw["lost"], "duplicated": gw["duplicated"],
        "gateway": gw, "baseline": base, "goals": goals,
    }


def _paho_version() -> str:
    from importlib.metadata import version

    return version("paho-mqtt")


def print_table(summary: dict[str, Any]) -> None:
    gw, base = summary["gateway"], summary["baseline"]

    def fmt(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    def rates(figures: dict[str, Any], key: str) -> str:
        return " / ".join(f"{r[key]:,}" for r in figures["rounds"])

    def row(label: str, key: str, with_ratio: bool = False) -> tuple[str, Any, Any, float | None]:
        return label, gw[key], base[key], _ratio(gw[key], base[key]) if with_ratio else None

    rows = [
        ("drain msg/s (median)", gw["drain_msg_s"], base["drain_msg_s"], summary["drain_ratio"]),
        ("  per round", rates(gw, "drain_msg_s"), rates(base, "drain_msg_s"), None),
        row("  first commit after start s", "drain_first_commit_s"),
        ("live msg/s (median)", gw["live_msg_s"], base["live_msg_s"], summary["live_ratio"]),
        ("  per round", rates(gw, "live_msg_s"), rates(base, "live_msg_s"), None),
        row("lost", "lost"),
        row("duplicated (readings)", "duplicated"),
        ("readings stored / expected", f"{gw['readings']:,}/{gw['readings_expected']:,}",
         f"{base['readings']:,}/{base['readings_expected']:,}", None),
        row("peak RSS MB (VmHWM)", "peak_rss_mb"),
        row("CPU ms per 1,000 msgs, drain", "drain_cpu_ms_per_1000", True),
        row("CPU ms per 1,000 msgs, live", "live_cpu_ms_per_1000", True),
        row("bytes written per reading, drain", "drain_bytes_per_reading", True),
        row("bytes written per reading, live", "live_bytes_per_reading", True),
        ("gateway s per batch, drain / live", f"{fmt(gw['drain_batch_seconds'])} / {fmt(gw['live_batch_seconds'])}",
         "", None),
        ("gateway msgs per batch, live", gw["live_batch_messages"], "", None),
    ]
    print()
    print(f"ingest benchmark: N={summary['messages']:,} messages x 3 metrics per phase, {summary['publishers']} "
          f"publishers, {summary['devices']} devices, {summary['rounds']} round(s); {summary['cpus']} CPUs, "
          f"load {summary['load_before']} -> {summary['load_after']}; Python {summary['python']}, "
          f"{summary['mosquitto']}, paho-mqtt {summary['paho']}")
    print(f"{'':36} {'gateway':>24} {'baseline':>24} {'gw/base':>8}")
    for label, g, b, r in rows:
        print(f"{label:36} {fmt(g):>24} {fmt(b):>24} {'' if r is None else f'{r:.2f}':>8}")
    busy = max(gw["foreign_cpu_share"] or 0.0, base["foreign_cpu_share"] or 0.0)
    print(f"other processes used {gw['foreign_cpu_share'] or 0:.0%} (gateway phases) and "
          f"{base['foreign_cpu_share'] or 0:.0%} (baseline phases) of the machine's CPU"
          + ("  <-- the figures are skewed: run again on a quiet machine" if busy > 0.05 else ""))
    print("goals: " + ", ".join(f"{name} {'PASS' if ok else 'FAIL'}" for name, ok in summary["goals"].items()))


@contextlib.contextmanager
def broker(root: Path) -> Iterator[Env]:
    from gateway.broker import (
        BrokerLayout,
        MosquittoProcess,
        find_mosquitto,
        free_port,
        read_secret,
        write_broker_config,
    )

    run_as = getpass.getuser() if os.geteuid() == 0 else None
    layout = BrokerLayout(directory=root / "broker", site=SITE, port=free_port(), run_as=run_as)
    secrets = write_broker_config(layout)
    version = subprocess.run([find_mosquitto(), "-h"], capture_output=True, text=True).stdout.splitlines()
    process = MosquittoProcess(layout)
    process.start()
    try:
        yield Env(root, layout.bind, layout.port, {user: read_secret(path) for user, path in secrets.items()},
                  version[0].strip() if version else "mosquitto")
    finally:
        process.stop()


def orchestrate(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="campusgw-bench-"))
    cleanup: list[Publishers] = []
    subscribers: list[Subscriber] = []
    results: dict[str, list[SubscriberResult]] = {"gateway": [], "baseline": []}
    probe: Probe | None = None
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"note: load average {load_before:.2f} before the run; other work on this machine skews the figures",
              flush=True)
    order = args.order.split(",")
    try:
        with broker(root) as env:
            probe = Probe(env)
            for number in range(args.rounds):
                # Alternate which one goes first, so neither always gets the cooler machine.
                for name in order if number % 2 == 0 else order[::-1]:
                    sub = Subscriber(name, env, root / f"{name}-{number + 1}")
                    subscribers.append(sub)
                    print(f"[{time.strftime('%H:%M:%S')}] round {number + 1}/{args.rounds} {name}: prime, "
                          f"drain {args.messages:,}, live {args.messages:,} with {args.publishers} publishers",
                          flush=True)
                    r = measure(sub, env, probe, args, os.urandom(4).hex(), cleanup)
                    results[name].append(r)
                    print(f"    drain {r.drain.rate:,.0f} msg/s ({r.drain.seconds:.2f} s), live {r.live.rate:,.0f} "
                          f"msg/s ({r.live.seconds:.2f} s), lost {r.lost}, duplicated {r.duplicated}, "
                          f"peak RSS {r.peak_rss_mb:.1f} MB", flush=True)
            probe.close()
            probe = None
            summary = summarise(args, env, results, (load_before, os.getloadavg()[0]))
    finally:
        for pubs in cleanup:
            pubs.terminate()
        for sub in subscribers:
            sub.stop()
        if probe is not None:
            with contextlib.suppress(Exception):
                probe.close()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(summary)
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if summary["lost"] == 0 and summary["duplicated"] == 0 else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=50_000, help="messages per phase (default 50,000)")
    parser.add_argument("--publishers", type=int, default=4, help="publisher processes (default 4)")
    parser.add_argument("--rounds", type=int, help="rounds, alternating which subscriber goes first; the table shows "
                        "medians (default 3, 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="3,000 messages, 1 round: a correctness smoke run")
    parser.add_argument("--order", default="baseline,gateway", help="which subscriber runs first (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, logs)")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="record each subscriber's drain and live phases with py-spy (raw collapsed stacks) "
                             "into DIR; the sampling costs CPU, so use the figures of a run without it")
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", default="orchestrator", choices=("orchestrator", "baseline"), help=hidden)
    for option in ("--host", "--user", "--password-file", "--client-id", "--db", "--site"):
        parser.add_argument(option, help=hidden)
    parser.add_argument("--port", type=int, help=hidden)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=hidden)
    parser.add_argument("--batch-interval", type=float, default=BATCH_INTERVAL_S, help=hidden)
    parser.add_argument("--receive-maximum", type=int, default=RECEIVE_MAXIMUM, help=hidden)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = 3_000
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.messages < 1 or args.publishers < 1 or args.rounds < 1:
        parser.error("--messages, --publishers and --rounds must be positive")
    if sorted(args.order.split(",")) != ["baseline", "gateway"]:
        parser.error("--order must name gateway and baseline once each")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "baseline":
        return baseline_main(args)

    def terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started with SIGINT ignored
    try:
        return orchestrate(args)
    except KeyboardInterrupt:
        print("interrupted: broker, subscribers and publishers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
