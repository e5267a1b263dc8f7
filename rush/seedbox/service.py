"""Entry points shared by the CLI, the daily actor and the `rush/cmd/seedbox/run` trigger.

They assume the database is open (the server opens it once; the CLI around each command).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from integrations.qbittorrent import QbitClient
from rush.config import Config, ConfigError
from rush.models import SeedMapping, SeedRelocation
from rush.runlock import LockBusy, run_lock
from rush.seedbox.logs import job_log
from rush.seedbox.relocator import Relocator
from rush.seedbox.report import RunReport
from rush.seedbox.state import read_state_dir

log = logging.getLogger("rush.seedbox")

#: Error causes reported by the KPIs (always present, zero when none).
CAUSES = (
    "network",
    "api",
    "permissions",
    "space",
    "unavailable",
    "hardlink",
    "paused",
    "conflict",
    "other",
)
#: Causes that leave a torrent where it is by design: not failed moves (see `seedbox_kpis`).
DEFERRAL_CAUSES = frozenset({"unavailable", "hardlink", "paused"})
MAPPING_COLUMNS = ("infohash", "path_nvme", "path_syno", "last_update_epoch")


async def relocate(
    config: Config,
    *,
    dry_run: bool = False,
    now: float | None = None,
    qbit: QbitClient | None = None,
    clock: Callable[[], float] = time.time,
    relocator_kwargs: dict[str, Any] | None = None,
) -> RunReport:
    """One locked, logged relocation run; raises LockBusy when another run is going on,
    ConfigError when the qBittorrent URL is RushCatalog's own web UI."""
    problem = config.qbittorrent_is_web_ui()
    if problem and qbit is None:
        raise ConfigError(problem)
    sb = config.seedbox
    with contextlib.ExitStack() as stack:
        stack.enter_context(job_log(sb.log_dir, "relocator", sb.log_retention_days, clock))
        try:
            stack.enter_context(run_lock(sb.lock_dir))
        except LockBusy as exc:
            log.warning("run refused: %s", exc)
            raise
        client = qbit or QbitClient(sb.qbittorrent)
        try:
            relocator = Relocator(sb, client, **(relocator_kwargs or {}))
            return await relocator.run(dry_run=dry_run, now=now)
        finally:
            if qbit is None:
                await client.close()


async def cmd_seedbox_run(config: Config, payload: dict[str, Any]) -> dict[str, Any]:
    """Handler of `rush/cmd/seedbox/run`: `{"dry_run": bool}` (default `seedbox.dry_run`)."""
    if not config.seedbox.enabled:
        # A disabled feature runs nothing, not even a dry run: the trigger says why.
        return {
            "ok": False,
            "refused": "disabled",
            "error": "the Seedbox Manager is disabled (seedbox.enabled = false); nothing was run",
        }
    if not isinstance(payload, dict):
        return {"ok": False, "error": "payload must be a JSON object"}
    unknown = sorted(set(payload) - {"dry_run", "request_id"})
    if unknown:
        return {"ok": False, "error": f"unknown field(s): {', '.join(unknown)}"}
    dry_run = payload.get("dry_run", config.seedbox.dry_run)
    if not isinstance(dry_run, bool):
        return {"ok": False, "error": "dry_run must be true or false"}
    try:
        report = await relocate(config, dry_run=dry_run)
    except (LockBusy, ConfigError) as exc:
        return {"ok": False, "error": str(exc)}
    result: dict[str, Any] = {"ok": True, **report.to_dict()}
    if "request_id" in payload:
        result["request_id"] = payload["request_id"]
    return result


async def seedbox_kpis(
    config: Config, now: datetime | None = None, days: int = 7
) -> dict[str, Any]:
    """Seed §8 KPIs from the attempts table, plus NVMe free space and pending `.state`s."""
    now = now or datetime.now(UTC)
    rows = await SeedRelocation.all().values(
        "ok", "started_at", "finished_at", "bytes_moved", "error_cause"
    )
    # A torrent kept on NVMe on purpose (hard links, Synology away, paused by policy) was
    # not a move that failed: it is counted under its cause, and deferred, not in the
    # success ratio.  (Too young is not recorded at all: it is not an attempt.)
    deferred = sum(1 for r in rows if not r["ok"] and r["error_cause"] in DEFERRAL_CAUSES)
    attempts = len(rows) - deferred
    successes = [r for r in rows if r["ok"]]
    durations = [
        (r["finished_at"] - r["started_at"]).total_seconds()
        for r in successes
        if r["finished_at"] is not None
    ]
    since = (now - timedelta(days=days - 1)).date()
    per_day = {(since + timedelta(days=i)).isoformat(): 0 for i in range(days)}
    for r in successes:
        if r["finished_at"] is not None:
            day = r["finished_at"].astimezone(UTC).date().isoformat()
            if day in per_day:
                per_day[day] += int(r["bytes_moved"])
    causes = Counter(r["error_cause"] or "other" for r in rows if not r["ok"])
    errors = {c: causes.get(c, 0) for c in CAUSES}
    for c, n in causes.items():
        errors.setdefault(c, n)
    nvme: dict[str, Any] = {"free_bytes": None, "total_bytes": None, "free_percent": None}
    try:
        usage = shutil.disk_usage(config.seedbox.nvme_root)
        nvme = {
            "free_bytes": usage.free,
            "total_bytes": usage.total,
            "free_percent": round(100 * usage.free / usage.total, 2) if usage.total else None,
        }
    except OSError:
        pass
    today = now.astimezone(UTC).date().isoformat()
    return {
        "attempts": attempts,
        "deferred": deferred,
        "successes": len(successes),
        "success_ratio": round(len(successes) / attempts, 4) if attempts else None,
        "mean_relocation_s": round(sum(durations) / len(durations), 3) if durations else None,
        "bytes_moved_today": per_day.get(today, 0),
        "bytes_moved_per_day": per_day,
        "errors_by_cause": errors,
        "nvme": nvme,
        "pending_states": sum(
            1 for e in read_state_dir(config.seedbox.state_dir) if e.state is not None
        ),
        "mapped_torrents": await SeedMapping.filter(status="active").count(),
        "removed_torrents": await SeedMapping.filter(status="removed").count(),
    }


async def export_mapping(
    fmt: Literal["tsv", "csv"] = "tsv", *, include_removed: bool = False
) -> str:
    """The mapping with the seed's columns, header first, sorted by infohash.

    Rows of torrents gone from qBittorrent (status `removed`) are kept in the database;
    they are exported only with `include_removed`, which adds a `status` column."""
    columns = (*MAPPING_COLUMNS, "status") if include_removed else MAPPING_COLUMNS
    query = SeedMapping.all() if include_removed else SeedMapping.filter(status="active")
    rows = await query.order_by("infohash").values_list(*columns)
    buf = io.StringIO()
    writer = csv.writer(
        buf,
        delimiter="\t" if fmt == "tsv" else ",",
        lineterminator="\n",
        quoting=csv.QUOTE_MINIMAL,
    )
    writer.writerow(columns)
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()
