"""The wiring an admin reads (install.sh's printout, packaging/freeradius/wiring.txt, and the
README's FreeRADIUS section) names exactly what the tested site snippets use, and each
policy they call exists in policy.d/pam_guard."""

from __future__ import annotations

import os
import re

import pytest

from tests.support.radius import PACKAGING, ROOT

SNIPPETS = {
    "outer": ("authorize", "post-auth", "accounting"),
    "inner": ("inner-tunnel-authorize", "inner-tunnel-post-auth"),
}
STATEMENT = re.compile(r"(?m)^\s*(pam_guard\w*)\s*(?:#.*)?$")


def read(*path: str) -> str:
    with open(os.path.join(*path)) as handle:
        return handle.read()


def used(site: str) -> set:
    return {
        name
        for snippet in SNIPPETS[site]
        for name in STATEMENT.findall(read(PACKAGING, "sites", snippet))
    }


@pytest.mark.parametrize("site", sorted(SNIPPETS))
def test_printed_wiring_and_readme_name_what_the_snippets_use(site):
    readme = read(ROOT, "README.md")
    readme = readme[readme.index("## For network admins: FreeRADIUS") :]
    readme = readme[: readme.index("\n## ", 5)]
    for text in (read(PACKAGING, "wiring.txt"), readme):
        part = text[text.index("inner-tunnel") :] if site == "inner" else text
        assert used(site) <= set(re.findall(r"\b(pam_guard\w*)\b", part)), site


def test_each_policy_called_is_defined_and_each_defined_one_is_called():
    text = read(PACKAGING, "policy.d", "pam_guard")
    policies = set(re.findall(r"(?m)^(pam_guard\w*) \{", text))
    called = used("outer") | used("inner")
    assert called <= policies
    # pam_guard_python is the module instance the `pam_guard` policy calls.
    inside = set(re.findall(r"(?m)^\t+(pam_guard\w*)\b", text)) - {"pam_guard_python"}
    assert policies == called | inside


def test_install_prints_the_wiring():
    script = read(PACKAGING, "..", "install.sh")
    assert "packaging/freeradius/wiring.txt" in script
    assert "policy.d/pam_guard" in script
