"""The RADIUS module's reads before the gate's path (radius_hook.module): a bug there is
counted and logged (Guard.surprises) and the request is still decided by the gate's path;
store trouble goes that way quietly, as it always did. On a real SQLite store, the module
loaded as rlm_python3 would load it."""

from __future__ import annotations

import pytest

from radius_hook import module
from store.db import StoreError
from tests.support.fixtures import raising

REQUEST = {"request": (("User-Name", "alice"), ("NAS-IP-Address", "192.0.2.1"))}


@pytest.fixture
def loaded(guard, monkeypatch):
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", guard.cache_dir)
    logged: list = []
    monkeypatch.setattr(module, "log", lambda level, text: logged.append((level, text)))
    made = module.Guard(guard.path)
    made.load()
    assert made.error == "" and made.hot is not None
    monkeypatch.setattr(module, "_guard", made)
    made.logged = logged
    yield made
    made.close()


def test_a_bug_reading_the_account_is_counted_logged_once_and_decided_by_the_gate(
    loaded, monkeypatch
):
    monkeypatch.setattr(loaded.gate, "account_state", raising(TypeError("bad")))
    assert module.authorize(REQUEST) == module.NOOP
    assert module.authorize(REQUEST) == module.NOOP
    assert loaded.surprises.counts == {"authorize: account state": 2}
    said = [text for level, text in loaded.logged if "unexpected" in text]
    assert len(said) == 1 and said[0].startswith("authorize: account state: unexpected TypeError")


def test_a_bug_reading_the_whole_history_is_counted_and_decided_by_the_gate(loaded, monkeypatch):
    # No kept copies (rules that read more than the account, PostgreSQL): the gate's read.
    monkeypatch.setattr(loaded.accounts, "copies", None)
    monkeypatch.setattr(loaded.gate, "history_for", raising(KeyError("x")))
    assert module.authorize(REQUEST) == module.NOOP
    assert loaded.surprises.counts == {"authorize: account state": 1}


def test_store_trouble_reading_the_account_stays_quiet(loaded, monkeypatch):
    monkeypatch.setattr(loaded.gate, "account_state", raising(StoreError("down")))
    assert module.authorize(REQUEST) == module.NOOP  # the gate's path reads the store itself
    assert loaded.surprises.counts == {}
    assert not [text for _level, text in loaded.logged if "unexpected" in text]


def test_a_bug_reaching_an_entry_point_is_counted_and_logged_once_a_minute(loaded, monkeypatch):
    """What gets past every inner path (a bug) must not flood radiusd's log either."""
    monkeypatch.setattr(
        module, "ENTRY_SURPRISES", module.Surprises(lambda text: module.log(module.L_ERR, text))
    )
    monkeypatch.setattr(module.rq, "fact_key", raising(AttributeError("boom")))
    for _ in range(3):
        code, _reply = module.authorize(REQUEST)
        assert code == module.REJECT  # on_store_error = deny (the default)
    assert module.ENTRY_SURPRISES.counts == {"authorize": 3}
    said = [text for _level, text in loaded.logged if text.startswith("authorize: unexpected")]
    assert len(said) == 1 and "AttributeError: boom" in said[0]


def test_a_config_that_will_not_load_is_logged_once_a_minute_not_every_retry(guard, monkeypatch):
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", guard.cache_dir)
    logged: list = []
    monkeypatch.setattr(module, "log", lambda level, text: logged.append(text))
    with open(guard.path) as handle:
        good = handle.read()
    with open(guard.path, "w") as handle:
        handle.write(good + "\n[lockout]\nmax_attempts = 'three'\n")
    made = module.Guard(guard.path)
    try:
        for _ in range(3):  # radiusd retries every RETRY_SECONDS
            made.load()
        assert made.gate is None and len(logged) == 1 and "max_attempts" in logged[0]
        with open(guard.path, "w") as handle:  # another error is said at once
            handle.write(good + "\n[nosuchsection]\nx = 1\n")
        made.load()
        assert len(logged) == 2
    finally:
        made.close()
