#!/usr/bin/env bash
# Installs pam-guard on Debian/Ubuntu (as root). Safe to run again: it never overwrites the
# admin's config, audit key or store, and never edits a PAM stack or a FreeRADIUS site.
#
#   packaging/install.sh [--with-freeradius] [--prefix /opt/pam-guard] [--editable] [--extras test]
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/pam-guard
ETC=/etc/pam-guard
STATE=/var/lib/pam-guard
WITH_FREERADIUS=0
EDITABLE=0
EXTRAS=""

while [ $# -gt 0 ]; do
    case "$1" in
        --with-freeradius) WITH_FREERADIUS=1 ;;
        --prefix) PREFIX=$2; shift ;;
        --editable) EDITABLE=1 ;;
        --extras) EXTRAS=$2; shift ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

say() { printf 'pam-guard install: %s\n' "$*"; }

# --- system packages --------------------------------------------------------------------------
PACKAGES=(libpam-python python3-venv)
[ "$WITH_FREERADIUS" = 1 ] && PACKAGES+=(freeradius freeradius-python3 freeradius-utils)
"$SRC/packaging/apt-install.sh" "${PACKAGES[@]}"

# --- virtual environment from the system interpreter that pam_python embeds --------------------
if [ ! -x "$PREFIX/bin/python" ] || ! "$PREFIX/bin/python" -c 'import sys; sys.exit(sys.base_prefix != "/usr")'; then
    say "building $PREFIX from /usr/bin/python3"
    rm -rf "$PREFIX"
    /usr/bin/python3 -m venv "$PREFIX"
fi
"$PREFIX/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
target="$SRC"
[ -n "$EXTRAS" ] && target="$SRC[$EXTRAS]"
if [ "$EDITABLE" = 1 ]; then
    "$PREFIX/bin/pip" install -q -e "$target"
else
    "$PREFIX/bin/pip" install -q --force-reinstall --no-deps "$SRC"
    "$PREFIX/bin/pip" install -q "$target"
fi
ln -sf "$PREFIX/bin/pam-guard" /usr/local/sbin/pam-guard

# --- config, audit key, store --------------------------------------------------------------------
install -d -m 0755 -o root -g root "$ETC"
# Drop-ins (pam-guard.toml(5)): admins' own files, applied over pam-guard.toml; left as found.
[ -d "$ETC/pam-guard.d" ] || install -d -m 0755 -o root -g root "$ETC/pam-guard.d"
if [ ! -e "$ETC/pam-guard.toml" ]; then
    install -m 0644 -o root -g root "$SRC/packaging/pam-guard.toml" "$ETC/pam-guard.toml"
    say "wrote $ETC/pam-guard.toml"
fi
if [ ! -e "$ETC/audit.key" ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$ETC/audit.key")
    chmod 0600 "$ETC/audit.key"
    say "wrote $ETC/audit.key"
fi
# lockout.ignore_repeated_password's key (pam_guard/digests.py): radiusd (freerad) reads it too.
if [ ! -e "$ETC/digest.key" ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$ETC/digest.key")
    chmod 0600 "$ETC/digest.key"
    say "wrote $ETC/digest.key"
fi
if getent group freerad >/dev/null 2>&1; then
    chgrp freerad "$ETC/digest.key" && chmod 0640 "$ETC/digest.key"
fi
# Made 0700 once; a store shared with radiusd's user (share-store.sh, below) stays shared.
[ -d "$STATE" ] || install -d -m 0700 -o root -g root "$STATE"
"$PREFIX/bin/pam-guard" --config "$ETC/pam-guard.toml" init-store
"$PREFIX/bin/pam-guard" --config "$ETC/pam-guard.toml" check-config >/dev/null

# --- the stable hook file PAM stacks name, and the lines to add -------------------------------
SITE_PACKAGES=$("$PREFIX/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
sed "s|@SITE_PACKAGES@|$SITE_PACKAGES|" "$SRC/packaging/hook.py" > "$PREFIX/hook.py.new"
chmod 0644 "$PREFIX/hook.py.new" && mv "$PREFIX/hook.py.new" "$PREFIX/hook.py"
# The exec entry for setuid programs' stacks (su, sudo, common-auth), run by pam_exec.so: its
# first line starts the venv's interpreter by absolute path in isolated mode (-I).
sed "s|@PREFIX@|$PREFIX|g" "$SRC/packaging/pam-guard-exec" > "$PREFIX/bin/pam-guard-exec.new"
chmod 0755 "$PREFIX/bin/pam-guard-exec.new" && mv "$PREFIX/bin/pam-guard-exec.new" "$PREFIX/bin/pam-guard-exec"
install -d -m 0755 "$PREFIX/share/pam.d"
for stack in "$SRC"/packaging/pam.d/*; do
    sed "s|/opt/pam-guard/|$PREFIX/|g" "$stack" > "$PREFIX/share/pam.d/$(basename "$stack")"
    chmod 0644 "$PREFIX/share/pam.d/$(basename "$stack")"
done
# pam-auth-update profiles for common-auth/-account/-session (not enabled: Default: no).
if [ -d /usr/share/pam-configs ]; then
    for profile in pam-guard pam-guard-authfail; do
        sed "s|@PREFIX@|$PREFIX|g" "$SRC/packaging/pam-configs/$profile" > "/usr/share/pam-configs/$profile"
        chmod 0644 "/usr/share/pam-configs/$profile"
    done
fi
install -m 0755 "$SRC/packaging/share-store.sh" "$PREFIX/share/share-store.sh"
install -d -m 0755 "$PREFIX/share/fail2ban/filter.d" "$PREFIX/share/fail2ban/jail.d"
install -m 0644 "$SRC/packaging/fail2ban/filter.d/pam-guard.conf" "$PREFIX/share/fail2ban/filter.d/"
install -m 0644 "$SRC/packaging/fail2ban/jail.d/pam-guard.local" "$PREFIX/share/fail2ban/jail.d/"
# pam_python never writes bytecode (it sets Py_DontWriteBytecodeFlag): without .pyc files every
# login would compile the hook's modules again. pip compiles a regular install; an editable one
# runs from the source tree, so compile that.
if [ "$EDITABLE" = 1 ]; then
    "$PREFIX/bin/python" -m compileall -q "$SRC/policy" "$SRC/store" "$SRC/pam_guard" "$SRC/radius_hook" >/dev/null
fi
# @@SYSTEMD@@ (issue 6: deliver timer)
# --- systemd: every minute, `pam-guard deliver` sends the queued notices and `pam-guard metrics`
# writes node_exporter's textfile (skipped where /var/lib/prometheus/node-exporter is missing)
TIMERS="pam-guard-deliver.timer pam-guard-metrics.timer"
if command -v systemctl >/dev/null 2>&1 && [ -d /etc/systemd/system ]; then
    for unit in pam-guard-deliver.service pam-guard-deliver.timer \
                pam-guard-metrics.service pam-guard-metrics.timer; do
        sed "s|@PREFIX@|$PREFIX|g" "$SRC/packaging/systemd/$unit" > "/etc/systemd/system/$unit.new"
        chmod 0644 "/etc/systemd/system/$unit.new"
        mv "/etc/systemd/system/$unit.new" "/etc/systemd/system/$unit"
    done
    if [ -d /run/systemd/system ]; then
        # shellcheck disable=SC2086 # two unit names
        if systemctl daemon-reload && systemctl enable --now $TIMERS; then
            say "enabled every minute: pam-guard-deliver.timer (queued notices are sent)," \
                "pam-guard-metrics.timer (metrics for node_exporter)"
        else
            say "could not enable the timers (see above); once fixed: systemctl enable --now $TIMERS"
        fi
    else
        say "installed /etc/systemd/system/pam-guard-{deliver,metrics}.{service,timer}; systemd" \
            "is not running here, so start them where it is: systemctl enable --now $TIMERS"
    fi
else
    say "no systemd: send queued notices and write metrics every minute another way, e.g." \
        "/etc/cron.d/pam-guard: '* * * * * root $PREFIX/bin/pam-guard deliver' and" \
        "'* * * * * root $PREFIX/bin/pam-guard metrics --textfile" \
        "/var/lib/prometheus/node-exporter/pam-guard.prom'"
fi
# @@FREERADIUS@@ (issue 4: module files when --with-freeradius)
if [ "$WITH_FREERADIUS" = 1 ]; then
    RADDB=${PAM_GUARD_RADDB:-/etc/freeradius/3.0}
    # The stable module file rlm_python3 loads (python_path = $PREFIX/radius).
    install -d -m 0755 "$PREFIX/radius"
    sed "s|@SITE_PACKAGES@|$SITE_PACKAGES|; s|@PREFIX@|$PREFIX|g" \
        "$SRC/packaging/freeradius/pam_guard_radius.py" > "$PREFIX/radius/pam_guard_radius.py.new"
    chmod 0644 "$PREFIX/radius/pam_guard_radius.py.new"
    mv "$PREFIX/radius/pam_guard_radius.py.new" "$PREFIX/radius/pam_guard_radius.py"
    install -d -m 0755 "$PREFIX/share/freeradius/site-snippets"
    install -m 0644 "$SRC"/packaging/freeradius/sites/* "$PREFIX/share/freeradius/site-snippets/"
    install -m 0644 "$SRC/packaging/freeradius/clients.conf.example" "$PREFIX/share/freeradius/"
    # Debian's radiusd runs as freerad: it must be able to write the default store.
    if id freerad >/dev/null 2>&1 && grep -q "^url = \"sqlite:///$STATE/" "$ETC/pam-guard.toml"; then
        "$SRC/packaging/share-store.sh" "$STATE" freerad | sed 's/^share-store.sh: /pam-guard install: /'
    else
        say "if radiusd runs as a user other than root, let it write the store:" \
            "$PREFIX/share/share-store.sh STORE_DIR USER"
    fi
    # mods-available (never enabled) and policy.d (policies the site lines name: unused,
    # they change nothing); never edits a site by itself. An admin's own edited copy is
    # kept; the shipped one is then in $PREFIX/share/freeradius/DIR/ (not beside it:
    # radiusd reads every file of policy.d).
    raddb_file() {  # raddb_file DIR SHIPPED_FILE
        local text shipped="$PREFIX/share/freeradius/$1/pam_guard"
        text=$(sed "s|@PREFIX@|$PREFIX|g" "$2")
        install -d -m 0755 "$PREFIX/share/freeradius/$1"
        printf '%s\n' "$text" > "$shipped"
        chmod 0644 "$shipped"
        if [ ! -e "$RADDB/$1/pam_guard" ]; then
            printf '%s\n' "$text" > "$RADDB/$1/pam_guard"
            chmod 0640 "$RADDB/$1/pam_guard"
            chgrp freerad "$RADDB/$1/pam_guard" 2>/dev/null || true
            say "wrote $RADDB/$1/pam_guard"
        elif [ "$(cat "$RADDB/$1/pam_guard")" != "$text" ]; then
            say "kept your $RADDB/$1/pam_guard; the shipped one is $shipped"
        fi
    }
    if [ -d "$RADDB/mods-available" ] && [ -d "$RADDB/policy.d" ]; then
        raddb_file mods-available "$SRC/packaging/freeradius/mods-available/pam_guard"
        raddb_file policy.d "$SRC/packaging/freeradius/policy.d/pam_guard"
    else
        say "no $RADDB/mods-available or policy.d: FreeRADIUS 3.2 is not installed where expected"
    fi
    # The lines to add to the sites (PAP/CHAP sites and 802.1X), kept for later too.
    sed "s|@PREFIX@|$PREFIX|g; s|@RADDB@|$RADDB|g" "$SRC/packaging/freeradius/wiring.txt" \
        > "$PREFIX/share/freeradius/wiring.txt"
    chmod 0644 "$PREFIX/share/freeradius/wiring.txt"
    echo
    cat "$PREFIX/share/freeradius/wiring.txt"
fi
# @@MANPAGES@@ (issue 19: man pages; packaging/deb/build.sh makes the same two)
# --- man pages: pam-guard(8) and pam-guard.toml(5), generated from the installed code -----------
MAN_DIR=/usr/local/share/man
man_tmp=$(mktemp -d)
if "$PREFIX/bin/python" -I -m pam_guard.manpages "$man_tmp" >/dev/null; then
    install -d -m 0755 "$MAN_DIR/man8" "$MAN_DIR/man5"
    install -m 0644 "$man_tmp/pam-guard.8" "$MAN_DIR/man8/pam-guard.8"
    install -m 0644 "$man_tmp/pam-guard.toml.5" "$MAN_DIR/man5/pam-guard.toml.5"
    if command -v mandb >/dev/null 2>&1; then
        mandb -q "$MAN_DIR" >/dev/null 2>&1 || true
    fi
else
    say "could not generate the man pages (above); pam-guard --help has the commands"
fi
rm -rf "$man_tmp"

cat <<LINES

pam-guard is installed. It edits no PAM stack by itself. Two entries, one for each kind of
program (examples: $PREFIX/share/pam.d/):

Daemons (sshd, login, dovecot, vsftpd): pam_python, the fastest. Around the password module:

auth     requisite                pam_python.so $PREFIX/hook.py preauth
auth     [success=1 default=bad]  pam_unix.so
auth     [default=die]            pam_python.so $PREFIX/hook.py authfail
account  required                 pam_python.so $PREFIX/hook.py
session  optional                 pam_python.so $PREFIX/hook.py

Setuid programs (su, sudo, chsh, chfn, passwd, newgrp, pkexec) and files they include
(common-auth): never pam_python, whose interpreter takes its Python from the caller's PATH
(any local user would run code as root); the exec entry instead, through pam_exec.so.
Complete stacks: $PREFIX/share/pam.d/pam-guard-su and pam-guard-sudo; for common-auth:
pam-auth-update --enable pam-guard pam-guard-authfail. The lines:

auth     [success=ok default=2]      pam_exec.so seteuid quiet stdout $PREFIX/bin/pam-guard-exec preauth
auth     [success=2 default=ignore]  pam_unix.so
auth     [default=ignore]            pam_exec.so seteuid quiet $PREFIX/bin/pam-guard-exec authfail
auth     requisite                   pam_deny.so
auth     required                    pam_permit.so
account  [success=1 default=ignore]  pam_exec.so seteuid quiet stdout $PREFIX/bin/pam-guard-exec
account  requisite                   pam_deny.so
session  optional                    pam_exec.so seteuid quiet $PREFIX/bin/pam-guard-exec

LINES
# Which stacks run pam-guard, and any pam_python line a setuid program reaches (exit 1).
"$PREFIX/bin/pam-guard" doctor || say "pam-guard doctor found a stack to fix (above)"
say "done"
