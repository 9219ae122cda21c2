"""`pam-guard ip allow|deny|remove USER CIDR` and `ip list [USER]`: per-user address lists."""

from __future__ import annotations

import time

from pam_guard.commands import EXIT_CONFIG, EXIT_REFUSED, CommandError
from pam_guard.commands.common import (
    admin_action,
    check_user,
    print_json,
    print_table,
    store_transaction,
)
from policy.addresses import normalise_entry


def register(sub) -> None:
    parser = sub.add_parser("ip", help="per-user address lists (ip_lock)")
    actions = parser.add_subparsers(dest="ip_action", metavar="ACTION", required=True)
    for name, text in (("allow", "let USER in only from CIDR (or 'local': no address)"),
                       ("deny", "never let USER in from CIDR"),
                       ("remove", "drop CIDR from USER's lists")):
        p = actions.add_parser(name, help=text)
        p.add_argument("user")
        p.add_argument("cidr")
        p.set_defaults(func=run_change)
    p = actions.add_parser("list", help="show address lists")
    p.add_argument("user", nargs="?")
    p.set_defaults(func=run_list)


def _entry(text: str) -> str:
    entry = normalise_entry(text)
    if entry is None:
        raise CommandError(f"{text!r} is not a CIDR network, an address or 'local'", EXIT_CONFIG)
    return entry


def run_change(args) -> int:
    from store import admin

    user = check_user(args.user)
    entry = _entry(args.cidr)
    with store_transaction(args) as (settings, conn):
        if args.ip_action == "remove":
            if not admin.remove_address_rule(conn, user, entry):
                raise CommandError(f"{user} has no address-list entry {entry}", EXIT_REFUSED)
        else:
            admin.add_address_rule(conn, user, args.ip_action, entry, time.time())
        admin_action(conn, args, f"ip-{args.ip_action}", user, entry)
    if args.json:
        print_json({"user": user, "action": args.ip_action, "entry": entry})
    else:
        print(f"{user}: {args.ip_action} {entry}")
        if not settings.ip_lock.enabled:
            print("note: [ip_lock] enabled = false in the config, so lists are not enforced")
    return 0


def run_list(args) -> int:
    from store import admin

    user = check_user(args.user) if args.user else None
    with store_transaction(args) as (_settings, conn):
        rows = admin.address_rules_of(conn, user)
    if args.json:
        print_json([{"user": u, "kind": k, "entry": e} for u, k, e in rows])
    elif rows:
        print_table(("USER", "KIND", "ENTRY"), rows)
    else:
        print("no address lists" + (f" for {user}" if user else ""))
    return 0
