"""User names as given: what is refused at once, and how a refused name is recorded.

SPEC §12: a name that is not valid UTF-8, holds NUL or control characters, or is longer than
256 bytes is refused with `invalid_user`, and recorded only in escaped form.
"""

from __future__ import annotations

MAX_BYTES = 256
_ESCAPED_MAX = 300  # a recorded escaped name is cut here, with a marker


def invalid_reason(name) -> str | None:
    """Why `name` (str or bytes) is not acceptable as a user name, or None when it is."""
    # Fast path (RADIUS calls are serialised, so this runs per request): printable ASCII
    # holds no control characters and its length is its size in bytes.
    if isinstance(name, str) and name.isascii() and name.isprintable() and 0 < len(name) <= MAX_BYTES:
        return None
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            return "not valid UTF-8"
    if not isinstance(name, str):
        return "not a string"
    if not name:
        return "empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if size > MAX_BYTES:
        return f"longer than {MAX_BYTES} bytes ({size})"
    for ch in name:
        code = ord(ch)
        if code < 32 or 127 <= code < 160 or code in (0x2028, 0x2029):
            return "holds control characters"
    return None


def escape(name) -> str:
    """A printable, bounded rendering of any name, safe to store, log and show."""
    # Fast path: printable ASCII is its own rendering (the loop below costs ~20 us a call).
    if isinstance(name, str) and name.isascii() and name.isprintable() and len(name) <= _ESCAPED_MAX:
        return name
    if isinstance(name, bytes):
        text = name.decode("utf-8", "backslashreplace")
    elif isinstance(name, str):
        # Bytes smuggled in by surrogateescape show as \xNN; any other lone surrogate
        # cannot be encoded that way and shows as \uNNNN instead of raising.
        try:
            text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    else:
        text = repr(name)
    out = []
    for ch in text:
        code = ord(ch)
        if code < 32 or 127 <= code < 160 or code in (0x2028, 0x2029):
            out.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    if len(text) > _ESCAPED_MAX:
        text = text[:_ESCAPED_MAX] + f"...({len(text)} chars)"
    return text
