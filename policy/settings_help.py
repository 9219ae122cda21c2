"""One line of meaning for every section and key of `policy.settings.SCHEMA`.

Kept apart from the schema so that the login path, which imports `policy.settings`, never
loads these texts. `pam_guard.manpages` writes them into pam-guard.toml(5);
tests/cli/test_manpages.py checks that every SCHEMA key has exactly one line here and that
no line names a key the schema lacks.
"""

SECTIONS: dict[str, str] = {
    "store": "Where logins, locks, sessions and queued notices are kept.",
    "lockout": "Locking an account after consecutive failed logins (pam_faillock's rule).",
    "address_block": (
        "Refuse a spraying source address for every user for a while (fail2ban's job, inline); "
        "pam-guard blocks lists them, pam-guard unblock lifts one."
    ),
    "custom_authentication": (
        "Let an LDAP directory (OpenLDAP ppolicy, Active Directory, 389-ds) own the account "
        "lock: pam-guard then never locks locally, refuses what the directory has locked or "
        "disabled, and unlocks there."
    ),
    "ip_lock": "Per-user address lists, kept in the store (pam-guard ip allow|deny USER CIDR).",
    "trackstat": (
        "Password-sharing detection: too many unique source addresses among a user's recent "
        "successful logins."
    ),
    "concurrent": "Concurrent login prevention: one user logged in from two addresses at once.",
    "status": "The per-user risk status (high_risk, risk, new, inactive, protected, unprotected).",
    "notify": "Mail to the admin and to users; notices are queued and sent by pam-guard deliver.",
    "failure": "What a login gets when pam-guard cannot decide.",
    "radius": "How the FreeRADIUS module reads a request.",
}

KEYS: dict[str, dict[str, str]] = {
    "store": {
        "url": (
            "SQLAlchemy URL of the store: an SQLite file (made at first use) or a PostgreSQL "
            "database shared by many hosts (then run pam-guard init-store)."
        ),
        "retention_days": "Login history older than this many days is dropped by pam-guard prune.",
        "timeout_seconds": (
            "How long a login waits for the store (a connection, or SQLite's write lock) "
            "before failure.on_store_error applies."
        ),
    },
    "lockout": {
        "enabled": "Lock accounts after max_attempts consecutive failed logins.",
        "max_attempts": "Consecutive failed logins within period_minutes that lock the account.",
        "period_minutes": "The window in which failed logins are counted; a success resets the count.",
        "unlock_after_minutes": (
            "A lock ends by itself after this many minutes; 0: it stays until an admin runs "
            "pam-guard unlock."
        ),
        "admin_users": "Users who get admin_multiplier times max_attempts before they are locked.",
        "admin_multiplier": "How many times max_attempts the admin_users may fail.",
        "ip_alert_attempts": (
            "Failed logins from one address, for any users, that alert the admin (password "
            "spraying)."
        ),
        "ip_alert_period_minutes": "The window in which ip_alert_attempts are counted.",
        "unfamiliar_attempts": (
            "Smart lockout when > 0: failures from sources unfamiliar to the user count apart; "
            "this many within period_minutes refuse unfamiliar sources only "
            "(locked_unfamiliar), and never count toward the account lock."
        ),
        "familiar_days": "A source is familiar after a success from it within this many days.",
        "increment": (
            "Each lock within increment_window_days lasts this many times the previous one "
            "(the first: unlock_after_minutes)."
        ),
        "max_unlock_after_minutes": "The longest a growing lock or block lasts.",
        "increment_window_days": "Locks this close to the previous one grow (increment).",
        "permanent_after": (
            "When > 0, the Nth lock within increment_window_days stays until an admin unlocks "
            "(address blocks never become permanent: one address may be a whole NAT)."
        ),
        "ignore_repeated_password": (
            "A wrong password equal to one of the user's last 3 distinct wrong ones within "
            "period_minutes does not count again (a keyed digest is kept, never the password; "
            "PAM and RADIUS PAP)."
        ),
    },
    "address_block": {
        "enabled": "Block source addresses that fail too often, for every user.",
        "attempts": "Failed logins from one address (IPv6: its /64), any users, that block it.",
        "period_minutes": "The window in which those failures are counted.",
        "block_minutes": (
            "How long the first block lasts; later ones grow as locks do (lockout.increment)."
        ),
        "ignore": "Networks never blocked (like fail2ban's ignoreip).",
    },
    "custom_authentication": {
        "enabled": (
            "Use the directory's own lock instead of pam-guard's: never lock locally, refuse "
            "directory-locked or disabled accounts, unlock in the directory."
        ),
        "url": "The directory server: ldap://, ldaps:// or ldapi://.",
        "kind": (
            "Which directory: openldap (ppolicy pwdAccountLockedTime), ad (lockoutTime, "
            "userAccountControl) or 389ds (nsAccountLock)."
        ),
        "bind_dn": "The DN pam-guard binds as to read and clear locks; empty: anonymous.",
        "bind_password_file": (
            "File holding the bind password (owned by root, not readable by others)."
        ),
        "user_base": "The subtree searched for users.",
        "user_filter": "LDAP filter finding a user; {user} is replaced by the escaped user name.",
        "timeout_seconds": "Connect and answer timeout for the directory.",
        "starttls": "Upgrade an ldap:// connection with StartTLS (the server is verified).",
        "ca_file": "CA certificates to verify the directory with; empty: the system's CAs.",
    },
    "ip_lock": {
        "enabled": (
            "Refuse a user with an address list who comes from an address not on it, or "
            "from one on its deny list."
        ),
    },
    "trackstat": {
        "enabled": "Check successful logins for password sharing.",
        "logins": (
            "How many of the user's last successful logins are looked at; fewer: not enough "
            "data, never flagged (more than 10 recommended)."
        ),
        "rating": "Percentage of unique addresses among those logins above which the user is flagged.",
        "group_networks": "Count addresses of one IPv4 /24 or IPv6 /64 as one address.",
        "action": "email: let the login in and tell the admin; deny: refuse it.",
        "email": "Where trackstat notices go; empty: notify.admin.",
    },
    "concurrent": {
        "enabled": (
            "Check for a successful login from another address whose session is not known "
            "to have ended."
        ),
        "window_minutes": "How recent that other login must be to count.",
        "action": "deny: refuse the new login; allow: let it in (and notify, if set).",
        "notify": "Tell the admin about a concurrent login.",
    },
    "status": {
        "denied_limit": "More refused logins than this within denied_period_minutes: high_risk.",
        "denied_period_minutes": "The window in which refused logins are counted for high_risk.",
        "inside_outside": (
            "high_risk when a user has open sessions from inside and outside inside_networks "
            "at once."
        ),
        "inside_networks": "The networks that are inside, for inside_outside.",
        "new_user_days": "A user with no activity for this many days before a login is new.",
        "inactive_days": "A user with no session and no login for this many days is inactive.",
        "session_limits": (
            "Open sessions allowed per service or session type, e.g. { sshd = 2, vpn = 1 }; "
            "more: risk."
        ),
        "access_point_limit": (
            "Distinct source addresses with open sessions allowed per user; 0: no limit."
        ),
        "deny_over_limits": "Refuse a login that would go over session_limits or access_point_limit.",
        "session_stale_minutes": (
            "A session with no update for this many minutes no longer counts as open."
        ),
    },
    "notify": {
        "smtp_host": "The mail server pam-guard deliver sends through.",
        "smtp_port": "Its port.",
        "starttls": "Use STARTTLS with the mail server.",
        "smtp_user": "User to authenticate as to the mail server; empty: no authentication.",
        "smtp_password_file": "File holding that user's password (owned by root, mode 0600).",
        "from": "The sender address of every notice.",
        "admin": "The admin's address.",
        "on": "Which events mail the admin: lock, ip_alert, trackstat, concurrent, status.",
        "repeat_minutes": (
            "At most one notice per user (or address) and kind within this many minutes; "
            "0: no limit."
        ),
    },
    "failure": {
        "on_store_error": (
            "deny or allow: what a login gets when the store (or the directory) cannot be "
            "reached, or pam-guard fails inside."
        ),
    },
    "radius": {
        "address_order": (
            "Where a RADIUS request's source address is taken from, first match wins: "
            "calling_station_id, framed_ip_address, nas_ip_address."
        ),
        "port_type_map": (
            'Session type recorded for a NAS-Port-Type, e.g. { Async = "dialup" }; '
            "before the built-in names (vpn, wifi, ...)."
        ),
    },
}
