"""Turn batch-apply and purge reports into what a person reads before and after a run.

Why a module of its own: the dry run is what a user reads before moving irreplaceable
files, so destinations, collisions and sidecars must be spelled out file by file rather
than left in a JSON dump.  Pure functions over the reports' plain-dict form (the output
of `to_dict()` / `jsonable`), unit-testable without a server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rush.layout import UnsafePath, resolve
from rush.media import Area
from rush.moves.plan import rebase

DECISION_OF_AREA = {"ARCHIVE": "KEEP", "REJECTS": "REJECT"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def apply_plan_view(plan: dict[str, Any]) -> dict[str, Any]:
    """The dry run of a batch apply, grouped for reading: one entry per moving group.

    Each file carries `wanted` (the name it would have had) when the group is renamed
    because a name is taken at the destination.
    """
    groups: list[dict[str, Any]] = []
    noop: list[dict[str, Any]] = []
    for item in _as_list(plan.get("items")):
        if not isinstance(item, dict):
            continue
        to_area = str(item.get("to_area", ""))
        decision = DECISION_OF_AREA.get(to_area, "?")
        moves = [m for m in _as_list(item.get("moves")) if isinstance(m, dict)]
        if not moves:
            noop.append(
                {"uuid": item.get("uuid"), "decision": decision, "target": item.get("target")}
            )
            continue
        renamed = bool(item.get("renamed"))
        files = []
        for m in moves:
            src, dst = str(m.get("src", "")), str(m.get("dst", ""))
            wanted = None
            if renamed:
                try:
                    wanted = rebase(src, Area(to_area))
                except ValueError:
                    wanted = None
            files.append(
                {"src": src, "dst": dst, "sidecar": bool(m.get("sidecar")), "wanted": wanted}
            )
        groups.append(
            {
                "uuid": str(item.get("uuid", "")),
                "decision": decision,
                "target": str(item.get("target", "")),
                "to_area": to_area,
                "renamed": renamed,
                "files": files,
            }
        )
    sidecars = sum(1 for g in groups for f in g["files"] if f["sidecar"])
    # Groups refused because their destination volume is not there count as left out.
    left_out = _as_list(plan.get("skipped")) + _as_list(plan.get("refused"))
    return {
        "groups": groups,
        "noop": noop,
        "skipped": [s for s in left_out if isinstance(s, dict)],
        "volume_errors": _volume_errors(plan),
        "counts": {
            "groups": len(groups),
            "keep": sum(1 for g in groups if g["decision"] == "KEEP"),
            "reject": sum(1 for g in groups if g["decision"] == "REJECT"),
            "files": sum(len(g["files"]) for g in groups),
            "sidecars": sidecars,
            "collisions": sum(1 for g in groups if g["renamed"]),
            "noop": len(noop),
            "skipped": len(left_out),
        },
    }


def mark_taken(view: dict[str, Any], root: Path) -> None:
    """Tell, for each renamed file, whether its own name exists at the destination.

    Why: a group is renamed as a whole when any of its names is taken, so the dry run
    says which name was in the way and which files merely follow their group.  Only
    reads the library (one `exists` per renamed file).
    """
    for group in view.get("groups", []):
        for f in group["files"]:
            wanted = f.get("wanted")
            if not wanted:
                continue
            try:
                f["taken"] = resolve(root, wanted).exists()
            except (UnsafePath, OSError):
                f["taken"] = False


def purge_plan_view(plan: dict[str, Any]) -> dict[str, Any]:
    """The dry run of a purge: every file and folder that would be deleted, per asset."""
    assets: list[dict[str, Any]] = []
    files = 0
    for c in _as_list(plan.get("eligible")):
        if not isinstance(c, dict):
            continue
        uid = str(c.get("uuid", ""))
        sidecars = [str(s) for s in _as_list(c.get("sidecars"))]
        assets.append(
            {
                "uuid": uid,
                "rel_path": str(c.get("rel_path", "")),
                "rejected_at": c.get("rejected_at"),
                "sidecars": sidecars,
                "derived": f".derived/{uid}/",
            }
        )
        files += 1 + len(sidecars)
    left_out = _as_list(plan.get("skipped")) + _as_list(plan.get("refused"))
    return {
        "assets": assets,
        "cutoff": plan.get("cutoff"),
        "skipped": [s for s in left_out if isinstance(s, dict)],
        "volume_errors": _volume_errors(plan),
        "counts": {
            "assets": len(assets),
            "files": files,
            "skipped": len(left_out),
        },
    }


def _volume_errors(plan: dict[str, Any]) -> list[str]:
    """Why a destination volume is not written to (docs/batch.md, "Volume markers")."""
    errors = plan.get("volume_errors")
    return [str(v) for v in errors.values()] if isinstance(errors, dict) else []
