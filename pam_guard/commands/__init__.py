"""The subcommands of `pam-guard`, one module each, and what they share.

Each module has `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
"""

from __future__ import annotations

import importlib

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
    from sqlalchemy.exc import OperationalError, DatabaseError

    from store.db import StoreError

    return (StoreError, OperationalError, DatabaseError)


# Order here is the order of `pam-guard --help`.
_NAMES = ["init_store", "check_config"]

COMMANDS = [importlib.import_module(f"pam_guard.commands.{name}") for name in _NAMES]
