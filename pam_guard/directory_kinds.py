"""What a directory's account attributes mean: pure functions, one set per directory kind.

Each kind names the attributes to fetch, turns them (plus `now` and the lockout duration
that applies) into a `Reading`, and says which changes clear its lock. No I/O here; the
LDAP client in `pam_guard.directory` fetches the attributes and the durations.

- openldap (ppolicy): `pwdAccountLockedTime` present → locked. `000001010000Z` is the
  permanent lock (set by an admin). Otherwise the lock ends at lockedTime + the applicable
  policy's `pwdLockoutDuration`; 0 means until an admin unlocks. Unlock deletes
  `pwdAccountLockedTime` (slapd then drops `pwdFailureTime` itself).
- ad: `userAccountControl` bit 0x2 (ACCOUNTDISABLE) → disabled. Locked: when the server
  returns the constructed `msDS-User-Account-Control-Computed`, its bit 0x10 (UF_LOCKOUT)
  decides (it accounts for fine-grained policies); otherwise `lockoutTime` > 0 and within
  the domain's `lockoutDuration` (read from the domain head, the DN's DC= part; 0 or
  "never" = until an admin unlocks). Unlock sets `lockoutTime` to 0.
- 389ds (and FreeIPA's 389-ds): `nsAccountLock: true` → disabled (SPEC §4: it is what
  `dsidm account lock` / `ipa user-disable` set). Locked: `accountUnlockTime` in the future,
  or `19700101000000Z` (locked until an admin resets it, passwordUnlock off). Unlock removes
  `nsAccountLock`, `accountUnlockTime` and `passwordRetryCount`.
A duration that cannot be read (no policy readable, no domain head) keeps a lock in force until
an admin unlocks, and `describe` says so: guessing an expiry would let locked accounts in.
Disabled wins over locked: it is the state an unlock does not end (AD) or the admin's choice.
"""

from __future__ import annotations

import calendar
import re
from collections import namedtuple

LOCKED = "locked"
DISABLED = "disabled"
FOREVER = 0.0  # a lockout duration of "until an admin unlocks"
UNKNOWN = None  # the applicable lockout duration could not be read: treated as FOREVER

PPOLICY_PERMANENT = "000001010000Z"
DS389_PERMANENT = "19700101000000Z"
UF_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10
_FILETIME_EPOCH_OFFSET = 11644473600  # seconds from 1601-01-01 to 1970-01-01
_AD_NEVER = -0x8000000000000000

Reading = namedtuple("Reading", "state locked_at locked_until why")
Reading.__doc__ = """The directory's view of one account.

state: None, "locked" or "disabled"; locked_at / locked_until: epoch seconds or None
(locked_until None with state "locked" = until an admin unlocks); why: one line for admins.
"""

NOT_LOCKED = Reading(None, None, None, "not locked")

_GENERALIZED = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,]\d+)?(Z|[+-]\d{4})$"
)


def parse_generalized_time(text: str) -> float:
    """Epoch seconds from an LDAP GeneralizedTime such as 20261123152050Z or ...50.4726Z."""
    match = _GENERALIZED.match(text.strip())
    if not match:
        raise ValueError(f"not a GeneralizedTime: {text!r}")
    year, month, day, hour = (int(match.group(i)) for i in range(1, 5))
    minute, second = int(match.group(5) or 0), int(match.group(6) or 0)
    zone = match.group(7)
    stamp = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        stamp -= sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
    return float(stamp)


def filetime_to_epoch(value: int) -> float:
    """Epoch seconds from a Windows FILETIME (100 ns intervals since 1601-01-01)."""
    return value / 10_000_000 - _FILETIME_EPOCH_OFFSET


def ad_lockout_duration(raw: str | None) -> float | None:
    """Seconds from AD's `lockoutDuration` (negative 100 ns intervals); 0 = forever."""
    if raw is None:
        return UNKNOWN
    value = int(raw)
    if value in (0, _AD_NEVER):
        return FOREVER
    return abs(value) / 10_000_000


def first_value(attrs: dict, name: str) -> str | None:
    """The first value of an attribute, matched case-insensitively (LDAP names are)."""
    for key, values in attrs.items():
        if key.lower() == name.lower():
            if isinstance(values, list | tuple):
                return str(values[0]) if values else None
            return str(values)
    return None


def _int(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} is not a number: {text!r}") from None


def _timed_lock(locked_at: float, duration: float | None, now: float, what: str) -> Reading:
    if duration is UNKNOWN:
        return Reading(
            LOCKED,
            locked_at,
            None,
            f"{what}; lockout duration unreadable, so taken as until an admin unlocks",
        )
    if duration == FOREVER:
        return Reading(LOCKED, locked_at, None, f"{what}; locked until an admin unlocks")
    until = locked_at + duration
    if now >= until:
        return Reading(None, locked_at, until, f"{what}; the lockout duration has passed")
    return Reading(LOCKED, locked_at, until, f"{what}; lockout lasts {duration:g} s")


# --- OpenLDAP ppolicy -------------------------------------------------------------------------

OPENLDAP_ATTRIBUTES = ("pwdAccountLockedTime", "pwdPolicySubentry", "pwdFailureTime")


def openldap_locked_time(attrs: dict) -> str | None:
    """The raw pwdAccountLockedTime, or None: whether a lockout duration is needed at all."""
    return first_value(attrs, "pwdAccountLockedTime")


def openldap_reading(attrs: dict, now: float, duration: float | None) -> Reading:
    """ppolicy's view; `duration`: the policy's pwdLockoutDuration in seconds, None unknown."""
    raw = openldap_locked_time(attrs)
    if raw is None:
        return NOT_LOCKED
    if raw == PPOLICY_PERMANENT:
        return Reading(LOCKED, None, None, "pwdAccountLockedTime 000001010000Z: locked for good")
    return _timed_lock(parse_generalized_time(raw), duration, now, f"pwdAccountLockedTime {raw}")


def openldap_unlock(attrs: dict) -> dict:
    """ldap3 changes that clear a ppolicy lock (empty when there is none)."""
    if openldap_locked_time(attrs) is None:
        return {}
    return {"pwdAccountLockedTime": [("MODIFY_DELETE", [])]}


# --- Active Directory -----------------------------------------------------------------------

AD_ATTRIBUTES = ("lockoutTime", "userAccountControl", "msDS-User-Account-Control-Computed")


def ad_needs_duration(attrs: dict) -> bool:
    """Only a nonzero lockoutTime without the computed flags needs the domain's duration."""
    if first_value(attrs, "msDS-User-Account-Control-Computed") is not None:
        return False
    return (_int(first_value(attrs, "lockoutTime"), "lockoutTime") or 0) > 0


def ad_reading(attrs: dict, now: float, duration: float | None) -> Reading:
    """AD's view; `duration`: the domain's lockoutDuration in seconds (0 forever, None unknown)."""
    control = _int(first_value(attrs, "userAccountControl"), "userAccountControl") or 0
    if control & UF_ACCOUNTDISABLE:
        return Reading(DISABLED, None, None, f"userAccountControl {control:#x}: ACCOUNTDISABLE")
    lockout = _int(first_value(attrs, "lockoutTime"), "lockoutTime") or 0
    locked_at = filetime_to_epoch(lockout) if lockout > 0 else None
    computed = _int(
        first_value(attrs, "msDS-User-Account-Control-Computed"),
        "msDS-User-Account-Control-Computed",
    )
    if computed is not None:
        if computed & UF_LOCKOUT:
            return Reading(
                LOCKED,
                locked_at,
                None,
                f"msDS-User-Account-Control-Computed {computed:#x}: LOCKOUT",
            )
        return Reading(None, locked_at, None, "not locked (msDS-User-Account-Control-Computed)")
    if locked_at is None:
        return NOT_LOCKED
    return _timed_lock(locked_at, duration, now, f"lockoutTime {lockout}")


def ad_unlock(attrs: dict) -> dict:
    if not (_int(first_value(attrs, "lockoutTime"), "lockoutTime") or 0):
        return {}
    return {"lockoutTime": [("MODIFY_REPLACE", ["0"])]}


def ad_domain_dn(dn: str) -> str | None:
    """The domain head of an AD DN: its trailing DC= components (None when it has none)."""
    from ldap3.utils.dn import parse_dn

    parts = parse_dn(dn, escape=True)
    tail = []
    for attr, value, _sep in reversed(parts):
        if attr.lower() != "dc":
            break
        tail.append(f"{attr}={value}")
    return ",".join(reversed(tail)) or None


# --- 389-ds / FreeIPA ---------------------------------------------------------------------

DS389_ATTRIBUTES = ("nsAccountLock", "accountUnlockTime", "passwordRetryCount")


def ds389_reading(attrs: dict, now: float) -> Reading:
    flag = first_value(attrs, "nsAccountLock")
    if flag is not None and flag.strip().lower() == "true":
        return Reading(DISABLED, None, None, "nsAccountLock: true")
    unlock_time = first_value(attrs, "accountUnlockTime")
    if unlock_time is None:
        return NOT_LOCKED
    if unlock_time == DS389_PERMANENT:
        return Reading(
            LOCKED, None, None, "accountUnlockTime 19700101000000Z: until an admin resets it"
        )
    until = parse_generalized_time(unlock_time)
    if now >= until:
        return Reading(None, None, until, f"accountUnlockTime {unlock_time} has passed")
    return Reading(LOCKED, None, until, f"accountUnlockTime {unlock_time}")


def ds389_unlock(attrs: dict) -> dict:
    return {
        name: [("MODIFY_DELETE", [])]
        for name in DS389_ATTRIBUTES
        if first_value(attrs, name) is not None
    }


ATTRIBUTES = {"openldap": OPENLDAP_ATTRIBUTES, "ad": AD_ATTRIBUTES, "389ds": DS389_ATTRIBUTES}
UNLOCK = {"openldap": openldap_unlock, "ad": ad_unlock, "389ds": ds389_unlock}
