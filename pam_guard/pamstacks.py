"""Reading PAM stacks as libpam reads them: one service's lines, includes followed.

Syntax handled (Linux-PAM's pam.d(5)): `#` comments to the end of the line, a backslash at
the end of a line continuing it, a type with a leading `-` (no log when the module is
missing), bracket controls and bracket arguments that hold spaces, `include` and `substack`
controls and the `@include` directive (Debian's), naming another file of the same pam.d.
A service without a file of its own uses `other`, as libpam does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PAM_TYPES = ("auth", "account", "password", "session")
# Deeper than any real stack; a loop of includes stops here instead of recursing forever.
MAX_DEPTH = 16


@dataclass(frozen=True)
class StackLine:
    """One module line of a service's stack, and the include chain that reached it."""

    file: str  # path inside the tree, e.g. /etc/pam.d/common-auth
    number: int  # line number of its first physical line
    pam_type: str  # auth, account, password, session (without the leading '-')
    control: str
    module: str
    args: tuple[str, ...]
    text: str  # the logical line as written (continuations joined)
    via: tuple[str, ...] = ()  # files that included it, outermost first

    @property
    def module_name(self) -> str:
        return os.path.basename(self.module)


def _tokens(text: str) -> list[str]:
    """Split a logical line into words; a `[...]` part keeps its spaces (a backslash escapes
    a bracket inside it), as libpam's parser does."""
    words: list[str] = []
    word: list[str] = []
    inside = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif inside and ch == "\\":
            escaped = True
        elif ch == "[":
            inside = True
        elif ch == "]":
            inside = False
        elif ch.isspace() and not inside:
            if word:
                words.append("".join(word))
                word = []
            continue
        word.append(ch)
    if word:
        words.append("".join(word))
    return words


def logical_lines(content: str):
    """(first line number, text) for each non-empty logical line: comments cut (libpam cuts
    at the first `#`, then joins a line ending in a backslash to the next)."""
    pending: list[str] = []
    first = 0
    for number, raw in enumerate(content.splitlines(), start=1):
        if not pending:
            first = number
        line = raw.split("#", 1)[0].rstrip()
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        text = " ".join(part.strip() for part in pending + [line]).strip()
        pending = []
        if text:
            yield first, text
    text = " ".join(part.strip() for part in pending).strip()
    if text:
        yield first, text


class PamTree:
    """The pam.d directory of a tree (`root` is / on the host)."""

    def __init__(self, root: str = "/") -> None:
        self.root = root
        self.directory = os.path.join(root, "etc", "pam.d")

    def services(self) -> list[str]:
        """Every service file's name, sorted."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(n for n in names if os.path.isfile(os.path.join(self.directory, n)))

    def has(self, service: str) -> bool:
        return os.path.isfile(os.path.join(self.directory, service))

    def shown(self, name: str) -> str:
        """A file's path as the admin knows it: inside the tree."""
        return os.path.join("/etc/pam.d", name) if "/" not in name else name

    def _read(self, name: str) -> str | None:
        path = name if os.path.isabs(name) else os.path.join(self.directory, name)
        if os.path.isabs(name) and self.root != "/":
            path = os.path.join(self.root, name.lstrip("/"))
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    def stack(self, service: str) -> list[StackLine]:
        """The lines libpam runs for `service`, includes and substacks expanded in place."""
        name = service if self.has(service) else "other"
        return self._expand(name, None, (), set())

    def _expand(
        self, name: str, only_type: str | None, via: tuple[str, ...], seen: set
    ) -> list[StackLine]:
        if len(via) >= MAX_DEPTH or (name, only_type) in seen:
            return []
        content = self._read(name)
        if content is None:
            return []
        seen = seen | {(name, only_type)}
        shown = self.shown(name)
        lines: list[StackLine] = []
        for number, text in logical_lines(content):
            words = _tokens(text)
            if words[0] == "@include" and len(words) > 1:
                lines += self._expand(words[1], only_type, via + (shown,), seen)
                continue
            if len(words) < 3:
                continue  # libpam skips a line it cannot read; so does this
            pam_type = words[0].lstrip("-").lower()
            if pam_type not in PAM_TYPES or (only_type and pam_type != only_type):
                continue
            control = words[1]
            if control in ("include", "substack"):
                # Only the included file's lines of this type count (pam.d(5)).
                lines += self._expand(words[2], pam_type, via + (shown,), seen)
                continue
            lines.append(
                StackLine(shown, number, pam_type, control, words[2], tuple(words[3:]), text, via)
            )
        return lines
