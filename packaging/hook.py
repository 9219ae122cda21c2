# pam-guard's stable hook file for pam_python.so, installed as /opt/pam-guard/hook.py.
# PAM stacks name this file; it puts pam-guard's virtual environment on the path of the
# interpreter pam_python embeds and hands over to pam_guard.hook. The installer writes the
# real site-packages path in place of the marker below.
import site as _site

_site.addsitedir("@SITE_PACKAGES@")

from pam_guard.hook import (  # noqa: E402,F401 - pam_python looks these names up here
    pam_sm_acct_mgmt,
    pam_sm_authenticate,
    pam_sm_close_session,
    pam_sm_open_session,
    pam_sm_setcred,
)
