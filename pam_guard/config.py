"""Loading the TOML config: file checks, parsing, validation, and a snapshot for the login path.

The config is the main file plus its drop-ins: `pam-guard.d/*.toml` in the main file's
directory (/etc/pam-guard/pam-guard.d/), applied in name order over the main file, key by key,
as fail2ban's jail.d and faillock.conf's vendor file are. Admins keep their changes in a
drop-in of their own, which a re-install never touches. Each file is validated on its own, so
an error names the file that holds it.

Parsing TOML on every login costs more than all of the store work (shared/PERF.md), so the
validated settings are kept as a `marshal` snapshot of plain values, rebuilt when any file's
name, inode, size or mtime change (a drop-in added, changed or removed included: the login
path lists the drop-in directory, nothing more). The login path (`load_settings`) imports
tomllib only when the snapshot is missing or stale; `pam-guard check-config` rebuilds it.

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
DROPIN_DIR = "pam-guard.d"  # beside the main file: /etc/pam-guard/pam-guard.d/*.toml
_SNAPSHOT_VERSION = 2  # 2: the key covers the drop-ins
STORE_GROUP = "pam-guard"  # the group a shared store directory may be writable by


class ConfigError(SettingsError):
    """The config cannot be used; the message names the file, the key and what to do."""


def config_path(explicit: str | None = None) -> str:
    """The config file to use: an explicit path, else $PAM_GUARD_CONFIG, else the default."""
    return explicit or os.environ.get("PAM_GUARD_CONFIG") or DEFAULT_PATH


def _check_owner_and_mode(
    path: str, st, what: str, source: str, group_may_write: bool = False
) -> None:
    if st.st_uid not in (0, os.geteuid()):
        raise ConfigError(
            source,
            what,
            f"{path} is owned by uid {st.st_uid}",
            "chown root: it must be owned by root",
        )
    if group_may_write and not st.st_mode & 0o002 and _is_store_group(st.st_gid):
        return
    if st.st_mode & 0o022:
        raise ConfigError(
            source,
            what,
            f"{path} is writable by group or others (mode {st.st_mode & 0o777:04o})",
            f"chmod go-w {path}",
        )


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
        raise ConfigError(
            path, "<file>", "no such file", "run packaging/install.sh or pass config=PATH"
        ) from None
    except OSError as exc:
        raise ConfigError(path, "<file>", f"cannot read: {exc.strerror}") from None
    _check_owner_and_mode(path, st, "<file>", path)
    directory = os.path.dirname(os.path.abspath(path))
    _check_owner_and_mode(directory, os.stat(directory), "<directory>", path)
    return st


def dropin_dir(path: str) -> str:
    """The drop-in directory of the config file `path`."""
    return os.path.join(os.path.dirname(os.path.abspath(path)), DROPIN_DIR)


def config_files(path: str) -> list:
    """[(file, stat)]: the main file, then its drop-ins in name order, each checked as the
    main file is (owner root, writable by nobody else; the drop-in directory too, or anyone
    could add a file). No drop-in directory means no drop-ins."""
    files = [(path, _stat_config(path))]
    directory = dropin_dir(path)
    try:
        _check_owner_and_mode(directory, os.stat(directory), "<directory>", directory)
        names = os.listdir(directory)
    except FileNotFoundError:
        return files
    except OSError as exc:
        raise ConfigError(directory, "<directory>", f"cannot read: {exc.strerror}") from None
    # Only *.toml, as the shell's glob would pick them: editor backups and hidden files
    # (.x.toml, x.toml~, x.toml.dpkg-old) are not config.
    for name in sorted(n for n in names if n.endswith(".toml") and not n.startswith(".")):
        dropin = os.path.join(directory, name)
        try:
            st = os.stat(dropin)
        except OSError as exc:  # a dangling symlink, or removed while we look
            raise ConfigError(dropin, "<file>", f"cannot read: {exc.strerror}") from None
        _check_owner_and_mode(dropin, st, "<file>", dropin)
        files.append((dropin, st))
    return files


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


def read_toml(path: str) -> dict:
    """One file's TOML as a plain dict; a syntax error or unreadable file names the file."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "<syntax>", str(exc), "fix the TOML syntax") from None
    except OSError as exc:
        raise ConfigError(path, "<file>", f"cannot read: {exc.strerror}") from None


def _validated(raw: dict, source: str):
    try:
        return build_settings(raw, source)
    except SettingsError as exc:
        raise ConfigError(exc.source, exc.key, exc.problem, exc.hint) from None


def read_layers(path: str, files: list | None = None) -> list[tuple[str, dict]]:
    """[(file, raw TOML)] of the main file and its drop-ins, in the order they apply; each
    validated on its own, so that an error names the file that holds it."""
    layers = []
    for name, _st in files if files is not None else config_files(path):
        raw = read_toml(name)
        _validated(raw, name)
        layers.append((name, raw))
    return layers


def merge_layers(layers: list[tuple[str, dict]]) -> dict:
    """The layers as one raw config: a later file's key replaces an earlier one's (a table
    value such as session_limits is one value: it is replaced whole, not merged)."""
    merged: dict = {}
    for _name, raw in layers:
        for section, values in raw.items():
            merged.setdefault(section, {}).update(values)
    return merged


def origins(layers: list[tuple[str, dict]]) -> dict[tuple[str, str], str]:
    """(section, key) -> the file whose value is in effect; keys no file sets are absent."""
    return {
        (section, key): name
        for name, raw in layers
        for section, values in raw.items()
        for key in values
    }


def settings_from_layers(path: str, layers: list[tuple[str, dict]]):
    """The settings the layers of the config at `path` make together."""
    return _validated(merge_layers(layers), path)


def parse_file(path: str, files: list | None = None):
    """Parse and validate the config at `path` with its drop-ins (no snapshot involved)."""
    return settings_from_layers(path, read_layers(path, files))


def _snapshot_path(path: str) -> str:
    cache_dir = os.environ.get("PAM_GUARD_CACHE_DIR") or DEFAULT_CACHE_DIR
    name = os.path.abspath(path).strip("/").replace("/", "%")
    return os.path.join(cache_dir, f"settings-{name}.marshal")


def files_key(files: list) -> tuple:
    """What identifies this version of the config's files: any file added, removed, renamed
    or rewritten changes it."""
    return (_SNAPSHOT_VERSION,) + tuple(
        (name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) for name, st in files
    )


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
    if stored_key != key:
        return None
    return build_settings(plain, path)


def write_snapshot(path: str, settings, files: list) -> bool:
    """Store the validated settings for the login path; False when the cache dir is not ours.
    `files` are the config_files() the settings were parsed from."""
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
            handle.write(marshal.dumps((files_key(files), settings_to_plain(settings))))
        os.replace(tmp, snap)
        return True
    except OSError:
        return False


def load_settings(path: str | None = None):
    """Validated settings for `path`, from the snapshot when it is current (the login path)."""
    path = config_path(path)
    files = config_files(path)
    settings = _read_snapshot(path, files_key(files))
    if settings is None:
        settings = parse_file(path, files)
        write_snapshot(path, settings, files)
    check_store_directory(settings)
    return settings


def render_toml(settings, set_by: dict[tuple[str, str], str] | None = None) -> str:
    """The effective settings as TOML text (check-config prints this); with `set_by` (from
    origins()), each value ends in a comment naming the file that set it, or "default"."""
    lines = []
    for section, values in settings_to_plain(settings).items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            line = f"{key} = {toml_value(value)}"
            if set_by is not None:
                line += f"  # {set_by.get((section, key), 'default')}"
            lines.append(line)
        lines.append("")
    return "\n".join(lines)


def toml_value(value) -> str:
    """One TOML value as text (for check-config, and for tests that write configs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        import json  # not on the login path: check-config, man pages, tests

        # JSON's escapes are TOML's (\", \\, \n, \u00XX); TOML also wants DEL escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(value)


def _toml_key(key: str) -> str:
    """A key bare when TOML allows it (letters, digits, - and _), else quoted: a dot would
    make it a dotted key (port_type_map's "Wireless-802.11")."""
    if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        return key
    return toml_value(key)
