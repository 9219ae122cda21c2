"""Odd input (SPEC §12): addresses, user names, settings."""

import pytest

from policy.addresses import matches, normalise_entry, parse_address, parse_network
from policy.settings import DEFAULT_SETTINGS, SettingsError, build_settings, settings_to_plain
from policy.usernames import escape, invalid_reason


@pytest.mark.parametrize(
    "text,expected",
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:0db8:0000::0001", "2001:db8::1"),
        ("00-11-22-33-44-55", None),
        ("host.example.com", None),
        ("10.0.0.256", None),
        ("", None),
        (None, None),
        ("1" * 5000, None),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


def test_cidr_entries_and_matching():
    assert normalise_entry("10.1.2.3/8") == "10.0.0.0/8"
    assert normalise_entry("LOCAL") == "local"
    assert normalise_entry("::ffff:10.0.0.0/104") == "10.0.0.0/8"
    assert normalise_entry("10.0.0.0/33") is None
    assert normalise_entry("garbage") is None
    assert parse_network("2001:db8::/32") is not None
    assert matches("10.1.1.1", ("10.0.0.0/8",))
    assert not matches("10.1.1.1", ("2001:db8::/32",))
    assert not matches(None, ("10.0.0.0/8",))
    assert matches(None, ("local",))


@pytest.mark.parametrize(
    "name,why",
    [
        ("alice", None),
        ("Ålice", None),
        ("a" * 256, None),
        ("a" * 257, "longer"),
        ("x" * 10_000, "longer"),
        ("bob\x00admin", "control"),
        ("bob\nroot", "control"),
        ("bob\x7f", "control"),
        ("\u202enimda", "bidirectional"),  # a terminal shows it as "admin"
        ("bob\u2066x\u2069", "bidirectional"),
        ("\u0639\u0644\u064a", None),  # a right-to-left name needs no control to show right
        ("\u0645\u0647\u200c\u0631\u0627\u0646", None),  # ZWNJ belongs in Persian names
        ("", "empty"),
        (b"\xff\xfebob", "UTF-8"),
    ],
)
def test_user_names(name, why):
    found = invalid_reason(name)
    if why is None:
        assert found is None
    else:
        assert found is not None and why in found


def test_escape_is_printable_and_bounded():
    assert escape("bob\x00admin") == "bob\\x00admin"
    assert escape(b"\xffbob") == "\\xffbob"
    long = escape("x" * 10_000)
    assert len(long) < 400 and long.endswith("(10000 chars)")
    assert escape("bob\u2028") == "bob\\u2028"
    assert escape("adm\u202enimda") == "adm\\u202enimda"
    assert escape("\u0639\u0644\u064a") == "\u0639\u0644\u064a"


def test_escape_never_raises_on_lone_surrogates():
    # pam_python may hand over bytes decoded with surrogateescape, or worse.
    assert escape("bob\udcff") == "bob\\xff"
    assert escape("bob\ud800") == "bob\\ud800"
    assert invalid_reason("bob\ud800") == "not valid UTF-8"


def test_absolute_sqlite_url_is_accepted():
    assert (
        build_settings({"store": {"url": "sqlite:////tmp/x.db"}}).store.url == "sqlite:////tmp/x.db"
    )


def test_defaults_match_the_spec():
    s = DEFAULT_SETTINGS
    assert s.store.url == "sqlite:////var/lib/pam-guard/pam-guard.db"
    assert (s.lockout.max_attempts, s.lockout.period_minutes, s.lockout.admin_multiplier) == (
        3,
        5,
        2,
    )
    assert (s.trackstat.logins, s.trackstat.rating, s.trackstat.action) == (15, 20, "email")
    assert (s.concurrent.window_minutes, s.concurrent.action) == (15, "deny")
    assert s.failure.on_store_error == "deny"
    assert s.notify.sender == "pam-guard@localhost"
    assert build_settings(settings_to_plain(s)) == s._replace(source="<defaults>")


@pytest.mark.parametrize(
    "raw,key",
    [
        ({"lockout": {"max_attemps": 3}}, "lockout.max_attemps"),
        ({"lockot": {}}, "lockot"),
        ({"lockout": {"max_attempts": "3"}}, "lockout.max_attempts"),
        ({"lockout": {"max_attempts": 0}}, "lockout.max_attempts"),
        ({"lockout": {"enabled": 1}}, "lockout.enabled"),
        ({"status": {"inside_networks": ["10.0.0.0/33"]}}, "status.inside_networks"),
        ({"store": {"url": "mysql://x"}}, "store.url"),
        ({"store": {"url": "not a url"}}, "store.url"),
        ({"store": {"url": "sqlite:///relative.db"}}, "store.url"),  # relative to the cwd
        ({"status": {"session_limits": {"sshd": -1}}}, "status.session_limits"),
        ({"status": {"session_limits": ["sshd"]}}, "status.session_limits"),
        ({"lockout": {"admin_users": "root"}}, "lockout.admin_users"),
        ({"store": []}, "store"),
        ({"concurrent": {"window_minutes": 1.5}}, "concurrent.window_minutes"),
        ({"custom_authentication": {"url": "http://x"}}, "custom_authentication.url"),
        ({"trackstat": {"action": "block"}}, "trackstat.action"),
        ({"notify": {"on": ["lock", "nope"]}}, "notify.on"),
    ],
)
def test_bad_settings_name_the_key_and_file(raw, key):
    with pytest.raises(SettingsError) as err:
        build_settings(raw, "/etc/x.toml")
    assert err.value.key == key
    assert str(err.value).startswith(f"/etc/x.toml: {key}:")
