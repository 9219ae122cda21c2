"""The subcommands of `pam-guard`, one module each, and what they share.

Each module has `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
"""

from __future__ import annotations

import importlib
import pkgutil

EXIT_OK = 0
EXIT_REFUSED = 1  # not found or refused
EXIT_CONFIG = 2  # usage or config error
EXIT_STORE = 3  # store or directory unreachable


class CommandError(Exception):
    """A failure to report to the admin with an exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def store_error_types() -> tuple:
    from sqlalchemy.exc import DatabaseError, OperationalError

    from store.db import StoreError

    return (StoreError, OperationalError, DatabaseError)


# The order of `pam-guard --help`; every module in this package that has `register` is a
# subcommand, those not named here come after, alphabetically.
_ORDER = [
    "status",
    "unlock",
    "lock",
    "history",
    "trackstat",
    "exempt",
    "ip",
    "blocks",
    "unblock",
    "explain",
    "sessions",
    "notify",
    "deliver",
    "prune",
    "audit",
    "check_config",
    "init_store",
]


def accept_json_anywhere(parser) -> None:
    """Let `--json` also follow the subcommand (`pam-guard status --json`).

    The flag is added to every subcommand parser, nested ones too, with a suppressed default,
    so that it sets args.json when given there and leaves the global flag alone when not.
    """
    import argparse

    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for subparser in action.choices.values():
            if "--json" not in subparser._option_string_actions:
                subparser.add_argument(
                    "--json",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="print records as JSON",
                )
            accept_json_anywhere(subparser)


def _discover() -> list:
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name != "common"]
    names.sort(key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names]
    return [m for m in modules if hasattr(m, "register")]


COMMANDS = _discover()
