"""Filesystem errors in words a person can act on (batch and purge reports, the web UI).

Why: `PermissionError: [Errno 13] Permission denied: '/volume1/…'` says what happened
but an empty folder path or "volume missing?" sent people looking for an unmounted disk
when the fix was a permission.  Pure: no I/O.
"""

from __future__ import annotations

import errno
from pathlib import Path

_WORDS = {
    errno.EACCES: "permission denied on {path}",
    errno.EPERM: "permission denied on {path}",
    errno.EROFS: "{path} is on a read-only volume",
    errno.ENOSPC: "no space left on the volume of {path}",
    errno.EDQUOT: "disk quota exceeded on the volume of {path}",
    errno.ENOENT: "{path} does not exist",
    errno.EEXIST: "{path} already exists",
    errno.ENOTDIR: "a file is in the way of folder {path}",
    errno.EXDEV: "{path} is on another volume",
    errno.EIO: "input/output error on {path} (check the disk)",
    errno.ENAMETOOLONG: "the name {path} is too long for its volume",
}


def describe_os_error(exc: OSError, path: Path | str | None = None) -> str:
    """One line: what went wrong and on which path (the error's own path if it has one)."""
    where = exc.filename if exc.filename is not None else path
    template = _WORDS.get(exc.errno or 0)
    if template is not None and where is not None:
        return template.format(path=where)
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} on {where}" if where is not None else text
