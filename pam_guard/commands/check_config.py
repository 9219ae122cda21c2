"""`pam-guard check-config`: validate the config, refresh the login path's snapshot, print it."""

from __future__ import annotations

from pam_guard.commands.common import print_json
from pam_guard.config import (
    _stat_config,
    check_store_directory,
    config_path,
    parse_file,
    render_toml,
    write_snapshot,
)
from policy.settings import settings_to_plain


def register(sub) -> None:
    parser = sub.add_parser("check-config", help="validate the config and print effective settings")
    parser.set_defaults(func=run)


def run(args) -> int:
    path = config_path(args.config)
    st = _stat_config(path)
    settings = parse_file(path)
    check_store_directory(settings)
    write_snapshot(path, settings, st)
    if args.json:
        print_json(settings_to_plain(settings))
    else:
        print(f"# {path}: OK")
        print(render_toml(settings))
    return 0
