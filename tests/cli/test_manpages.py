"""pam-guard(8) and pam-guard.toml(5): generated from the argparse definition and the settings
SCHEMA, complete, rendered by man(1) without warnings, and installed as generated now.

The pages are rendered with groff into plain text for the content checks (one very long line
a paragraph, no hyphenation), so a check reads what an admin reads, not the roff source.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from pam_guard import manpages
from pam_guard.cli import build_parser
from pam_guard.config import toml_value
from policy.settings import SCHEMA
from policy.settings_help import KEYS, SECTIONS
from tests.support.pam import ROOT, VENV_PYTHON

MAN_DIR = "/usr/local/share/man"  # where packaging/install.sh puts them
INSTALLED = {
    "pam-guard.8": f"{MAN_DIR}/man8/pam-guard.8",
    "pam-guard.toml.5": f"{MAN_DIR}/man5/pam-guard.toml.5",
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: scripts/test.sh installs man-db (and groff-base)")
    return path


def render(roff: str) -> str:
    """The page as plain text, one line a paragraph."""
    with tempfile.NamedTemporaryFile("w", suffix=".man") as handle:
        handle.write(roff)
        handle.flush()
        out = subprocess.run(
            [_tool("groff"), "-man", "-Tutf8", "-rLL=3000n", "-P-cbou", handle.name],
            capture_output=True,
            text=True,
            check=True,
        )
    return out.stdout


def sections(text: str, indent: str) -> dict[str, str]:
    """Rendered text split at headings with exactly this indentation: heading -> its body."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(indent) and not line.startswith(indent + " ") and line.strip():
            current = line.strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def flat(text: str) -> str:
    """Each line with its runs of white space made one space, and no indentation."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def has_word(text: str, word: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", flat(text)) is not None


def has_entry(text: str, option: str) -> bool:
    """An entry of its own: a line that starts with the option (after its other spellings)."""
    pattern = r"^(?:-[-\w]*, )*" + re.escape(option) + r"(?: |,|$)"
    return re.search(pattern, flat(text), re.M) is not None


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


@pytest.fixture(scope="module")
def command_text() -> str:
    return render(manpages.command_page())


@pytest.fixture(scope="module")
def config_text() -> str:
    return render(manpages.config_page())


def test_every_subcommand_and_option_is_in_the_command_page(command_text):
    parser = build_parser()
    top = sections(command_text, "")
    global_options = _option_strings(parser)
    for option in global_options:
        assert has_entry(top["OPTIONS"], option), option
    commands = sections(top["COMMANDS"], "   ")
    subparsers = _subparsers(parser)
    assert subparsers and set(subparsers) == set(commands)
    for name, sub in subparsers.items():
        body = commands[name]
        assert has_word(body, f"pam-guard {name}"), name
        # an option every command takes (--json) is listed once, under OPTIONS
        for option in _option_strings(sub) - global_options:
            assert has_entry(body, option), (name, option)
        for nested_name, nested in _subparsers(sub).items():
            assert has_word(body, f"{name} {nested_name}"), (name, nested_name)
            for option in _option_strings(nested) - global_options:
                assert has_entry(body, option), (name, nested_name, option)


def test_exit_codes_and_files_are_in_the_command_page(command_text):
    top = sections(command_text, "")
    for code in (0, 1, 2, 3):
        assert re.search(rf"^{code} ", flat(top["EXIT STATUS"]), re.M), code
    for path in (
        "/etc/pam-guard/pam-guard.toml",
        "/etc/pam-guard/audit.key",
        "/etc/pam-guard/digest.key",
        "/var/lib/pam-guard/pam-guard.db",
        "/opt/pam-guard/hook.py",
        "/opt/pam-guard/bin/pam-guard-exec",
    ):
        assert has_word(top["FILES"], path), path


def test_address_blocks_and_lock_notices_are_in_the_command_page(command_text):
    commands = sections(sections(command_text, "")["COMMANDS"], "   ")
    assert has_word(commands["blocks"], "until unblocked")
    assert has_entry(commands["blocks"], "--all")
    assert has_word(commands["unblock"], "ADDR|CIDR") and has_word(commands["unblock"], "audit")
    assert has_word(commands["notify"], "failure,success,lock")
    assert has_word(commands["explain"], "familiar")
    assert has_word(commands["status"], "unfamiliar")


def test_every_setting_with_its_default_and_meaning_is_in_the_config_page(config_text):
    settings = sections(sections(config_text, "")["SETTINGS"], "   ")
    assert list(settings) == [f"[{section}]" for section in SCHEMA]
    for section, keys in SCHEMA.items():
        body = flat(settings[f"[{section}]"])
        assert " ".join(SECTIONS[section].split()) in body
        for key, (default, check) in keys.items():
            line = " ".join(f"{key} = {toml_value(default)}".split())
            assert re.search(rf"^{re.escape(line)}$", body, re.M), (section, line)
            assert " ".join(KEYS[section][key].split()) in body, (section, key)
            assert f"Value: {manpages.allowed(check)}." in body, (section, key)


def test_every_schema_key_has_one_meaning_and_no_extra():
    assert list(SECTIONS) == list(SCHEMA)
    assert list(KEYS) == list(SCHEMA)
    for section, keys in SCHEMA.items():
        assert sorted(KEYS[section]) == sorted(keys), section
        assert SECTIONS[section].strip()
        for key in keys:
            assert KEYS[section][key].strip(), (section, key)


def test_every_setting_says_what_values_it_takes():
    for section, keys in SCHEMA.items():
        for key, (_default, check) in keys.items():
            text = manpages.allowed(check)
            assert text, f"{section}.{key}: pam_guard.manpages.allowed does not know its checker"
            found = re.fullmatch(r"a whole number from (-?\d+) to (-?\d+)", text)
            if found:  # the range read from the checker is the one it enforces
                low, high = int(found[1]), int(found[2])
                assert check(low) == low and check(high) == high
                for outside in (low - 1, high + 1):
                    with pytest.raises(ValueError):
                        check(outside)


def test_settings_help_stays_off_the_login_path():
    out = subprocess.run(
        ["/usr/bin/python3", "-X", "importtime", "-c", "import policy.settings, policy.decide"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in out.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "policy.settings" in names and "policy.decide" in names
    assert "policy.settings_help" not in names


@pytest.mark.parametrize("page", manpages.PAGES)
def test_pages_render_without_warnings(page, tmp_path):
    path = manpages.write_pages(str(tmp_path))[manpages.PAGES.index(page)]
    groff = subprocess.run(
        [_tool("groff"), "-ww", "-man", "-z", path], capture_output=True, text=True
    )
    assert groff.returncode == 0 and groff.stderr == ""
    man = subprocess.run(
        [_tool("man"), "-l", "--warnings", path],
        capture_output=True,
        text=True,
        env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"),
    )
    assert man.returncode == 0 and man.stderr == "", man.stderr
    assert page.split(".")[0].upper() in man.stdout


def test_roff_special_characters_are_escaped():
    assert manpages.escape(r"a-b \x") == r"a\-b \ex"
    assert manpages.escape(".TH not a request") == r"\&.TH not a request"
    assert manpages.escape("'quote first") == r"\&'quote first"
    parser = argparse.ArgumentParser(prog="pam-guard")
    sub = parser.add_subparsers(dest="command")
    odd = sub.add_parser("odd", help=".SH starts like a request", description=None)
    odd.add_argument("--path", help=r"a \path with a 'quote' and --dashes")
    page = manpages.command_page(parser)
    text = render(page)
    assert "starts like a request" in sections(text, "")["COMMANDS"]
    assert r"A \path with a 'quote' and --dashes." in text
    # every minus sign and backslash in text lines is escaped (roff requests aside)
    for line in page.splitlines():
        if not line.startswith("."):
            assert not re.search(r"(?<!\\)-", line), line
            bare = re.sub(r"\\f[BIR]", "", line)
            assert not re.search(r"\\(?![-e&])", bare), line


def test_installed_pages_are_the_ones_the_code_makes_now(tmp_path):
    # What install.sh installed, against the pages made from this checkout's code.
    subprocess.run(
        [VENV_PYTHON, "-m", "pam_guard.manpages", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    for name, installed in INSTALLED.items():
        assert os.path.exists(installed), f"{installed} missing: run packaging/install.sh"
        with open(installed) as got, open(tmp_path / name) as expected:
            assert got.read() == expected.read(), f"{installed} is not what the code makes now"
    # `man pam-guard` and `man pam-guard.toml` find them
    for name, section in (("pam-guard", "8"), ("pam-guard.toml", "5")):
        where = subprocess.run([_tool("man"), "-w", section, name], capture_output=True, text=True)
        assert where.returncode == 0, where.stderr
        assert os.path.realpath(where.stdout.strip()) == os.path.realpath(
            INSTALLED[f"{name}.{section}"]
        )
