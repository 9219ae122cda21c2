"""`pam-guard init-store`: create the store, or upgrade its schema to the newest migration."""

from __future__ import annotations

from pam_guard.commands.common import settings_for


def register(sub) -> None:
    parser = sub.add_parser("init-store", help="create or upgrade the store's schema")
    parser.set_defaults(func=run)


def run(args) -> int:
    from store.migrate import create_or_upgrade

    settings = settings_for(args)
    revision = create_or_upgrade(settings.store.url)
    print(f"store ready at schema revision {revision}")
    return 0
