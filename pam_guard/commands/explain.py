"""`pam-guard explain USER --ip ADDR [--service S]`: what would happen now, changing nothing."""

from __future__ import annotations

from pam_guard.commands.common import check_user, directory_errors, print_json, settings_for


def register(sub) -> None:
    parser = sub.add_parser("explain", help="what every rule would decide now (changes nothing)")
    parser.add_argument("user")
    parser.add_argument("--ip", required=True, metavar="ADDR", help="source address, or 'local'")
    parser.add_argument("--service", default="sshd", metavar="S")
    parser.add_argument("--channel", choices=("pam", "radius"), default="pam")
    parser.set_defaults(func=run)


def _rule_lines(attempt, history, settings):
    """(rule, outcome) for every rule in SPEC order."""
    from policy.rules import RULES

    out = []
    for rule in RULES:
        fired = rule(attempt, history, settings)
        name = rule.__name__.removeprefix("rule_")
        out.append((name, fired or "passes"))
    return out


def run(args) -> int:
    from pam_guard.gate import Gate
    from policy.addresses import parse_address
    from policy.rules import denies

    settings = settings_for(args)
    user = check_user(args.user)
    address = None if args.ip.lower() == "local" else parse_address(args.ip)
    gate = Gate(settings)
    try:
        attempt = gate.attempt(user, args.channel, args.service, address, args.ip)
        with directory_errors(f"look up {user}", settings.custom_authentication.bind_dn):
            verdict, history = gate.explain(attempt)
    finally:
        gate.close()
    rules = _rule_lines(attempt, history, settings)
    if args.json:
        print_json(
            {
                "user": user,
                "address": address,
                "service": args.service,
                "allowed": verdict.allowed,
                "reasons": list(verdict.reasons),
                "status_after": verdict.status,
                "status_why": verdict.status_why,
                "rules": [
                    {"rule": n, "result": r, "denies": r != "passes" and denies(r, settings)}
                    for n, r in rules
                ],
            }
        )
        return 0
    if address is None and args.ip.lower() != "local":
        print(f"note: {args.ip!r} is not an address; treated as no address (like a local login)")
    for name, result in rules:
        effect = (
            ""
            if result == "passes"
            else (" -> refuses" if denies(result, settings) else " -> noted, let in")
        )
        print(f"  {name:<16} {result}{effect}")
    print(
        f"verdict: {'ALLOW' if verdict.allowed else 'DENY'}"
        + (f" ({', '.join(verdict.reasons)})" if verdict.reasons else "")
    )
    print(f"status after this login: {verdict.status} ({verdict.status_why})")
    return 0
