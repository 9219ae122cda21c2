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
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default $PAM_GUARD_CONFIG or /etc/pam-guard/pam-guard.toml)",
    )
    parser.add_argument("--json", action="store_true", help="print records as JSON")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    accept_json_anywhere(parser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # --help writes too
        code = args.func(args) or 0
        # Output still buffered goes now, so that a reader gone away (`| head`) is seen here
        # and not as an "Exception ignored" message at the interpreter's exit.
        sys.stdout.flush()
        return code
    except ConfigError as exc:
        print(f"pam-guard: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except CommandError as exc:
        print(f"pam-guard: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `pam-guard history | head`: the reader left, and the command ends quietly, as any
        # Unix tool does. stdout points at /dev/null so that the interpreter's final flush
        # does not raise a second BrokenPipeError.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in DRIVERS:
            raise
        print(f"pam-guard: store unreachable: {missing_driver(exc.name or '')}", file=sys.stderr)
        return EXIT_STORE
    except Exception as exc:  # store errors from SQLAlchemy surface here
        from pam_guard.commands import store_error_types

        if isinstance(exc, store_error_types()):
            print(f"pam-guard: store unreachable: {one_line(exc)}", file=sys.stderr)
            return EXIT_STORE
        raise


# The database drivers a store URL may need, imported only by the stores that use them.
DRIVERS = ("psycopg2",)


def missing_driver(name: str) -> str:
    """What to do when a store's driver cannot be imported."""
    return (
        f"the PostgreSQL driver {name.split('.')[0]} is not installed in {sys.prefix} "
        f"(install it: {sys.prefix}/bin/pip install psycopg2-binary)"
    )


def one_line(exc: BaseException) -> str:
    """A store error as one line: the driver's own message (SQLAlchemy's wrapper adds the
    statement and a link on lines of their own), its lines joined."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    lines = [ln.strip() for ln in text.splitlines()]
    return " ".join(ln for ln in lines if ln and not ln.startswith("(Background on this error"))


if __name__ == "__main__":
    sys.exit(main())
