"""The value types that go in and out of the policy core.

Plain frozen namedtuples: cheap to import on the login path (no dataclasses, no typing), and
easy to build from database rows in the store and from literals in tests.
"""

from __future__ import annotations

from collections import namedtuple

# Channels and outcomes, as recorded in the store.
PAM = "pam"
RADIUS = "radius"
SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"

# Reason codes (SPEC §4), in the order the rules are checked.
LOCKED = "locked"
DIRECTORY_LOCKED = "directory_locked"
DIRECTORY_DISABLED = "directory_disabled"
IP_RESTRICTED = "ip_restricted"
PASSWORD_SHARING = "password_sharing"
CONCURRENT_LOGIN = "concurrent_login"
SESSION_LIMIT = "session_limit"
LOCKED_UNFAMILIAR = "locked_unfamiliar"
SOURCE_BLOCKED = "source_blocked"
INVALID_USER = "invalid_user"
STORE_ERROR = "store_error"
REASONS = (
    LOCKED,
    DIRECTORY_LOCKED,
    DIRECTORY_DISABLED,
    IP_RESTRICTED,
    PASSWORD_SHARING,
    CONCURRENT_LOGIN,
    SESSION_LIMIT,
    LOCKED_UNFAMILIAR,
    SOURCE_BLOCKED,
    INVALID_USER,
    STORE_ERROR,
)

# User statuses (SPEC §5), most severe first.
HIGH_RISK = "high_risk"
RISK = "risk"
NEW = "new"
INACTIVE = "inactive"
PROTECTED = "protected"
UNPROTECTED = "unprotected"
STATUSES = (HIGH_RISK, RISK, NEW, INACTIVE, PROTECTED, UNPROTECTED)

# Which count a failure went to (events.bucket): the account lock's (None), the bucket of
# sources unfamiliar to the user (smart lockout), or none (a repeated wrong password).
UNFAMILIAR = "unfamiliar"
REPEATED = "repeated"

# Directory states reported by custom authentication.
DIR_LOCKED = "locked"
DIR_DISABLED = "disabled"

Attempt = namedtuple(
    "Attempt",
    "user channel service address address_raw client secure time ruser source digest",
    defaults=(None, None, None, 0.0, None, None, None),
)
Attempt.__doc__ = """One login attempt.

user: the name as given; channel: "pam" | "radius"; service: PAM service or RADIUS session
type; address: canonical IP text or None (see policy.addresses.parse_address); address_raw:
what the caller gave; client: tty, NAS, Calling-Station-Id...; secure: True/False/None;
time: seconds since the epoch (the caller's clock, never read here); ruser: who asked for
the login on PAM (PAM_RUSER: the caller of su or sudo), or None; source: where the person
is, for familiarity (policy.sources; None: unknown); digest: a failure's keyed digest of
the wrong password (pam_guard.digests), or None."""

Session = namedtuple("Session", "service address started last_update")
Session.__doc__ = "An open session: service, canonical address or None, start and last update."

Login = namedtuple("Login", "time address")
Login.__doc__ = "A successful login: when, and from which canonical address (or None)."

History = namedtuple(
    "History",
    [
        "known",  # the user has any recorded activity
        "locked_at",  # time of pam-guard's lock, or None
        "lock_expires",  # when that lock lifts by itself, or None (until an admin unlocks)
        "lock_reason",  # text, or ""
        "failures",  # failures in the lockout window since the last success or unlock
        "exempt",  # flag exemption (skips trackstat and concurrent)
        "allow_list",  # address-list entries the user may come from (CIDRs, "local")
        "deny_list",  # entries the user may never come from
        "recent_addresses",  # addresses of the last trackstat.logins successful logins, newest first
        "recent_logins",  # Login tuples within the concurrent window
        "session_ends",  # (address, last end time) of sessions ended within the window
        "open_sessions",  # Session tuples not ended and not stale
        "denied_recent",  # denied logons within status.denied_period_minutes
        "last_activity",  # time of the last login event or session change, or None
        "status",  # the stored status, or None
        "directory",  # None, DIR_LOCKED or DIR_DISABLED (custom authentication)
        "lock_count",  # locks of the user within lockout.increment_window_days of the last
        "last_lock_at",  # time of the last lock pam-guard set (growing locks), or None
        "unfamiliar_locked_at",  # smart lockout: unfamiliar sources locked since, or None
        "unfamiliar_lock_expires",  # when that lifts by itself, or None (admin unlocks)
        "unfamiliar_failures",  # failures from unfamiliar sources in the lockout window
        "familiar_sources",  # sources with a success within lockout.familiar_days
        "recent_digests",  # ((time, digest), ...) of the last distinct wrong passwords, newest first
        "address_block",  # the attempt's address block: AddressBlock, or None
    ],
    defaults=(
        False,
        None,
        None,
        "",
        0,
        False,
        (),
        (),
        (),
        (),
        (),
        (),
        0,
        None,
        None,
        None,
        0,
        None,
        None,
        None,
        0,
        (),
        (),
        None,
    ),
)
History.__doc__ = "What the store knows of one user, as plain data, for one decision."

Notice = namedtuple("Notice", "kind subject facts")
Notice.__doc__ = """A notice to queue: kind (lock, ip_alert, trackstat, concurrent, status,
user_failure, user_success, user_lock), subject (the user or address it is about, also the rate-limit
key) and facts (a tuple of (name, value) pairs for the message)."""

AddressBlock = namedtuple(
    "AddressBlock",
    "address blocked_at expires count cleared_at failures users",
    defaults=(None, None, 0, None, 0, ()),
)
AddressBlock.__doc__ = """A source address's block row (address_block): its key (IPv4
address or IPv6 /64), when the last block began and ends (None: until an admin unblocks;
blocked_at None: never blocked), blocks within lockout.increment_window_days of the last,
when an admin last lifted one (failures before it no longer count), and, for a block a
failure sets, the failures that set it and the users they tried (sorted)."""

Verdict = namedtuple(
    "Verdict",
    "allowed reasons lock notices status status_why trackstat bucket unfamiliar_lock block until",
    defaults=(None, None, None, None),
)
Verdict.__doc__ = """The outcome of a decision.

allowed: the login may go on; reasons: every reason code that fired, in rule order; lock:
None, or (reason text, expires time or None) when the account must now be locked; notices:
Notice tuples to queue; status, status_why: the user's status after this attempt and why;
trackstat: the TrackstatFigure used, or None; a failure's bucket (None, UNFAMILIAR,
REPEATED), unfamiliar_lock ((reason text, expires or None), as lock) and block
(AddressBlock) when it sets one; until: for a refusal by a lock or block, when it lifts (None: not by itself)."""

TrackstatFigure = namedtuple(
    "TrackstatFigure", "logins_used unique_addresses percent determination addresses"
)
TrackstatFigure.__doc__ = """Password-sharing figures over a user's last logins.

determination: "not enough data", "ok" or "sharing"; percent: unique share of logins used."""

NOT_ENOUGH_DATA = "not enough data"
SHARING = "sharing"
OK = "ok"
