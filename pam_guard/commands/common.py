"""Helpers the subcommands share: settings, the SQLAlchemy engine, output."""

from __future__ import annotations

import json
import sys

from pam_guard.config import load_settings


def settings_for(args):
    return load_settings(args.config)


def engine_for(settings):
    from store.migrate import engine_for as make

    return make(settings.store.url, settings.store.timeout_seconds)


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
