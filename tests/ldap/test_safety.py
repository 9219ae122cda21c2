"""Safe LDAP use against the real slapd: escaping, timeouts, bind trouble, TLS, reuse."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from pam_guard.directory import DirectoryConfigError, user_filter
from pam_guard.errors import DirectoryError
from tests.support.fixtures import write_secret
from tests.support.slapd import READER_DN, free_port, start_slapd, stop_slapd


def test_filter_escapes_the_user_name():
    assert user_filter("(uid={user})", "*)(uid=*") == r"(uid=\2a\29\28uid=\2a)"
    assert user_filter("(uid={user})", "bob") == "(uid=bob)"


@pytest.mark.parametrize("name", ["*)(uid=*", "*", "a*", "x)(|(uid=*"])
def test_injected_user_finds_nobody(slapd, directory, name):
    uid, _, dn = slapd.add_user()
    for _ in range(3):
        slapd.bind_ok(dn, "wrong")
    found = directory(admin=True)
    assert found.state(uid) == "locked"
    assert found.state(name) is None
    assert found.describe(name)["found"] is False
    assert found.unlock(name) is False
    assert found.state(uid) == "locked", "an injected name unlocked nobody"


def test_user_with_special_characters_is_found(slapd, directory):
    uid, _, _ = slapd.add_user(uid="o'brien*(x)")
    view = directory().describe(uid)
    assert view["found"] and view["dn"].startswith("uid=o'brien")


def test_ambiguous_filter_is_an_error(slapd, directory):
    slapd.add_user(uid="twin-a")
    slapd.add_user(uid="twin-b")
    found = directory(user_filter="(|(uid={user})(uid=twin-b))")
    with pytest.raises(DirectoryError, match="more than one"):
        found.state("twin-a")


def test_stopped_slapd_is_an_error_within_the_timeout(directory):
    port = free_port()  # nothing listens there
    found = directory(url=f"ldap://127.0.0.1:{port}", timeout_seconds=1)
    started = time.monotonic()
    with pytest.raises(DirectoryError, match="unreachable"):
        found.state("anyone")
    assert time.monotonic() - started < 2


def test_silent_server_is_an_error_within_the_timeout(directory):
    """A server that accepts and never answers (a hung slapd): the receive timeout fires."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        found = directory(url=f"ldap://127.0.0.1:{listener.getsockname()[1]}", timeout_seconds=1)
        started = time.monotonic()
        with pytest.raises(DirectoryError):
            found.state("anyone")
        assert time.monotonic() - started < 2.5
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def test_paused_slapd_on_a_reused_connection_costs_one_timeout(slapd, directory):
    uid, _, _ = slapd.add_user()
    found = directory(timeout_seconds=1)
    assert found.state(uid) is None  # the connection is open now
    slapd.pause()
    try:
        started = time.monotonic()
        with pytest.raises(DirectoryError):
            found.state(uid)
        assert time.monotonic() - started < 2.5
    finally:
        slapd.resume()
    assert found.state(uid) is None, "the next call reconnects"


def test_connection_is_reused_and_recreated_after_a_restart(directory):
    server = start_slapd()
    try:
        uid, _, _ = server.add_user()
        found = directory(url=server.url)
        assert found.state(uid) is None
        first = found._conn
        assert found.state(uid) is None
        assert found._conn is first, "one connection per Directory"
        server.stop()
        with pytest.raises(DirectoryError):
            found.state(uid)
        assert found._conn is None
        server.start()
        assert found.state(uid) is None
        first = found._conn
        # The server restarts behind an open connection: the broken one is replaced at once.
        server.stop()
        server.start()
        assert found.state(uid) is None
        assert found._conn is not first
    finally:
        stop_slapd(server)


def test_wrong_bind_password_is_an_error(slapd, directory, tmp_path):
    uid, _, _ = slapd.add_user()
    bad = write_secret(tmp_path / "bad.pw", "not the password")
    found = directory(bind_password_file=bad)
    with pytest.raises(DirectoryError, match="invalid credentials"):
        found.state(uid)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_bind_password_file_readable_by_others_is_refused(slapd, directory, tmp_path, mode):
    from tests.support.slapd import READER_PASSWORD

    uid, _, _ = slapd.add_user()
    path = write_secret(tmp_path / "open.pw", READER_PASSWORD, mode)
    with pytest.raises(DirectoryConfigError, match=f"mode {mode:04o}.*chmod 600"):
        directory(bind_password_file=path).state(uid)
    # The same file, 0600, works: the refusal was about the mode alone.
    import os

    os.chmod(path, 0o600)
    assert directory(bind_password_file=path).state(uid) is None


def test_missing_bind_password_file(directory, tmp_path):
    with pytest.raises(DirectoryConfigError, match="cannot open"):
        directory(bind_password_file=str(tmp_path / "absent")).state("x")
    with pytest.raises(DirectoryConfigError, match="bind_password_file is empty"):
        directory(bind_password_file="").state("x")


def test_anonymous_bind_that_may_not_see_the_base(slapd, directory):
    """No bind DN means an anonymous bind; the test ACLs hide ou=people from it: say so."""
    uid, _, _ = slapd.add_user()
    with pytest.raises(DirectoryError, match="does not exist or the bind '\\(anonymous\\)'"):
        directory(bind_dn="", bind_password_file="").state(uid)


def test_ldaps_with_the_test_ca(slapd, slapd_tls_files, directory):
    uid, _, dn = slapd.add_user()
    for _ in range(3):
        slapd.bind_ok(dn, "wrong")
    found = directory(url=slapd.ldaps_url, ca_file=slapd_tls_files[0])
    assert found.state(uid) == "locked"


def test_starttls_with_the_test_ca(slapd, slapd_tls_files, directory):
    uid, _, _ = slapd.add_user()
    found = directory(starttls=True, ca_file=slapd_tls_files[0])
    assert found.state(uid) is None
    assert found._conn.tls_started


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_tls_refuses_a_server_the_ca_did_not_sign(slapd, directory, tmp_path, how):
    from tests.support.slapd import make_test_ca

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other_ca = make_test_ca(str(other_dir))[0]
    if how == "ldaps":
        found = directory(url=slapd.ldaps_url, ca_file=other_ca)
    else:
        found = directory(starttls=True, ca_file=other_ca)
    with pytest.raises(DirectoryError):
        found.state("anyone")


def test_reader_dn_is_the_bind(directory):
    assert directory().settings.bind_dn == READER_DN


def test_ldapi_unix_socket(slapd, directory):
    uid, _, dn = slapd.add_user()
    for _ in range(3):
        slapd.bind_ok(dn, "wrong")
    assert directory(url=slapd.ldapi_url).state(uid) == "locked"
