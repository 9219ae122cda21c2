"""Issue 18's rules, every one on, for the benches' "lockout rules" configurations (SPEC §2:
[lockout]'s smart lockout, growing locks and ignore_repeated_password, [address_block])."""

LOCKOUT_RULES = {
    "lockout": {
        "unfamiliar_attempts": 3,
        "unlock_after_minutes": 5,
        "increment": 2.0,
        "permanent_after": 4,
        "ignore_repeated_password": True,
    },
    "address_block": {"enabled": True},
}
