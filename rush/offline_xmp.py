"""The XMP beside each proxy of an offline package (docs/offline.md, "XMP sidecars").

Rating, tags and fields always; the decision as a label only when the export asks for it
(`--xmp-decisions`): by default a package carries no decision data, so nobody is tempted
to decide offline (decisions are taken once reconnected, in RushCatalog).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rush.metadata import xmp_write
from rush.models import Asset


def package_xmps(
    assets: Sequence[Asset], clips: Iterable[tuple[str, list[str]]], *, with_decisions: bool
) -> dict[str, str]:
    """Clip UUID -> XMP text (pure over the rows already loaded)."""
    by_id = {str(a.id): a for a in assets}
    out: dict[str, str] = {}
    for uuid, tags in clips:
        asset = by_id.get(uuid)
        if asset is None:
            continue
        fields = dict(asset.fields_data or {})
        rating = fields.get("rating")
        out[uuid] = xmp_write.render(
            uuid,
            rating=rating if isinstance(rating, int) else None,
            tags=tags,
            fields=fields,
            decision=asset.decision if with_decisions else None,
        )
    return out
