"""What a relocation run reports: one outcome per torrent, and the run's totals.

`action` is one of: moved, would_move, finalised (already on the Synology, rechecked
there), kept (waits: not eligible, target met…), deferred (kept on the NVMe on purpose:
hard links, Synology away, too young, paused by policy; not a failure), archived (a stale
`.state` put aside), failed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Outcome:
    infohash: str
    name: str
    #: moved | would_move | finalised | kept | deferred | archived | failed
    action: str
    reason: str
    cause: str | None = None
    seconds: float = 0.0
    bytes: int = 0
    path_nvme: str = ""
    path_syno: str = ""


@dataclass
class RunReport:
    run_id: str
    dry_run: bool
    syno_problem: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    invalid_states: list[dict[str, str]] = field(default_factory=list)

    @property
    def moved(self) -> int:
        return sum(1 for o in self.outcomes if o.action == "moved")

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o.action == "failed")

    @property
    def deferred(self) -> int:
        """Kept on the NVMe on purpose: not failures (exit code 0, out of the ratio)."""
        return sum(1 for o in self.outcomes if o.action == "deferred")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "syno_problem": self.syno_problem,
            "moved": self.moved,
            "failed": self.failed,
            "deferred": self.deferred,
            "outcomes": [asdict(o) for o in self.outcomes],
            "invalid_states": self.invalid_states,
        }
