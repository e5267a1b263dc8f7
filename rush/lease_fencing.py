"""Version fencing of leases: an asset's new version ends the old version's leases.

Why a module of its own: reprocess (`rush.actions`) and the scanner end leases in their
own transactions, and the lease service (`rush.leasing`) calls `rush.actions` after a
result; with this here neither imports the other in a circle.
"""

from __future__ import annotations

from typing import Any

from rush.models import Lease
from rush.transitions import utcnow

#: Lease status of a lease whose asset version was superseded (reprocess, new content).
SUPERSEDED = "superseded"


async def supersede_leases(asset_id: Any, old_version: int, *, reason: str) -> int:
    """End the active leases of an asset's versions up to `old_version`, in the caller's
    transaction (reprocess, content changed on disk); returns how many.

    Why: a transcription leased before a reprocess could otherwise finish afterwards and
    mark the new version's transcript done with the old text, and the asset would hold
    two active leases.  Their late results are refused (`finish_job`)."""
    return await Lease.filter(asset_id=asset_id, status="active", version__lte=old_version).update(
        status=SUPERSEDED, active_key=None, finished_at=utcnow(), error=reason[:4000]
    )
