"""pam_guard.config.toml_value writes TOML that reads back as the value it was given (check-config
prints it, the man pages show defaults with it, the tests write configs with it)."""

from __future__ import annotations

import tomllib

from hypothesis import given
from hypothesis import strategies as st

from pam_guard.config import toml_value


def _read_back(value):
    return tomllib.loads(f"x = {toml_value(value)}")["x"]


@given(st.text())
def test_any_string_reads_back(text):
    assert _read_back(text) == text


def test_strings_that_need_escapes_read_back():
    for text in ('say "hi"', "C:\\path", "two\nlines", "tab\there", "del\x7f", "grüße 🙂", ""):
        assert _read_back(text) == text


def test_tables_with_keys_toml_would_split_or_reject_read_back():
    table = {"Wireless-802.11": "wifi", "Virtual": "vpn", "with space": 1, "": True}
    assert _read_back(table) == table
    assert toml_value({}) == "{}" and _read_back({}) == {}


def test_lists_and_scalars_read_back():
    for value in ([1, 2.5, "a"], [], True, False, 0, -3, 1.25):
        assert _read_back(value) == value
