"""`pam-guard status [USER]`: a user's status, lock, failures, trackstat figure, sessions; or
every user by status, high_risk first. Statuses are recomputed (and saved) as they are shown.
"""

from __future__ import annotations

from pam_guard.commands import EXIT_REFUSED, CommandError
from pam_guard.commands.common import (
    check_user,
    directory_errors,
    locks_in_force,
    print_json,
    print_table,
    settings_for,
    time_left,
    when,
)


def register(sub) -> None:
    parser = sub.add_parser(
        "status",
        help="user status: lock, failures, trackstat, sessions",
        description="With USER: its status (recomputed now), lock and how long is left "
        "of it, smart lockout's lock of unfamiliar sources (when "
        "lockout.unfamiliar_attempts > 0), failures in the lockout window, locks within "
        "lockout.increment_window_days, trackstat figure and open sessions, and with custom "
        "authentication the directory's view. Exit 1 when pam-guard has never "
        "seen USER (and the directory does not know it either). Without USER: "
        "every user, high_risk first.",
    )
    parser.add_argument("user", nargs="?")
    parser.set_defaults(func=run)


def _directory_view(settings, user) -> dict:
    from pam_guard.directory import Directory  # ldap3: imported only with custom auth on

    with directory_errors(f"describe {user}", settings.custom_authentication.bind_dn):
        return Directory(settings.custom_authentication).describe(user)


def user_report(settings, gate, user) -> dict:
    """Everything `status USER` shows, as plain data (the --json output)."""
    from policy.rules import failure_threshold, trackstat_figure
    from policy.types import LOCKED, LOCKED_UNFAMILIAR
    from store import logins
    from store import statements as sql

    custom = settings.custom_authentication.enabled
    with directory_errors(f"look up {user}", settings.custom_authentication.bind_dn):
        found = gate.status_of(user)
    if found is None:
        view = _directory_view(settings, user) if custom else None
        if view and view.get("found"):
            return {
                "user": user,
                "status": None,
                "why": "pam-guard has no record of it",
                "directory": view,
            }
        raise CommandError(
            f"unknown user {user!r}: pam-guard has no record of it"
            + (" and the directory has no such user" if custom else ""),
            EXIT_REFUSED,
        )
    history, status, why = found
    now = gate.clock()
    addresses = gate.read(
        lambda conn: conn.all(
            sql.LAST_SUCCESS_ADDRESSES, {"user": user, "limit": settings.trackstat.logins}
        )
    )
    figure = trackstat_figure(tuple(r[0] for r in addresses), settings)
    sessions = gate.read(lambda conn: logins.open_sessions(conn, user, now, settings))
    locks = locks_in_force(history, now, settings)
    report = {
        "user": user,
        "status": status,
        "why": why,
        "locked": LOCKED in locks,
        "locked_at": when(history.locked_at) if history.locked_at else None,
        "lock_expires": when(history.lock_expires) if history.lock_expires else None,
        "lock_left": time_left(history.lock_expires, now) if LOCKED in locks else None,
        "lock_reason": history.lock_reason or None,
        "unfamiliar": _unfamiliar_lock(history, settings, now, LOCKED_UNFAMILIAR in locks),
        "failures_in_window": history.failures,
        "failure_limit": failure_threshold(user, settings),
        "locks_in_window": _locks_in_window(history, settings, now),
        "lock_window_days": settings.lockout.increment_window_days,
        "exempt": history.exempt,
        "trackstat": {
            "logins_used": figure.logins_used,
            "unique_addresses": figure.unique_addresses,
            "percent": round(figure.percent, 1),
            "determination": figure.determination,
        },
        "open_sessions": [
            {"service": s.service, "address": s.address, "started": when(s.started)}
            for s in sessions
        ],
        "last_activity": when(_last_active(gate, user, history)),
    }
    if custom:
        report["directory"] = _directory_view(settings, user)
    return report


def _unfamiliar_lock(history, settings, now, in_force: bool) -> dict | None:
    """Smart lockout's lock of unfamiliar sources and its count; None when it is off."""
    if not settings.lockout.unfamiliar_attempts:
        return None
    expires = history.unfamiliar_lock_expires
    return {
        "locked": in_force,
        "locked_at": when(history.unfamiliar_locked_at) if in_force else None,
        "lock_expires": when(expires) if in_force and expires is not None else None,
        "lock_left": time_left(expires, now) if in_force else None,
        "failures_in_window": history.unfamiliar_failures,
        "failure_limit": settings.lockout.unfamiliar_attempts,
    }


def _locks_in_window(history, settings, now) -> int:
    """Locks set within lockout.increment_window_days of the last one, as long as the last
    is that recent (each makes the next longer: policy.locks)."""
    from policy.locks import next_lock_count

    return next_lock_count(history.lock_count, history.last_lock_at, now, settings) - 1


def _last_active(gate, user, history):
    from store import logins

    return gate.read(lambda conn: logins.last_active(conn, user, history.last_activity))


def _print_user(report) -> None:
    print(f"user:        {report['user']}")
    if report["status"] is None:
        print(f"status:      - ({report['why']})")
    else:
        _print_store_view(report)
    if "directory" in report:
        print("directory:   " + ", ".join(f"{k}={v}" for k, v in report["directory"].items()))


def _print_store_view(report) -> None:
    print(f"status:      {report['status']} ({report['why']})")
    if report["locked"]:
        print(
            f"lock:        LOCKED since {report['locked_at']} {_ends(report)}: {report['lock_reason']}"
        )
    else:
        print("lock:        not locked")
    if report["unfamiliar"] is not None:
        print(f"unfamiliar:  {_unfamiliar_line(report['unfamiliar'])}")
    print(
        f"failures:    {report['failures_in_window']} in window (locks at {report['failure_limit']})"
    )
    days = report["lock_window_days"]
    print(f"locks:       {report['locks_in_window']} within {days} day{'s' if days != 1 else ''}")
    t = report["trackstat"]
    print(
        f"trackstat:   {t['determination']}: {t['unique_addresses']} unique of {t['logins_used']} "
        f"logins ({t['percent']}%)"
    )
    print(f"exempt:      {'yes' if report['exempt'] else 'no'}")
    print(f"last active: {report['last_activity']}")
    sessions = report["open_sessions"]
    print(f"sessions:    {len(sessions)} open")
    for s in sessions:
        print(f"  {s['service']:<10} {s['address'] or 'local':<39} since {s['started']}")


def _ends(lock: dict) -> str:
    """'until 2026-12-03 12:47:00 (12 minutes left)' or 'until an admin unlocks'."""
    if lock["lock_left"] is None:
        return "until an admin unlocks"
    return f"until {lock['lock_expires']} ({lock['lock_left']} left)"


def _unfamiliar_line(lock: dict) -> str:
    count = f"{lock['failures_in_window']} in window (locks at {lock['failure_limit']})"
    if not lock["locked"]:
        return f"not locked; failures from unfamiliar sources: {count}"
    return (
        f"LOCKED since {lock['locked_at']} {_ends(lock)}: unfamiliar sources refused, "
        f"familiar ones get in"
    )


def run(args) -> int:
    from pam_guard.gate import Gate

    settings = settings_for(args)
    gate = Gate(settings)
    try:
        if args.user:
            report = user_report(settings, gate, check_user(args.user))
            print_json(report) if args.json else _print_user(report)
            return 0
        with directory_errors("look up users", settings.custom_authentication.bind_dn):
            rows = all_users(gate)
    finally:
        gate.close()
    if args.json:
        print_json(rows)
    elif rows:
        print_table(
            ("USER", "STATUS", "LOCKED", "FAILURES", "LAST ACTIVE", "WHY"),
            [
                (
                    r["user"],
                    r["status"],
                    _locked_cell(r),
                    r["failures"],
                    r["last_activity"],
                    r["why"],
                )
                for r in rows
            ],
        )
    else:
        print("no users recorded yet")
    return 0


def _locked_cell(row: dict) -> str:
    """yes (the account lock), unfamiliar (smart lockout's lock only), or no."""
    if row["locked"]:
        return "yes"
    return "unfamiliar" if row["unfamiliar_locked"] else "no"


def all_users(gate) -> list:
    """Every account's status (recomputed now), most severe first, then by name."""
    from policy.types import LOCKED, LOCKED_UNFAMILIAR, STATUSES  # statuses most severe first
    from store import statements as sql

    names = [r[0] for r in gate.read(lambda conn: conn.all(sql.ACCOUNT_NAMES))]
    rows = []
    for name in names:
        found = gate.status_of(name)
        if found is None:  # removed meanwhile
            continue
        history, status, why = found
        locks = locks_in_force(history, gate.clock(), gate.settings)
        rows.append(
            {
                "user": name,
                "status": status,
                "why": why,
                "locked": LOCKED in locks,
                "unfamiliar_locked": LOCKED_UNFAMILIAR in locks,
                "failures": history.failures,
                "last_activity": when(_last_active(gate, name, history)),
            }
        )
    order = {s: i for i, s in enumerate(STATUSES)}
    rows.sort(key=lambda r: (order.get(r["status"], len(order)), r["user"]))
    return rows
