"""One snapshot of the whole pipeline: counts per state, queue, agents, last runs.

The same dictionary feeds Home Assistant's state topic, `rush status` and the metrics
endpoint, so the three can never disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tortoise.functions import Count

from rush.capabilities import unserved_ready
from rush.config import Config
from rush.duplicates import duplicate_count
from rush.lifecycle import AssetState
from rush.models import Agent, Asset, Batch, KeyValue
from rush.transitions import utcnow

S = AssetState


async def state_counts() -> dict[str, int]:
    rows = await Asset.all().group_by("state").annotate(n=Count("id")).values_list("state", "n")
    counts = {s.value: 0 for s in AssetState}
    for state, n in rows:
        counts[str(state)] = int(n)
    return counts


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def collect_status(config: Config, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    counts = await state_counts()
    snapshot: dict[str, Any] = {f"state_{k.lower()}": v for k, v in counts.items()}
    snapshot["awaiting_decision"] = counts[S.PROCESSED] + counts[S.DECISION_PENDING]
    snapshot["queue_depth"] = await Asset.filter(
        state=S.READY, failed=False, missing=False, batch_id=None
    ).count()
    snapshot["processing"] = counts[S.PROCESSING_REVIEW]
    snapshot["failed"] = await Asset.filter(failed=True).exclude(state=S.PURGED).count()
    snapshot["missing"] = await Asset.filter(missing=True).exclude(state=S.PURGED).count()
    snapshot["duplicates"] = await duplicate_count()
    verify = await KeyValue.get_or_none(key="last_verify")
    verify_value: dict[str, Any] = verify.value if verify else {}
    snapshot["last_verify"] = verify_value.get("finished_at")
    snapshot["last_verify_problems"] = verify_value.get("problems")
    snapshot["agents_online"] = await Agent.filter(online=True).count()
    # READY assets that no online agent can process (they would wait in silence).
    unserved = await unserved_ready() if snapshot["queue_depth"] else {}
    snapshot["queue_unserved"] = sum(unserved.values())
    snapshot["queue_unserved_needs"] = ", ".join(
        f"{what}: {n}" for what, n in sorted(unserved.items())
    )
    cutoff = now - timedelta(days=config.purge.after_days)
    snapshot["purge_eligible"] = await Asset.filter(
        state=S.REJECTED, state_changed_at__lte=cutoff
    ).count()
    scan = await KeyValue.get_or_none(key="last_scan")
    scan_value: dict[str, Any] = scan.value if scan else {}
    snapshot["last_scan"] = scan_value.get("finished_at")
    snapshot["last_scan_duration"] = scan_value.get("duration_s")
    apply = (
        await Batch.filter(kind="apply").exclude(finished_at=None).order_by("-finished_at").first()
    )
    snapshot["last_apply"] = _iso(apply.finished_at) if apply else None
    report: dict[str, Any] = apply.report if apply else {}
    snapshot["last_apply_moved"] = _count(report.get("moved"))
    snapshot["last_apply_failed"] = _count(report.get("failed"))
    if config.seedbox.enabled:
        snapshot.update(await seedbox_snapshot(config, now))
    snapshot["generated_at"] = now.isoformat()
    return snapshot


_GB = 1_000_000_000
SEEDBOX_ERROR_CAUSES = (
    "network",
    "api",
    "permissions",
    "space",
    "unavailable",
    "hardlink",
    "other",
)


async def seedbox_snapshot(config: Config, now: datetime) -> dict[str, Any]:
    """The seed's KPIs (§8) flattened for Home Assistant's sensors."""
    from rush.seedbox.service import seedbox_kpis

    kpis = await seedbox_kpis(config, now=now)
    nvme = kpis.get("nvme") or {}
    ratio = kpis.get("success_ratio")
    free = nvme.get("free_bytes")
    out: dict[str, Any] = {
        "seedbox_success_ratio": round(100 * ratio, 1) if ratio is not None else None,
        "seedbox_mean_relocation_s": kpis.get("mean_relocation_s"),
        "seedbox_moved_today_gb": round(kpis.get("bytes_moved_today", 0) / _GB, 3),
        "seedbox_nvme_free_gb": round(free / _GB, 2) if free is not None else None,
        "seedbox_nvme_free_percent": nvme.get("free_percent"),
    }
    errors: dict[str, int] = kpis.get("errors_by_cause") or {}
    for cause in SEEDBOX_ERROR_CAUSES:
        out[f"seedbox_errors_{cause}"] = int(errors.get(cause, 0))
    # Causes without a sensor of their own (e.g. "conflict") count as "other".
    out["seedbox_errors_other"] += sum(
        int(n) for c, n in errors.items() if c not in SEEDBOX_ERROR_CAUSES
    )
    return out


def _count(value: Any) -> int:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int):
        return value
    return 0


def format_status(snapshot: dict[str, Any]) -> str:
    """Human lines for `rush status`."""
    lines = ["Assets by state:"]
    for state in AssetState:
        lines.append(f"  {state.value:<18} {snapshot.get(f'state_{state.value.lower()}', 0):>8}")
    lines += [
        f"Awaiting decision:   {snapshot['awaiting_decision']}",
        f"Processing queue:    {snapshot['queue_depth']} ready, {snapshot['processing']} in progress,"
        f" {snapshot['failed']} failed",
        f"Missing files:       {snapshot['missing']}",
        f"Duplicate copies:    {snapshot.get('duplicates', 0)}",
        f"Agents online:       {snapshot['agents_online']}",
    ]
    if snapshot.get("queue_unserved"):
        lines.append(
            f"No agent can do:     {snapshot['queue_unserved']} ready asset(s) "
            f"({snapshot.get('queue_unserved_needs', '')}); they wait for an agent that can"
        )
    lines += [
        f"Purge eligible:      {snapshot['purge_eligible']}",
        f"Last scan:           {snapshot['last_scan'] or 'never'}"
        + (
            f" ({snapshot['last_scan_duration']:.1f} s)"
            if snapshot.get("last_scan_duration")
            else ""
        ),
        f"Last batch apply:    {snapshot['last_apply'] or 'never'}"
        + (
            f" (moved {snapshot['last_apply_moved']}, failed {snapshot['last_apply_failed']})"
            if snapshot["last_apply"]
            else ""
        ),
    ]
    seed = {k: v for k, v in snapshot.items() if k.startswith("seedbox_")}
    if seed:
        lines.append("Seedbox:")
        lines += [f"  {k.removeprefix('seedbox_'):<22} {v}" for k, v in sorted(seed.items())]
    return "\n".join(lines)
