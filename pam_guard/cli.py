"""`pam-guard`: the admin command. Each subcommand lives in pam_guard/commands/<name>.py.

Exit codes (SPEC §7): 0 ok, 1 not found or refused, 2 usage or config error, 3 store or
directory unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys

from pam_guard.commands import (
    COMMANDS,
    EXIT_CONFIG,
    EXIT_STORE,
    CommandError,
    accept_json_anywhere,
)
from pam_guard.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pam-guard", description="pam-guard admin command")
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default $PAM_GUARD_CONFIG or /etc/pam-guard/pam-guard.toml)")
    parser.add_argument("--json", action="store_true", help="print records as JSON")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    accept_json_anywhere(parser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        print(f"pam-guard: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except CommandError as exc:
        print(f"pam-guard: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `pam-guard history | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not print a second BrokenPipeError.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # store errors from SQLAlchemy surface here
        from pam_guard.commands import store_error_types

        if isinstance(exc, store_error_types()):
            print(f"pam-guard: store unreachable: {exc}", file=sys.stderr)
            return EXIT_STORE
        raise


if __name__ == "__main__":
    sys.exit(main())
