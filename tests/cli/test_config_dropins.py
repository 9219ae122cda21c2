"""Drop-in config files (pam-guard.toml(5)): `pam-guard.d/*.toml` beside the main file,
applied in name order over it key by key; each checked and validated as the main file is;
`check-config` names the file that set each value; the login path's snapshot follows them."""

from __future__ import annotations

import os
import re

import pytest

from pam_guard import config
from tests.support.fixtures import write_dropin


def dropin(site, name: str, text: str, mode: int = 0o600) -> str:
    return write_dropin(site.config, name, text, mode)


def effective(site) -> dict[str, tuple[str, str]]:
    """check-config's text output: 'section.key' -> (value, file that set it)."""
    out: dict[str, tuple[str, str]] = {}
    section = ""
    for line in site.ok("check-config").splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            section = header.group(1)
            continue
        setting = re.fullmatch(r"(\w+) = (.*)  # (.+)", line)
        if setting:
            out[f"{section}.{setting.group(1)}"] = (setting.group(2), setting.group(3))
    return out


def test_dropins_apply_in_name_order_over_the_main_file(site):
    site.write({"lockout": {"max_attempts": 4, "period_minutes": 7}})
    late = dropin(site, "20-late.toml", "[lockout]\nmax_attempts = 9\n")
    early = dropin(
        site,
        "10-early.toml",
        "[lockout]\nmax_attempts = 6\nadmin_multiplier = 3\n[concurrent]\nenabled = true\n",
    )
    settings = effective(site)
    assert settings["lockout.max_attempts"] == ("9", late)
    assert settings["lockout.admin_multiplier"] == ("3", early)
    assert settings["concurrent.enabled"] == ("true", early)
    assert settings["lockout.period_minutes"] == ("7", site.config)
    assert settings["lockout.unlock_after_minutes"] == ("0", "default")
    assert site.settings.lockout.max_attempts == 9  # the library the hook uses agrees


def test_check_config_lists_the_files_it_read(site):
    first = dropin(site, "a.toml", "[trackstat]\nlogins = 20\n")
    second = dropin(site, "b.toml", "")
    out = site.ok("check-config")
    assert (
        out.index(f"# {site.config}: OK")
        < out.index(f"# {first}: OK")
        < out.index(f"# {second}: OK")
    )


def test_only_toml_files_that_are_not_hidden_count(site):
    for name in ("x.toml~", "x.toml.dpkg-old", ".hidden.toml", "README"):
        dropin(site, name, "this is not TOML [")
    assert site.ok("check-config").count(": OK") == 1


def test_a_table_value_is_replaced_whole(site):
    dropin(site, "10-limits.toml", "[status]\nsession_limits = { sshd = 2, vpn = 1 }\n")
    dropin(site, "20-limits.toml", "[status]\nsession_limits = { wifi = 3 }\n")
    assert site.json("check-config")["status"]["session_limits"] == {"wifi": 3}


@pytest.mark.parametrize(
    "text, key",
    [
        ("[lockout]\nmax_atempts = 3\n", "lockout.max_atempts"),
        ("[lockout]\nmax_attempts = 0\n", "lockout.max_attempts"),
        ("[lockout\n", "<syntax>"),
        ("[nosuch]\n", "nosuch"),
    ],
)
def test_an_invalid_dropin_is_a_config_error_naming_it(site, text, key):
    dropin(site, "10-fine.toml", "[lockout]\nmax_attempts = 5\n")
    bad = dropin(site, "20-bad.toml", text)
    for args in (("check-config",), ("status",), ("history",)):
        done = site.cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert f"config error: {bad}: {key}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("mode", [0o620, 0o666])
def test_a_dropin_others_may_write_is_refused(site, mode):
    bad = dropin(site, "10-open.toml", "", mode=mode)
    done = site.cli("status")
    assert done.returncode == 2
    assert bad in done.stderr and "writable by group or others" in done.stderr


def test_a_dropin_directory_others_may_write_is_refused(site):
    dropin(site, "10-fine.toml", "")
    directory = os.path.join(site.dir, "pam-guard.d")
    os.chmod(directory, 0o777)
    done = site.cli("check-config")
    assert done.returncode == 2
    assert directory in done.stderr and "<directory>" in done.stderr


def test_a_dropin_owned_by_another_user_is_refused(site):
    bad = dropin(site, "10-theirs.toml", "")
    os.chown(bad, 65534, 65534)
    done = site.cli("check-config")
    assert done.returncode == 2 and f"{bad} is owned by uid 65534" in done.stderr


def test_a_dropin_directory_that_is_a_file_is_a_config_error(site):
    with open(os.path.join(site.dir, "pam-guard.d"), "w") as handle:
        handle.write("")
    done = site.cli("check-config")
    assert done.returncode == 2 and "pam-guard.d: <directory>: cannot read" in done.stderr


def test_the_snapshot_follows_dropins_added_changed_and_removed(site, monkeypatch):
    """The login path's snapshot: rebuilt when a drop-in comes, changes or goes; read as it
    is otherwise (tomllib stays unimported)."""
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", site.env["PAM_GUARD_CACHE_DIR"])
    assert config.load_settings(site.config).lockout.max_attempts == 3
    path = dropin(site, "10-lock.toml", "[lockout]\nmax_attempts = 7\n")
    assert config.load_settings(site.config).lockout.max_attempts == 7
    with open(path, "w") as handle:
        handle.write("[lockout]\nmax_attempts = 8   # a longer file: a new size\n")
    assert config.load_settings(site.config).lockout.max_attempts == 8
    renamed = path.replace("10-lock", "20-lock")
    dropin(site, "15-mid.toml", "[lockout]\nmax_attempts = 5\n")
    os.rename(path, renamed)  # now after 15-mid: order decides
    assert config.load_settings(site.config).lockout.max_attempts == 8
    os.unlink(renamed)
    assert config.load_settings(site.config).lockout.max_attempts == 5
    os.unlink(os.path.join(site.dir, "pam-guard.d", "15-mid.toml"))
    assert config.load_settings(site.config).lockout.max_attempts == 3


def test_a_current_snapshot_is_used_with_dropins(site, monkeypatch):
    monkeypatch.setenv("PAM_GUARD_CACHE_DIR", site.env["PAM_GUARD_CACHE_DIR"])
    dropin(site, "10-lock.toml", "[lockout]\nmax_attempts = 7\n")
    config.load_settings(site.config)

    def no_parsing(*_args, **_kwargs):
        raise AssertionError("parsed although the snapshot is current")

    monkeypatch.setattr(config, "parse_file", no_parsing)
    assert config.load_settings(site.config).lockout.max_attempts == 7
