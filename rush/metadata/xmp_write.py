"""XMP sidecars for editors' tools (Lightroom, Bridge, Resolve): rating, tags, fields and
optionally the decision as a label (pure: text out).

Why XMP: it is what those tools read next to a media file, so a package's proxies (and,
opt-in, archived originals) show RushCatalog's metadata there.  The RushCatalog asset
UUID travels in its own namespace so a round trip can be matched.
Contract: docs/offline.md, "XMP sidecars".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

RC_NS = "https://rushcatalog.invalid/ns/1.0/"
#: The decision as a label Lightroom and Bridge can filter on.
DECISION_LABELS = {"KEEP": "Keep", "REJECT": "Reject"}


def render(
    asset_uuid: str,
    *,
    rating: int | None = None,
    tags: Iterable[str] = (),
    fields: Mapping[str, Any] | None = None,
    decision: str | None = None,
    title: str | None = None,
) -> str:
    fields = fields or {}
    attrs = [f"rc:assetUUID={quoteattr(asset_uuid)}"]
    if isinstance(rating, int) and 0 <= rating <= 5:
        attrs.append(f'xmp:Rating="{rating}"')
    if decision in DECISION_LABELS:
        attrs.append(f"xmp:Label={quoteattr(DECISION_LABELS[decision])}")
        attrs.append(f"rc:decision={quoteattr(decision)}")
    for key in ("project", "location"):
        if fields.get(key):
            attrs.append(f"rc:{key}={quoteattr(str(fields[key]))}")
    if fields.get("location"):
        attrs.append(f"Iptc4xmpCore:Location={quoteattr(str(fields['location']))}")
    people = [str(p) for p in fields.get("people") or [] if str(p).strip()]
    subjects = list(dict.fromkeys([*tags, *people]))
    body = []
    if subjects:
        items = "".join(f"<rdf:li>{escape(s)}</rdf:li>" for s in subjects)
        body.append(f"   <dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>")
    if people:
        items = "".join(f"<rdf:li>{escape(p)}</rdf:li>" for p in people)
        body.append(f"   <rc:people><rdf:Bag>{items}</rdf:Bag></rc:people>")
    if title:
        body.append(
            f'   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li>'
            "</rdf:Alt></dc:title>"
        )
    inner = "\n".join(body)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"\n'
        f'    xmlns:rc="{RC_NS}"\n'
        f"    {' '.join(attrs)}>\n"
        f"{inner}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
    )
