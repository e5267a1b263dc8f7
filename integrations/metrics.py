"""Prometheus metrics: the status snapshot as gauges, pipeline events as counters.

Inputs: the event bus (`asset` transitions, and `scan`, `claim`, `job`, `move` events
with durations) and the periodic status snapshot.  Output: a registry rendered by the
web server's `/metrics`.  A registry per instance keeps tests independent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rush import events
from rush.config import Config
from rush.lifecycle import AssetState

log = logging.getLogger(__name__)

#: Snapshot key -> (metric name, help, factor).  Metric names follow the exposition
#: conventions (base units: seconds, bytes, ratios 0..1) while the snapshot, and so Home
#: Assistant and `rush status`, keep human units (GB, %): the factor converts.
_SNAPSHOT_GAUGES: dict[str, tuple[str, str, float]] = {
    "awaiting_decision": ("rush_awaiting_decision", "Assets waiting for a human decision", 1),
    "queue_depth": ("rush_queue_depth", "READY assets waiting for an agent", 1),
    "processing": ("rush_processing", "Assets being processed", 1),
    "failed": ("rush_failed", "Assets whose processing failed max_attempts times", 1),
    "missing": ("rush_missing", "Assets whose file vanished from the NAS", 1),
    "duplicates": (
        "rush_duplicates", "Extra copies of identical files (all but one per group)", 1
    ),
    "last_verify_problems": (
        "rush_last_verify_problems",
        "Files the last rush verify found differing, missing or unexpected",
        1,
    ),
    "agents_online": ("rush_agents_online", "Agents online", 1),
    "purge_eligible": ("rush_purge_eligible", "REJECTED assets old enough to purge", 1),
    "last_scan_duration": (
        "rush_last_scan_duration_seconds", "Duration of the last scan in seconds", 1
    ),
    "seedbox_success_ratio": (
        "rush_seedbox_success_ratio", "Seedbox relocation success ratio (0 to 1)", 0.01
    ),
    "seedbox_mean_relocation_s": (
        "rush_seedbox_mean_relocation_seconds", "Seedbox mean relocation time in seconds", 1
    ),
    "seedbox_moved_today_gb": (
        "rush_seedbox_moved_today_bytes", "Seedbox volume moved today in bytes", 1e9
    ),
    "seedbox_nvme_free_gb": ("rush_seedbox_nvme_free_bytes", "NVMe free space in bytes", 1e9),
    "seedbox_nvme_free_percent": (
        "rush_seedbox_nvme_free_ratio", "NVMe free space as a ratio of its size (0 to 1)", 0.01
    ),
}  # fmt: skip


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.assets = Gauge("rush_assets", "Assets per lifecycle state", ["state"], registry=r)
        self.gauges = {
            key: (Gauge(name, help_text, registry=r), factor)
            for key, (name, help_text, factor) in _SNAPSHOT_GAUGES.items()
        }
        self.seedbox_errors = Gauge(
            "rush_seedbox_errors", "Seedbox relocation errors by cause", ["cause"], registry=r
        )
        self.transitions = Counter(
            "rush_transitions", "Lifecycle transitions", ["to", "trigger"], registry=r
        )
        self.lease_expiries = Counter("rush_lease_expiries", "Leases that expired", registry=r)
        self.moves = Counter("rush_moves", "Batch-apply moves by result", ["result"], registry=r)
        self.errors = Counter("rush_errors", "Errors by cause", ["cause"], registry=r)
        self.scan_duration = Histogram(
            "rush_scan_duration_seconds", "Scan pass duration", registry=r,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
        )  # fmt: skip
        self.claim_latency = Histogram(
            "rush_claim_latency_seconds", "Server time to answer a claim", registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1),
        )  # fmt: skip
        self.job_duration = Histogram(
            "rush_job_duration_seconds", "Job duration from claim to result", ["type"], registry=r,
            buckets=(1, 5, 15, 60, 300, 900, 3600, 14400),
        )  # fmt: skip

    def observe(self, event: events.Event) -> None:
        p = event.payload
        try:
            if event.name == "asset":
                self.transitions.labels(to=p["to"], trigger=p["trigger"]).inc()
                if p["trigger"] == "lease_expired":
                    self.lease_expiries.inc()
                elif p["trigger"] == "move_done":
                    self.moves.labels(result="ok").inc()
                elif p["trigger"] == "move_failed":
                    self.moves.labels(result="failed").inc()
                    self.errors.labels(cause="move").inc()
                elif p["trigger"] == "agent_error":
                    self.errors.labels(cause="processing").inc()
            elif event.name == "scan":
                self.scan_duration.observe(float(p["duration_s"]))
            elif event.name == "claim":
                self.claim_latency.observe(float(p["latency_s"]))
            elif event.name == "job":
                self.job_duration.labels(type=str(p["type"])).observe(float(p["duration_s"]))
            elif event.name == "error":
                self.errors.labels(cause=str(p.get("cause", "other"))).inc()
        except (KeyError, TypeError, ValueError):
            log.debug("metrics: ignoring malformed %s event %r", event.name, p)

    def update_snapshot(self, snapshot: dict[str, Any]) -> None:
        for state in AssetState:
            self.assets.labels(state=state.value).set(
                snapshot.get(f"state_{state.value.lower()}", 0)
            )
        for key, (gauge, factor) in self.gauges.items():
            value = snapshot.get(key)
            if isinstance(value, int | float):
                gauge.set(value * factor)
        for key, value in snapshot.items():
            if key.startswith("seedbox_errors_") and isinstance(value, int | float):
                self.seedbox_errors.labels(cause=key.removeprefix("seedbox_errors_")).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsCollector:
    """Feeds `Metrics` from the bus and refreshes the snapshot gauges periodically."""

    name = "metrics"

    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        bus: events.EventBus | None = None,
        interval_s: float = 15.0,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.bus = bus or events.bus
        self.interval_s = interval_s

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._events())
            group.create_task(self._snapshots())

    async def _events(self) -> None:
        with self.bus.subscribe() as sub:
            async for event in sub:
                self.metrics.observe(event)

    async def _snapshots(self) -> None:
        from rush.status import collect_status

        while True:
            self.metrics.update_snapshot(await collect_status(self.config))
            await asyncio.sleep(self.interval_s)
