"""`pam-guard trackstat [USER]`: the password-sharing page — per user the logins used, the
trackstat figure, the percent, the determination ("not enough data" below trackstat.logins),
the unique addresses, and whether concurrent logins were seen.
"""

from __future__ import annotations

import sys

from pam_guard.commands import EXIT_REFUSED, CommandError
from pam_guard.commands.common import check_user, print_json, print_table, store_transaction
from policy.rules import trackstat_figure


def register(sub) -> None:
    parser = sub.add_parser(
        "trackstat",
        help="password-sharing figures per user",
        description="Per user: the last trackstat.logins successful logins, how many unique "
        "addresses they came from (the figure), that share in percent against "
        "trackstat.rating, the determination (ok, sharing, or not enough data), "
        "and whether a concurrent login was ever seen. Exit 1 for a USER "
        "pam-guard has never seen.",
    )
    parser.add_argument("user", nargs="?")
    parser.set_defaults(func=run)


def figures(settings, user: str, addresses: tuple, concurrent_seen: bool) -> dict:
    """One user's row of the page, as plain data (the --json output)."""
    figure = trackstat_figure(addresses, settings)
    return {
        "user": user,
        "logins_used": figure.logins_used,
        "logins_needed": settings.trackstat.logins,
        "unique_addresses": figure.unique_addresses,
        "figure": f"{figure.unique_addresses}/{figure.logins_used}",
        "percent": round(figure.percent, 1),
        "rating": settings.trackstat.rating,
        "determination": figure.determination,
        "addresses": list(figure.addresses),
        "concurrent_seen": concurrent_seen,
    }


def page(conn, settings, user: str | None = None) -> list:
    """The rows for `user`, or for every user: two reads of the events in all."""
    from store import admin

    names = [user] if user is not None else admin.account_names(conn)
    addresses = admin.last_success_addresses(conn, settings.trackstat.logins, user)
    concurrent = admin.concurrent_seen(conn, user)
    return [figures(settings, name, addresses.get(name, ()), name in concurrent) for name in names]


def run(args) -> int:
    from store import admin

    with store_transaction(args, write=False) as (settings, conn):
        if args.user:
            user = check_user(args.user)
            if not admin.user_known(conn, user):
                raise CommandError(
                    f"unknown user {user!r}: pam-guard has no record of it", EXIT_REFUSED
                )
            rows = page(conn, settings, user)
        else:
            rows = page(conn, settings)
    if args.json:
        print_json(rows[0] if args.user else rows)
        return 0
    if not settings.trackstat.enabled:
        print(
            "note: [trackstat] enabled = false in the config: figures are shown, nothing is "
            "flagged",
            file=sys.stderr,
        )
    if not rows:
        print("no users recorded yet")
        return 0
    print_table(
        (
            "USER",
            "LOGINS USED",
            "FIGURE",
            "PERCENT",
            "DETERMINATION",
            "CONCURRENT",
            "UNIQUE ADDRESSES",
        ),
        [
            (
                r["user"],
                f"{r['logins_used']}/{r['logins_needed']}",
                r["figure"],
                f"{r['percent']}% (max {r['rating']}%)",
                r["determination"],
                "yes" if r["concurrent_seen"] else "no",
                ", ".join(r["addresses"]) or "-",
            )
            for r in rows
        ],
    )
    return 0
