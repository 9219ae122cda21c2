"""`pam-guard sessions [USER]`: open sessions (PAM and RADIUS accounting)."""

from __future__ import annotations

import time

from pam_guard.commands.common import check_user, print_json, print_table, store_transaction, when


def register(sub) -> None:
    parser = sub.add_parser("sessions", help="open sessions")
    parser.add_argument("user", nargs="?")
    parser.set_defaults(func=run)


def run(args) -> int:
    from store import admin

    user = check_user(args.user) if args.user else None
    with store_transaction(args) as (settings, conn):
        rows = admin.open_sessions(conn, user, time.time(), settings.status.session_stale_minutes)
    if args.json:
        print_json(
            [
                {
                    "user": r.username,
                    "channel": r.channel,
                    "service": r.service,
                    "session": r.session_key,
                    "nas": r.nas,
                    "address": r.address,
                    "client": r.client,
                    "started": when(r.started),
                    "last_update": when(r.last_update),
                }
                for r in rows
            ]
        )
    elif rows:
        print_table(
            ("USER", "CHANNEL", "SERVICE", "ADDRESS", "NAS", "SESSION", "STARTED", "UPDATED"),
            [
                (
                    r.username,
                    r.channel,
                    r.service,
                    r.address or "local",
                    r.nas or "-",
                    r.session_key,
                    when(r.started),
                    when(r.last_update),
                )
                for r in rows
            ],
        )
    else:
        print("no open sessions" + (f" for {user}" if user else ""))
    return 0
