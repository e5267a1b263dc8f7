"""XMP sidecars (Lightroom, Bridge, darktable, Resolve): rating, label, keywords, title,
description and dates, read with a hardened XML parser.

Why defusedxml: an XMP is XML written by any tool or by anyone; external entities can
read files of the server and nested entities ("billion laughs") can exhaust its memory.
`defusedxml` refuses DTDs, entities and external references outright.
Contract: docs/processing.md, "XMP and camera sidecars".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

#: An XMP larger than this is not a sidecar (Lightroom's are a few KB; 4 MB covers
#: embedded histories and previews).
MAX_XMP_BYTES = 4 * 1024 * 1024

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "xmpDM": "http://ns.adobe.com/xmp/1.0/DynamicMedia/",
}


class XmpError(ValueError):
    """An XMP sidecar that cannot be read, phrased for a human."""


@dataclass
class Xmp:
    rating: int | None = None
    label: str | None = None
    keywords: list[str] = field(default_factory=list)
    title: str | None = None
    description: str | None = None
    #: ISO 8601 as written (xmp:CreateDate, photoshop:DateCreated, exif:DateTimeOriginal)
    created: str | None = None

    def as_facts(self) -> dict[str, Any]:
        return {
            "rating": self.rating,
            "label": self.label,
            "keywords": self.keywords,
            "title": self.title,
            "description": self.description,
            "created": self.created,
        }


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def _values(root: Element, prefix: str, name: str) -> list[str]:
    """A property's values wherever it is: attribute of rdf:Description, simple element,
    or rdf:Bag / rdf:Seq / rdf:Alt items."""
    out: list[str] = []
    key = _q(prefix, name)
    for desc in root.iter(_q("rdf", "Description")):
        if key in desc.attrib:
            out.append(desc.attrib[key])
    for el in root.iter(key):
        items = list(el.iter(_q("rdf", "li")))
        if items:
            out += [(li.text or "").strip() for li in items]
        elif el.text and el.text.strip():
            out.append(el.text.strip())
    return [v for v in out if v]


def parse(raw: bytes, name: str = "sidecar.xmp") -> Xmp:
    if len(raw) > MAX_XMP_BYTES:
        raise XmpError(f"{name} is {len(raw) / 1e6:.1f} MB, too large for an XMP sidecar")
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise XmpError(
            f"{name}: refused, it declares a DTD or entities ({type(exc).__name__})"
        ) from exc
    except SafeET.ParseError as exc:
        raise XmpError(f"{name}: not valid XML ({exc})") from exc
    xmp = Xmp()
    ratings = _values(root, "xmp", "Rating")
    if ratings:
        try:
            value = int(float(ratings[0]))
        except ValueError:
            value = None
        # -1 is "rejected" in Lightroom; it is not a rating (the decision is a human's).
        xmp.rating = value if value is not None and 0 <= value <= 5 else None
    labels = _values(root, "xmp", "Label")
    xmp.label = labels[0][:64] if labels else None
    keywords = _values(root, "dc", "subject")
    for hierarchical in _values(root, "lr", "hierarchicalSubject"):
        keywords.append(hierarchical.split("|")[-1])
    xmp.keywords = list(dict.fromkeys(k.strip()[:128] for k in keywords if k.strip()))
    titles = _values(root, "dc", "title")
    xmp.title = titles[0][:500] if titles else None
    descriptions = _values(root, "dc", "description")
    xmp.description = descriptions[0][:4000] if descriptions else None
    for prefix, prop in (
        ("exif", "DateTimeOriginal"),
        ("photoshop", "DateCreated"),
        ("xmp", "CreateDate"),
    ):
        found = _values(root, prefix, prop)
        if found:
            xmp.created = found[0]
            break
    return xmp
