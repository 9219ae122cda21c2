#!/usr/bin/env bash
# Builds the Debian package pam-guard_<version>_<arch>.deb from this checkout (Debian 12; as any
# user: dpkg-deb --root-owner-group makes every file root's). Needs python3-venv and the network
# to PyPI (pip's wheel cache is used).
#
#   packaging/deb/build.sh [OUTDIR]        (default: dist/ in the checkout)
#
# The package holds what packaging/install.sh puts on a machine, at the same paths: the venv
# /opt/pam-guard (built at its final path inside a staging tree, then every staging path in it
# rewritten), the hook file, the exec entry, /opt/pam-guard/share (PAM, FreeRADIUS and fail2ban
# examples), the pam-auth-update profiles (Default: no), the config as a conffile, the systemd
# units, the man pages and /usr/sbin/pam-guard. Its maintainer scripts (packaging/deb/postinst,
# prerm, postrm) make the audit key and the store and never enable anything in a PAM stack or
# a FreeRADIUS site.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:-$SRC/dist}
PREFIX=/opt/pam-guard
PYTHON=/usr/bin/python3
EXTRAS=postgresql   # psycopg2: a PostgreSQL store works after a plain install (SPEC §11)

say() { printf 'deb/build.sh: %s\n' "$*"; }
die() { printf 'deb/build.sh: %s\n' "$*" >&2; exit 1; }

command -v dpkg-deb >/dev/null || die "dpkg-deb is missing"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || die "python3-venv is missing (apt-get install python3-venv)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# A short staging path: pip writes it into script shebangs, and falls back to a /bin/sh
# trampoline when a shebang would be longer than 127 bytes.
WORK=$(mktemp -d /tmp/pgdeb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root
VENV=$STAGE$PREFIX

# --- the version, and where it runs ---------------------------------------------------------------
PY_VERSION=$("$PYTHON" -c 'import tomllib, sys; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$SRC/pyproject.toml")
# PEP 440 pre-releases (1.0rc1, 1.0.dev2) sort before the release in Debian only with "~".
VERSION=$(printf '%s' "$PY_VERSION" | sed -E 's/\.?(a|b|rc|dev)([0-9]*)$/~\1\2/')
ARCH=$(dpkg --print-architecture)
PY_MINOR=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
NEXT_MINOR=$("$PYTHON" -c 'import sys; print("%d.%d" % (sys.version_info[0], sys.version_info[1] + 1))')
DEB=$OUT/pam-guard_${VERSION}_${ARCH}.deb
say "building $(basename "$DEB") with Python $PY_MINOR"

# --- the source: a clean copy, so that pip's in-tree build never touches the checkout -------------
mkdir -p "$WORK/src"
tar -C "$SRC" --exclude=./.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache \
    -cf - . | tar -C "$WORK/src" -xf -

# --- the venv at its final path inside the staging tree -------------------------------------------
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-warn-script-location \
    "$WORK/src[$EXTRAS]"
SITE_PACKAGES=$("$VENV/bin/python" -c 'import sysconfig, sys; print(sysconfig.get_path("purelib", vars={"base": sys.argv[1], "platbase": sys.argv[1]}))' "$PREFIX")

# pip records where the source came from (a directory that is gone once this script ends).
for direct in "$VENV"/lib/python*/site-packages/pam_guard-*.dist-info/direct_url.json; do
    [ -e "$direct" ] || continue
    rm -f "$direct"
    sed -i '/\/direct_url\.json,/d' "$(dirname "$direct")/RECORD"
done
# Every text file naming the staging path (script shebangs, activate scripts, pyvenv.cfg's
# command line, RECORD) names the final one instead.
grep -rlI --null -F "$STAGE" "$VENV" | xargs -0 -r sed -i "s|$STAGE$PREFIX|$PREFIX|g"
# RECORD keeps each file's hash and size: those of the rewritten scripts change.
"$VENV/bin/python" - "$VENV" <<'PY'
import base64, csv, glob, hashlib, io, os, sys

for record in glob.glob(os.path.join(sys.argv[1], "lib/python*/site-packages/*.dist-info/RECORD")):
    base = os.path.dirname(os.path.dirname(record))
    with open(record, newline="") as handle:
        rows = list(csv.reader(handle))
    changed = False
    for row in rows:
        path = os.path.normpath(os.path.join(base, row[0]))
        if len(row) == 3 and row[1].startswith("sha256=") and os.path.isfile(path):
            with open(path, "rb") as handle:
                data = handle.read()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if row[1] != f"sha256={digest}" or row[2] != str(len(data)):
                row[1], row[2], changed = f"sha256={digest}", str(len(data)), True
    if changed:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        with open(record, "w", newline="") as handle:
            handle.write(out.getvalue())
PY
# Bytecode names its source file: compile again as /opt/pam-guard/... (pam_python never writes
# bytecode, so every module the hook imports must have it).
find "$VENV" -name __pycache__ -type d -prune -exec rm -rf {} +

# --- the files install.sh puts beside the venv ------------------------------------------------------
sed "s|@SITE_PACKAGES@|$SITE_PACKAGES|" "$SRC/packaging/hook.py" > "$VENV/hook.py"
sed "s|@PREFIX@|$PREFIX|g" "$SRC/packaging/pam-guard-exec" > "$VENV/bin/pam-guard-exec"
chmod 0755 "$VENV/bin/pam-guard-exec"
install -d "$VENV/share/pam.d"
for stack in "$SRC"/packaging/pam.d/*; do
    sed "s|/opt/pam-guard/|$PREFIX/|g" "$stack" > "$VENV/share/pam.d/$(basename "$stack")"
done
install -m 0755 "$SRC/packaging/share-store.sh" "$VENV/share/share-store.sh"
install -d "$VENV/share/fail2ban/filter.d" "$VENV/share/fail2ban/jail.d"
install -m 0644 "$SRC/packaging/fail2ban/filter.d/pam-guard.conf" "$VENV/share/fail2ban/filter.d/"
install -m 0644 "$SRC/packaging/fail2ban/jail.d/pam-guard.local" "$VENV/share/fail2ban/jail.d/"
# FreeRADIUS: the module file rlm_python3 loads, the site snippets, and the module instance and
# policies to copy into mods-available and policy.d (never placed in /etc/freeradius by the
# package).
install -d "$VENV/radius" "$VENV/share/freeradius/site-snippets" "$VENV/share/freeradius/mods-available" \
    "$VENV/share/freeradius/policy.d"
sed "s|@SITE_PACKAGES@|$SITE_PACKAGES|; s|@PREFIX@|$PREFIX|g" \
    "$SRC/packaging/freeradius/pam_guard_radius.py" > "$VENV/radius/pam_guard_radius.py"
install -m 0644 "$SRC"/packaging/freeradius/sites/* "$VENV/share/freeradius/site-snippets/"
install -m 0644 "$SRC/packaging/freeradius/clients.conf.example" "$VENV/share/freeradius/"
sed "s|@PREFIX@|$PREFIX|g" "$SRC/packaging/freeradius/mods-available/pam_guard" \
    > "$VENV/share/freeradius/mods-available/pam_guard"
sed "s|@PREFIX@|$PREFIX|g" "$SRC/packaging/freeradius/policy.d/pam_guard" \
    > "$VENV/share/freeradius/policy.d/pam_guard"
sed "s|@PREFIX@|$PREFIX|g; s|@RADDB@|/etc/freeradius/3.0|g" "$SRC/packaging/freeradius/wiring.txt" \
    > "$VENV/share/freeradius/wiring.txt"
"$VENV/bin/python" -m compileall -q -s "$STAGE" -p / "$VENV/lib" "$VENV/radius" >/dev/null

# pam-auth-update profiles for common-auth and friends: Default: no, never enabled here.
install -d "$STAGE/usr/share/pam-configs"
for profile in pam-guard pam-guard-authfail; do
    sed "s|@PREFIX@|$PREFIX|g" "$SRC/packaging/pam-configs/$profile" > "$STAGE/usr/share/pam-configs/$profile"
done
install -d -m 0755 "$STAGE/etc/pam-guard" "$STAGE/etc/pam-guard/pam-guard.d"  # drop-ins: pam-guard.toml(5)
install -m 0644 "$SRC/packaging/pam-guard.toml" "$STAGE/etc/pam-guard/pam-guard.toml"
install -d "$STAGE/lib/systemd/system"
for unit in pam-guard-deliver.service pam-guard-deliver.timer pam-guard-metrics.service pam-guard-metrics.timer; do
    sed "s|@PREFIX@|$PREFIX|g" "$SRC/packaging/systemd/$unit" > "$STAGE/lib/systemd/system/$unit"
done
install -d "$STAGE/usr/sbin"
ln -s "$PREFIX/bin/pam-guard" "$STAGE/usr/sbin/pam-guard"

# --- man pages, made by the code just installed (as packaging/install.sh makes them) -----------------
"$VENV/bin/python" -I -m pam_guard.manpages "$WORK/man" >/dev/null
install -d "$STAGE/usr/share/man/man8" "$STAGE/usr/share/man/man5"
gzip -9n < "$WORK/man/pam-guard.8" > "$STAGE/usr/share/man/man8/pam-guard.8.gz"
gzip -9n < "$WORK/man/pam-guard.toml.5" > "$STAGE/usr/share/man/man5/pam-guard.toml.5.gz"

# --- documentation Debian expects ---------------------------------------------------------------------
DOC=$STAGE/usr/share/doc/pam-guard
install -d "$DOC"
install -m 0644 "$SRC/README.md" "$DOC/README.md"
install -m 0644 "$SRC/packaging/deb/copyright" "$DOC/copyright"
COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE=$(git -C "$SRC" log -1 --format=%cD 2>/dev/null || date -R)
printf 'pam-guard (%s) unstable; urgency=medium\n\n  * Built from the pam-guard repository at commit %s.\n\n -- pam-guard developers <root@localhost>  %s\n' \
    "$VERSION" "$COMMIT" "$DATE" | gzip -9n > "$DOC/changelog.gz"

# --- nothing of the staging tree may be left in the package ---------------------------------------------
if left=$(grep -rl --binary-files=text -F "$WORK" "$STAGE"); then
    die "the staging path is still written in: ${left//$'\n'/ }"
fi

# --- control files ------------------------------------------------------------------------------------
install -d "$STAGE/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$SRC/packaging/deb/$script" "$STAGE/DEBIAN/$script"
done
echo /etc/pam-guard/pam-guard.toml > "$STAGE/DEBIAN/conffiles"
INSTALLED_SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
# The wheels' compiled code (manylinux) needs the newest glibc symbol version it names.
GLIBC=$( (find "$VENV" -type f -name '*.so*' -exec grep -ahoE 'GLIBC_2\.[0-9]+' {} + || true) \
        | sort -uV | tail -n1)
LIBC_DEPENDS=${GLIBC:+libc6 (>= ${GLIBC#GLIBC_}), }
sed -e "s|@VERSION@|$VERSION|; s|@ARCH@|$ARCH|; s|@INSTALLED_SIZE@|$INSTALLED_SIZE|" \
    -e "s|@LIBC_DEPENDS@|$LIBC_DEPENDS|" \
    -e "s|@PY_MINOR@|$PY_MINOR|g; s|@NEXT_MINOR@|$NEXT_MINOR|g" \
    "$SRC/packaging/deb/control" > "$STAGE/DEBIAN/control"

# Modes do not depend on the umask of whoever builds; --root-owner-group makes all root:root.
# Shared objects (the wheels' bundled libraries come 0755) are loaded, never run.
chmod -R u+rwX,go+rX,go-w "$STAGE"
find "$VENV" -type f -name '*.so*' -exec chmod 0644 {} +
rm -f "$DEB"
dpkg-deb --root-owner-group -Zxz -z6 --build "$STAGE" "$DEB" >/dev/null
say "wrote $DEB ($(du -h "$DEB" | cut -f1))"
