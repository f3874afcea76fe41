"""Prometheus metrics of the ingest service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_RECEIVED = Counter(
    "dothi_ingest_messages_received", "MQTT messages received by ingest workers"
)
MESSAGES_ACKED = Counter(
    "dothi_ingest_messages_acked", "Messages acknowledged to the broker after their commit"
)
READINGS_STORED = Counter("dothi_ingest_readings_stored", "Readings inserted into the database")
READINGS_DUPLICATE = Counter(
    "dothi_ingest_readings_duplicate", "Readings already stored (redeliveries, device retries)"
)
REJECTED = Counter("dothi_ingest_rejected", "Readings or messages refused, by reason", ["reason"])
DEAD_LETTERS = Counter("dothi_ingest_dead_letters", "Messages written to dead_letters")
DEVICES_REGISTERED = Counter("dothi_ingest_devices_registered", "Unknown devices auto-registered")
DB_ERRORS = Counter("dothi_ingest_db_errors", "Failed batch writes, by kind", ["kind"])
BATCH_READINGS = Histogram(
    "dothi_ingest_batch_readings",
    "Readings per committed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000),
)
COMMIT_SECONDS = Histogram(
    "dothi_ingest_commit_seconds",
    "Time to write and commit one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LATENCY_SECONDS = Histogram(
    "dothi_ingest_latency_seconds",
    "From a message's arrival at the worker to its commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
)
PENDING = Gauge("dothi_ingest_pending_messages", "Messages received but not yet committed")
BROKER_DROPPED = Gauge(
    "dothi_ingest_broker_dropped_messages",
    "Mosquitto's $SYS count of messages it dropped (queue limits): must stay 0",
)
CONNECTED = Gauge("dothi_ingest_broker_connected", "1 while the worker is connected", ["slot"])
