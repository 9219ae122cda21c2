"""Writes policy/settings_types.pyi: the settings as typed NamedTuples, for mypy only.

The settings are namedtuples built at run time from SCHEMA (policy.settings), which mypy
cannot see into; the stub gives every key its checker's return type, so a misspelt key or a
wrong type in policy/ is a type error. Generated, never edited: tests/unit/test_settings_types.py
fails when SCHEMA changes and the stub is not written again:

    /opt/pam-guard/bin/python -m policy.settings_stub
"""

from __future__ import annotations

import os

from policy.settings import SCHEMA, _field

STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings_types.pyi")


def section_class(section: str) -> str:
    return section.title().replace("_", "") + "Settings"


def stub_text() -> str:
    """The stub, laid out as `ruff format` lays out a .pyi (one blank line between classes)."""
    header = (
        '"""Typed settings for mypy, generated from policy.settings.SCHEMA by\n'
        "`python -m policy.settings_stub`: never edit by hand.\n"
        '"""\n\n'
        "from typing import NamedTuple\n"
    )
    blocks = []
    for section, keys in SCHEMA.items():
        fields = [
            f"    {_field(section, key)}: {check.__annotations__['return']}"
            for key, (_default, check) in keys.items()
        ]
        blocks.append("\n".join([f"class {section_class(section)}(NamedTuple):", *fields]))
    fields = [f"    {section}: {section_class(section)}" for section in SCHEMA]
    blocks.append("\n".join(["class Settings(NamedTuple):", *fields, "    source: str"]))
    return header + "\n" + "\n\n".join(blocks) + "\n"


if __name__ == "__main__":
    with open(STUB, "w", encoding="utf-8") as handle:
        handle.write(stub_text())
    print(f"wrote {STUB}")
