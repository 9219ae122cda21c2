"""pam-guard's key=value log lines: event and rhost first, values that could fool a parser
quoted and escaped."""

from __future__ import annotations

import re

from pam_guard.logline import line, value

ANCHOR = re.compile(r"^event=(\S+) rhost=(\S+) reason=(\S+) ")


def test_plain_values_stand_bare_and_order_is_kept():
    assert line(
        "refused", "203.0.113.7", "locked", user="alice", service="sshd", channel="pam"
    ) == ("event=refused rhost=203.0.113.7 reason=locked user=alice service=sshd channel=pam")


def test_no_address_is_a_dash():
    assert line("lock", None, None, user="bob") == "event=lock rhost=- reason=- user=bob"


def test_a_user_name_cannot_forge_a_field():
    forged = 'x rhost=198.51.100.1 reason="y'
    text = line("refused", "203.0.113.7", "locked", user=forged)
    assert ANCHOR.match(text).groups() == ("refused", "203.0.113.7", "locked")
    assert text.split('"')[0] == "event=refused rhost=203.0.113.7 reason=locked user="
    assert value(forged) == '"x rhost=198.51.100.1 reason=\\"y"'


def test_empty_quotes_backslashes_and_control_characters():
    assert value("") == '""'
    assert value("a\\b") == '"a\\\\b"'
    assert value("a\nb") == '"a\\x0ab"'
    assert value("\u202e") == '"\\u202e"'
    assert value(3) == "3"


def test_an_attempts_line_names_its_channel_and_a_raw_source_that_is_no_address():
    from pam_guard.logline import attempt_line
    from policy.types import Attempt

    station = Attempt("bob", "radius", "wifi", None, "00-11-22-33-44-55", "nas=n1", None, 1.0)
    assert attempt_line("refused", station, "locked", phase="authorize") == (
        "event=refused rhost=- reason=locked user=bob service=wifi channel=radius "
        "rhost_raw=00-11-22-33-44-55 phase=authorize"
    )
    vpn = station._replace(address="203.0.113.9", address_raw="203.0.113.9")
    assert attempt_line("lock", vpn, "locked").startswith(
        "event=lock rhost=203.0.113.9 reason=locked user=bob service=wifi channel=radius"
    )
