"""Typed settings for mypy, generated from policy.settings.SCHEMA by
`python -m policy.settings_stub`: never edit by hand.
"""

from typing import NamedTuple

class StoreSettings(NamedTuple):
    url: str
    retention_days: int
    timeout_seconds: int

class LockoutSettings(NamedTuple):
    enabled: bool
    max_attempts: int
    period_minutes: int
    unlock_after_minutes: int
    admin_users: tuple[str, ...]
    admin_multiplier: int
    ip_alert_attempts: int
    ip_alert_period_minutes: int
    unfamiliar_attempts: int
    familiar_days: int
    increment: float
    max_unlock_after_minutes: int
    increment_window_days: int
    permanent_after: int
    ignore_repeated_password: bool

class AddressBlockSettings(NamedTuple):
    enabled: bool
    attempts: int
    period_minutes: int
    block_minutes: int
    ignore: tuple[str, ...]

class CustomAuthenticationSettings(NamedTuple):
    enabled: bool
    url: str
    kind: str
    bind_dn: str
    bind_password_file: str
    user_base: str
    user_filter: str
    timeout_seconds: int
    starttls: bool
    ca_file: str

class IpLockSettings(NamedTuple):
    enabled: bool

class TrackstatSettings(NamedTuple):
    enabled: bool
    logins: int
    rating: int
    group_networks: bool
    action: str
    email: str

class ConcurrentSettings(NamedTuple):
    enabled: bool
    window_minutes: int
    action: str
    notify: bool

class StatusSettings(NamedTuple):
    denied_limit: int
    denied_period_minutes: int
    inside_outside: bool
    inside_networks: tuple[str, ...]
    new_user_days: int
    inactive_days: int
    session_limits: tuple[tuple[str, int], ...]
    access_point_limit: int
    deny_over_limits: bool
    session_stale_minutes: int

class NotifySettings(NamedTuple):
    smtp_host: str
    smtp_port: int
    starttls: bool
    smtp_user: str
    smtp_password_file: str
    sender: str
    admin: str
    on: tuple[str, ...]
    repeat_minutes: int

class FailureSettings(NamedTuple):
    on_store_error: str

class RadiusSettings(NamedTuple):
    address_order: tuple[str, ...]
    port_type_map: tuple[tuple[str, str], ...]

class Settings(NamedTuple):
    store: StoreSettings
    lockout: LockoutSettings
    address_block: AddressBlockSettings
    custom_authentication: CustomAuthenticationSettings
    ip_lock: IpLockSettings
    trackstat: TrackstatSettings
    concurrent: ConcurrentSettings
    status: StatusSettings
    notify: NotifySettings
    failure: FailureSettings
    radius: RadiusSettings
    source: str
