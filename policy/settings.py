"""Every setting of pam-guard: its default, its type and its allowed range, declared once.

`build_settings(raw, source)` turns a plain nested dict (parsed TOML, or a cached snapshot of
one) into a frozen `Settings`. Unknown keys, wrong types and out-of-range values raise
`SettingsError` naming the key and the file. TOML parsing and file checks live in
`pam_guard.config`; this module stays pure so that the login path can rebuild settings from a
marshal snapshot without importing tomllib.
"""

from __future__ import annotations

from collections import namedtuple

from policy.addresses import is_network

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class SettingsError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""

    def __init__(self, source: str, key: str, problem: str, hint: str = "") -> None:
        self.source = source
        self.key = key
        self.problem = problem
        self.hint = hint
        text = f"{source}: {key}: {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


# --- value checkers: each returns the normalised value or raises ValueError(problem) ---------


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _int(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return check


def _float(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return float(value)

    return check


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return str(value)

    return check


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def _choice_list(*choices: str) -> Callable[[Any], tuple[str, ...]]:
    def check(value: Any) -> tuple[str, ...]:
        items = _str_list(value)
        bad = [v for v in items if v not in choices]
        if bad:
            raise ValueError(f"unknown value(s) {bad}; allowed: {', '.join(choices)}")
        return items

    return check


def _networks(value: Any) -> tuple[str, ...]:
    items = _str_list(value)
    for item in items:
        if not is_network(item):
            raise ValueError(f"{item!r} is not a CIDR network (e.g. 10.0.0.0/8 or fc00::/7)")
    return items


def _limits(value: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table such as {{ sshd = 2, vpn = 1 }}, got {value!r}")
    checker = _int(0, 1_000_000)
    out = []
    for name, limit in sorted(value.items()):
        try:
            out.append((str(name), checker(limit)))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return tuple(out)


def _store_url(value: Any) -> str:
    url = _str(value)
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or not rest:
        raise ValueError(
            f"{url!r} is not a database URL (e.g. sqlite:////var/lib/pam-guard/pam-guard.db "
            "or postgresql://user@host/db)"
        )
    if scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"unsupported database {scheme!r}; use sqlite or postgresql")
    # sqlite:///name.db is relative to the working directory; only sqlite:////path is absolute.
    if scheme.startswith("sqlite") and not rest.startswith("//"):
        raise ValueError("an SQLite store needs an absolute path: sqlite:////path/to/file.db")
    return url


def _ldap_url(value: Any) -> str:
    url = _str(value)
    if not url.startswith(("ldap://", "ldaps://", "ldapi://")):
        raise ValueError(f"{url!r} is not an LDAP URL (ldap://, ldaps:// or ldapi://)")
    return url


def _user_filter(value: Any) -> str:
    text = _str(value)
    if "{user}" not in text or not (text.startswith("(") and text.endswith(")")):
        raise ValueError(f"{text!r} must be an LDAP filter in parentheses holding {{user}}")
    return text


def _source_order(value: Any) -> tuple[str, ...]:
    items = _choice_list("calling_station_id", "framed_ip_address", "nas_ip_address")(value)
    if not items:
        raise ValueError("needs at least one source")
    return items


def _type_map(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(
            f'expected a table of strings such as {{ Async = "dialup" }}, got {value!r}'
        )
    return tuple(sorted(value.items()))


NOTICE_KINDS = ("lock", "ip_alert", "trackstat", "concurrent", "status")

# section -> key -> (default, checker). The one place where defaults live.
SCHEMA: dict[str, dict[str, tuple[Any, Callable[[Any], Any]]]] = {
    "store": {
        "url": ("sqlite:////var/lib/pam-guard/pam-guard.db", _store_url),
        "retention_days": (400, _int(1, 36500)),
        "timeout_seconds": (2, _int(1, 60)),
    },
    "lockout": {
        "enabled": (True, _bool),
        "max_attempts": (3, _int(1, 1000)),
        "period_minutes": (5, _int(1, 525600)),
        "unlock_after_minutes": (0, _int(0, 525600)),
        "admin_users": (["root"], _str_list),
        "admin_multiplier": (2, _int(1, 100)),
        "ip_alert_attempts": (3, _int(1, 100000)),
        "ip_alert_period_minutes": (5, _int(1, 525600)),
        "unfamiliar_attempts": (0, _int(0, 1000)),
        "familiar_days": (30, _int(1, 3650)),
        "increment": (1.0, _float(1.0, 100.0)),
        "max_unlock_after_minutes": (1440, _int(1, 525600)),
        "increment_window_days": (1, _int(1, 3650)),
        "permanent_after": (0, _int(0, 1000)),
        "ignore_repeated_password": (False, _bool),
    },
    "address_block": {
        "enabled": (False, _bool),
        "attempts": (10, _int(1, 100000)),
        "period_minutes": (10, _int(1, 525600)),
        "block_minutes": (60, _int(1, 525600)),
        "ignore": (["127.0.0.0/8", "::1/128"], _networks),
    },
    "custom_authentication": {
        "enabled": (False, _bool),
        "url": ("ldap://127.0.0.1:389", _ldap_url),
        "kind": ("openldap", _choice("openldap", "ad", "389ds")),
        "bind_dn": ("", _str),
        "bind_password_file": ("", _str),
        "user_base": ("", _str),
        "user_filter": ("(uid={user})", _user_filter),
        "timeout_seconds": (3, _int(1, 60)),
        "starttls": (False, _bool),
        "ca_file": ("", _str),
    },
    "ip_lock": {
        "enabled": (False, _bool),
    },
    "trackstat": {
        "enabled": (False, _bool),
        "logins": (15, _int(2, 10000)),
        "rating": (20, _int(1, 100)),
        "group_networks": (False, _bool),
        "action": ("email", _choice("email", "deny")),
        "email": ("", _str),
    },
    "concurrent": {
        "enabled": (False, _bool),
        "window_minutes": (15, _int(1, 525600)),
        "action": ("deny", _choice("deny", "allow")),
        "notify": (True, _bool),
    },
    "status": {
        "denied_limit": (5, _int(0, 100000)),
        "denied_period_minutes": (30, _int(1, 525600)),
        "inside_outside": (False, _bool),
        "inside_networks": (
            ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"],
            _networks,
        ),
        "new_user_days": (15, _int(0, 36500)),
        "inactive_days": (15, _int(1, 36500)),
        "session_limits": ({}, _limits),
        "access_point_limit": (0, _int(0, 1_000_000)),
        "deny_over_limits": (False, _bool),
        "session_stale_minutes": (720, _int(1, 525600)),
    },
    "notify": {
        "smtp_host": ("127.0.0.1", _str),
        "smtp_port": (25, _int(1, 65535)),
        "starttls": (False, _bool),
        "smtp_user": ("", _str),
        "smtp_password_file": ("", _str),
        "from": ("pam-guard@localhost", _str),
        "admin": ("root@localhost", _str),
        "on": (list(NOTICE_KINDS), _choice_list(*NOTICE_KINDS)),
        "repeat_minutes": (60, _int(0, 525600)),
    },
    "failure": {
        "on_store_error": ("deny", _choice("deny", "allow")),
    },
    "radius": {
        "address_order": (
            ["calling_station_id", "framed_ip_address", "nas_ip_address"],
            _source_order,
        ),
        "port_type_map": ({}, _type_map),
    },
}

# Field names are the TOML keys; `from` is a Python keyword, so that one field is `sender`.
_FIELD_ALIASES = {("notify", "from"): "sender"}


def _field(section: str, key: str) -> str:
    return _FIELD_ALIASES.get((section, key), key)


_SECTION_TYPES = {
    section: namedtuple(
        section.title().replace("_", "") + "Settings", [_field(section, k) for k in keys]
    )
    for section, keys in SCHEMA.items()
}

Settings = namedtuple("Settings", list(SCHEMA) + ["source"])  # type: ignore[misc]
Settings.__doc__ = "Frozen, validated settings: one namedtuple per TOML section, plus `source`."


def build_settings(raw: dict[str, Any], source: str = "<defaults>") -> Settings:
    """Validate a nested dict of TOML values and fill in every default."""
    if not isinstance(raw, dict):
        raise SettingsError(source, "<top>", "expected a table of sections")
    unknown = sorted(set(raw) - set(SCHEMA))
    if unknown:
        raise SettingsError(
            source, unknown[0], "unknown section", f"known sections: {', '.join(SCHEMA)}"
        )
    sections = {}
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise SettingsError(source, section, f"expected a [{section}] table")
        extra = sorted(set(given) - set(keys))
        if extra:
            raise SettingsError(
                source, f"{section}.{extra[0]}", "unknown key", f"known keys: {', '.join(keys)}"
            )
        values = []
        for key, (default, check) in keys.items():
            try:
                values.append(check(given.get(key, default)))
            except ValueError as exc:
                raise SettingsError(source, f"{section}.{key}", str(exc)) from None
        sections[section] = _SECTION_TYPES[section](*values)
    return Settings(source=source, **sections)  # type: ignore[call-arg]


def settings_to_plain(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings back as a nested dict of TOML-style values (for display and snapshots)."""
    out: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        values = getattr(settings, section)
        plain = {}
        for key in keys:
            value = getattr(values, _field(section, key))
            if key in ("session_limits", "port_type_map"):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            plain[key] = value
        out[section] = plain
    return out


DEFAULT_SETTINGS = build_settings({})
