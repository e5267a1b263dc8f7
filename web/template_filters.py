"""Jinja filters of the UI's templates (sizes, dates, clock times, path parts); pure.

Why apart from the views: the app factory registers them and a view uses `basename`;
neither should have to import the other for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rush import names


def size(value: int | None) -> str:
    amount = float(value or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return ""


def epoch(value: float | None) -> str:
    if not value:
        return ""
    return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M")


def dt(value: Any) -> str:
    if value is None:
        return ""
    moment: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if moment is None:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def basename(path: str) -> str:
    """The file name as shown (`names.display`: bytes that are not UTF-8 as U+FFFD)."""
    return names.display(path.rsplit("/", 1)[-1])


def dirname(path: str) -> str:
    return names.display(path.rsplit("/", 1)[0]) if "/" in path else ""


def shown(path: Any) -> str:
    """A stored path as people read it; `exact` gives the name that can be typed back."""
    return names.display(str(path or ""))


def exact(path: Any) -> str:
    return names.escape(str(path or ""))


def clock(seconds: Any) -> str:
    try:
        total = float(seconds)
    except (TypeError, ValueError):
        return ""
    m, s = divmod(int(total), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


FILTERS: dict[str, Callable[..., Any]] = {
    "size": size,
    "epoch": epoch,
    "dt": dt,
    "basename": basename,
    "dirname": dirname,
    "shown": shown,
    "exact": exact,
    "clock": clock,
}
