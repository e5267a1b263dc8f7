"""Offline work (docs/contract.md §9, workflow 11): export a selection as a local package, relink it by UUID.

An editor leaves with a *package*: the proxies copied from `.derived/` into a local folder,
timelines that DaVinci Resolve imports (OpenTimelineIO: `.otio`, FCP 7 XML, CMX 3600 EDL)
whose clips point at those local proxies and carry the asset UUID, a CSV media list and a
`manifest.json`.  Nothing on the NAS is written: the library is only read.  Back on the
network, `relink_package` maps every local proxy to the asset's *current* original by UUID
(paths are mutable attributes: the asset may have moved to ARCHIVE meanwhile).

The package never carries decision data (no state, no KEEP/REJECT): decisions are taken
only once reconnected, in RushCatalog itself.

Pure helpers (timecodes, timeline building, relink classification) do no I/O; the async
functions read the database; the file copying runs in a worker thread so a server event
loop that calls `export_selection` stays responsive.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

import opentimelineio as otio

from rush import __version__, names
from rush.decisions import LABELS
from rush.layout import LibraryNotMounted, UnsafePath, read_marker, resolve, safe_relpath
from rush.lifecycle import AssetState
from rush.media import DERIVED_DIR, Area, MediaKind
from rush.models import Asset, Bin, Derivative, Facts, PurgeAudit, Tag
from rush.offline_xmp import package_xmps

log = logging.getLogger(__name__)

PACKAGE_FORMAT = "rush-offline/1"
MANIFEST_NAME = "manifest.json"
MEDIA_CSV_NAME = "media.csv"
PROXY_DIR = "proxies"
TIMELINE_BASENAME = "timeline"
#: Derivative roles usable as the offline media, best first.  Only a photo (which has no
#: proxy) falls back to its poster or thumbnail; a video or audio asset needs its proxy.
MEDIA_ROLES = ("proxy", "poster", "thumb")
#: Duration given to a still (photo) on the timeline.
STILL_SECONDS = 5.0
DEFAULT_RATE = 25.0
#: Columns of media.csv: identity, paths and timing, never a state or a decision.
CSV_COLUMNS = (
    "uuid",
    "kind",
    "original_path",
    "proxy_path",
    "timecode",
    "duration_s",
    "frame_rate",
    "tags",
    "rating",
    "label",
)
_IN_CHUNK = 500
_PROBE_TIMEOUT_S = 30.0

RelinkStatus = Literal["ok", "moved", "missing", "purged", "unknown"]
RelinkFormat = Literal["csv", "json", "edl"]


class OfflineError(Exception):
    """An export or relink that cannot proceed, phrased for a human."""


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """What to export: a bin and/or filters, all combined with AND."""

    bin: str | None = None
    states: tuple[AssetState, ...] = ()
    kinds: tuple[MediaKind, ...] = ()
    #: The asset must carry every one of these tags.
    tags: tuple[str, ...] = ()
    #: Library-relative folder prefix, e.g. `INBOX/2024-06 wedding`.
    folder: str | None = None
    uuids: tuple[uuid.UUID, ...] = ()

    def is_empty(self) -> bool:
        return not (self.bin or self.states or self.kinds or self.tags or self.folder or self.uuids)

    def describe(self) -> dict[str, Any]:
        """The selection as recorded in the manifest, without states (they reveal decisions)."""
        out: dict[str, Any] = {}
        if self.bin:
            out["bin"] = self.bin
        if self.kinds:
            out["kinds"] = [str(k) for k in self.kinds]
        if self.tags:
            out["tags"] = list(self.tags)
        if self.folder:
            out["folder"] = self.folder
        if self.uuids:
            out["uuids"] = [str(u) for u in self.uuids]
        if self.states:
            out["state_filter"] = True
        return out


def normalise_folder(folder: str) -> str:
    """A folder prefix as stored paths spell it (`INBOX/x/`), refusing escapes."""
    cleaned = folder.strip().replace("\\", "/").strip("/")
    try:
        return str(safe_relpath(cleaned)) + "/"
    except UnsafePath as exc:
        raise OfflineError(f"--folder {folder!r}: {exc}") from exc


async def select_assets(selection: Selection) -> list[Asset]:
    """Assets matching the selection that still occupy a file, ordered by path."""
    if selection.is_empty():
        raise OfflineError("empty selection: give a bin, a filter or UUIDs")
    query = Asset.filter(path_key__isnull=False).exclude(state=AssetState.PURGED)
    if selection.bin:
        bin_ = await Bin.get_or_none(name=selection.bin)
        if bin_ is None:
            raise OfflineError(f"no bin named {selection.bin!r}")
        query = query.filter(bins__id=bin_.id)
    if selection.states:
        query = query.filter(state__in=list(selection.states))
    if selection.kinds:
        query = query.filter(kind__in=list(selection.kinds))
    if selection.folder:
        query = query.filter(rel_path__startswith=normalise_folder(selection.folder))
    if selection.uuids:
        query = query.filter(id__in=list(selection.uuids))
    assets = await query.distinct().order_by("rel_path")
    for tag in selection.tags:
        tagged = await _ids_with_tag(tag, [a.id for a in assets])
        assets = [a for a in assets if a.id in tagged]
    return assets


async def _ids_with_tag(tag: str, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for chunk in _chunks(ids):
        rows = await Tag.filter(name=tag, asset_id__in=chunk).values_list("asset_id", flat=True)
        found.update(_as_uuid(r) for r in rows)
    return found


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# --------------------------------------------------------------------------- pure helpers


def parse_rate(value: Any) -> float | None:
    """A frame rate from facts: 25, 29.97, "30000/1001", "25" -> float, else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, str) and "/" in value:
            num, den = value.split("/", 1)
            rate = float(num) / float(den)
        else:
            rate = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 0 < rate <= 1000:
        return None
    # 29.97 means 30000/1001: snap to the exact SMPTE rate, or timecodes cannot be used.
    nearest = float(otio.opentime.RationalTime.nearest_valid_timecode_rate(rate))
    return nearest if abs(nearest - rate) < 0.01 else rate


def parse_duration(value: Any) -> float | None:
    """Seconds from facts (number or numeric string); None when absent or nonsense."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 < seconds < 10 * 86400 else None


def parse_timecode(value: Any, rate: float) -> otio.opentime.RationalTime | None:
    """Start timecode ("01:00:00:00", drop-frame ";") as a RationalTime, None if unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return otio.opentime.from_timecode(value.strip(), rate)
    except (ValueError, TypeError):
        return None


def local_media_name(asset_id: uuid.UUID, original_path: str, source_rel: str) -> str:
    """Flat, unique local file name: the original's stem (for humans) + a UUID prefix."""
    stem = PurePosixPath(original_path).stem or "clip"
    safe_stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80]
    suffix = PurePosixPath(source_rel).suffix.lower()
    return f"{safe_stem}_{asset_id.hex[:8]}{suffix}"


@dataclass
class ClipEntry:
    """One exported asset: everything the package and a later relink need, no decision."""

    uuid: str
    kind: str
    original_path: str
    #: Path of the local media relative to the package root (`proxies/...`).
    proxy_path: str
    proxy_role: str
    duration_s: float
    frame_rate: float
    timecode: str | None = None
    tags: list[str] = field(default_factory=list)
    #: Stars 0-5 and colour label name ("" for none), from the review desk.
    rating: int = 0
    label: str = ""
    #: Library-relative source of the proxy (not written to the package's CSV).
    source_rel: str = ""

    def start(self) -> otio.opentime.RationalTime:
        return parse_timecode(self.timecode, self.frame_rate) or otio.opentime.RationalTime(
            0, self.frame_rate
        )

    def duration(self) -> otio.opentime.RationalTime:
        frames = max(1, round(self.duration_s * self.frame_rate))
        return otio.opentime.RationalTime(frames, self.frame_rate)


def timeline_rate(clips: Sequence[ClipEntry]) -> float:
    """The sequence rate: the most common clip rate (Resolve conforms the others)."""
    rates = Counter(c.frame_rate for c in clips if c.kind != MediaKind.PHOTO)
    return rates.most_common(1)[0][0] if rates else DEFAULT_RATE


def build_timeline(
    name: str, clips: Sequence[ClipEntry], media_url: dict[str, str], library_id: str
) -> otio.schema.Timeline:
    """A timeline with video/photo clips on V1 and audio-only assets on A1, end to end.

    `media_url` maps a clip's UUID to the URL its media reference points at (the local
    proxy for an export, the original on the NAS for a relinked timeline).
    """
    rate = timeline_rate(clips)
    timeline = otio.schema.Timeline(name=name)
    try:
        timeline.global_start_time = otio.opentime.from_timecode("01:00:00:00", rate)
    except ValueError:  # a rate SMPTE timecode cannot express (e.g. 12.5 fps)
        timeline.global_start_time = otio.opentime.RationalTime(3600 * rate, rate)
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for entry in clips:
        url = media_url.get(entry.uuid)
        if url is None:
            continue
        source = otio.opentime.TimeRange(entry.start(), entry.duration())
        reference = otio.schema.ExternalReference(target_url=url, available_range=source)
        clip = otio.schema.Clip(
            name=names.display(PurePosixPath(entry.original_path).name),
            media_reference=reference,
            source_range=source,
            metadata={
                "rush": {
                    "uuid": entry.uuid,
                    "library_id": library_id,
                    "original_path": entry.original_path,
                    "kind": entry.kind,
                    "tags": list(entry.tags),
                    "rating": entry.rating,
                    "label": entry.label,
                },
                # FCP 7 XML keeps the UUID as a master comment (Resolve shows it).
                "fcp_xml": {"comments": {"mastercomment1": f"rush:{entry.uuid}"}},
            },
        )
        (audio if entry.kind == MediaKind.AUDIO else video).append(clip)
    timeline.tracks.append(video)
    if len(audio):
        timeline.tracks.append(audio)
    return timeline


def file_url(path: Path) -> str:
    """An absolute `file://` URL (what FCP XML and Resolve expect)."""
    return path.absolute().as_uri()


def media_csv(clips: Sequence[ClipEntry]) -> str:
    """The CSV media list: UUID, library-relative original, local proxy, timecode, duration, tags."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in clips:
        writer.writerow(
            [
                c.uuid,
                c.kind,
                c.original_path,
                c.proxy_path,
                c.timecode or "",
                f"{c.duration_s:.3f}",
                f"{c.frame_rate:g}",
                ";".join(c.tags),
                str(c.rating),
                c.label,
            ]
        )
    return buf.getvalue()


def timeline_formats() -> list[tuple[str, str]]:
    """(adapter, file suffix) pairs available here; `otio_json` always is."""
    available = set(otio.adapters.available_adapter_names())
    out = [("otio_json", ".otio")]
    if "fcp_xml" in available:
        out.append(("fcp_xml", ".xml"))
    if "cmx_3600" in available:
        out.append(("cmx_3600", ".edl"))
    return out


def edl_timelines(timeline: otio.schema.Timeline) -> list[tuple[str, otio.schema.Timeline]]:
    """CMX 3600 holds one track: one EDL per non-empty track ("" for V1, "-A1" for audio).

    The adapter writes the first track and insists on exactly one video track, so an audio
    EDL is its audio track followed by an empty video track.
    """
    out: list[tuple[str, otio.schema.Timeline]] = []
    for track in timeline.tracks:
        if not len(track):
            continue
        single = otio.schema.Timeline(name=timeline.name)
        single.global_start_time = timeline.global_start_time
        single.tracks.append(track.clone())
        if track.kind == otio.schema.TrackKind.Video:
            out.append(("", single))
        else:
            single.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Video))
            out.append((f"-{track.name}", single))
    return out


# --------------------------------------------------------------------------- export


@dataclass
class ExportReport:
    package_dir: Path
    library_id: str
    exported_at: str
    clips: list[ClipEntry]
    #: (uuid, original_path, reason) of selected assets that could not be exported.
    skipped: list[tuple[str, str, str]]
    files: list[str]
    bytes_copied: int = 0
    #: Optional timeline formats that an adapter could not write (the .otio always is).
    warnings: list[str] = field(default_factory=list)


def inside_library(path: Path, root: Path, other_areas: Sequence[Path] = ()) -> Path | None:
    """The library root or area root (ARCHIVE/REJECTS on other volumes) holding `path`."""
    target = path.resolve()
    for area in (root, *other_areas):
        area_abs = area.resolve()
        if target == area_abs or area_abs in target.parents:
            return area
    return None


def _check_destination(dest: Path, root: Path, other_areas: Sequence[Path] = ()) -> None:
    area = inside_library(dest, root, other_areas)
    if area is not None:
        raise OfflineError(
            f"{dest} is inside the library {area}: an offline package never writes to the NAS"
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OfflineError(f"{dest} exists and is not an empty folder: choose a new folder")


async def _gather(
    assets: Sequence[Asset],
) -> tuple[
    dict[uuid.UUID, list[Derivative]], dict[uuid.UUID, list[Facts]], dict[uuid.UUID, list[str]]
]:
    derivs: dict[uuid.UUID, list[Derivative]] = {}
    facts: dict[uuid.UUID, list[Facts]] = {}
    tags: dict[uuid.UUID, list[str]] = {}
    ids = [a.id for a in assets]
    for chunk in _chunks(ids):
        for d in await Derivative.filter(asset_id__in=chunk, role__in=MEDIA_ROLES):
            derivs.setdefault(_as_uuid(d.asset_id), []).append(d)  # type: ignore[attr-defined]
        for f in await Facts.filter(asset_id__in=chunk):
            facts.setdefault(_as_uuid(f.asset_id), []).append(f)  # type: ignore[attr-defined]
        for aid, name in await Tag.filter(asset_id__in=chunk).values_list("asset_id", "name"):
            tags.setdefault(_as_uuid(aid), []).append(str(name))
    return derivs, facts, tags


def pick_media(
    kind: str, asset_version: int, derivatives: Sequence[Derivative]
) -> Derivative | None:
    """The best offline media: preferred role first, then the newest version not above the asset's."""
    usable = [d for d in derivatives if d.version <= asset_version]
    roles = MEDIA_ROLES if kind == MediaKind.PHOTO else MEDIA_ROLES[:1]
    for role in roles:
        candidates = [d for d in usable if d.role == role]
        if candidates:
            return max(candidates, key=lambda d: d.version)
    return None


def pick_facts(version: int, rows: Sequence[Facts]) -> dict[str, Any]:
    exact = [f for f in rows if f.version == version]
    chosen = exact or sorted(rows, key=lambda f: f.version)[-1:]
    return dict(chosen[0].data) if chosen and isinstance(chosen[0].data, dict) else {}


def plan_clip(
    asset: Asset, media: Derivative, facts: dict[str, Any], tags: Sequence[str]
) -> ClipEntry:
    """The package entry of one asset (pure): timing from facts, absent keys tolerated."""
    source_rel = str(safe_relpath(media.rel_path))
    if PurePosixPath(source_rel).parts[0] != DERIVED_DIR:
        raise UnsafePath(f"derivative {media.rel_path!r} is not under {DERIVED_DIR}/")
    kind = str(asset.kind)
    rate = parse_rate(facts.get("frame_rate")) or DEFAULT_RATE
    duration = parse_duration(facts.get("duration"))
    if duration is None and kind == MediaKind.PHOTO:
        duration = STILL_SECONDS
    timecode = facts.get("timecode")
    return ClipEntry(
        uuid=str(asset.id),
        kind=kind,
        original_path=asset.rel_path,
        proxy_path=f"{PROXY_DIR}/{local_media_name(asset.id, asset.rel_path, source_rel)}",
        proxy_role=media.role,
        duration_s=duration or 0.0,
        frame_rate=rate,
        timecode=timecode if parse_timecode(timecode, rate) is not None else None,
        tags=sorted(tags),
        rating=int(asset.rating or 0),
        label=_label_name(asset.label),
        source_rel=source_rel,
    )


def _label_name(value: object) -> str:
    return LABELS[value] if isinstance(value, int) and 0 <= value < len(LABELS) else ""


def probe_duration(path: Path) -> float | None:
    """Duration of a local file by ffprobe, for assets whose facts lack one."""
    try:
        out = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "default=noprint_wrappers=1:nokey=1",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_duration(out.stdout.strip()) if out.returncode == 0 else None


async def export_selection(
    root: Path,
    selection: Selection,
    dest: Path,
    *,
    name: str | None = None,
    package_as: str | None = None,
    other_areas: Sequence[Path] = (),
    xmp_decisions: bool = False,
) -> ExportReport:
    """Build an offline package of `selection` in `dest`; the library is only read.

    `package_as` spells `dest` as the editing machine will see it (e.g. the package is
    written on the server to a share the laptop mounts elsewhere): the timelines' media
    references use it; default `dest` itself.

    The service behind `rush export-selection` and the UI's export button.  Needs an
    initialised database.  Raises OfflineError for an empty selection, an unknown bin, an
    unmounted library or a destination that is not a new, empty folder outside the library
    (`other_areas`: ARCHIVE/REJECTS roots kept on other volumes).
    """
    try:
        marker = read_marker(root)
    except LibraryNotMounted as exc:
        raise OfflineError(str(exc)) from exc
    _check_destination(dest, root, other_areas)
    assets = await select_assets(selection)
    if not assets:
        raise OfflineError("the selection matches no asset")
    derivs, facts, tags = await _gather(assets)
    clips: list[ClipEntry] = []
    skipped: list[tuple[str, str, str]] = []
    for asset in assets:
        media = pick_media(str(asset.kind), asset.version, derivs.get(asset.id, []))
        if media is None:
            skipped.append((str(asset.id), asset.rel_path, "no proxy yet (not processed)"))
            continue
        try:
            clip = plan_clip(
                asset,
                media,
                pick_facts(media.version, facts.get(asset.id, [])),
                tags.get(asset.id, []),
            )
        except UnsafePath as exc:
            skipped.append((str(asset.id), asset.rel_path, f"unsafe derivative path: {exc}"))
            continue
        clips.append(clip)
    # An XMP beside each proxy (rating, tags, fields; the decision only when asked).
    xmps = package_xmps(assets, [(c.uuid, c.tags) for c in clips], with_decisions=xmp_decisions)
    title = name or (selection.bin or "rush selection")
    exported_at = datetime.now(UTC).isoformat(timespec="seconds")
    return await asyncio.to_thread(
        _write_package,
        root,
        dest,
        title,
        marker.library_id,
        exported_at,
        selection,
        clips,
        skipped,
        package_as,
        xmps,
    )


def _write_package(
    root: Path,
    dest: Path,
    title: str,
    library_id: str,
    exported_at: str,
    selection: Selection,
    planned: list[ClipEntry],
    skipped: list[tuple[str, str, str]],
    package_as: str | None = None,
    xmps: Mapping[str, str] | None = None,
) -> ExportReport:
    (dest / PROXY_DIR).mkdir(parents=True, exist_ok=True)
    clips: list[ClipEntry] = []
    copied = 0
    for clip in planned:
        src = resolve(root, clip.source_rel)
        dst = dest / clip.proxy_path
        try:
            # Read-only on the NAS: open for reading, write only into the package.
            shutil.copyfile(src, dst)
            st = src.stat()
            os.utime(dst, (st.st_atime, st.st_mtime))
        except OSError as exc:
            skipped.append(
                (clip.uuid, clip.original_path, f"proxy unreadable: {exc.strerror or exc}")
            )
            dst.unlink(missing_ok=True)
            continue
        copied += dst.stat().st_size
        if xmps and clip.uuid in xmps:
            dst.with_suffix(".xmp").write_text(xmps[clip.uuid], encoding="utf-8")
        if clip.duration_s <= 0:
            probed = probe_duration(dst)
            if probed is None:
                log.warning("export: %s has no duration in facts nor by ffprobe", clip.uuid)
            clip.duration_s = probed or STILL_SECONDS
        clips.append(clip)
    if package_as:
        urls = {c.uuid: _path_url(join_mount(package_as, c.proxy_path)) for c in clips}
    else:
        urls = {c.uuid: file_url(dest / c.proxy_path) for c in clips}
    timeline = build_timeline(title, clips, urls, library_id)
    files = [MEDIA_CSV_NAME]
    warnings: list[str] = []
    for adapter, suffix in timeline_formats():
        outputs = (
            [(f"{TIMELINE_BASENAME}{tag}{suffix}", t) for tag, t in edl_timelines(timeline)]
            if adapter == "cmx_3600"
            else [(f"{TIMELINE_BASENAME}{suffix}", timeline)]
        )
        for target, content in outputs:
            try:
                otio.adapters.write_to_file(content, str(dest / target), adapter_name=adapter)
            except Exception as exc:  # an adapter's limits must not lose the package
                if adapter == "otio_json":
                    raise
                (dest / target).unlink(missing_ok=True)
                warnings.append(f"{target} not written ({adapter}: {exc})")
                log.warning("export: %s not written (%s: %s)", target, adapter, exc)
                continue
            files.append(target)
    (dest / MEDIA_CSV_NAME).write_text(media_csv(clips), encoding="utf-8")
    manifest = {
        "format": PACKAGE_FORMAT,
        "rush_version": __version__,
        "library_id": library_id,
        "exported_at": exported_at,
        "title": title,
        "selection": selection.describe(),
        "timeline_rate": timeline_rate(clips),
        "files": [*files, MANIFEST_NAME],
        "assets": [_manifest_entry(c) for c in clips],
        "skipped": [{"uuid": u, "original_path": p, "reason": r} for u, p, r in skipped],
        "warnings": warnings,
    }
    # Written last: a package with a manifest is complete.
    tmp = dest / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, dest / MANIFEST_NAME)
    return ExportReport(
        package_dir=dest,
        library_id=library_id,
        exported_at=exported_at,
        clips=clips,
        skipped=skipped,
        files=[*files, MANIFEST_NAME],
        bytes_copied=copied,
        warnings=warnings,
    )


def _manifest_entry(c: ClipEntry) -> dict[str, Any]:
    data = asdict(c)
    data.pop("source_rel")
    return data


# --------------------------------------------------------------------------- relink


@dataclass(frozen=True)
class Package:
    root: Path
    library_id: str
    exported_at: str
    title: str
    clips: list[ClipEntry]


def read_package(package_dir: Path) -> Package:
    """Load and check a package's manifest (clear errors for anything else)."""
    path = package_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise OfflineError(f"{package_dir} is not an offline package (no {MANIFEST_NAME})") from exc
    except (OSError, ValueError) as exc:
        raise OfflineError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != PACKAGE_FORMAT:
        raise OfflineError(f"{path}: not a {PACKAGE_FORMAT} manifest")
    clips: list[ClipEntry] = []
    try:
        for raw in data["assets"]:
            uuid.UUID(str(raw["uuid"]))
            clip = ClipEntry(
                uuid=str(raw["uuid"]),
                kind=str(raw["kind"]),
                original_path=str(raw["original_path"]),
                proxy_path=str(raw["proxy_path"]),
                proxy_role=str(raw.get("proxy_role", "proxy")),
                duration_s=float(raw["duration_s"]),
                frame_rate=float(raw["frame_rate"]),
                timecode=raw.get("timecode"),
                tags=[str(t) for t in raw.get("tags", [])],
            )
            safe_relpath(clip.proxy_path)
            clips.append(clip)
        return Package(
            root=package_dir,
            library_id=str(data["library_id"]),
            exported_at=str(data.get("exported_at", "")),
            title=str(data.get("title", "rush selection")),
            clips=clips,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise OfflineError(f"{path}: malformed manifest ({exc})") from exc


@dataclass(frozen=True)
class RelinkEntry:
    uuid: str
    local_proxy: str
    status: RelinkStatus
    #: Absolute path of the original as the editing machine sees it (None if not found).
    original: str | None
    original_rel: str | None
    message: str


@dataclass
class RelinkReport:
    package: Package
    library_id: str
    entries: list[RelinkEntry]

    def found(self) -> list[RelinkEntry]:
        return [e for e in self.entries if e.original is not None]

    def problems(self) -> list[RelinkEntry]:
        return [e for e in self.entries if e.original is None]


def join_mount(mount: str, rel: str) -> str:
    """`rel` under a mount prefix spelled for the editing machine (POSIX or Windows)."""
    if (len(mount) >= 2 and mount[1] == ":") or "\\" in mount:
        return str(PureWindowsPath(mount, *PurePosixPath(rel).parts))
    return str(PurePosixPath(mount, rel))


def classify(
    clip: ClipEntry,
    *,
    local_proxy: str,
    current: tuple[str, str | None, bool, bool] | None,
    purged: tuple[str, str] | None,
    mount: str,
    area_mounts: Mapping[str, str] | None = None,
) -> RelinkEntry:
    """Decide one relink line (pure).

    `current` is (state, rel_path or None once purged, flagged missing, file exists);
    `purged` is (purged_at, last path) from the purge audit.  `mount` spells the library
    root for the editing machine; `area_mounts` spells ARCHIVE / REJECTS when they live on
    other volumes.
    """
    if current is None:
        if purged is not None:
            return RelinkEntry(
                clip.uuid,
                local_proxy,
                "purged",
                None,
                purged[1],
                f"purged on {purged[0]} (was {purged[1]}): the original no longer exists",
            )
        return RelinkEntry(
            clip.uuid,
            local_proxy,
            "unknown",
            None,
            None,
            "unknown to this library's database: was the package made from another library?",
        )
    state, rel, flagged_missing, exists = current
    if state == AssetState.PURGED or rel is None:
        when = f" on {purged[0]} (was {purged[1]})" if purged else ""
        return RelinkEntry(
            clip.uuid,
            local_proxy,
            "purged",
            None,
            purged[1] if purged else None,
            f"purged{when}: the original no longer exists",
        )
    if flagged_missing or not exists:
        return RelinkEntry(
            clip.uuid,
            local_proxy,
            "missing",
            None,
            rel,
            f"original {rel} is missing on the NAS (moved or deleted outside RushCatalog, "
            "or the share is not fully mounted)",
        )
    head, _, tail = rel.partition("/")
    if area_mounts and head in area_mounts and tail:
        path = join_mount(area_mounts[head], tail)
    else:
        path = join_mount(mount, rel)
    if rel != clip.original_path:
        return RelinkEntry(
            clip.uuid, local_proxy, "moved", path, rel, f"moved from {clip.original_path}"
        )
    return RelinkEntry(clip.uuid, local_proxy, "ok", path, rel, "")


async def relink_package(
    root: Path,
    package_dir: Path,
    *,
    mount: str | None = None,
    areas: Mapping[str, Path] | None = None,
    area_mounts: Mapping[str, str] | None = None,
) -> RelinkReport:
    """Map every local proxy of a package to its asset's current original, by UUID.

    Reads the database and checks that originals exist; writes nothing anywhere.  `mount`
    spells the library root as the editing machine sees it (default: `root`).  `areas`
    are ARCHIVE / REJECTS roots kept on other volumes (`library.archive_root` /
    `rejects_root`), `area_mounts` how the editing machine sees them (default: as here).
    """
    package = read_package(package_dir)
    try:
        marker = read_marker(root)
    except LibraryNotMounted as exc:
        raise OfflineError(f"{exc} (reconnect to the NAS before relinking)") from exc
    if marker.library_id != package.library_id:
        raise OfflineError(
            f"the package comes from library {package.library_id}, "
            f"but {root} is library {marker.library_id}"
        )
    ids = [uuid.UUID(c.uuid) for c in package.clips]
    rows: dict[str, tuple[str, str | None, bool]] = {}
    purges: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(ids):
        for aid, state, path_key, rel, missing in await Asset.filter(id__in=chunk).values_list(
            "id", "state", "path_key", "rel_path", "missing"
        ):
            rows[str(aid)] = (str(state), str(rel) if path_key is not None else None, bool(missing))
        for audit in await PurgeAudit.filter(asset_id__in=chunk).order_by("purged_at"):
            purges[str(audit.asset_id)] = (
                audit.purged_at.isoformat(timespec="seconds"),
                audit.rel_path,
            )
    where = dict(areas or {})
    needed = {r[1].partition("/")[0] for r in rows.values() if r[1] is not None} & {
        Area.ARCHIVE.value,
        Area.REJECTS.value,
    }
    problems = await asyncio.to_thread(_volume_problems, root, where, needed, marker.library_id)
    if problems:
        raise OfflineError("; ".join(problems))
    spelled = {name: str(path) for name, path in where.items()} | dict(area_mounts or {})
    entries = await asyncio.to_thread(
        _classify_all, root, package, rows, purges, mount, where, spelled
    )
    return RelinkReport(package=package, library_id=marker.library_id, entries=entries)


def _volume_problems(
    root: Path, areas: Mapping[str, Path], needed: set[str], library_id: str
) -> list[str]:
    """A volume whose marker is missing or foreign is not trusted to hold the originals
    (an unmounted mount point would make every clip look deleted)."""
    from rush.volumes import volume_problem

    out: list[str] = []
    for area in sorted(needed):
        problem = volume_problem(area, areas.get(area, root / area), library_id, verb="relinked")
        if problem is not None:
            out.append(problem)
    return out


def _classify_all(
    root: Path,
    package: Package,
    rows: dict[str, tuple[str, str | None, bool]],
    purges: dict[str, tuple[str, str]],
    mount: str | None,
    areas: Mapping[str, Path],
    area_mounts: Mapping[str, str],
) -> list[RelinkEntry]:
    """The file-system half of a relink (existence checks), run in a worker thread."""
    prefix = mount if mount is not None else os.path.abspath(root)

    entries: list[RelinkEntry] = []
    for clip in package.clips:
        row = rows.get(clip.uuid)
        current: tuple[str, str | None, bool, bool] | None = None
        if row is not None:
            exists = False
            if row[1] is not None:
                try:
                    exists = resolve(root, row[1], areas).is_file()
                except UnsafePath:
                    exists = False
            current = (row[0], row[1], row[2], exists)
        local = os.path.abspath(package.root / clip.proxy_path)
        entries.append(
            classify(
                clip,
                local_proxy=local,
                current=current,
                purged=purges.get(clip.uuid),
                mount=prefix,
                area_mounts=area_mounts,
            )
        )
    return entries


def render_relink(report: RelinkReport, fmt: RelinkFormat) -> str:
    """The relink mapping as CSV, JSON, or a CMX 3600 EDL pointing at the originals."""
    if fmt == "json":
        return (
            json.dumps(
                {
                    "library_id": report.library_id,
                    "package": str(report.package.root.absolute()),
                    "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "entries": [asdict(e) for e in report.entries],
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["local_proxy", "original", "uuid", "status", "message"])
        for e in report.entries:
            writer.writerow([e.local_proxy, e.original or "", e.uuid, e.status, e.message])
        return buf.getvalue()
    if fmt == "edl":
        urls = {e.uuid: _path_url(e.original) for e in report.found() if e.original}
        current = {e.uuid: e.original_rel for e in report.entries if e.original_rel}
        clips = [
            ClipEntry(**{**asdict(c), "original_path": current.get(c.uuid, c.original_path)})
            for c in report.package.clips
        ]
        timeline = build_timeline(report.package.title, clips, urls, report.library_id)
        parts = []
        for tag, single in edl_timelines(timeline):
            if tag:
                parts.append(f"* RUSH TRACK {tag.lstrip('-')}\n")
            try:
                parts.append(otio.adapters.write_to_string(single, adapter_name="cmx_3600"))
            except Exception as exc:  # the adapter's own limits (rates, track layout)
                raise OfflineError(
                    f"an EDL cannot express this package ({exc}): use --format csv or json"
                ) from exc
        return "\n".join(parts) if parts else f"TITLE: {report.package.title}\n"
    raise OfflineError(f"unknown relink format {fmt!r}")


def _path_url(path: str) -> str:
    if len(path) >= 2 and path[1] == ":":
        return PureWindowsPath(path).as_uri()
    # The exact bytes of a name that is not UTF-8, percent-encoded (%FF), not its stored form.
    return PurePosixPath(names.to_fs(path)).as_uri() if path.startswith("/") else path
