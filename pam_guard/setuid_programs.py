"""The setuid-root programs of a tree that run PAM, and the PAM services they use.

A program qualifies when it is a regular file owned by root with the setuid bit, is an ELF
object, and either links libpam or is known to run PAM through a plugin (sudo's is in
sudoers.so). Its services come from a table of the usual programs (the names are compiled
into them: su uses `su` and, for `su -l`, `su-l`), else its own name; a service without a
file in pam.d is run with `other`, as libpam does.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

SEARCHED = (
    "usr/bin",
    "usr/sbin",
    "bin",
    "sbin",
    "usr/local/bin",
    "usr/local/sbin",
    "usr/lib",
    "usr/libexec",
)

SERVICES_OF = {
    "su": ("su", "su-l"),
    "sudo": ("sudo", "sudo-i"),
    "sudoedit": ("sudo",),
    "pkexec": ("polkit-1",),
    "polkit-agent-helper-1": ("polkit-1",),
    "sg": ("newgrp",),
}
# Programs that run PAM without linking libpam themselves.
PAM_THROUGH_PLUGIN = {"sudo", "sudoedit"}
# Reading this much of a file finds its dynamic section's strings in any real program.
MAX_READ = 64 * 1024 * 1024


@dataclass(frozen=True)
class SetuidProgram:
    path: str  # inside the tree, e.g. /usr/bin/su
    services: tuple[str, ...]


def _uses_pam(path: str, name: str) -> bool:
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"\x7fELF":
                return False
            return name in PAM_THROUGH_PLUGIN or b"libpam.so" in handle.read(MAX_READ)
    except OSError:
        return False


def _setuid_root_files(root: str):
    """(path inside the tree, path on disk) of each setuid-root regular file, once each
    (/bin is often a link to /usr/bin)."""
    seen = set()
    for relative in SEARCHED:
        top = os.path.join(root, relative)
        if os.path.islink(top):
            continue  # merged /usr: the target is searched under its own name
        for directory, _subdirs, files in os.walk(top):
            for name in files:
                disk = os.path.join(directory, name)
                try:
                    st = os.lstat(disk)
                except OSError:
                    continue
                if (
                    not stat.S_ISREG(st.st_mode)
                    or st.st_uid != 0
                    or not st.st_mode & stat.S_ISUID
                    or (st.st_dev, st.st_ino) in seen
                ):
                    continue
                seen.add((st.st_dev, st.st_ino))
                yield "/" + os.path.relpath(disk, root), disk


def services_of(program: str, has_file) -> tuple[str, ...]:
    """The services `program` (a file name) uses that reach a stack: those with a file,
    else `other` when that exists."""
    wanted = SERVICES_OF.get(program, (program,))
    found = tuple(s for s in wanted if has_file(s))
    if found:
        return found
    return ("other",) if has_file("other") else ()


def setuid_pam_programs(root: str, has_file) -> list[SetuidProgram]:
    """Every setuid-root program under `root` that runs PAM, with the services it reaches;
    `has_file(service)` says whether pam.d holds a file of that name."""
    programs = []
    for shown, disk in _setuid_root_files(root):
        name = os.path.basename(disk)
        if _uses_pam(disk, name):
            programs.append(SetuidProgram(shown, services_of(name, has_file)))
    return sorted(programs, key=lambda p: p.path)
