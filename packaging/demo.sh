#!/usr/bin/env bash
# pam-guard's main job, shown on this machine (as root, after packaging/install.sh):
# a demo PAM service guarded by pam-guard locks a demo user after 3 wrong passwords,
# refuses even the right password before asking pam_unix, and lets the user in again after
# `pam-guard unlock`. Uses the installed config and store (SQLite by default); removes its
# demo service and user at the end (their history stays in the store, as any login's would).
set -euo pipefail

SERVICE=pam-guard-demo
DEMO_USER=${PAM_GUARD_DEMO_USER:-pgdemo}
PASSWORD="demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
PAM_GUARD=/usr/local/sbin/pam-guard                    # packaging/install.sh puts it here,
[ -x "$PAM_GUARD" ] || PAM_GUARD=/usr/sbin/pam-guard     # the Debian package here
RHOST=192.0.2.10   # TEST-NET-1: documentation address, never contacted

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
[ -x /opt/pam-guard/hook.py ] || [ -f /opt/pam-guard/hook.py ] || { echo "demo.sh: run packaging/install.sh (or install the .deb) first" >&2; exit 1; }
command -v pamtester >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pamtester >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pamtester >/dev/null; }
}

cleanup() {
    rm -f "/etc/pam.d/$SERVICE"
    userdel "$DEMO_USER" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
login() {  # login PASSWORD: one pamtester login; says whether the password was asked for
    local out
    out=$(printf '%s\n' "$1" | pamtester -I rhost="$RHOST" "$SERVICE" "$DEMO_USER" authenticate acct_mgmt 2>&1) || true
    case "$out" in
        *Password:*) echo "   (pam_unix asked for the password)" ;;
        *) echo "   (refused before the password was asked for)" ;;
    esac
    printf '%s\n' "${out//Password: /}" | sed '/^$/d; s/^/   /'
}

# The demo user is made here and marked as such; an existing account of the same name that
# is not the demo's is never touched (its password changed or the account removed).
DEMO_GECOS="pam-guard demo user"
if id "$DEMO_USER" >/dev/null 2>&1; then
    if [ "$(getent passwd "$DEMO_USER" | cut -d: -f5)" != "$DEMO_GECOS" ]; then
        trap - EXIT
        rm -f "/etc/pam.d/$SERVICE"
        echo "demo.sh: user $DEMO_USER exists and is not the demo's; set PAM_GUARD_DEMO_USER" >&2
        exit 1
    fi
else
    useradd --no-create-home --shell /usr/sbin/nologin --comment "$DEMO_GECOS" "$DEMO_USER"
fi
echo "$DEMO_USER:$PASSWORD" | chpasswd
sed -e '/^#/d' /opt/pam-guard/share/pam.d/pam-guard-sshd > "/etc/pam.d/$SERVICE"
"$PAM_GUARD" unlock "$DEMO_USER" >/dev/null 2>&1 || true   # a clean start if the demo ran before

step "PAM service $SERVICE guarded by pam-guard:"
sed 's/^/   /' "/etc/pam.d/$SERVICE"

step "1. the right password works"
login "$PASSWORD"
for i in 1 2 3; do
    step "$((i + 1)). wrong password ($i of 3)"
    login "wrong-password-$i"
done
step "5. the right password is now refused before pam_unix is asked: the account is locked"
login "$PASSWORD"
echo "   (pamtester's \"User account has expired\" is how it names PAM_ACCT_EXPIRED, the code pam-guard returns for a lock)"
step "pam-guard status $DEMO_USER"
"$PAM_GUARD" status "$DEMO_USER" | sed 's/^/   /'
step "pam-guard history $DEMO_USER --limit 5"
"$PAM_GUARD" history "$DEMO_USER" --limit 5 | sed 's/^/   /'
step "6. pam-guard unlock $DEMO_USER"
"$PAM_GUARD" unlock "$DEMO_USER" | sed 's/^/   /'
step "7. the right password works again"
login "$PASSWORD"
step "demo done (service and user removed; their history stays: pam-guard history $DEMO_USER)"
