"""Prometheus metrics of one gateway, in a registry of its own (several gateways may live in one test process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.messages_ingested = Counter(
            "campusgw_messages_ingested", "Messages that passed the MQTT contract", ["kind"], registry=registry
        )
        self.messages_rejected = Counter(
            "campusgw_messages_rejected",
            "Messages that failed the contract, stored as dead letters",
            ["reason"],
            registry=registry,
        )
        self.readings_stored = Counter("campusgw_readings_stored", "Readings committed to disk", registry=registry)
        self.duplicates = Counter(
            "campusgw_duplicates", "Telemetry messages already stored (same device, boot and seq)", registry=registry
        )
        self.without_identity = Counter(
            "campusgw_messages_without_identity",
            "Telemetry stored without boot and seq, which cannot be de-duplicated",
            registry=registry,
        )
        self.identity_gaps_forgotten = Counter(
            "campusgw_identity_gaps_forgotten",
            "Gaps in a boot's message numbers given up (over 10,000 per boot): "
            "a message filling one counts as a duplicate",
            registry=registry,
        )
        self.clock_suspect = Counter(
            "campusgw_readings_clock_suspect", "Readings whose ts was replaced by the receive time", registry=registry
        )
        self.write_batch_seconds = Histogram(
            "campusgw_write_batch_seconds",
            "Time to write and fsync one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.write_batch_messages = Histogram(
            "campusgw_write_batch_messages",
            "Messages per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=registry,
        )
        self.write_errors = Counter(
            "campusgw_write_errors", "Batches that failed to commit and were retried", registry=registry
        )
        self.presence_changes = Counter(
            "campusgw_presence_changes", "Device online/offline transitions", ["state", "cause"], registry=registry
        )
        self.retention_deleted = Counter(
            "campusgw_retention_deleted_rows", "Rows removed by retention", ["table"], registry=registry
        )
        self.queue_depth = Gauge("campusgw_queue_depth", "Messages waiting for the writer", registry=registry)
        self.devices_online = Gauge("campusgw_devices_online", "Devices currently online", registry=registry)
        self.devices_known = Gauge("campusgw_devices", "Devices in the registry, retired excluded", registry=registry)
        self.db_bytes = Gauge("campusgw_db_bytes", "Size of the database with its WAL", registry=registry)
        self.disk_free_bytes = Gauge("campusgw_disk_free_bytes", "Free space on the database's disk", registry=registry)
        self.acks_paused = Gauge(
            "campusgw_acks_paused",
            "1 while the gateway holds back acknowledgements (disk below its watermark)",
            registry=registry,
        )
        self.broker_connected = Gauge("campusgw_broker_connected", "1 while connected to the broker", registry=registry)
        self.writer_alive = Gauge("campusgw_writer_alive", "1 while the writer thread runs", registry=registry)

    def bind(self, gauge: Gauge, read: Callable[[], float]) -> None:
        gauge.set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)
