"""Keyed digests of wrong passwords (lockout.ignore_repeated_password).

A failure keeps HMAC-SHA256(key, user NUL password), cut to 128 bits: enough to tell one
wrong password from another, never the password, and useless to anyone without the key (an
unkeyed hash of a short password is a dictionary lookup away). The key is `digest.key`
beside the config (/etc/pam-guard/digest.key), made by packaging/install.sh: hex text, owned
by root, readable by the group freerad where FreeRADIUS runs, by nobody else. With no key
readable, failures count as they would without the setting (and that is logged).

hmac and hashlib are imported only when a digest is made (a failed password with the
setting on): never on a login that succeeds.
"""

from __future__ import annotations

import os

KEY_NAME = "digest.key"
_keys: dict[str, bytes | None] = {}  # config path -> key, read once a process


def key_path(config_file: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(config_file)), KEY_NAME)


def load_key(config_file: str) -> bytes:
    """The key beside `config_file`. Raises OSError or ValueError (not hex, too short, or
    writable by anyone but root)."""
    path = key_path(config_file)
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        text = handle.read(4096)
    if info.st_mode & 0o022 or info.st_mode & 0o004:
        raise ValueError(f"{path} is mode {info.st_mode & 0o777:04o}: at most 0640")
    key = bytes.fromhex(text.decode("ascii").strip())
    if len(key) < 16:
        raise ValueError(f"{path} holds fewer than 16 bytes")
    return key


def _fix_hint(config_file: str) -> str:
    """How a service user (radiusd's freerad) gets to read the key, as install.sh sets it
    up where FreeRADIUS was there first."""
    if os.geteuid() == 0:
        return ""
    import grp

    group = grp.getgrgid(os.getegid()).gr_name
    path = key_path(config_file)
    return f"; to use it: chgrp {group} {path} && chmod 0640 {path}"


def digest(config_file: str, user: str, password, log=None) -> str | None:
    """The digest of a wrong `password` (str or bytes) of `user`, or None when there is
    no password or no usable key (`log(text)` is told once a process)."""
    if password is None or password == "" or password == b"":
        return None
    if config_file not in _keys:
        try:
            _keys[config_file] = load_key(config_file)
        except (OSError, ValueError) as exc:
            _keys[config_file] = None
            if log is not None:
                log(
                    f"ignore_repeated_password: no digest key ({exc}); failures count as "
                    f"usual{_fix_hint(config_file)}"
                )
    key = _keys[config_file]
    if key is None:
        return None
    import hashlib
    import hmac

    if isinstance(password, str):
        password = password.encode("utf-8", "surrogateescape")
    message = user.encode("utf-8", "surrogateescape") + b"\0" + password
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]
