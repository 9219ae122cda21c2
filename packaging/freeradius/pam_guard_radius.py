# pam-guard's stable module file for FreeRADIUS rlm_python3, installed as
# @PREFIX@/radius/pam_guard_radius.py (mods-available/pam_guard names its directory as
# python_path). It puts pam-guard's virtual environment on the path of the interpreter
# rlm_python3 embeds, ahead of the system's packages, and hands over to radius_hook.module.
# The installer writes the real site-packages path in place of the marker below.
import site as _site
import sys as _sys

_before = list(_sys.path)
_site.addsitedir("@SITE_PACKAGES@")
_sys.path[:] = [p for p in _sys.path if p not in _before] + _before

from radius_hook.module import (  # noqa: E402,F401 - rlm_python3 looks these names up here
    accounting,
    authorize,
    detach,
    instantiate,
    post_auth,
)
