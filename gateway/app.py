"""The composition root: builds every stage from the settings, runs them in one TaskGroup, shuts down in order.

    broker ─MQTT─► ingest.mqtt ─► normalise ─► store.writer (one thread, bounded queue) ─► SQLite (WAL)
                          ▲                              │ commit + fsync
                          └────────── PUBACK ◄───────────┘
    SQLite ─► store.queries (reader threads) ─► api (JSON, dashboard, /healthz, /metrics)
    presence loop ─► writer (silence → offline);  settle loop ─► writer (pending readings → roll-ups + index)
    maintenance loop ─► writer (retention)

Shutdown: stop the HTTP server, stop taking messages, let the writer commit and acknowledge what it holds, then
disconnect from the broker (the persistent session keeps anything else), then close the readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import uvicorn

from gateway.api.app import create_app
from gateway.api.auth import ensure_token
from gateway.api.context import ApiContext
from gateway.broker import read_secret
from gateway.errors import ConfigError, GatewayError
from gateway.ingest.mqtt import MqttIngest
from gateway.metrics import GatewayMetrics
from gateway.settings import Settings
from gateway.store.devices import DeviceTable
from gateway.store.migrations import migrate
from gateway.store.queries import Reader
from gateway.store.retention import RetentionPolicy, trim
from gateway.store.settle import settle
from gateway.store.writer import Writer

log = logging.getLogger(__name__)

MB = 1024 * 1024


def freeze_startup_heap() -> None:
    """Hide what start-up built (modules, FastAPI, pydantic, settings) from the garbage collector.

    Its full collections otherwise walk all of it again and again while messages stream in: measured with
    ``bench/ingest.py``, 16 % of the gateway's CPU went to the collector, about a third of that after this.
    Call it once, after the imports and before the gateway runs.
    """
    gc.collect()
    gc.freeze()


def _check_silence(conn: sqlite3.Connection, devices: DeviceTable, *, now: float) -> list[str]:
    return devices.check_silence(conn, now)


def _settle(conn: sqlite3.Connection, _devices: DeviceTable) -> int:
    return settle(conn)


def _trim(conn: sqlite3.Connection, _devices: DeviceTable, *, policy: RetentionPolicy, now: float) -> dict[str, int]:
    return trim(conn, policy, now)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise GatewayError(f"cannot listen on {host}:{port} ([api] listen): {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Gateway:
    """One gateway process. ``await Gateway(settings).run(stop)`` runs until ``stop`` is set."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = GatewayMetrics()
        self.started = clock()
        self.devices = DeviceTable(
            settings.devices,
            discovery_cap=settings.ingest.discovery_cap,
            timeout_for=settings.presence.timeout_for,
            metrics=self.metrics,
            started=self.started,
        )
        storage = settings.storage
        self.writer = Writer(
            storage.path,
            self.devices,
            self.metrics,
            queue_size=settings.ingest.queue_size,
            batch_size=settings.ingest.batch_size,
            batch_interval=settings.ingest.batch_interval_ms / 1000,
            disk_watermark_bytes=int(storage.disk_watermark_mb * MB),
            clock=clock,
        )
        self.retention = RetentionPolicy(
            raw_days=storage.retention_days,
            minute_rollup_days=storage.minute_rollup_days,
            hour_rollup_days=storage.hour_rollup_days,
            max_db_bytes=int(storage.max_db_mb * MB),
        )
        self.ingest: MqttIngest | None = None
        self.api_port: int | None = None

    def health_problems(self) -> list[str]:
        problems = []
        ingest = self.ingest
        if ingest is None or not ingest.connected:
            reason = ingest.last_error if ingest is not None else "not started"
            problems.append(f"broker {self.settings.broker.url} not connected: {reason}")
        health = self.writer.health
        if not health.alive:
            problems.append(f"writer not running: {health.last_error or 'stopped'}")
        elif health.last_error:
            problems.append(health.last_error)
        if health.paused_for_disk:
            free = shutil.disk_usage(self.settings.storage.path.parent).free
            problems.append(
                f"disk free {free / MB:.0f} MB is below the watermark of "
                f"{self.settings.storage.disk_watermark_mb:.0f} MB:"
                " acknowledgements are held, the broker keeps the messages"
            )
        return problems

    def _db_bytes(self) -> float:
        path = self.settings.storage.path
        return float(sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()))

    def _bind_gauges(self) -> None:
        metrics = self.metrics
        metrics.queue_depth.set_function(self.writer.depth)
        metrics.db_bytes.set_function(self._db_bytes)
        metrics.disk_free_bytes.set_function(lambda: shutil.disk_usage(self.settings.storage.path.parent).free)

    def _password(self) -> str | None:
        broker = self.settings.broker
        if broker.password_file is None:
            return None
        try:
            return read_secret(broker.password_file)
        except OSError as exc:
            raise ConfigError(f"[broker] password_file: cannot read {broker.password_file}: {exc.strerror}") from None

    async def run(self, stop: asyncio.Event, *, ready: asyncio.Event | None = None) -> None:
        settings = self.settings
        migrate(settings.storage.path)
        token = ensure_token(settings.token_path)
        password = self._password()
        sock = _bind(settings.api.host, settings.api.port)
        self.api_port = int(sock.getsockname()[1])
        self._bind_gauges()
        self.writer.start()
        self.ingest = MqttIngest(
            settings, self.devices, self.writer.submit, self.metrics, password=password, clock=self.clock
        )
        reader = Reader(settings.storage.path)
        context = ApiContext(
            settings=settings,
            reader=reader,
            writer=self.writer,
            metrics=self.metrics,
            token=token,
            health=self.health_problems,
            clock=self.clock,
        )
        server = _Server(uvicorn.Config(create_app(context), log_level="warning", access_log=False, lifespan="off"))
        try:
            self.ingest.start()
            async with asyncio.TaskGroup() as group:
                group.create_task(server.serve(sockets=[sock]), name="campusgw-http")
                presence = group.create_task(self._presence_loop(), name="campusgw-presence")
                maintenance = group.create_task(self._maintenance_loop(), name="campusgw-maintenance")
                settling = group.create_task(self._settle_loop(), name="campusgw-settle")
                if ready is not None:
                    group.create_task(self._signal_ready(server, ready), name="campusgw-ready")
                await stop.wait()
                server.should_exit = True
                presence.cancel()
                maintenance.cancel()
                settling.cancel()
        finally:
            await asyncio.to_thread(self._shutdown, reader)
            sock.close()

    async def _signal_ready(self, server: uvicorn.Server, ready: asyncio.Event) -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn shows readiness only as this flag
            await asyncio.sleep(0.02)
        ready.set()

    def _shutdown(self, reader: Reader) -> None:
        if self.ingest is not None:
            self.ingest.pause()
        self.writer.stop()
        if self.ingest is not None:
            self.ingest.stop()
        reader.close()
        log.info("gateway stopped")

    async def _presence_loop(self) -> None:
        interval = self.settings.presence.check_interval_s
        while True:
            await asyncio.sleep(interval)
            now = self.clock()
            silent = await asyncio.wrap_future(self.writer.execute(partial(_check_silence, now=now)))
            if silent:
                log.info("offline after silence: %s", ", ".join(silent))

    async def _settle_pending(self) -> None:
        moved = await asyncio.wrap_future(self.writer.execute(_settle))
        while moved:
            await asyncio.sleep(0.05)  # let ingest batches in between chunks
            moved = await asyncio.wrap_future(self.writer.execute(_settle))

    async def _settle_loop(self) -> None:
        interval = self.settings.storage.rollup_interval_s
        while True:
            await asyncio.sleep(interval)
            await self._settle_pending()

    async def _maintenance_loop(self) -> None:
        interval = self.settings.storage.maintenance_interval_s
        policy = self.retention
        while True:
            await self._settle_pending()  # before retention deletes what has not been folded yet
            now = self.clock()
            while True:
                deleted = await asyncio.wrap_future(self.writer.execute(partial(_trim, policy=policy, now=now)))
                for table, count in deleted.items():
                    self.metrics.retention_deleted.labels(table=table).inc(count)
                if not deleted:
                    break
                await asyncio.sleep(0.05)  # let ingest batches in between chunks
            await asyncio.sleep(interval)
