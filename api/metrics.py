"""Prometheus metrics of the API, on a registry of the app's own (several apps per test run)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    """The API's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dothi_api_requests",
            "HTTP requests by route template, method and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "dothi_api_request_seconds",
            "Time to the end of the response by route template",
            ("route",),
            buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.live_clients = Gauge(
            "dothi_api_live_clients", "Open live streams", registry=self.registry
        )
        self.live_poll = Histogram(
            "dothi_api_live_poll_seconds",
            "Time of one poll of the latest table",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
            registry=self.registry,
        )
        self.exports = Gauge("dothi_api_exports", "Exports streaming", registry=self.registry)
        self.export_rows = Counter(
            "dothi_api_export_rows", "Rows streamed by exports", registry=self.registry
        )
        self.audit_dropped = Counter(
            "dothi_api_audit_dropped",
            "Audit events lost (queue full or database down)",
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts requests and times them by route template (``/api/v1/devices/{device_id}``)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - t0)
