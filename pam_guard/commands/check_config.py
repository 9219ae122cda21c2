"""`pam-guard check-config`: validate the config and its drop-ins, refresh the login path's
snapshot, print the effective settings and which file set each one."""

from __future__ import annotations

from pam_guard.commands.common import print_json
from pam_guard.config import (
    check_store_directory,
    config_files,
    config_path,
    origins,
    read_layers,
    render_toml,
    settings_from_layers,
    write_snapshot,
)
from policy.settings import settings_to_plain


def register(sub) -> None:
    parser = sub.add_parser(
        "check-config",
        help="validate the config and its drop-ins, and "
        "print the effective settings with the file that set each",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    path = config_path(args.config)
    files = config_files(path)
    layers = read_layers(path, files)
    settings = settings_from_layers(path, layers)
    check_store_directory(settings)
    write_snapshot(path, settings, files)
    if args.json:
        print_json(settings_to_plain(settings))
    else:
        for name, _st in files:
            print(f"# {name}: OK")
        print(render_toml(settings, origins(layers)))
    return 0
