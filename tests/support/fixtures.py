"""Building blocks for pytest fixtures that several test areas share."""

from __future__ import annotations


def made_then_removed(create, remove):
    """Generator body of a factory fixture: yields `make`, which calls `create` and keeps
    what it made; at teardown `remove` is called on each, newest first.

        @pytest.fixture
        def make_guard():
            yield from made_then_removed(GuardConfig, GuardConfig.remove)
    """
    made = []

    def make(*args, **kwargs):
        thing = create(*args, **kwargs)
        made.append(thing)
        return thing

    yield make
    for thing in reversed(made):
        remove(thing)


def write_secret(path, text: str, mode: int = 0o600) -> str:
    """`text` and a newline into a file made with `mode` from the start (never readable by
    others, not even for a moment)."""
    import os

    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.chmod(str(path), mode)
    return str(path)


def write_site(root, raw: dict, overrides: dict):
    """A test site's files under `root`: the config rendered from `raw` with `overrides`
    ({section: {key: value}}) merged in (mode 0644), an audit key (0600) and the migrated
    store named by raw["store"]["url"]. Returns (config path, settings)."""
    import os

    from pam_guard.config import render_toml
    from policy.settings import build_settings
    from store.migrate import create_or_upgrade

    config = str(root / "pam-guard.toml")
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    settings = build_settings(raw, config)
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(render_toml(settings))
    os.chmod(config, 0o644)
    write_secret(root / "audit.key", os.urandom(32).hex())
    create_or_upgrade(raw["store"]["url"])
    return config, settings


def write_dropin(config: str, name: str, text: str, mode: int = 0o644) -> str:
    """A drop-in file pam-guard.d/NAME beside the config file `config` (the directory made
    0755 when missing); returns its path."""
    import os

    from pam_guard.config import dropin_dir

    directory = dropin_dir(config)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def terminate(proc, timeout: float = 10) -> None:
    """End a test server: SIGTERM, and SIGKILL if it has not exited within `timeout`."""
    import subprocess

    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def raising(exc: BaseException):
    """A stand-in for any function or method: every call raises `exc` (monkeypatch it in
    where a test needs a bug or trouble at that place)."""

    def raise_it(*_args, **_kwargs):
        raise exc

    return raise_it
