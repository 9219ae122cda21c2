"""`pam-guard explain USER --ip ADDR [--service S]`: what would happen now, changing nothing.

Besides every rule's result it shows what the smart rules read: how familiar the source
is to the user (lockout.unfamiliar_attempts > 0) and the address's block (address_block).
"""

from __future__ import annotations

from pam_guard.commands.common import (
    check_user,
    directory_errors,
    lasts,
    print_json,
    settings_for,
    time_left,
    when,
)


def register(sub) -> None:
    parser = sub.add_parser(
        "explain",
        help="what every rule would decide now (changes nothing)",
        description="Runs every rule for a login of USER from ADDR now and prints each "
        "rule's result and the verdict, writing nothing. With smart lockout "
        "(lockout.unfamiliar_attempts > 0) it also says whether the source is familiar "
        "to USER, and with address_block on whether the address is blocked.",
    )
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


def _source(channel: str, text: str) -> str | None:
    """Where the person is (policy.sources) for `--ip`: on RADIUS it stands for the
    Calling-Station-Id, so a MAC is a station; on PAM the gate makes it from the address."""
    from policy.sources import radius_source

    if channel != "radius" or text.lower() == "local":
        return None
    return radius_source(text, None)


def familiarity(attempt, history) -> dict:
    """The source, the key a success makes familiar, and "familiar", "unfamiliar" or
    "always familiar (...)" (a source nobody can tell from the owner's)."""
    from policy.addresses import LOCAL
    from policy.sources import familiar_key

    key = familiar_key(attempt.source)
    if key is None:
        why = "local" if attempt.source == LOCAL else "no source known"
        state = f"always familiar ({why})"
    else:
        state = "familiar" if key in history.familiar_sources else "unfamiliar"
    return {"source": attempt.source, "key": key, "familiarity": state}


def block_state(attempt, history, settings) -> dict:
    """The address's block: its key (IPv4 address, IPv6 /64) and whether it is blocked,
    never blockable (no address, or in address_block.ignore), or not blocked now."""
    from policy.rules import block_active, blockable
    from policy.sources import block_key

    key = blockable(attempt, settings)
    block = history.address_block
    found = {"address": key, "blocked": False, "blocked_since": None, "ends": None, "blocks": 0}
    if key is None:
        never = "never blocked: not an address"
        if block_key(attempt.source) is not None:
            never = "never blocked: in address_block.ignore"
        return {**found, "address": block_key(attempt.source), "state": never}
    if block is not None:
        found["blocks"] = block.count
    if not block_active(block, attempt.time):
        return {**found, "state": "not blocked"}
    return {
        **found,
        "blocked": True,
        "blocked_since": when(block.blocked_at),
        "ends": when(block.expires) if block.expires is not None else None,
        "state": f"blocked since {when(block.blocked_at)} "
        + lasts(block.expires, attempt.time, "until unblocked"),
    }


def facts(attempt, history, settings) -> dict:
    """What the smart rules read, for those that are on: `source` and `address_block`."""
    found = {}
    if settings.lockout.unfamiliar_attempts:
        found["source"] = familiarity(attempt, history)
    if settings.address_block.enabled:
        found["address_block"] = block_state(attempt, history, settings)
    return found


def run(args) -> int:
    from pam_guard.gate import Gate
    from policy.addresses import parse_address

    settings = settings_for(args)
    user = check_user(args.user)
    address = None if args.ip.lower() == "local" else parse_address(args.ip)
    source = _source(args.channel, args.ip)
    gate = Gate(settings)
    try:
        attempt = gate.attempt(user, args.channel, args.service, address, args.ip, source=source)
        with directory_errors(f"look up {user}", settings.custom_authentication.bind_dn):
            verdict, history = gate.explain(attempt)
    finally:
        gate.close()
    rules = _rule_lines(attempt, history, settings)
    found = facts(attempt, history, settings)
    if args.json:
        _print_json(user, address, args.service, verdict, rules, found, settings)
    else:
        _print_text(args, attempt, verdict, rules, found, settings)
    return 0


def _print_json(user, address, service, verdict, rules, found, settings) -> None:
    from policy.rules import denies

    print_json(
        {
            "user": user,
            "address": address,
            "service": service,
            "allowed": verdict.allowed,
            "reasons": list(verdict.reasons),
            "status_after": verdict.status,
            "status_why": verdict.status_why,
            "rules": [
                {"rule": n, "result": r, "denies": r != "passes" and denies(r, settings)}
                for n, r in rules
            ],
            **found,
        }
    )


def _print_text(args, attempt, verdict, rules, found, settings) -> None:
    from policy.rules import denies

    if attempt.address is None and args.ip.lower() != "local":
        print(f"note: {args.ip!r} is not an address; treated as no address (like a local login)")
    if "source" in found:
        source = found["source"]
        key = f" (network {source['key']})" if source["key"] not in (None, source["source"]) else ""
        print(f"source:  {source['source'] or '-'}{key}: {source['familiarity']}")
    if "address_block" in found:
        block = found["address_block"]
        print(f"block:   {block['address'] or '-'}: {block['state']}")
    width = max(len(name) for name, _result in rules)
    for name, result in rules:
        effect = (
            ""
            if result == "passes"
            else (" -> refuses" if denies(result, settings) else " -> noted, let in")
        )
        print(f"  {name:<{width}} {result}{effect}")
    reasons = ", ".join(verdict.reasons)
    if verdict.until is not None:  # a lock or block that lifts by itself
        reasons += f"; {time_left(verdict.until, attempt.time)} left"
    print(
        f"verdict: {'ALLOW' if verdict.allowed else 'DENY'}" + (f" ({reasons})" if reasons else "")
    )
    print(f"status after this login: {verdict.status} ({verdict.status_why})")
