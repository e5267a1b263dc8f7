"""File names as they are on disk (bytes), as they are stored (text), as people see them.

Why this module: on Linux a name is any bytes but NUL and "/", and Python hands names
that are not valid UTF-8 over as lone surrogates (`os.fsdecode`, surrogateescape).
Neither SQLite nor PostgreSQL can store a lone surrogate, JSON encoders refuse them, and
a browser shows nothing useful for them.  So every name has three forms:

- the **filesystem form**: `os.fsdecode(raw)` (surrogateescape); `os.fsencode` gives the
  exact bytes back.  Only code that touches the filesystem sees it.
- the **stored form**: valid Unicode that every text store and JSON carries; it is what
  the database holds (`rel_path`), what MQTT payloads and exports carry.  Each
  undecodable byte 0x80-0xFF becomes one private-use character U+F780-U+F7FF, and a
  literal U+F700-U+F7FF in a name is escaped with U+F700, so the mapping is reversible
  and unambiguous.  Every valid UTF-8 name is its own stored form.
- the **display form** (`display`): undecodable bytes as U+FFFD, control characters as
  visible escapes; for reading only.  `escape` gives an exact, reversible ASCII-safe
  spelling (`bad\\xff.mp4`) for people who need to type or copy the real name.

Pure functions only: no I/O.
"""

from __future__ import annotations

import os
import re

_ESC = "\uf700"
_BYTE_BASE = 0xF700  # U+F780..U+F7FF <-> bytes 0x80..0xFF
_SURROGATE_BASE = 0xDC00  # surrogateescape: byte 0xNN <-> U+DCNN


def _is_surrogate_byte(c: str) -> bool:
    return "\udc80" <= c <= "\udcff"


def _is_private(c: str) -> bool:
    return "\uf700" <= c <= "\uf7ff"


def from_fs(name: str) -> str:
    """Stored form of an `os.fsdecode`d name or path; identity for valid UTF-8 names."""
    if name.isascii() or not any(_is_surrogate_byte(c) or _is_private(c) for c in name):
        return name
    out: list[str] = []
    for c in name:
        if _is_surrogate_byte(c):
            out.append(chr(_BYTE_BASE + ord(c) - _SURROGATE_BASE))
        elif _is_private(c):
            out.append(_ESC + c)
        else:
            out.append(c)
    return "".join(out)


def to_fs(stored: str) -> str:
    """Inverse of `from_fs`: the `os.fsdecode` form, which `os.fsencode` turns into bytes."""
    if stored.isascii() or not any(_is_private(c) for c in stored):
        return stored
    out: list[str] = []
    chars = iter(stored)
    for c in chars:
        if c == _ESC:
            out.append(next(chars, ""))
        elif "\uf780" <= c <= "\uf7ff":
            out.append(chr(_SURROGATE_BASE + ord(c) - _BYTE_BASE))
        else:
            out.append(c)
    return "".join(out)


def from_bytes(raw: bytes) -> str:
    """Stored form of a raw name or path."""
    return from_fs(os.fsdecode(raw))


def to_bytes(stored: str) -> bytes:
    """The exact bytes of a stored name or path."""
    return os.fsencode(to_fs(stored))


def _undecoded(c: str) -> int | None:
    """The raw byte a stored-form character stands for, or None."""
    if "\uf780" <= c <= "\uf7ff":
        return ord(c) - _BYTE_BASE
    if _is_surrogate_byte(c):
        return ord(c) - _SURROGATE_BASE
    return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _control(c: str) -> str:
    named = _NAMED.get(c)
    if named:
        return named
    # C1 controls are characters, not bytes: spelled \u0085 so `unescape` tells them apart.
    return f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}"


def display(stored: str) -> str:
    """How a name is shown: undecodable bytes as U+FFFD, control characters (a newline
    in a name) as visible escapes.  Lossy; accepts the stored or the filesystem form."""
    if stored.isascii() and stored.isprintable():
        return stored
    out: list[str] = []
    chars = iter(stored)
    for c in chars:
        if c == _ESC:
            out.append(next(chars, ""))
        elif _undecodable(c) or "\ud800" <= c <= "\udfff":
            out.append("\ufffd")
        elif _CONTROL.fullmatch(c):
            out.append(_control(c))
        else:
            out.append(c)
    return "".join(out)


def _undecodable(c: str) -> bool:
    return _undecoded(c) is not None


def escape(stored: str) -> str:
    """Exact, reversible spelling: undecodable bytes as `\\xNN`, control characters
    escaped, a backslash doubled; everything else as is (`unescape` reverses it)."""
    out: list[str] = []
    chars = iter(stored)
    for c in chars:
        if c == _ESC:
            out.append(next(chars, ""))
            continue
        byte = _undecoded(c)
        if byte is not None:
            out.append(f"\\x{byte:02x}")
        elif c == "\\":
            out.append("\\\\")
        elif _CONTROL.fullmatch(c):
            out.append(_control(c))
        else:
            out.append(c)
    return "".join(out)


_UNESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[nrt\\])")
_UNESCAPED = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}


def unescape(text: str) -> str:
    """Stored form of an `escape`d name (`\\x80`-`\\xff` are raw bytes)."""
    raw = bytearray()
    pos = 0
    for match in _UNESCAPE.finditer(text):
        raw += text[pos : match.start()].encode("utf-8", "surrogateescape")
        code = match.group(1)
        if code[0] == "x":
            raw.append(int(code[1:], 16))
        elif code[0] == "u":
            raw += chr(int(code[1:], 16)).encode("utf-8", "surrogateescape")
        else:
            raw += _UNESCAPED[code]
        pos = match.end()
    raw += text[pos:].encode("utf-8", "surrogateescape")
    return from_bytes(bytes(raw))


def safe_text(text: str) -> str:
    """Any text made encodable (an error message that quotes a file name): undecodable
    bytes of a filesystem-form name become `\\xNN`, any other lone surrogate U+FFFD.
    Identity for text that is already valid Unicode."""
    if text.isascii() or not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return "".join(
        f"\\x{ord(c) - _SURROGATE_BASE:02x}"
        if _is_surrogate_byte(c)
        else "\ufffd"
        if "\ud800" <= c <= "\udfff"
        else c
        for c in text
    )
