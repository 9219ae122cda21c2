"""`pam-guard unblock ADDR|CIDR`: lift the address blocks in force (address_block) that lie
in an address or network, audited."""

from __future__ import annotations

import time

from pam_guard.commands import EXIT_CONFIG, EXIT_REFUSED, CommandError
from pam_guard.commands.common import admin_action, after_commit, print_json, store_transaction


def register(sub) -> None:
    parser = sub.add_parser(
        "unblock",
        help="lift the address blocks in an address or network (audited)",
        description="Lifts every address block in force whose address lies in ADDR or "
        "CIDR (an IPv6 block covers a /64: any address in it lifts it), and prints "
        "what it lifted. Failures before now no longer count toward the next block; "
        "the block count stays, so a block soon after still grows. Written to the "
        "audit log. Exit 1 when no block in force matches, 2 when ADDR is not an "
        "address or network.",
    )
    parser.add_argument("entry", metavar="ADDR|CIDR", help="an address or a CIDR network")
    parser.set_defaults(func=run)


def parse_entry(text: str) -> str:
    """The canonical address or network of `text`; exit 2 when it is neither."""
    from policy.addresses import parse_network

    net = parse_network(text)
    if net is None:
        raise CommandError(
            f"{text!r} is not an address or CIDR network "
            "(like 203.0.113.7, 198.51.100.0/24 or 2001:db8:1::/64)",
            EXIT_CONFIG,
        )
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def announce(keys: list[str]) -> None:
    """One syslog line per address lifted, in the shape of the login path's `block` lines."""
    import syslog

    from pam_guard.audit import actor
    from pam_guard.logline import line, send

    for key in keys:
        send(syslog.LOG_NOTICE, line("unblock", key, "admin", channel="admin", by=actor()))


def run(args) -> int:
    from store import admin

    entry = parse_entry(args.entry)
    with store_transaction(args) as (_settings, conn):
        lifted = admin.unblock(conn, entry, time.time())
        if not lifted:
            raise CommandError(
                f"no address block in force matches {entry} (pam-guard blocks lists them)",
                EXIT_REFUSED,
            )
        admin_action(conn, args, "unblock", entry, ", ".join(lifted))
        after_commit(conn, lambda: announce(lifted))
    if args.json:
        print_json({"entry": entry, "unblocked": lifted})
    else:
        for key in lifted:
            print(f"{key}: unblocked")
    return 0
