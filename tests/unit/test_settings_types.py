"""policy/settings_types.pyi, mypy's view of the settings, is what SCHEMA gives now: a key
added, renamed or retyped in SCHEMA and not written again to the stub fails here."""

from __future__ import annotations

from policy import settings_stub
from policy.settings import DEFAULT_SETTINGS, SCHEMA


def test_the_stub_is_generated_from_the_schema():
    with open(settings_stub.STUB, encoding="utf-8") as handle:
        assert handle.read() == settings_stub.stub_text(), (
            "SCHEMA changed: run /opt/pam-guard/bin/python -m policy.settings_stub"
        )


def test_every_section_and_key_is_in_the_stub_with_its_default_type():
    text = settings_stub.stub_text()
    for section in SCHEMA:
        assert f"    {section}: {settings_stub.section_class(section)}" in text
        values = getattr(DEFAULT_SETTINGS, section)
        for field, value in zip(values._fields, values, strict=True):
            kind = {bool: "bool", int: "int", float: "float", str: "str", tuple: "tuple["}[
                type(value)
            ]
            assert f"    {field}: {kind}" in text, (section, field)
