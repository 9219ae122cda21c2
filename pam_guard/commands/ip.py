"""`pam-guard ip allow|deny|remove USER CIDR` and `ip list [USER]`: per-user address lists."""

from __future__ import annotations

import sys
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
    parser = sub.add_parser(
        "ip",
        help="per-user address lists (ip_lock)",
        description="Per-user address lists, enforced when [ip_lock] enabled = true. A user "
        "with an allow list gets in only from those networks; 'local' stands for "
        "a login with no address (console, su). A deny entry always refuses. "
        "Entries are IPv4/IPv6 CIDRs or addresses, stored in canonical form; a "
        "malformed one is exit 2.",
    )
    actions = parser.add_subparsers(dest="ip_action", metavar="ACTION", required=True)
    for name, text in (
        ("allow", "let USER in only from CIDR (or 'local': no address)"),
        ("deny", "never let USER in from CIDR (or 'local')"),
        ("remove", "drop CIDR from USER's lists (exit 1 if not there)"),
    ):
        p = actions.add_parser(name, help=text, description=text)
        p.add_argument("user")
        p.add_argument("cidr", metavar="CIDR")
        p.set_defaults(func=run_change)
    p = actions.add_parser("list", help="show address lists (of USER, or everyone's)")
    p.add_argument("user", nargs="?")
    p.set_defaults(func=run_list)


def _entry(text: str) -> str:
    entry = normalise_entry(text)
    if entry is None:
        raise CommandError(
            f"{text!r} is not a CIDR network (like 10.0.0.0/8 or 2001:db8::/32), "
            "an address, or 'local'",
            EXIT_CONFIG,
        )
    return entry


def run_change(args) -> int:
    from store import admin

    user = check_user(args.user)
    entry = _entry(args.cidr)
    with store_transaction(args) as (settings, conn):
        if args.ip_action == "remove":
            if not admin.remove_address_rule(conn, user, entry):
                raise CommandError(f"{user} has no address-list entry {entry}", EXIT_REFUSED)
            changed = True
        else:
            changed = admin.add_address_rule(conn, user, args.ip_action, entry, time.time())
        if changed:
            admin_action(conn, args, f"ip-{args.ip_action}", user, entry)
    if args.json:
        print_json({"user": user, "action": args.ip_action, "entry": entry, "changed": changed})
    else:
        print(f"{user}: {args.ip_action} {entry}" + ("" if changed else " (already listed)"))
        if not settings.ip_lock.enabled:
            print(
                "note: [ip_lock] enabled = false in the config, so lists are not enforced",
                file=sys.stderr,
            )
    return 0


def run_list(args) -> int:
    from store import admin

    user = check_user(args.user) if args.user else None
    with store_transaction(args, write=False) as (_settings, conn):
        rows = admin.address_rules_of(conn, user)
    if args.json:
        print_json([{"user": u, "kind": k, "entry": e} for u, k, e in rows])
    elif rows:
        print_table(("USER", "KIND", "ENTRY"), rows)
    else:
        print("no address lists" + (f" for {user}" if user else ""))
    return 0
