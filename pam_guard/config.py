"""Loading the TOML config: file checks, parsing, validation, and a snapshot for the login path.

Parsing TOML on every login costs more than all of the store work (shared/PERF.md), so the
validated settings are kept as a `marshal` snapshot of plain values, rebuilt when the TOML
file's inode, size or mtime change. The login path (`load_settings`) imports tomllib only when
the snapshot is missing or stale; `pam-guard check-config` rebuilds it.

A config file, or its directory, or the SQLite store's directory, writable by anyone but its
root owner is refused, as sshd's StrictModes refuses such files. One exception: a store
directory its group may write when that group is `pam-guard` (STORE_GROUP), which
packaging/share-store.sh makes so that radiusd's user (freerad) may write the store too.
"""

from __future__ import annotations

import marshal
import os

from policy.settings import SettingsError, build_settings, settings_to_plain

DEFAULT_PATH = "/etc/pam-guard/pam-guard.toml"
DEFAULT_CACHE_DIR = "/run/pam-guard"
_SNAPSHOT_VERSION = 1
STORE_GROUP = "pam-guard"  # the group a shared store directory may be writable by


class ConfigError(SettingsError):
    """The config cannot be used; the message names the file, the key and what to do."""


def config_path(explicit: str | None = None) -> str:
    """The config file to use: an explicit path, else $PAM_GUARD_CONFIG, else the default."""
    return explicit or os.environ.get("PAM_GUARD_CONFIG") or DEFAULT_PATH


def _check_owner_and_mode(path: str, st, what: str, source: str,
                          group_may_write: bool = False) -> None:
    if st.st_uid not in (0, os.geteuid()):
        raise ConfigError(source, what, f"{path} is owned by uid {st.st_uid}",
                          "chown root: it must be owned by root")
    if group_may_write and not st.st_mode & 0o002 and _is_store_group(st.st_gid):
        return
    if st.st_mode & 0o022:
        raise ConfigError(source, what, f"{path} is writable by group or others "
                          f"(mode {st.st_mode & 0o777:04o})", f"chmod go-w {path}")


def _is_store_group(gid: int) -> bool:
    import grp  # only for a group-writable store directory (radiusd sharing the store)

    try:
        return grp.getgrgid(gid).gr_name == STORE_GROUP
    except KeyError:
        return False


def _stat_config(path: str):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(path, "<file>", "no such file",
                          "run packaging/install.sh or pass config=PATH") from None
    except OSError as exc:
        raise ConfigError(path, "<file>", f"cannot read: {exc.strerror}") from None
    _check_owner_and_mode(path, st, "<file>", path)
    directory = os.path.dirname(os.path.abspath(path))
    _check_owner_and_mode(directory, os.stat(directory), "<directory>", path)
    return st


def check_store_directory(settings) -> None:
    """Refuse an SQLite store whose directory others may write (they could swap the file)."""
    url = settings.store.url
    if not url.startswith("sqlite"):
        return
    path = url.split("://", 1)[1][1:]
    directory = os.path.dirname(path)
    try:
        st = os.stat(directory)
    except OSError:
        return  # a missing store directory is the store's error, reported when it is opened
    _check_owner_and_mode(directory, st, "store.url", settings.source, group_may_write=True)


def parse_file(path: str):
    """Parse and validate the TOML file (no snapshot involved)."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "<syntax>", str(exc), "fix the TOML syntax") from None
    except OSError as exc:
        raise ConfigError(path, "<file>", f"cannot read: {exc.strerror}") from None
    try:
        return build_settings(raw, path)
    except SettingsError as exc:
        raise ConfigError(exc.source, exc.key, exc.problem, exc.hint) from None


def _snapshot_path(path: str) -> str:
    cache_dir = os.environ.get("PAM_GUARD_CACHE_DIR") or DEFAULT_CACHE_DIR
    name = os.path.abspath(path).strip("/").replace("/", "%")
    return os.path.join(cache_dir, f"settings-{name}.marshal")


def _file_key(st) -> tuple:
    return (_SNAPSHOT_VERSION, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read_snapshot(path: str, key: tuple):
    snap = _snapshot_path(path)
    try:
        with open(snap, "rb") as handle:
            st = os.fstat(handle.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None  # not ours, or others could have written it: ignore it
            stored_key, plain = marshal.loads(handle.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if tuple(stored_key) != key:
        return None
    return build_settings(plain, path)


def write_snapshot(path: str, settings, st=None) -> bool:
    """Store the validated settings for the login path; False when the cache dir is not ours."""
    st = st or os.stat(path)
    snap = _snapshot_path(path)
    directory = os.path.dirname(snap)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        dst = os.stat(directory)
        if dst.st_uid != os.geteuid() or dst.st_mode & 0o022:
            return False
        tmp = f"{snap}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(marshal.dumps((_file_key(st), settings_to_plain(settings))))
        os.replace(tmp, snap)
        return True
    except OSError:
        return False


def load_settings(path: str | None = None):
    """Validated settings for `path`, from the snapshot when it is current (the login path)."""
    path = config_path(path)
    st = _stat_config(path)
    settings = _read_snapshot(path, _file_key(st))
    if settings is None:
        settings = parse_file(path)
        write_snapshot(path, settings, st)
    check_store_directory(settings)
    return settings


def render_toml(settings) -> str:
    """The effective settings as TOML text (check-config prints this)."""
    lines = []
    for section, values in settings_to_plain(settings).items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def toml_value(value) -> str:
    """One TOML value as text (for check-config, and for tests that write configs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)
