"""`pam-guard audit [verify]`: the admin action log, and a check of its HMAC chain."""

from __future__ import annotations

from pam_guard.commands import EXIT_REFUSED
from pam_guard.commands.common import print_json, print_table, store_transaction, when
from pam_guard.config import config_path


def register(sub) -> None:
    parser = sub.add_parser(
        "audit",
        help="admin action log; 'audit verify' checks its chain",
        description="Lists every admin action (lock, unlock, exempt, ip, notify changes, unblock), "
        "oldest first. 'audit verify' checks the HMAC-SHA256 chain with the key "
        "beside the config file: exit 0 when intact, 1 naming the first entry "
        "that was edited, reordered or deleted.",
    )
    parser.add_argument("action", nargs="?", choices=("verify",))
    parser.set_defaults(func=run)


def run(args) -> int:
    from pam_guard import audit
    from store.admin import audit_entries

    with store_transaction(args, write=False) as (_settings, conn):
        if args.action == "verify":
            problems = audit.verify(conn, config_path(args.config))
            total = audit.count(conn)
            if args.json:
                print_json({"entries": total, "intact": not problems, "problems": problems})
            elif problems:
                for problem in problems:
                    print(f"audit log BROKEN: {problem}")
            else:
                print(f"audit log intact: {total} entries")
            return EXIT_REFUSED if problems else 0
        rows = audit_entries(conn)
    if args.json:
        print_json(
            [
                {
                    "seq": r.seq,
                    "time": when(r.ts),
                    "ts": r.ts,
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "detail": r.detail,
                }
                for r in rows
            ]
        )
    elif rows:
        print_table(
            ("SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"),
            [(r.seq, when(r.ts), r.actor, r.action, r.target, r.detail) for r in rows],
        )
    else:
        print("audit log is empty")
    return 0
