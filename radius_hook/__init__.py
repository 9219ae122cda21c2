"""The FreeRADIUS rlm_python3 module of pam-guard (SPEC §9).

`radius_hook.module` holds the functions rlm_python3 calls (instantiate, authorize,
post_auth, accounting, detach); `radius_hook.request` turns a request's attribute list into
the facts pam-guard records; `radius_hook.hot` keeps copies of accounts; `radius_hook.handoff`
hands outcomes to the recorder process (`radius_hook.recorder`) over the frames of
`radius_hook.frames`.
"""
