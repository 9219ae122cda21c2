"""A tiny pam_python auth module for the tests: the password is right when a simple bind as
uid=USER,<base> to the test slapd succeeds (so ppolicy counts the failures, as pam_ldap would).

Module arguments: url=ldap://127.0.0.1:PORT base=ou=people,dc=example,dc=com.
It runs `ldapwhoami` (ldap-utils) with the password in a 0600 temporary file, so it needs
nothing outside the system interpreter that pam_python embeds. Test use only.
"""

import os
import re
import subprocess
import tempfile

_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # no DN escaping needed for these


def _args(argv):
    return dict(a.split("=", 1) for a in argv[1:] if "=" in a)


def _password(pamh):
    if pamh.authtok:
        return pamh.authtok
    reply = pamh.conversation(pamh.Message(pamh.PAM_PROMPT_ECHO_OFF, "Password: "))
    pamh.authtok = reply.resp
    return reply.resp


def pam_sm_authenticate(pamh, flags, argv):
    try:
        user = pamh.get_user(None)
    except pamh.exception as exc:
        return exc.pam_result
    if not user or not _SAFE_NAME.match(user):
        return pamh.PAM_USER_UNKNOWN
    args = _args(argv)
    password = _password(pamh) or ""
    fd, path = tempfile.mkstemp(prefix="pgldap-bind-")
    try:
        os.write(fd, password.encode())
        os.close(fd)
        done = subprocess.run(
            [
                "ldapwhoami",
                "-x",
                "-o",
                "nettimeout=5",
                "-H",
                args["url"],
                "-D",
                f"uid={user},{args['base']}",
                "-y",
                path,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    finally:
        os.unlink(path)
    return pamh.PAM_SUCCESS if done.returncode == 0 else pamh.PAM_AUTH_ERR


def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS
