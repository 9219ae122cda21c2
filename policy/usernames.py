"""User names as given: what is refused at once, and how a refused name is recorded.

SPEC §12: a name that is not valid UTF-8, holds NUL or control characters, or is longer than
256 bytes is refused with `invalid_user`, and recorded only in escaped form. Unicode's
bidirectional controls (U+202E and the like) count as control characters here.
"""

from __future__ import annotations

MAX_BYTES = 256
_ESCAPED_MAX = 300  # a recorded escaped name is cut here, with a marker
_LINE_SEPARATORS = frozenset((0x2028, 0x2029))
# Unicode's Bidi_Control characters: invisible, they reorder how the rest of a line shows, so
# a name holding one could pass for another in a log line or `pam-guard status`.
BIDI_CONTROLS = frozenset((0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def _unsafe(code: int) -> str | None:
    """What kind of character that must never be shown as it is `code` is, or None."""
    if code < 32 or 127 <= code < 160 or code in _LINE_SEPARATORS:
        return "control characters"
    if code in BIDI_CONTROLS:
        return "bidirectional control characters"
    return None


def invalid_reason(name: object) -> str | None:
    """Why `name` (str or bytes) is not acceptable as a user name, or None when it is."""
    # Fast path (RADIUS calls are serialised, so this runs per request): printable ASCII
    # holds no control characters and its length is its size in bytes.
    if (
        isinstance(name, str)
        and name.isascii()
        and name.isprintable()
        and 0 < len(name) <= MAX_BYTES
    ):
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
        kind = _unsafe(ord(ch))
        if kind is not None:
            return "holds " + kind
    return None


def escape(name: object) -> str:
    """A printable, bounded rendering of any name, safe to store, log and show."""
    # Fast path: printable ASCII is its own rendering (the loop below costs ~20 us a call).
    if (
        isinstance(name, str)
        and name.isascii()
        and name.isprintable()
        and len(name) <= _ESCAPED_MAX
    ):
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
        if _unsafe(code) is not None:
            out.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    if len(text) > _ESCAPED_MAX:
        text = text[:_ESCAPED_MAX] + f"...({len(text)} chars)"
    return text
