#!/usr/bin/env bash
# packaging/apt-install.sh PACKAGE...: install the Debian packages not yet installed, keeping
# apt from starting their daemons (freeradius, slapd, postgresql, fail2ban would otherwise
# start on all interfaces with Debian's stock config): a policy-rc.d that refuses every
# start, in place only while apt runs, and only when the admin has none of their own.
set -euo pipefail

missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "pam-guard: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# made by pam-guard apt-install.sh for one apt run\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
