"""XMP sidecars, camera clip XML and the capture time, with files the tests write."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rush.languages import TranscriptionConfig
from rush.lifecycle import AssetState
from rush.media import MediaKind
from rush.metadata import capture, clipxml, xmp
from rush.metadata.sidecar_import import import_sidecars
from rush.models import Asset, Facts, Sidecar, Tag
from web.queries import Filters, page

XMP = b"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmp:Rating="4" xmp:Label="Green" xmp:CreateDate="2026-06-14T10:31:05+02:00">
   <dc:subject><rdf:Bag><rdf:li>Ceremony</rdf:li><rdf:li>Rings</rdf:li></rdf:Bag></dc:subject>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>People|Anna</rdf:li></rdf:Bag></lr:hierarchicalSubject>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Exchange of rings</rdf:li></rdf:Alt></dc:title>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">Wide shot</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""

SONY = b"""<?xml version="1.0" encoding="UTF-8"?>
<NonRealTimeMeta xmlns="urn:schemas-professionalDisc:nonRealTimeMeta:ver.2.00" lastUpdate="2026-06-14T10:30:00+02:00">
 <Duration value="300"/>
 <LtcChangeTable tcFps="25" halfStep="false">
  <LtcChange frameCount="0" value="15341710" status="increment"/>
  <LtcChange frameCount="299" value="14461710" status="end"/>
 </LtcChangeTable>
 <CreationDate value="2026-06-14T10:30:00+02:00"/>
 <VideoFormat><VideoFrame videoCodec="AVC_3840_2160_HP@L51" captureFps="100p" formatFps="25p"/></VideoFormat>
 <Device manufacturer="Sony" modelName="ILME-FX3" serialNo="5012345"/>
</NonRealTimeMeta>
"""

P2 = b"""<?xml version="1.0" encoding="UTF-8"?>
<P2Main xmlns="urn:schemas-Professional-Plug-in:P2:ClipMetadata:v3.1">
 <ClipContent><ClipName>0001AB</ClipName><EditUnit>1001/30000</EditUnit>
  <EssenceList><Video><StartTimecode>01:00:00:00</StartTimecode><FrameRate>29.97p</FrameRate></Video></EssenceList>
  <ClipMetadata><Access><CreationDate>2026-06-15T09:00:00+09:00</CreationDate></Access>
   <Device><Manufacturer>Panasonic</Manufacturer><SerialNo.>D1234</SerialNo.><ModelName>AG-CX350</ModelName></Device>
  </ClipMetadata></ClipContent>
</P2Main>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/">&lol3;</x:xmpmeta>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/">&secret;</x:xmpmeta>
"""


def test_xmp_fields() -> None:
    got = xmp.parse(XMP)
    assert (got.rating, got.label, got.title, got.description) == (
        4, "Green", "Exchange of rings", "Wide shot"
    )  # fmt: skip
    assert got.keywords == ["Ceremony", "Rings", "Anna"]
    assert got.created == "2026-06-14T10:31:05+02:00"
    empty = xmp.parse(
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF "
        b"xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/></x:xmpmeta>"
    )
    assert empty.keywords == [] and empty.rating is None


def test_hostile_or_broken_xml_is_refused_clearly() -> None:
    for bad in (BILLION_LAUGHS, EXTERNAL):
        with pytest.raises(xmp.XmpError, match="refused, it declares a DTD or entities"):
            xmp.parse(bad, "evil.xmp")
        with pytest.raises(clipxml.ClipXmlError, match="refused"):
            clipxml.parse(bad, "evil.xml")
    with pytest.raises(xmp.XmpError, match="not valid XML"):
        xmp.parse(b"<x:xmpmeta", "cut.xmp")
    with pytest.raises(clipxml.ClipXmlError, match=r"unknown camera \(root element <Gizmo>\)"):
        clipxml.parse(b"<Gizmo><Model>X</Model></Gizmo>", "gizmo.xml")


def test_clip_xml_of_sony_panasonic_canon() -> None:
    sony = clipxml.parse(SONY, "C0001M01.XML")
    assert (sony["camera_make"], sony["camera_model"], sony["camera_serial"]) == (
        "Sony", "ILME-FX3", "5012345"
    )  # fmt: skip
    assert sony["start_timecode"] == "10:17:34:15"
    assert (sony["capture_fps"], sony["format_fps"], sony["timecode_fps"]) == (100.0, 25.0, 25.0)
    p2 = clipxml.parse(P2, "0001AB.XML")
    assert (p2["camera_make"], p2["camera_model"], p2["camera_serial"]) == (
        "Panasonic", "AG-CX350", "D1234"
    )  # fmt: skip
    assert p2["start_timecode"] == "01:00:00:00" and p2["capture_fps"] == 29.97
    canon = clipxml.parse(
        b"<ClipInfo><Maker>Canon</Maker><ModelName>EOS C70</ModelName>"
        b"<SerialNumber>0123</SerialNumber><StartTimecode>02:00:00:00</StartTimecode>"
        b"<CaptureFrameRate>119.88</CaptureFrameRate><ShootingDate>2026-06-16T12:00:00"
        b"</ShootingDate></ClipInfo>",
        "A001C001.XML",
    )
    assert canon["camera_model"] == "EOS C70" and canon["capture_fps"] == 119.88
    assert canon["created"] == "2026-06-16T12:00:00"


def test_capture_time_order() -> None:
    exif = {"taken_at": "2026-06-14T10:31:00", "created_at": "2026-01-01T00:00:00Z"}
    assert capture.capture_time(exif, None, None, 5.0)[1] == "exif"
    qt = {"taken_at": None, "created_at": "2026-06-14T08:30:00.000000Z"}
    ts, src = capture.capture_time(qt, "2020-01-01T00:00:00", None, 5.0)
    assert src == "quicktime" and ts == datetime(2026, 6, 14, 8, 30, tzinfo=UTC).timestamp()
    assert capture.capture_time({}, "2026:06:14 10:31:05", None, 5.0)[1] == "xmp"
    assert capture.capture_time({}, None, "2026-06-14T10:30:00+02:00", 5.0)[1] == "clip_xml"
    assert capture.capture_time({"created_at": "1970-01-01T00:00:00Z"}, None, None, 5.0) == (
        5.0, "mtime"
    )  # fmt: skip
    assert capture.camera_of({"camera_make": "Canon", "camera_model": "Canon EOS R5"}, None) == (
        "Canon EOS R5"
    )


async def _asset(
    root: Path, name: str, facts: dict[str, object], sidecars: dict[str, bytes]
) -> Asset:
    rel = f"INBOX/2026-06-14 shoot/{name}"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(b"x")
    asset = await Asset.create(
        kind=MediaKind.VIDEO, rel_path=rel, path_key=rel, state=AssetState.PROCESSED,
        mtime=datetime(2026, 7, 30, tzinfo=UTC).timestamp(),
    )  # fmt: skip
    await Facts.create(asset=asset, version=1, data=facts)
    for side, data in sidecars.items():
        (root / rel).with_name(side).write_bytes(data)
        await Sidecar.create(asset=asset, rel_path=str(Path(rel).with_name(side)), size=len(data))
    return asset


async def test_sidecars_set_tags_rating_capture_and_camera_filters(db: str, tmp_path: Path) -> None:
    sony = await _asset(tmp_path, "C0001.MP4", {"created_at": None}, {"C0001M01.XML": SONY})
    photo = await _asset(
        tmp_path, "IMG_1.JPG", {"lens_model": "RF24-70mm F2.8 L IS USM"}, {"IMG_1.xmp": XMP}
    )
    evil = await _asset(tmp_path, "E.MP4", {"duration_s": 3.0}, {"E.xmp": BILLION_LAUGHS})
    cfg = TranscriptionConfig()
    for a in (sony, photo, evil):
        await import_sidecars(a.id, tmp_path, cfg)
    s = await Asset.get(id=sony.id)
    assert (s.camera, s.capture_source) == ("Sony ILME-FX3", "clip_xml")
    assert s.capture_ts == datetime(2026, 6, 14, 8, 30, tzinfo=UTC).timestamp()
    assert (await Facts.get(asset_id=sony.id)).data["clip"]["start_timecode"] == "10:17:34:15"
    p = await Asset.get(id=photo.id)
    assert p.capture_source == "xmp" and p.fields_data["rating"] == 4
    assert p.lens == "RF24-70mm F2.8 L IS USM"
    tags = await Tag.filter(asset_id=photo.id).order_by("name").values_list("name", "source")
    assert tags == [("Anna", "xmp"), ("Ceremony", "xmp"), ("Rings", "xmp")]
    await import_sidecars(photo.id, tmp_path, cfg)  # again: no duplicates
    assert await Tag.filter(asset_id=photo.id).count() == 3
    e = await Asset.get(id=evil.id)
    facts = (await Facts.get(asset_id=evil.id)).data
    assert facts["duration_s"] == 3.0 and e.capture_source == "mtime"
    assert "E.xmp: refused, it declares a DTD or entities" in facts["sidecar_problems"][0]

    async def ids(**q: str) -> set[str]:
        return {str(r["id"]) for r in await page(Filters.parse(q), 0, 50)}

    # The shoot day finds the clips by capture time, not by their July file date.
    assert await ids(since="2026-06-14", until="2026-06-14") == {str(sony.id), str(photo.id)}
    assert await ids(since="2026-07-30", until="2026-07-30") == {str(evil.id)}
    assert await ids(camera="fx3") == {str(sony.id)}
    assert await ids(lens="rf24") == {str(photo.id)}
    rows = await page(Filters.parse({"sort": "captured"}), 0, 50)
    assert [str(r["id"]) for r in rows][-1] == str(evil.id)
